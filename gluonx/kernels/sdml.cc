// gluonx_sdml_loss: batch-wise smoothed deep metric learning loss.
//
// x1, x2: (N, D); row i of x1 is paired with row i of x2, every other row of
// x2 is a negative. With d_ij = |x1_i - x2_j|^2, targets q_ii = 1 - s and
// q_ij = s / (N - 1), and log-probabilities lp_ij = log_softmax_j(-d_i.),
//   out_i = w_i * sum_j q_ij (log(q_ij + 1e-12) - lp_ij).
// Backward: d out_i / d d_ij = w_i (q_ij - p_ij Q) with p = exp(lp) and
// Q = sum_j q_ij, then d d_ij / d x1_i = 2 (x1_i - x2_j) = -d d_ij / d x2_j.
// The (N, N) distance matrix is the only intermediate: no (N, N, D) tensor.
#include "common.h"

namespace gluonx {
namespace {

constexpr double kSDMLEps = 1e-12;

// The targets of one row: the diagonal and the off-diagonal value, and
// each one's log(q + eps).
template <typename A> struct Targets {
  A diag, off, log_diag, log_off, total;
  Targets(double s, int64_t n) {
    // in A, as the stock graph computes them (1 - s is a scalar, in double)
    diag = A(1.0 - s);
    off = A(s) / A(n - 1);
    log_diag = std::log(diag + A(kSDMLEps));
    log_off = std::log(off + A(kSDMLEps));
    total = diag + A(n - 1) * off;
  }
};

// x (n, dim) transposed to (dim, n) in the accumulation type, so that the
// loops over the n rows of x2 (the softmax axis) vectorise for any dim.
template <typename T> std::vector<Acc<T>> transposed(const T* x, int64_t n, int64_t dim) {
  std::vector<Acc<T>> t(static_cast<size_t>(n * dim));
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t k = 0; k < dim; ++k) t[k * n + j] = load(x, j * dim + k);
  }
  return t;
}

// Squared distances of x1_i (a) to every row of x2 (x2t: transposed),
// negated: z_j = -d_ij. Returns max_j z_j.
template <typename T>
GLUONX_INLINE Acc<T> neg_distances(const T* a, const Acc<T>* x2t, int64_t n, int64_t dim,
                                   Acc<T>* z) {
  using A = Acc<T>;
  for (int64_t j = 0; j < n; ++j) z[j] = 0;
  for (int64_t k = 0; k < dim; ++k) {
    const A ak = load(a, k);
    const A* col = x2t + k * n;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) {
      const A d = ak - col[j];
      z[j] += d * d;
    }
  }
  A m = -std::numeric_limits<A>::infinity();
#pragma omp simd reduction(max : m)
  for (int64_t j = 0; j < n; ++j) {
    z[j] = -z[j];
    m = std::max(m, z[j]);
  }
  return m;
}

// log(sum_j exp(z_j)); with `p`, also exp(z_j - m).
template <typename A> GLUONX_INLINE A log_sum_exp(const A* z, int64_t n, A m, A* p) {
  A s = 0;
  if (p != nullptr) {
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < n; ++j) {
      const A e = exp_nonpos(z[j] - m);
      p[j] = e;
      s += e;
    }
  } else {
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < n; ++j) s += exp_nonpos(z[j] - m);
  }
  return m + fast_log(s);
}

// sum_j q_ij (log(q_ij + eps) - (z_j - lse)): the unweighted loss of row i.
template <typename A>
GLUONX_INLINE A row_loss(const A* z, int64_t n, int64_t i, A lse, const Targets<A>& q) {
  A f = 0;
#pragma omp simd reduction(+ : f)
  for (int64_t j = 0; j < n; ++j) {
    const bool gold = j == i;
    f += (gold ? q.diag : q.off) * ((gold ? q.log_diag : q.log_off) - (z[j] - lse));
  }
  return f;
}

inline bool parallel_work(int64_t n, int64_t dim) { return n * n * dim >= 4 * kParallelMinWork; }

template <typename T>
void sdml_forward(const MXTensor& x1t, const MXTensor& x2t, const MXTensor* sw, double s,
                  T* out) {
  using A = Acc<T>;
  const int64_t n = x1t.shape[0], dim = x1t.shape[1];
  const T* x1 = cdata<T>(x1t);
  const std::vector<A> x2 = transposed(cdata<T>(x2t), n, dim);
  const T* w = sw != nullptr ? cdata<T>(*sw) : nullptr;
  const int64_t wstride = (sw != nullptr && sw->size() == n) ? 1 : 0;
  const Targets<A> q(s, n);
  const int threads = max_threads();
  std::vector<std::vector<A>> scratch(threads, std::vector<A>(n));
#pragma omp parallel for schedule(static) num_threads(threads) if (parallel_work(n, dim))
  for (int64_t i = 0; i < n; ++i) {
    A* z = scratch[thread_id()].data();
    const A m = neg_distances(x1 + i * dim, x2.data(), n, dim, z);
    const A lse = log_sum_exp<A>(z, n, m, nullptr);
    A f = row_loss(z, n, i, lse, q);
    if (w != nullptr) f *= load(w, i * wstride);
    store(out, i, f);
  }
}

template <typename T>
void sdml_backward(const T* ograd, const MXTensor& x1t, const MXTensor& x2t, const MXTensor* sw,
                   double s, T* dx1, T* dx2, T* dsw, std::vector<Acc<T>>& g) {
  using A = Acc<T>;
  const int64_t n = x1t.shape[0], dim = x1t.shape[1];
  const T* x1 = cdata<T>(x1t);
  const std::vector<A> x2 = transposed(cdata<T>(x2t), n, dim);
  const T* w = sw != nullptr ? cdata<T>(*sw) : nullptr;
  const int64_t wstride = (sw != nullptr && sw->size() == n) ? 1 : 0;
  const Targets<A> q(s, n);
  const int threads = max_threads();
  std::vector<std::vector<A>> scratch(threads, std::vector<A>(2 * n));
  std::vector<A> row_losses(n);
  const bool par = parallel_work(n, dim);
  // g_ij = ograd_i w_i (q_ij - p_ij Q) = d(sum_i ograd_i out_i) / d d_ij;
  // row i of it also gives dx1_i = 2 sum_j g_ij (x1_i - x2_j).
#pragma omp parallel for schedule(static) num_threads(threads) if (par)
  for (int64_t i = 0; i < n; ++i) {
    A* z = scratch[thread_id()].data();
    A* p = z + n;
    const T* a = x1 + i * dim;
    const A m = neg_distances(a, x2.data(), n, dim, z);
    const A lse = log_sum_exp<A>(z, n, m, p);
    row_losses[i] = row_loss(z, n, i, lse, q);
    const A gi = load(ograd, i) * (w != nullptr ? load(w, i * wstride) : A(1));
    const A c = exp_nonpos(m - lse) * q.total;  // p_ij Q = exp(z_j - m) c
    A* gr = g.data() + i * n;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) gr[j] = gi * (q.off - p[j] * c);
    gr[i] = gi * (q.diag - p[i] * c);
    T* da = dx1 + i * dim;
    for (int64_t k = 0; k < dim; ++k) {
      const A ak = load(a, k);
      const A* col = x2.data() + k * n;
      A acc = 0;
#pragma omp simd reduction(+ : acc)
      for (int64_t j = 0; j < n; ++j) acc += gr[j] * (ak - col[j]);
      store(da, k, A(2) * acc);
    }
  }
  // dx2_j = 2 sum_i g_ij (x2_j - x1_i), one feature k at a time
#pragma omp parallel for schedule(static) num_threads(threads) if (par)
  for (int64_t k = 0; k < dim; ++k) {
    A* acc = scratch[thread_id()].data();
    const A* col = x2.data() + k * n;
    for (int64_t j = 0; j < n; ++j) acc[j] = 0;
    for (int64_t i = 0; i < n; ++i) {
      const A aik = load(x1, i * dim + k);
      const A* gr = g.data() + i * n;
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) acc[j] += gr[j] * (col[j] - aik);
    }
    for (int64_t j = 0; j < n; ++j) store(dx2, j * dim + k, A(2) * acc[j]);
  }
  if (dsw != nullptr) {
    if (wstride == 1) {
      for (int64_t i = 0; i < n; ++i) store(dsw, i, load(ograd, i) * row_losses[i]);
    } else {
      A total = 0;
      for (int64_t i = 0; i < n; ++i) total += load(ograd, i) * row_losses[i];
      store(dsw, 0, total);
    }
  }
}

struct SdmlOp {
  static constexpr const char* kName = "gluonx_sdml_loss";
  static constexpr int kInputs = 2;
  static constexpr const char* kOptional = "sample_weight";
  static constexpr const char* kAttrs = "smoothing_parameter";
};

bool sdml_inputs_ok(const std::vector<MXTensor>& in, bool has_sw) {
  const MXTensor& x1 = in[0];
  if (x1.shape.size() != 2 || x1.shape[0] < 2 || in[1].shape != x1.shape ||
      in[1].dtype != x1.dtype) {
    return false;
  }
  return !has_sw || (in[2].dtype == x1.dtype &&
                     (in[2].size() == x1.shape[0] || in[2].size() == 1));
}

double smoothing(const Attrs& attrs) { return attr_double(attrs, "smoothing_parameter"); }

MXReturnValue sdml_fwd(const Attrs& attrs, std::vector<MXTensor>* in,
                       std::vector<MXTensor>* out, const OpResource&) {
  const bool has_sw = attr_flag(attrs, "has_sample_weight");
  if (!sdml_inputs_ok(*in, has_sw)) {
    return fail("gluonx_sdml_loss", "x1 and x2 must be (N, D) with N >= 2, same shape and "
                "dtype; sample_weight one value per sample (or one in all)");
  }
  const bool ok = dispatch_float((*in)[0].dtype, [&](auto t) {
    using T = decltype(t);
    sdml_forward<T>((*in)[0], (*in)[1], has_sw ? &(*in)[2] : nullptr, smoothing(attrs),
                    (*out)[0].data<T>());
  });
  return ok ? MX_SUCCESS : fail("gluonx_sdml_loss", "x1 must be float16, float32 or float64");
}

MXReturnValue sdml_bwd(const Attrs& attrs, std::vector<MXTensor>* in,
                       std::vector<MXTensor>* out, const OpResource&) {
  // in: ograd, x1, x2, [sw], output; out: dx1, dx2, [dsw]
  const bool has_sw = attr_flag(attrs, "has_sample_weight");
  bool alloc_failed = false;
  const bool ok = dispatch_float((*in)[1].dtype, [&](auto t) {
    using T = decltype(t);
    const int64_t n = (*in)[1].shape[0];
    std::vector<Acc<T>> g;
    try {
      g.resize(static_cast<size_t>(n) * static_cast<size_t>(n));
    } catch (const std::bad_alloc&) {
      alloc_failed = true;
      return;
    }
    sdml_backward<T>((*in)[0].data<T>(), (*in)[1], (*in)[2], has_sw ? &(*in)[3] : nullptr,
                     smoothing(attrs), (*out)[0].data<T>(), (*out)[1].data<T>(),
                     has_sw ? (*out)[2].data<T>() : nullptr, g);
  });
  if (alloc_failed) return fail("gluonx_sdml_loss", "out of memory for the (N, N) gradient");
  return ok ? MX_SUCCESS : fail("gluonx_sdml_loss", "x1 must be float16, float32 or float64");
}

struct Registration {
  Registration() { register_op<SdmlOp>(sdml_fwd, sdml_bwd); }
} registration;

}  // namespace
}  // namespace gluonx
