// Embedding losses, one sample (or one vector) per row:
//   gluonx_triplet_loss  relu(|pred - pos|^2 - |pred - neg|^2 + margin) * w
//   gluonx_cosine_loss   cosine embedding loss of rows of input1/input2
#include "common.h"

namespace gluonx {
namespace {

// Any-dtype scalar read (labels keep their own dtype).
inline double load_any(const MXTensor& t, int64_t i) {
  switch (t.dtype) {
    case mxnet::ext::kFloat32: return cdata<float>(t)[i];
    case mxnet::ext::kFloat64: return cdata<double>(t)[i];
    case mxnet::ext::kFloat16: return half_to_float(cdata<half_t>(t)[i].bits);
    default: return static_cast<double>(load_index(t, i));
  }
}

struct TripletOp {
  static constexpr const char* kName = "gluonx_triplet_loss";
  static constexpr int kInputs = 3;
  static constexpr const char* kOptional = "sample_weight";
  static constexpr const char* kAttrs = "margin";
};

struct CosineOp {
  static constexpr const char* kName = "gluonx_cosine_loss";
  static constexpr int kInputs = 3;
  static constexpr const char* kOptional = "sample_weight";
  static constexpr const char* kAttrs = "margin";
};

// ------------------------------------------------------------- triplet ----
// The weight is one value per sample (or a single value).

template <typename T>
GLUONX_INLINE Acc<T> triplet_gap(const T* a, const T* p, const T* n, int64_t cols) {
  using A = Acc<T>;
  A s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < cols; ++j) {
    const A x = load(a, j), dp = load(p, j) - x, dn = load(n, j) - x;
    s += dp * dp - dn * dn;
  }
  return s;
}

template <typename T>
void triplet_forward(std::vector<MXTensor>& in, bool has_sw, double margin, T* out) {
  using A = Acc<T>;
  const int64_t rows = in[0].shape[0], cols = in[0].size() / rows;
  const T *a = in[0].data<T>(), *p = in[1].data<T>(), *n = in[2].data<T>();
  const T* w = has_sw ? in[3].data<T>() : nullptr;
  const bool w_row = has_sw && in[3].size() == rows && rows != 1;
#pragma omp parallel for schedule(static) num_threads(max_threads()) \
    if (in[0].size() >= kParallelMinWork)
  for (int64_t i = 0; i < rows; ++i) {
    const A gap = triplet_gap(a + i * cols, p + i * cols, n + i * cols, cols);
    A f = std::max(gap + A(margin), A(0));
    if (w != nullptr) f *= load(w, w_row ? i : 0);
    store(out, i, f);
  }
}

template <typename T>
void triplet_backward(std::vector<MXTensor>& in, std::vector<MXTensor>& out, bool has_sw,
                      double margin) {
  using A = Acc<T>;
  // in: ograd, pred, positive, negative, [sw], output
  const int64_t rows = in[1].shape[0], cols = in[1].size() / rows;
  const T* g = in[0].data<T>();
  const T *a = in[1].data<T>(), *p = in[2].data<T>(), *n = in[3].data<T>();
  const T* w = has_sw ? in[4].data<T>() : nullptr;
  const bool w_row = has_sw && in[4].size() == rows && rows != 1;
  T *da = out[0].data<T>(), *dp = out[1].data<T>(), *dn = out[2].data<T>();
  T* dw = has_sw ? out[3].data<T>() : nullptr;
  const int threads = max_threads();
  std::vector<A> dw_total(threads, A(0));
  const int64_t total = in[1].size();
#pragma omp parallel num_threads(max_threads()) \
    if (total >= kParallelMinWork)
  {
    RowWriter<T> wa(da, total, cols), wp(dp, total, cols), wn(dn, total, cols);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < rows; ++i) {
      const T *ai = a + i * cols, *pi = p + i * cols, *ni = n + i * cols;
      const A z = triplet_gap(ai, pi, ni, cols) + A(margin);
      const A gi = load(g, i);
      const A wi = w != nullptr ? load(w, w_row ? i : 0) : A(1);
      const A c = z > A(0) ? A(2) * gi * wi : A(0);
      T *dai = wa.row(i * cols), *dpi = wp.row(i * cols), *dni = wn.row(i * cols);
#pragma omp simd
      for (int64_t j = 0; j < cols; ++j) {
        const A x = load(ai, j), xp = load(pi, j), xn = load(ni, j);
        store(dai, j, c * (xn - xp));
        store(dpi, j, c * (xp - x));
        store(dni, j, c * (x - xn));
      }
      wa.flush(cols);
      wp.flush(cols);
      wn.flush(cols);
      if (dw != nullptr) {
        const A v = gi * std::max(z, A(0));
        if (w_row) store(dw, i, v); else dw_total[thread_id()] += v;
      }
    }
  }
  if (dw != nullptr && !w_row) {
    A s = 0;
    for (A v : dw_total) s += v;
    store(dw, 0, s);
  }
}

bool triplet_ok(const std::vector<MXTensor>& in, bool has_sw) {
  if (in[0].shape.empty() || in[0].shape[0] == 0) return false;
  for (int k = 1; k < 3; ++k) {
    if (in[k].size() != in[0].size() || in[k].dtype != in[0].dtype) return false;
  }
  return !has_sw || (in[3].dtype == in[0].dtype &&
                     (in[3].size() == 1 || in[3].size() == in[0].shape[0]));
}

MXReturnValue triplet_fwd(const Attrs& attrs, std::vector<MXTensor>* in,
                          std::vector<MXTensor>* out, const OpResource&) {
  const bool has_sw = attr_flag(attrs, "has_sample_weight");
  if (!triplet_ok(*in, has_sw)) return fail("gluonx_triplet_loss", "inputs do not fit pred");
  const double margin = attr_double(attrs, "margin");
  return for_float("gluonx_triplet_loss", (*in)[0].dtype, [&](auto t) {
    using T = decltype(t);
    triplet_forward<T>(*in, has_sw, margin, (*out)[0].data<T>());
  });
}

MXReturnValue triplet_bwd(const Attrs& attrs, std::vector<MXTensor>* in,
                          std::vector<MXTensor>* out, const OpResource&) {
  const bool has_sw = attr_flag(attrs, "has_sample_weight");
  const std::vector<MXTensor> fin = forward_inputs(*in, 3 + has_sw);
  if (fin.empty() || !triplet_ok(fin, has_sw)) {
    return fail("gluonx_triplet_loss", "inputs do not fit pred");
  }
  const double margin = attr_double(attrs, "margin");
  return for_float("gluonx_triplet_loss", (*in)[1].dtype, [&](auto t) {
    triplet_backward<decltype(t)>(*in, *out, has_sw, margin);
  });
}

// -------------------------------------------------------------- cosine ----
// Rows are the vectors (last axis); a sample holds `positions` rows. The
// weight broadcasts against the per-row loss, shape (batch, ..., 1).

constexpr double kCosineEps = 1e-12;

template <typename A> struct CosineRow {
  A dot, n1, n2, den, cosine;
};

template <typename T>
GLUONX_INLINE CosineRow<Acc<T>> cosine_row(const T* x, const T* y, int64_t d) {
  using A = Acc<T>;
  A dot = 0, n1 = 0, n2 = 0;
#pragma omp simd reduction(+ : dot, n1, n2)
  for (int64_t k = 0; k < d; ++k) {
    const A a = load(x, k), b = load(y, k);
    dot += a * b;
    n1 += a * a;
    n2 += b * b;
  }
  const A den = std::sqrt(std::max(n1 * n2, A(kCosineEps * kCosineEps)));
  return {dot, n1, n2, den, dot / den};
}

template <typename A> GLUONX_INLINE A cosine_value(A c, double y, double margin) {
  return y == 1.0 ? A(1) - c : (y == -1.0 ? std::max(c - A(margin), A(0)) : A(0));
}

template <typename A> GLUONX_INLINE A cosine_slope(A c, double y, double margin) {
  return y == 1.0 ? A(-1) : (y == -1.0 && c - A(margin) > A(0) ? A(1) : A(0));
}


template <typename T>
void cosine_forward(std::vector<MXTensor>& in, bool has_sw, double margin, T* out) {
  using A = Acc<T>;
  const RowLayout lay = row_layout(in[0]);
  const int64_t R = lay.positions, D = lay.row;
  const Weight<T> sw = make_weight<T>(has_sw ? &in[3] : nullptr, lay.loss_shape, R);
  const T *x = in[0].data<T>(), *y = in[1].data<T>();
  const MXTensor& label = in[2];
#pragma omp parallel for schedule(static) num_threads(max_threads()) \
    if (in[0].size() >= kParallelMinWork)
  for (int64_t i = 0; i < lay.batch; ++i) {
    A total = 0;
    for (int64_t r = 0; r < R; ++r) {
      const int64_t row = i * R + r;
      const CosineRow<A> cr = cosine_row(x + row * D, y + row * D, D);
      A f = cosine_value(cr.cosine, load_any(label, row), margin);
      if (sw.ptr != nullptr) f *= load(sw.row(i), sw.per_col ? r : 0);
      total += f;
    }
    store(out, i, total / A(R));
  }
}

template <typename T>
void cosine_backward(std::vector<MXTensor>& in, std::vector<MXTensor>& out, bool has_sw,
                     double margin) {
  using A = Acc<T>;
  // in: ograd, input1, input2, label, [sw], output; out: d1, d2, dlabel, [dsw]
  const RowLayout lay = row_layout(in[1]);
  const int64_t R = lay.positions, D = lay.row;
  const Weight<T> sw = make_weight<T>(has_sw ? &in[4] : nullptr, lay.loss_shape, R);
  const int threads = max_threads();
  WeightGrad<T> dsw;
  if (has_sw) dsw.init(out[3].data<T>(), sw.kind, lay.batch, R, threads);
  const T* g = in[0].data<T>();
  const T *x = in[1].data<T>(), *y = in[2].data<T>();
  const MXTensor& label = in[3];
  T *dx = out[0].data<T>(), *dy = out[1].data<T>();
  zero_tensor(&out[2]);  // comparisons with the label have no gradient
  const int64_t total = in[1].size();
#pragma omp parallel num_threads(max_threads()) \
    if (total >= kParallelMinWork)
  {
    RowWriter<T> wx(dx, total, D), wy(dy, total, D);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < lay.batch; ++i) {
      const A gi = load(g, i) / A(R);
      A fsum = 0;
      for (int64_t r = 0; r < R; ++r) {
        const int64_t row = i * R + r;
        const T *xr = x + row * D, *yr = y + row * D;
        const CosineRow<A> cr = cosine_row(xr, yr, D);
        const double lab = load_any(label, row);
        const A w = sw.ptr != nullptr ? load(sw.row(i), sw.per_col ? r : 0) : A(1);
        const A c = gi * w * cosine_slope(cr.cosine, lab, margin);
        // d cos / dx = y / den - cos * x / |x|^2 while |x||y| > eps, else y / eps
        const bool clamped = cr.n1 * cr.n2 <= A(kCosineEps * kCosineEps);
        const A inv_den = A(1) / cr.den;
        const A kx = clamped ? A(0) : cr.cosine / cr.n1;
        const A ky = clamped ? A(0) : cr.cosine / cr.n2;
        T *dxr = wx.row(row * D), *dyr = wy.row(row * D);
#pragma omp simd
        for (int64_t k = 0; k < D; ++k) {
          const A a = load(xr, k), b = load(yr, k);
          store(dxr, k, c * (b * inv_den - kx * a));
          store(dyr, k, c * (a * inv_den - ky * b));
        }
        wx.flush(D);
        wy.flush(D);
        if (sw.ptr != nullptr) {
          const A v = gi * cosine_value(cr.cosine, lab, margin);
          if (dsw.kind == Bcast::kFull) store(dsw.ptr, row, v);
          else if (dsw.kind == Bcast::kCol) dsw.partial[thread_id()][r] += v;
          else fsum += v;
        }
      }
      if (sw.ptr != nullptr) finish_weight_row(dsw, i, fsum);
    }
  }
  if (has_sw) dsw.finish();
}

bool cosine_ok(const std::vector<MXTensor>& in, bool has_sw) {
  if (in[0].shape.size() < 2 || in[0].shape[0] == 0) return false;
  if (in[1].size() != in[0].size() || in[1].dtype != in[0].dtype) return false;
  const RowLayout lay = row_layout(in[0]);
  if (in[2].size() != lay.batch * lay.positions) return false;
  Bcast kind;
  return !has_sw || (in[3].dtype == in[0].dtype &&
                     classify_bcast(lay.loss_shape, in[3].shape, &kind));
}

MXReturnValue cosine_fwd(const Attrs& attrs, std::vector<MXTensor>* in,
                         std::vector<MXTensor>* out, const OpResource&) {
  const bool has_sw = attr_flag(attrs, "has_sample_weight");
  if (!cosine_ok(*in, has_sw)) return fail("gluonx_cosine_loss", "inputs do not fit input1");
  const double margin = attr_double(attrs, "margin");
  return for_float("gluonx_cosine_loss", (*in)[0].dtype, [&](auto t) {
    using T = decltype(t);
    cosine_forward<T>(*in, has_sw, margin, (*out)[0].data<T>());
  });
}

MXReturnValue cosine_bwd(const Attrs& attrs, std::vector<MXTensor>* in,
                         std::vector<MXTensor>* out, const OpResource&) {
  const bool has_sw = attr_flag(attrs, "has_sample_weight");
  const std::vector<MXTensor> fin = forward_inputs(*in, 3 + has_sw);
  if (fin.empty() || !cosine_ok(fin, has_sw)) {
    return fail("gluonx_cosine_loss", "inputs do not fit input1");
  }
  const double margin = attr_double(attrs, "margin");
  return for_float("gluonx_cosine_loss", (*in)[1].dtype, [&](auto t) {
    cosine_backward<decltype(t)>(*in, *out, has_sw, margin);
  });
}

struct Registration {
  Registration() {
    register_op<TripletOp>(triplet_fwd, triplet_bwd);
    register_op<CosineOp>(cosine_fwd, cosine_bwd);
  }
} registration;

}  // namespace
}  // namespace gluonx
