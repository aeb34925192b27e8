// Shared pieces of the gluonx loss kernels: element types, vectorisable math,
// broadcast weights, attribute parsing and the operator registration helpers.
//
// Every loss operator takes (pred, <targets...>, [sample_weight], [extra
// weight]) and returns the per-sample loss, shape (batch,), in pred's dtype.
// Its backward receives (out_grad, inputs..., output) and writes one gradient
// per input, always all of them: MXNet allocates every input gradient and does
// not tell the operator which ones are wanted.
#ifndef GLUONX_KERNELS_COMMON_H_
#define GLUONX_KERNELS_COMMON_H_

#include <mxnet/lib_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__AVX512F__) || defined(__AVX__)
#include <immintrin.h>
#endif

namespace gluonx {

using mxnet::ext::MXReturnValue;
using mxnet::ext::MXTensor;
using mxnet::ext::OpResource;
using mxnet::ext::MX_SUCCESS;
using mxnet::ext::MX_FAIL;
using Attrs = std::unordered_map<std::string, std::string>;
using Shapes = std::vector<std::vector<unsigned int>>;

#if defined(__GNUC__)
#define GLUONX_INLINE inline __attribute__((always_inline))
#else
#define GLUONX_INLINE inline
#endif

// Work below this many elements runs on one thread: waking the OpenMP team
// costs more than it saves on small batches.
constexpr int64_t kParallelMinWork = 1 << 15;

// ---------------------------------------------------------------- float16 --
// Storage-only half type; arithmetic happens in float.
struct half_t {
  uint16_t bits;
};

GLUONX_INLINE uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

GLUONX_INLINE float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

GLUONX_INLINE float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t magnitude = h & 0x7fffu;
  uint32_t out;
  if (magnitude >= 0x7c00u) {                // inf / nan
    out = 0x7f800000u | ((magnitude & 0x3ffu) << 13);
  } else if (magnitude >= 0x0400u) {         // normal
    out = (magnitude << 13) + ((127u - 15u) << 23);
  } else {                                   // zero / subnormal: exact in float
    return bits_float(sign) + (sign ? -1.0f : 1.0f) *
           static_cast<float>(magnitude) * 5.9604644775390625e-08f;
  }
  return bits_float(out | sign);
}

GLUONX_INLINE uint16_t float_to_half(float x) {     // round to nearest even
  uint32_t f = float_bits(x);
  const uint32_t sign = f & 0x80000000u;
  f ^= sign;
  uint32_t out;
  if (f >= 0x47800000u) {                    // >= 2^16: inf, or nan
    out = f > 0x7f800000u ? 0x7e00u : 0x7c00u;
  } else if (f < 0x38800000u) {              // below the smallest normal half
    const float shifted = bits_float(f) + 0.5f;  // aligns the subnormal bits
    out = float_bits(shifted) - 0x3f000000u;
  } else {
    const uint32_t odd = (f >> 13) & 1u;
    f += (static_cast<uint32_t>(15 - 127) << 23) + 0xfffu + odd;
    out = f >> 13;
  }
  return static_cast<uint16_t>(out | (sign >> 16));
}

// Acc<T>: the type arithmetic happens in; load/store convert.
template <typename T> struct AccOf { using type = T; };
template <> struct AccOf<half_t> { using type = float; };
template <typename T> using Acc = typename AccOf<T>::type;

template <typename T> GLUONX_INLINE Acc<T> load(const T* p, int64_t i) { return p[i]; }
template <> GLUONX_INLINE float load<half_t>(const half_t* p, int64_t i) {
  return half_to_float(p[i].bits);
}
template <typename T> GLUONX_INLINE void store(T* p, int64_t i, Acc<T> v) { p[i] = v; }
template <> GLUONX_INLINE void store<half_t>(half_t* p, int64_t i, float v) {
  p[i].bits = float_to_half(v);
}

// ------------------------------------------------------- streaming stores --
// Gradients of large inputs are written once and not read back soon: storing
// them with non-temporal (streaming) stores skips reading each destination
// cache line first, which saves a third of a backward pass's memory traffic.

// Arrays at least this large (elements) get streaming stores.
constexpr int64_t kStreamMinElements = int64_t(1) << 22;

template <typename T> struct Streamable { static constexpr bool value = false; };
#if defined(__AVX512F__) || defined(__AVX__)
template <> struct Streamable<float> { static constexpr bool value = true; };
template <> struct Streamable<double> { static constexpr bool value = true; };
#endif

// Copy n values to dst with streaming stores where dst is vector-aligned.
template <typename T> inline void stream_copy(T* dst, const T* src, int64_t n) {
  std::memcpy(dst, src, sizeof(T) * n);
}
#if defined(__AVX512F__)
template <> inline void stream_copy<float>(float* dst, const float* src, int64_t n) {
  int64_t j = 0;
  for (; j < n && (reinterpret_cast<uintptr_t>(dst + j) & 63); ++j) dst[j] = src[j];
  for (; j + 16 <= n; j += 16) _mm512_stream_ps(dst + j, _mm512_loadu_ps(src + j));
  for (; j < n; ++j) dst[j] = src[j];
}
template <> inline void stream_copy<double>(double* dst, const double* src, int64_t n) {
  int64_t j = 0;
  for (; j < n && (reinterpret_cast<uintptr_t>(dst + j) & 63); ++j) dst[j] = src[j];
  for (; j + 8 <= n; j += 8) _mm512_stream_pd(dst + j, _mm512_loadu_pd(src + j));
  for (; j < n; ++j) dst[j] = src[j];
}
#elif defined(__AVX__)
template <> inline void stream_copy<float>(float* dst, const float* src, int64_t n) {
  int64_t j = 0;
  for (; j < n && (reinterpret_cast<uintptr_t>(dst + j) & 31); ++j) dst[j] = src[j];
  for (; j + 8 <= n; j += 8) _mm256_stream_ps(dst + j, _mm256_loadu_ps(src + j));
  for (; j < n; ++j) dst[j] = src[j];
}
template <> inline void stream_copy<double>(double* dst, const double* src, int64_t n) {
  int64_t j = 0;
  for (; j < n && (reinterpret_cast<uintptr_t>(dst + j) & 31); ++j) dst[j] = src[j];
  for (; j + 4 <= n; j += 4) _mm256_stream_pd(dst + j, _mm256_loadu_pd(src + j));
  for (; j < n; ++j) dst[j] = src[j];
}
#endif

// Make a thread's streaming stores visible before its work is reported done.
inline void stream_fence() {
#if defined(__AVX512F__) || defined(__AVX__)
  _mm_sfence();
#endif
}

// Writes the rows of one large gradient through a per-thread buffer and
// streaming stores; small gradients are written in place. One per thread:
// construct inside the parallel region; the destructor fences.
template <typename T> class RowWriter {
 public:
  RowWriter(T* base, int64_t total, int64_t row_len)
      : base_(base),
        stream_(Streamable<T>::value && total >= kStreamMinElements && row_len >= 64),
        buffer_(stream_ ? row_len : 0) {}
  ~RowWriter() {
    if (stream_) stream_fence();
  }
  // Where to write the row that starts at element `offset` of the gradient.
  T* row(int64_t offset) {
    offset_ = offset;
    return stream_ ? buffer_.data() : base_ + offset;
  }
  // Send the last row (n values) to memory.
  void flush(int64_t n) {
    if (stream_) stream_copy(base_ + offset_, buffer_.data(), n);
  }

 private:
  T* base_;
  bool stream_;
  std::vector<T> buffer_;
  int64_t offset_ = 0;
};

// Ask for the next `bytes` of a row stream ahead of use: the compute-heavy
// loops otherwise leave the memory idle while they work on a row.
GLUONX_INLINE void prefetch_bytes(const void* p, int64_t bytes) {
#if defined(__GNUC__)
  const char* c = static_cast<const char*>(p);
  for (int64_t off = 0; off < bytes; off += 64) __builtin_prefetch(c + off);
#endif
}

// Prefetch row i + 1 (n elements) of x while row i is being worked on.
template <typename T>
GLUONX_INLINE void prefetch_next_row(const T* x, int64_t i, int64_t rows, int64_t n) {
  const int64_t bytes = n * int64_t(sizeof(T));
  if (x != nullptr && i + 1 < rows && bytes <= (int64_t(1) << 16)) {
    prefetch_bytes(x + (i + 1) * n, bytes);
  }
}

// ------------------------------------------------------------------- math --
// float versions are branch-free polynomial forms so that loops under
// `#pragma omp simd` vectorise (libm calls do not); accuracy is about 1 ulp.
// double versions call libm.

GLUONX_INLINE float fast_exp(float x) {
  const float kLog2e = 1.44269504088896341f;
  const float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
  const float xc = std::min(std::max(x, -104.0f), 89.0f);
  const float n = std::floor(xc * kLog2e + 0.5f);
  const float r = (xc - n * kLn2Hi) - n * kLn2Lo;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // 2^n in two factors keeps both exponents in the normal range, so results
  // that are subnormal or overflow to inf come out right.
  const int32_t n1 = static_cast<int32_t>(n) >> 1;
  const int32_t n2 = static_cast<int32_t>(n) - n1;
  const float y = p * bits_float(static_cast<uint32_t>(n1 + 127) << 23)
                    * bits_float(static_cast<uint32_t>(n2 + 127) << 23);
  return x != x ? x : y;
}

// The polynomial part of log(1 + m) for the reduced mantissa m (z = m * m),
// shared by fast_log and log1p_unit.
GLUONX_INLINE float log_poly(float m, float z) {
  float y = 7.0376836292e-2f;
  y = y * m - 1.1514610310e-1f;
  y = y * m + 1.1676998740e-1f;
  y = y * m - 1.2420140846e-1f;
  y = y * m + 1.4249322787e-1f;
  y = y * m - 1.6668057665e-1f;
  y = y * m + 2.0000714765e-1f;
  y = y * m - 2.4999993993e-1f;
  y = y * m + 3.3333331174e-1f;
  return y * m * z;
}

// log(x) for finite normal x > 0 (no special values): the core of fast_log,
// for arguments known to be in range (clamped probabilities). Without the
// special cases GCC keeps the loops that call it branch-free and vectorised.
GLUONX_INLINE float log_normal(float x, float e_shift = 0.0f) {
  const float kSqrtHalf = 0.707106781186547524f;
  const uint32_t u = float_bits(x);
  float e = static_cast<float>(static_cast<int32_t>((u >> 23) & 0xffu) - 126) - e_shift;
  float m = bits_float((u & 0x007fffffu) | 0x3f000000u);  // [0.5, 1)
  const bool low = m < kSqrtHalf;
  e = low ? e - 1.0f : e;
  m = low ? m + m - 1.0f : m - 1.0f;
  const float z = m * m;
  float y = log_poly(m, z);
  y += -2.12194440e-4f * e;
  y += -0.5f * z;
  return m + y + 0.693359375f * e;
}

GLUONX_INLINE float fast_log(float x) {
  // subnormals: scale into the normal range first
  const bool tiny = x < 1.17549435e-38f;
  float r = log_normal(tiny ? x * 8388608.0f : x, tiny ? 23.0f : 0.0f);  // 2^23
  r = x == 0.0f ? -std::numeric_limits<float>::infinity() : r;
  r = x == std::numeric_limits<float>::infinity() ? x : r;
  r = ((x < 0.0f) | (x != x)) ? std::numeric_limits<float>::quiet_NaN() : r;
  return r;
}

// log(1 + x) for x >= 0 (what softplus needs), accurate for tiny x.
GLUONX_INLINE float fast_log1p(float x) {
  const float u = 1.0f + x;
  const float d = u - 1.0f;
  return d == 0.0f ? x : fast_log(u) * (x / d);
}

GLUONX_INLINE double fast_exp(double x) { return std::exp(x); }
GLUONX_INLINE double fast_log(double x) { return std::log(x); }
GLUONX_INLINE double log_normal(double x) { return std::log(x); }
GLUONX_INLINE double fast_log1p(double x) { return std::log1p(x); }

// exp(x) for x <= 0 (nan passes through); below -88 it returns 0 instead
// of a subnormal, which no caller can tell apart. Cheaper than fast_exp.
GLUONX_INLINE float exp_nonpos(float x) {
  const float kLog2e = 1.44269504088896341f;
  const float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
  const float xc = std::max(x, -88.0f);
  const float n = std::floor(xc * kLog2e + 0.5f);
  const float r = (xc - n * kLn2Hi) - n * kLn2Lo;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t e = std::max(static_cast<int32_t>(n) + 127, 0);
  return p * bits_float(static_cast<uint32_t>(e) << 23);
}
GLUONX_INLINE double exp_nonpos(double x) { return std::exp(x); }

// log(1 + e) for e in [0, 1] (what softplus needs): no special values to
// handle, so a short polynomial and no division. Reduced as 1 + e =
// 2^k (1 + m): m = e exactly below sqrt(2) - 1, else m = (e - 1) / 2
// (rounding error under 2^-26 relative).
GLUONX_INLINE float log1p_unit(float e) {
  const bool high = e > 0.414213562373f;
  const float m = high ? (e - 1.0f) * 0.5f : e;
  const float k = high ? 1.0f : 0.0f;
  const float z = m * m;
  float y = log_poly(m, z);
  y += -2.12194440e-4f * k;
  y += -0.5f * z;
  return m + y + 0.693359375f * k;
}
GLUONX_INLINE double log1p_unit(double e) { return std::log1p(e); }

// log(1 + exp(-|x|)): the bounded part of softplus.
template <typename A> GLUONX_INLINE A softplus_tail(A x) {
  return log1p_unit(exp_nonpos(-std::abs(x)));
}

// log(1 + exp(x)), stable for all x.
template <typename A> GLUONX_INLINE A softplus(A x) {
  return std::max(x, A(0)) + softplus_tail(x);
}

// 1 / (1 + exp(-x)), stable for all x.
template <typename A> GLUONX_INLINE A sigmoid(A x) {
  const A e = exp_nonpos(-std::abs(x));
  const A s = A(1) / (A(1) + e);
  return x >= A(0) ? s : e * s;
}

GLUONX_INLINE float sign_of(float x) { return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f); }
GLUONX_INLINE double sign_of(double x) { return x > 0.0 ? 1.0 : (x < 0.0 ? -1.0 : 0.0); }

// -------------------------------------------------------------- attributes --
// Every attribute an operator reads is required, with no default here: the
// Python declaration (gluonx.kernels.Kernel) passes each one with the loss's
// current value, and parse_op rejects a call that lacks one, so the readers
// below only see attributes that are present.
inline double attr_double(const Attrs& attrs, const char* key) {
  auto it = attrs.find(key);
  if (it == attrs.end()) return std::numeric_limits<double>::quiet_NaN();
  const std::string& s = it->second;
  if (s == "True" || s == "true") return 1.0;
  if (s == "False" || s == "false") return 0.0;
  return std::strtod(s.c_str(), nullptr);
}

inline bool attr_flag(const Attrs& attrs, const char* key) {
  return attr_double(attrs, key) != 0.0;
}

// The space-separated names in `list`.
inline std::vector<std::string> words(const char* list) {
  std::vector<std::string> out;
  std::string word;
  for (const char* c = list; ; ++c) {
    if (*c == ' ' || *c == '\0') {
      if (!word.empty()) out.push_back(word);
      word.clear();
      if (*c == '\0') break;
    } else {
      word += *c;
    }
  }
  return out;
}

// ------------------------------------------------------ broadcast weights --
// A weight broadcast against a (rows, cols) view of pred: the batch axis is
// the rows, everything else the columns. Only the broadcast patterns that
// keep the inner loop contiguous are supported.
enum class Bcast { kNone, kScalar, kRow, kCol, kFull };

// Classify `w` against pred's shape, numpy-style right alignment.
// A 1-D weight of the batch's length against a (batch, 1, ..., 1) loss is one
// weight per sample (the flat weight of a per-sample loss; the base class never
// hands a kernel a weight that numpy's rules would enlarge the loss with).
inline bool classify_bcast(const std::vector<int64_t>& pred,
                           const std::vector<int64_t>& w, Bcast* kind) {
  if (w.size() == 1 && pred.size() > 1 && w[0] == pred[0] && pred[0] != 1 &&
      std::all_of(pred.begin() + 1, pred.end(), [](int64_t d) { return d == 1; })) {
    *kind = Bcast::kRow;
    return true;
  }
  if (w.size() > pred.size()) return false;
  const size_t lead = pred.size() - w.size();
  bool row = false, rest_ones = true, rest_full = true;
  for (size_t d = 0; d < pred.size(); ++d) {
    const int64_t wd = d < lead ? 1 : w[d - lead];
    if (wd != 1 && wd != pred[d]) return false;
    if (d == 0) {
      row = wd == pred[0] && pred[0] != 1;
    } else {
      rest_ones = rest_ones && wd == 1;
      rest_full = rest_full && wd == pred[d];
    }
  }
  if (rest_ones) {
    *kind = row ? Bcast::kRow : Bcast::kScalar;
  } else if (rest_full) {
    *kind = row || pred[0] == 1 ? Bcast::kFull : Bcast::kCol;
  } else {
    return false;
  }
  return true;
}

// Read access: w(i, j) = ptr[i * row_stride + j * col_stride].
template <typename T> struct Weight {
  const T* ptr = nullptr;
  Bcast kind = Bcast::kNone;
  int64_t row_stride = 0;
  bool per_col = false;  // true when the value changes along a row

  const T* row(int64_t i) const { return ptr + i * row_stride; }
};

template <typename T>
inline Weight<T> make_weight(const MXTensor* w, const std::vector<int64_t>& pred_shape,
                             int64_t cols) {
  Weight<T> out;
  if (w == nullptr) return out;
  classify_bcast(pred_shape, w->shape, &out.kind);
  out.ptr = static_cast<const T*>(w->data_ptr);
  out.row_stride = out.kind == Bcast::kRow ? 1 : (out.kind == Bcast::kFull ? cols : 0);
  out.per_col = out.kind == Bcast::kCol || out.kind == Bcast::kFull;
  return out;
}

// Gradient of a broadcast weight: accumulate d(loss)/d(w(i, j)) = v(i, j)
// over the positions that share each weight element. Per-row sums go
// straight to their slot; column sums use one partial row per thread.
template <typename T> struct WeightGrad {
  T* ptr = nullptr;
  Bcast kind = Bcast::kNone;
  int64_t rows = 0, cols = 0;
  std::vector<std::vector<Acc<T>>> partial;  // [thread][col] for kCol/kScalar

  void init(T* p, Bcast k, int64_t r, int64_t c, int threads) {
    ptr = p; kind = k; rows = r; cols = c;
    if (kind == Bcast::kCol || kind == Bcast::kScalar) {
      partial.assign(threads, std::vector<Acc<T>>(kind == Bcast::kCol ? c : 1, Acc<T>(0)));
    }
  }
  // Merge the per-thread partials into the output; call once, after the loop.
  void finish() {
    if (kind == Bcast::kCol || kind == Bcast::kScalar) {
      const int64_t n = kind == Bcast::kCol ? cols : 1;
      for (int64_t j = 0; j < n; ++j) {
        Acc<T> s = 0;
        for (auto& part : partial) s += part[j];
        store(ptr, j, s);
      }
    }
  }
};

inline int thread_id();

// Stores the summed gradient of a weight that is constant along row i
// (row broadcast), or adds it to the thread's total (scalar broadcast).
template <typename T>
inline void finish_weight_row(WeightGrad<T>& g, int64_t i, Acc<T> row_sum) {
  if (g.kind == Bcast::kRow) {
    store(g.ptr, i, row_sum);
  } else if (g.kind == Bcast::kScalar) {
    g.partial[thread_id()][0] += row_sum;
  }
}

// Threads for a kernel's parallel loops: $OMP_NUM_THREADS, else every core.
// Asked for explicitly (num_threads) because MXNet runs operators on engine
// worker threads whose own OpenMP default is a single thread.
inline int max_threads() {
#ifdef _OPENMP
  static const int team = [] {
    const char* env = std::getenv("OMP_NUM_THREADS");
    const int n = env != nullptr ? std::atoi(env) : 0;
    return std::max(1, n > 0 ? n : omp_get_num_procs());
  }();
  return team;
#else
  return 1;
#endif
}

inline int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

inline MXReturnValue fail(const char* op, const char* what) {
  MX_ERROR_MSG << "gluonx kernel " << op << ": " << what;
  return MX_FAIL;
}

// ------------------------------------------------------------ dtype switch --
// Calls f(T{}) with T the C++ type of an MXNet float dtype; false otherwise.
template <typename F> inline bool dispatch_float(int dtype, F&& f) {
  switch (dtype) {
    case mxnet::ext::kFloat32: f(float()); return true;
    case mxnet::ext::kFloat64: f(double()); return true;
    case mxnet::ext::kFloat16: f(half_t()); return true;
    default: return false;
  }
}

// Calls f(T{}) for the float dtype `dtype`; otherwise the operator fails
// with the one message every operator gives.
template <typename F> inline MXReturnValue for_float(const char* op, int dtype, F&& f) {
  return dispatch_float(dtype, std::forward<F>(f))
             ? MX_SUCCESS
             : fail(op, "pred must be float16, float32 or float64");
}

// ------------------------------------------------------------- row layout --
// A tensor viewed as (batch, positions, row): the last axis is one row (the
// classes of softmax CE, the vector of cosine embedding), the batch the first
// axis, the positions everything between. A per-row loss has the tensor's
// shape with the last axis 1 (`loss_shape`), which weights broadcast against.
struct RowLayout {
  int64_t batch, positions, row;
  std::vector<int64_t> loss_shape;
};

inline RowLayout row_layout(const MXTensor& x) {
  RowLayout out;
  out.batch = x.shape[0];
  out.row = x.shape.back();
  out.positions = out.batch * out.row == 0 ? 0 : x.size() / (out.batch * out.row);
  out.loss_shape = x.shape;
  out.loss_shape.back() = 1;
  return out;
}

// Read-only typed view of a tensor's data.
template <typename T> inline const T* cdata(const MXTensor& t) {
  return static_cast<const T*>(t.data_ptr);
}

// ----------------------------------------- weights of row and sample losses
// One value per sample, or one for all (the weight of a per-sample loss).
template <typename T> struct SampleWeight {
  const T* ptr = nullptr;
  bool per_row = false;
  SampleWeight(const MXTensor* w, int64_t batch) {
    if (w != nullptr) {
      ptr = cdata<T>(*w);
      per_row = w->size() == batch && batch != 1;
    }
  }
  Acc<T> at(int64_t i) const { return ptr == nullptr ? Acc<T>(1) : load(ptr, per_row ? i : 0); }
};

// A weight of one value per sample of `batch` samples, or one for all.
inline bool sample_weight_fits(const MXTensor& w, int dtype, int64_t batch) {
  return w.dtype == dtype && (w.size() == 1 || w.size() == batch);
}

inline bool sample_weight_fits(const MXTensor& pred, const MXTensor& w) {
  return sample_weight_fits(w, pred.dtype, pred.shape[0]);
}

// Gradient of a per-sample weight: v_i per sample, or their sum.
template <typename T> struct SampleWeightGrad {
  T* ptr = nullptr;
  bool per_row = false;
  std::vector<Acc<T>> total;
  SampleWeightGrad(T* p, const SampleWeight<T>& w, int threads)
      : ptr(p), per_row(w.per_row), total(threads, Acc<T>(0)) {}
  void add(int64_t i, Acc<T> v) {
    if (ptr == nullptr) return;
    if (per_row) store(ptr, i, v); else total[thread_id()] += v;
  }
  void finish() {
    if (ptr == nullptr || per_row) return;
    Acc<T> s = 0;
    for (Acc<T> v : total) s += v;
    store(ptr, 0, s);
  }
};

// Per-row weight of a row loss (pred's shape with the last axis 1).
template <typename T> GLUONX_INLINE Acc<T> row_weight(const Weight<T>& sw, int64_t i, int64_t r) {
  return sw.ptr != nullptr ? load(sw.row(i), sw.per_col ? r : 0) : Acc<T>(1);
}

template <typename T> GLUONX_INLINE void add_row_weight_grad(WeightGrad<T>& dsw, int64_t row,
                                                             int64_t r, Acc<T> v, Acc<T>& fsum) {
  if (dsw.kind == Bcast::kFull) store(dsw.ptr, row, v);
  else if (dsw.kind == Bcast::kCol) dsw.partial[thread_id()][r] += v;
  else fsum += v;
}

inline bool row_weight_fits(const MXTensor& pred, const MXTensor& w) {
  Bcast kind;
  return w.dtype == pred.dtype && classify_bcast(row_layout(pred).loss_shape, w.shape, &kind);
}

// Read element i of an index-like tensor (any numeric dtype) as int64.
inline int64_t load_index(const MXTensor& t, int64_t i) {
  switch (t.dtype) {
    case mxnet::ext::kFloat32: return static_cast<int64_t>(cdata<float>(t)[i]);
    case mxnet::ext::kFloat64: return static_cast<int64_t>(cdata<double>(t)[i]);
    case mxnet::ext::kFloat16: return static_cast<int64_t>(half_to_float(cdata<half_t>(t)[i].bits));
    case mxnet::ext::kUint8: return static_cast<const uint8_t*>(t.data_ptr)[i];
    case mxnet::ext::kInt8: return static_cast<const int8_t*>(t.data_ptr)[i];
    case mxnet::ext::kInt32: return static_cast<const int32_t*>(t.data_ptr)[i];
    case mxnet::ext::kInt64: return static_cast<const int64_t*>(t.data_ptr)[i];
    default: return 0;
  }
}

// Zero a gradient of any dtype (gradients of index inputs, lengths, ...).
// A backward call's view of the forward inputs: MXNet passes (output
// gradient, the forward's inputs..., its outputs...), and it runs a recorded
// call's backward even when that call's forward failed its checks (for
// example after an option was changed on the instance), so every backward
// checks the forward inputs again, on this view, before it reads them.
inline std::vector<MXTensor> forward_inputs(const std::vector<MXTensor>& in, size_t count) {
  if (in.size() < count + 1) return {};
  return std::vector<MXTensor>(in.begin() + 1, in.begin() + 1 + count);
}

inline void zero_tensor(MXTensor* t) {
  size_t bytes = 0;
  switch (t->dtype) {
    case mxnet::ext::kFloat32: case mxnet::ext::kInt32: bytes = 4; break;
    case mxnet::ext::kFloat64: case mxnet::ext::kInt64: bytes = 8; break;
    case mxnet::ext::kFloat16: bytes = 2; break;
    default: bytes = 1; break;
  }
  std::memset(t->data_ptr, 0, bytes * static_cast<size_t>(t->size()));
}

// ------------------------------------------------------ shape/type helpers --
// Output: one value per sample, pred's dtype; inputs keep their own.
inline MXReturnValue infer_type_like_pred(const Attrs&, std::vector<int>* in,
                                          std::vector<int>* out) {
  (*out)[0] = (*in)[0];
  return MX_SUCCESS;
}

inline MXReturnValue infer_shape_per_sample(const Attrs&, Shapes* in, Shapes* out) {
  if ((*in)[0].empty()) {
    MX_ERROR_MSG << "gluonx kernel: pred needs at least one axis (the batch axis)";
    return MX_FAIL;
  }
  (*out)[0] = {(*in)[0][0]};
  return MX_SUCCESS;
}


// ------------------------------------------------------------ registration --
// An operator's description for parse_op/register_op, a struct with
//   kName      its name (gluonx_...)
//   kInputs    how many inputs it always takes (pred, labels, ...)
//   kOptional  its optional inputs, space-separated, in order after those;
//              each is passed when the attribute has_<name> is 1
//   kAttrs     its other attributes, space-separated (all required)

// Checks that every attribute is there; counts the inputs.
template <class Op> MXReturnValue parse_op(const Attrs& attrs, int* num_in, int* num_out) {
  int inputs = Op::kInputs;
  std::vector<std::string> required = words(Op::kAttrs);
  for (const std::string& name : words(Op::kOptional)) {
    const std::string flag = "has_" + name;
    required.push_back(flag);
    if (attrs.find(flag) != attrs.end() && attr_flag(attrs, flag.c_str())) ++inputs;
  }
  for (const std::string& key : required) {
    if (attrs.find(key) == attrs.end()) {
      MX_ERROR_MSG << "gluonx kernel " << Op::kName << ": missing attribute '" << key
                   << "' (all are required: '" << Op::kAttrs << "', and has_<name> for each "
                   << "optional input of '" << Op::kOptional << "')";
      return MX_FAIL;
    }
  }
  *num_in = inputs;
  *num_out = 1;
  return MX_SUCCESS;
}

// Registers operator Op: one output per sample in pred's dtype, CPU.
template <class Op>
void register_op(mxnet::ext::fcomp_t forward, mxnet::ext::fcomp_t backward,
                 mxnet::ext::inferShape_t infer_shape = infer_shape_per_sample) {
  mxnet::ext::Registry<mxnet::ext::CustomOp>::get()
      ->add(Op::kName)
      .setParseAttrs(parse_op<Op>)
      .setInferType(infer_type_like_pred)
      .setInferShape(infer_shape)
      .setForward(forward, "cpu")
      .setBackward(backward, "cpu");
}

}  // namespace gluonx

#endif  // GLUONX_KERNELS_COMMON_H_
