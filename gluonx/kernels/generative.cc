// Losses of generative models, one value per sample:
//   gluonx_vae_loss     Bernoulli reconstruction cross-entropy summed over a
//                       sample's features + KL(q || N(0, I)) summed over its
//                       latent dims; pred/label are (batch, features...), mean
//                       and log_var (batch, latent...): two shapes, one batch
//   gluonx_wgan_gp_loss critic: fake - real + lambda (|g|_2 - 1)^2 with the norm
//                       over a sample's gradient (|g|^2 from
//                       gluonx_row_sum_squares); generator: -fake; with
//                       `separate` (reduction='mean', no weight) the critic's
//                       value is one number, the three means taken separately
//                       (the inputs may then have different lengths)
// One pass over the inputs forward; the backward recomputes each sample's
// reductions and writes every gradient once. OpenMP runs over samples.
#include "common.h"

namespace gluonx {
namespace {

// Added to the squared gradient norm before its root (NORM_EPSILON in
// gluonx/loss/generative.py): the penalty's gradient stays finite at g = 0.
constexpr double kNormEpsilon = 1e-30;

// ============================================================== VAE ======

struct VAEOp {
  static constexpr const char* kName = "gluonx_vae_loss";
  static constexpr int kInputs = 4;   // pred, label, mean, log_var
  static constexpr const char* kOptional = "sample_weight";
  static constexpr const char* kAttrs = "from_sigmoid eps";
};

// Bernoulli cross-entropy of one element and its slopes, by how pred is given.
// Probs: p = clip(x, eps, 1 - eps) (bounds in A, as the stock scalar ops
// cast them); the slope in x passes where eps <= x <= 1 - eps (MXNet's
// minimum/maximum pass the gradient on ties). `Normal`: both logs' arguments
// are known to be normal floats, so the cheaper log serves.
template <typename A, bool Normal> struct Probs {
  A lo, hi;
  Probs(double eps) : lo(A(eps)), hi(A(1.0 - eps)) {}
  GLUONX_INLINE A lg(A v) const { return Normal ? log_normal(v) : fast_log(v); }
  GLUONX_INLINE A value(A x, A y) const {
    const A p = std::max(std::min(x, hi), lo);
    return -(y * lg(p) + (A(1) - y) * lg(A(1) - p));
  }
  // d/dx and d/dy
  GLUONX_INLINE void slopes(A x, A y, A* dx, A* dy) const {
    const A p = std::max(std::min(x, hi), lo), q = A(1) - p;
    const bool pass = x >= lo && x <= hi;
    *dx = pass ? (A(1) - y) / q - y / p : A(0);
    *dy = lg(q) - lg(p);
  }
  // the value and both slopes, sharing the logs
  GLUONX_INLINE void all(A x, A y, A* v, A* dx, A* dy) const {
    const A p = std::max(std::min(x, hi), lo), q = A(1) - p;
    const bool pass = x >= lo && x <= hi;
    const A lp = lg(p), lq = lg(q);
    *v = -(y * lp + (A(1) - y) * lq);
    *dx = pass ? (A(1) - y) / q - y / p : A(0);
    *dy = lq - lp;
  }
};

// Logits: softplus(x) - x y (sigmoid computed stably).
template <typename A> struct Logits {
  GLUONX_INLINE A value(A x, A y) const { return softplus(x) - x * y; }
  GLUONX_INLINE void slopes(A x, A y, A* dx, A* dy) const {
    *dx = sigmoid(x) - y;
    *dy = -x;
  }
  GLUONX_INLINE void all(A x, A y, A* v, A* dx, A* dy) const {
    *v = value(x, y);
    slopes(x, y, dx, dy);
  }
};

struct VAEShape {
  int64_t batch, features, latent;
};

template <typename T, class Rec>
void vae_forward(const Rec& rec, const std::vector<MXTensor>& in, const MXTensor* sw_t,
                 const VAEShape& s, T* out) {
  using A = Acc<T>;
  const T *x = cdata<T>(in[0]), *y = cdata<T>(in[1]);
  const T *m = cdata<T>(in[2]), *v = cdata<T>(in[3]);
  const SampleWeight<T> sw(sw_t, s.batch);
  const int64_t F = s.features, K = s.latent;
#pragma omp parallel for schedule(static) num_threads(max_threads()) \
    if (s.batch * (F + K) >= kParallelMinWork)
  for (int64_t i = 0; i < s.batch; ++i) {
    const T *xi = x + i * F, *yi = y + i * F, *mi = m + i * K, *vi = v + i * K;
    prefetch_next_row(x, i, s.batch, F);
    prefetch_next_row(y, i, s.batch, F);
    A r = 0, kl = 0;
#pragma omp simd reduction(+ : r)
    for (int64_t j = 0; j < F; ++j) r += rec.value(load(xi, j), load(yi, j));
#pragma omp simd reduction(+ : kl)
    for (int64_t k = 0; k < K; ++k) {
      const A mk = load(mi, k), vk = load(vi, k);
      kl += (fast_exp(vk) + mk * mk - A(1) - vk) * A(0.5);
    }
    store(out, i, (r + kl) * sw.at(i));
  }
}

template <typename T, class Rec>
void vae_backward(const Rec& rec, const std::vector<MXTensor>& in, std::vector<MXTensor>& out,
                  const MXTensor* sw_t, const VAEShape& s) {
  using A = Acc<T>;
  // in: ograd, pred, label, mean, log_var, [sw], output
  // out: dpred, dlabel, dmean, dlog_var, [dsw]
  const T* g = cdata<T>(in[0]);
  const T *x = cdata<T>(in[1]), *y = cdata<T>(in[2]);
  const T *m = cdata<T>(in[3]), *v = cdata<T>(in[4]);
  T *dx = out[0].data<T>(), *dy = out[1].data<T>();
  T *dm = out[2].data<T>(), *dv = out[3].data<T>();
  const SampleWeight<T> sw(sw_t, s.batch);
  const int threads = max_threads();
  SampleWeightGrad<T> dsw(sw_t != nullptr ? out[4].data<T>() : nullptr, sw, threads);
  const int64_t F = s.features, K = s.latent, total = s.batch * F;
#pragma omp parallel num_threads(threads) if (s.batch * (F + K) >= kParallelMinWork)
  {
    RowWriter<T> wx(dx, total, F), wy(dy, total, F);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < s.batch; ++i) {
      const T *xi = x + i * F, *yi = y + i * F, *mi = m + i * K, *vi = v + i * K;
      prefetch_next_row(x, i, s.batch, F);
      prefetch_next_row(y, i, s.batch, F);
      const A gi = load(g, i), c = gi * sw.at(i);
      T *gx = wx.row(i * F), *gy = wy.row(i * F);
      A r = 0;
      if (sw_t != nullptr) {
#pragma omp simd reduction(+ : r)
        for (int64_t j = 0; j < F; ++j) {
          A vj, sx, sy;
          rec.all(load(xi, j), load(yi, j), &vj, &sx, &sy);
          store(gx, j, c * sx);
          store(gy, j, c * sy);
          r += vj;
        }
      } else {
#pragma omp simd
        for (int64_t j = 0; j < F; ++j) {
          A sx, sy;
          rec.slopes(load(xi, j), load(yi, j), &sx, &sy);
          store(gx, j, c * sx);
          store(gy, j, c * sy);
        }
      }
      wx.flush(F);
      wy.flush(F);
      A kl = 0;
#pragma omp simd reduction(+ : kl)
      for (int64_t k = 0; k < K; ++k) {
        const A mk = load(mi, k), vk = load(vi, k), e = fast_exp(vk);
        store(dm + i * K, k, c * mk);
        store(dv + i * K, k, c * A(0.5) * (e - A(1)));
        kl += (e + mk * mk - A(1) - vk) * A(0.5);
      }
      dsw.add(i, gi * (r + kl));
    }
  }
  dsw.finish();
}

// The inputs from `first` on fit each other; in both passes (a backward can
// run after its forward failed).
bool vae_ok(const std::vector<MXTensor>& in, size_t first, bool has_sw, VAEShape* s) {
  if (in.size() < first + (has_sw ? 5 : 4)) return false;
  const MXTensor &pred = in[first], &label = in[first + 1];
  const MXTensor &mean = in[first + 2], &log_var = in[first + 3];
  if (pred.shape.empty() || pred.shape[0] == 0 || mean.shape.empty()) return false;
  const int64_t n = pred.shape[0];
  if (label.size() != pred.size() || mean.shape[0] != n || log_var.size() != mean.size()) {
    return false;
  }
  for (size_t k = 1; k < 4; ++k) {
    if (in[first + k].dtype != pred.dtype) return false;
  }
  if (has_sw && !sample_weight_fits(in[first + 4], pred.dtype, n)) return false;
  *s = {n, pred.size() / n, mean.size() / n};
  return true;
}

template <class F> MXReturnValue with_vae(const Attrs& attrs, int dtype, F&& f) {
  const bool from_sigmoid = attr_flag(attrs, "from_sigmoid");
  const double eps = attr_double(attrs, "eps");
  if (!(eps >= 0.0 && eps < 0.5)) return fail(VAEOp::kName, "eps must be in [0, 0.5)");
  return for_float(VAEOp::kName, dtype, [&](auto t) {
    using T = decltype(t);
    using A = Acc<T>;
    if (!from_sigmoid) {
      f(t, Logits<A>());
      return;
    }
    // both clipped logs see normal floats unless eps (or 1 - (1 - eps)) is 0
    // or subnormal in A; then the log that handles 0 (-> -inf) serves
    const A lo = A(eps), one_minus_hi = A(1) - A(1.0 - eps);
    const A tiny = std::numeric_limits<A>::min();
    if (lo >= tiny && one_minus_hi >= tiny) f(t, Probs<A, true>(eps));
    else f(t, Probs<A, false>(eps));
  });
}

MXReturnValue vae_fwd(const Attrs& attrs, std::vector<MXTensor>* in, std::vector<MXTensor>* out,
                      const OpResource&) {
  const bool has_sw = attr_flag(attrs, "has_sample_weight");
  VAEShape s;
  if (!vae_ok(*in, 0, has_sw, &s)) {
    return fail(VAEOp::kName, "label, mean, log_var or sample_weight does not fit pred "
                              "(label: pred's size; mean, log_var: one shape, pred's batch)");
  }
  return with_vae(attrs, (*in)[0].dtype, [&](auto t, const auto& rec) {
    using T = decltype(t);
    vae_forward<T>(rec, *in, has_sw ? &(*in)[4] : nullptr, s, (*out)[0].data<T>());
  });
}

MXReturnValue vae_bwd(const Attrs& attrs, std::vector<MXTensor>* in, std::vector<MXTensor>* out,
                      const OpResource&) {
  const bool has_sw = attr_flag(attrs, "has_sample_weight");
  VAEShape s;
  const std::vector<MXTensor> fwd = forward_inputs(*in, has_sw ? 5 : 4);
  if (!vae_ok(fwd, 0, has_sw, &s) || out->size() < (has_sw ? 5u : 4u)) {
    return fail(VAEOp::kName, "label, mean, log_var or sample_weight does not fit pred");
  }
  return with_vae(attrs, fwd[0].dtype, [&](auto t, const auto& rec) {
    using T = decltype(t);
    vae_backward<T>(rec, *in, *out, has_sw ? &(*in)[5] : nullptr, s);
  });
}

// =========================================================== WGAN-GP ======
// Two operators, so that the pass over the critic's input gradient g runs
// backward only when g needs a gradient (MXNet skips the backward of an
// operator none of whose inputs need one; an operator cannot tell which of
// its input gradients are wanted): gluonx_row_sum_squares gives each sample's
// |g|^2, and the loss operator takes those.

struct RowSumSquaresOp {
  static constexpr const char* kName = "gluonx_row_sum_squares";
  static constexpr int kInputs = 1;
  static constexpr const char* kOptional = "";
  static constexpr const char* kAttrs = "";
};

// sum of squares of one row, in kLanes independent partial sums: one simd
// accumulator is bound by the latency of its add chain (about half the
// bandwidth of a row in cache); kLanes spans four AVX2 registers of floats
constexpr int64_t kLanes = 32;
template <typename T> GLUONX_INLINE Acc<T> squares(const T* g, int64_t D) {
  using A = Acc<T>;
  A part[kLanes] = {};
  int64_t k = 0;
  for (; k + kLanes <= D; k += kLanes) {
#pragma omp simd
    for (int64_t l = 0; l < kLanes; ++l) {
      const A gk = load(g, k + l);
      part[l] += gk * gk;
    }
  }
  A s = 0;
  for (; k < D; ++k) {
    const A gk = load(g, k);
    s += gk * gk;
  }
#pragma omp simd reduction(+ : s)
  for (int64_t l = 0; l < kLanes; ++l) s += part[l];
  return s;
}

bool rows_ok(const std::vector<MXTensor>& in, size_t first) {
  return in.size() > first && !in[first].shape.empty() && in[first].shape[0] > 0;
}

MXReturnValue sum_squares_fwd(const Attrs&, std::vector<MXTensor>* in,
                              std::vector<MXTensor>* out, const OpResource&) {
  if (!rows_ok(*in, 0)) return fail(RowSumSquaresOp::kName, "x needs a batch axis");
  const MXTensor& x = (*in)[0];
  return for_float(RowSumSquaresOp::kName, x.dtype, [&](auto t) {
    using T = decltype(t);
    const int64_t n = x.shape[0], D = x.size() / n;
    const T* p = cdata<T>(x);
    T* o = (*out)[0].data<T>();
#pragma omp parallel for schedule(static) num_threads(max_threads()) \
    if (x.size() >= kParallelMinWork)
    for (int64_t i = 0; i < n; ++i) {
      prefetch_next_row(p, i, n, D);
      store(o, i, squares(p + i * D, D));
    }
  });
}

MXReturnValue sum_squares_bwd(const Attrs&, std::vector<MXTensor>* in,
                              std::vector<MXTensor>* out, const OpResource&) {
  // in: ograd, x, output; out: dx = 2 ograd_i x_i
  const std::vector<MXTensor> fwd = forward_inputs(*in, 1);
  if (!rows_ok(fwd, 0) || (*in)[0].size() != fwd[0].shape[0] || out->empty()) {
    return fail(RowSumSquaresOp::kName, "x needs a batch axis");
  }
  const MXTensor& x = fwd[0];
  return for_float(RowSumSquaresOp::kName, x.dtype, [&](auto t) {
    using T = decltype(t);
    using A = Acc<T>;
    const int64_t n = x.shape[0], D = x.size() / n, total = x.size();
    const T *g = cdata<T>((*in)[0]), *p = cdata<T>(x);
    T* dx = (*out)[0].data<T>();
#pragma omp parallel num_threads(max_threads()) if (total >= kParallelMinWork)
    {
      RowWriter<T> w(dx, total, D);
#pragma omp for schedule(static)
      for (int64_t i = 0; i < n; ++i) {
        const T* r = p + i * D;
        prefetch_next_row(p, i, n, D);
        const A k = A(2) * load(g, i);
        T* o = w.row(i * D);
#pragma omp simd
        for (int64_t j = 0; j < D; ++j) store(o, j, k * load(r, j));
        w.flush(D);
      }
    }
  });
}

// The loss on per-sample values: fake, real (N,) or (N, 1), and the squared
// norms s of the input gradients (N,) (input grad_interp).
struct WGANGPOp {
  static constexpr const char* kName = "gluonx_wgan_gp_loss";
  static constexpr int kInputs = 1;   // fake
  static constexpr const char* kOptional = "real grad_interp sample_weight";
  static constexpr const char* kAttrs = "lambda_ separate";
};

struct WGANLayout {
  bool critic, separate, has_sw;
  int64_t n_fake, n_real, n_grad;
  // positions of the optional inputs in the list checked
  size_t real, grad, sw;
};

// Which inputs are there and whether they fit; `first`: 0 forward, 1 backward.
bool wgan_ok(const Attrs& attrs, const std::vector<MXTensor>& in, size_t first, WGANLayout* L) {
  const bool has_real = attr_flag(attrs, "has_real");
  const bool has_grad = attr_flag(attrs, "has_grad_interp");
  L->has_sw = attr_flag(attrs, "has_sample_weight");
  L->critic = has_real;
  L->separate = has_real && attr_flag(attrs, "separate");  // the generator: per sample
  size_t k = first + 1;
  L->real = has_real ? k++ : 0;
  L->grad = has_grad ? k++ : 0;
  L->sw = L->has_sw ? k++ : 0;
  if (has_real != has_grad || in.size() < k) return false;
  const MXTensor& fake = in[first];
  auto score_ok = [](const MXTensor& t) {
    return (t.shape.size() == 1 || (t.shape.size() == 2 && t.shape[1] == 1)) && t.shape[0] > 0;
  };
  if (!score_ok(fake)) return false;
  L->n_fake = L->n_real = L->n_grad = fake.shape[0];
  if (L->critic) {
    const MXTensor &real = in[L->real], &grad = in[L->grad];
    if (!score_ok(real) || grad.shape.size() != 1 || grad.shape[0] == 0) return false;
    if (real.dtype != fake.dtype || grad.dtype != fake.dtype) return false;
    L->n_real = real.shape[0];
    L->n_grad = grad.shape[0];
    if (!L->separate && (L->n_real != L->n_fake || L->n_grad != L->n_fake)) return false;
  }
  if (L->separate && L->has_sw) return false;  // the unweighted mean only
  return !L->has_sw || sample_weight_fits(in[L->sw], fake.dtype, L->n_fake);
}

// lambda (|g| - 1)^2 from |g|^2, and its slope in |g|^2
template <typename A> GLUONX_INLINE A penalty(A squared, A lam, A* slope) {
  const A norm = std::sqrt(squared + A(kNormEpsilon)), d = norm - A(1);
  *slope = lam * d / norm;   // lam 2 d * (1 / (2 norm))
  return d * d * lam;
}

template <typename T>
void wgan_forward(const std::vector<MXTensor>& in, const WGANLayout& L, double lambda_, T* out) {
  using A = Acc<T>;
  const T* fake = cdata<T>(in[0]);
  const A lam = A(lambda_);
  if (!L.critic) {
    const SampleWeight<T> sw(L.has_sw ? &in[L.sw] : nullptr, L.n_fake);
    for (int64_t i = 0; i < L.n_fake; ++i) store(out, i, -load(fake, i) * sw.at(i));
    return;
  }
  const T *real = cdata<T>(in[L.real]), *sq = cdata<T>(in[L.grad]);
  A slope;
  if (L.separate) {
    A sf = 0, sr = 0, sp = 0;
    for (int64_t i = 0; i < L.n_fake; ++i) sf += load(fake, i);
    for (int64_t i = 0; i < L.n_real; ++i) sr += load(real, i);
    for (int64_t i = 0; i < L.n_grad; ++i) sp += penalty(load(sq, i), lam, &slope);
    store(out, 0, sf / A(L.n_fake) - sr / A(L.n_real) + sp / A(L.n_grad));
    return;
  }
  const SampleWeight<T> sw(L.has_sw ? &in[L.sw] : nullptr, L.n_fake);
  for (int64_t i = 0; i < L.n_fake; ++i) {
    const A v = load(fake, i) - load(real, i) + penalty(load(sq, i), lam, &slope);
    store(out, i, v * sw.at(i));
  }
}

template <typename T>
void wgan_backward(const std::vector<MXTensor>& in, std::vector<MXTensor>& out,
                   const WGANLayout& L, double lambda_) {
  using A = Acc<T>;
  // in: ograd, fake, [real, squared norms], [sw], output (L's positions count
  // from the ograd); out: dfake, [dreal, dsquared], [dsw] (positions one less)
  const T* g = cdata<T>(in[0]);
  const T* fake = cdata<T>(in[1]);
  T* dfake = out[0].data<T>();
  const A lam = A(lambda_);
  const SampleWeight<T> sw(L.has_sw ? &in[L.sw] : nullptr, L.n_fake);
  SampleWeightGrad<T> dsw(L.has_sw ? out[L.sw - 1].data<T>() : nullptr, sw, 1);
  if (!L.critic) {
    for (int64_t i = 0; i < L.n_fake; ++i) {
      const A gi = load(g, i);
      store(dfake, i, -gi * sw.at(i));
      dsw.add(i, -gi * load(fake, i));
    }
    dsw.finish();
    return;
  }
  const T *real = cdata<T>(in[L.real]), *sq = cdata<T>(in[L.grad]);
  T *dreal = out[L.real - 1].data<T>(), *dsq = out[L.grad - 1].data<T>();
  A slope;
  if (L.separate) {
    const A g0 = load(g, 0);
    const A cf = g0 / A(L.n_fake), cr = -g0 / A(L.n_real), cp = g0 / A(L.n_grad);
    for (int64_t i = 0; i < L.n_fake; ++i) store(dfake, i, cf);
    for (int64_t i = 0; i < L.n_real; ++i) store(dreal, i, cr);
    for (int64_t i = 0; i < L.n_grad; ++i) {
      penalty(load(sq, i), lam, &slope);
      store(dsq, i, cp * slope);
    }
    return;
  }
  for (int64_t i = 0; i < L.n_fake; ++i) {
    const A gi = load(g, i), c = gi * sw.at(i);
    const A p = penalty(load(sq, i), lam, &slope);
    store(dfake, i, c);
    store(dreal, i, -c);
    store(dsq, i, c * slope);
    dsw.add(i, gi * (load(fake, i) - load(real, i) + p));
  }
  dsw.finish();
}

MXReturnValue wgan_check(const Attrs& attrs, const std::vector<MXTensor>& in, size_t first,
                         WGANLayout* L) {
  if (!wgan_ok(attrs, in, first, L)) {
    return fail(WGANGPOp::kName, "real, grad_interp or sample_weight does not fit fake "
                                 "(fake, real: (batch,) or (batch, 1), grad_interp: the "
                                 "squared norms, (batch,); real and grad_interp together, "
                                 "fake's batch unless separate)");
  }
  const double lam = attr_double(attrs, "lambda_");
  if (!(lam >= 0)) return fail(WGANGPOp::kName, "lambda_ must be >= 0");
  return MX_SUCCESS;
}

MXReturnValue wgan_fwd(const Attrs& attrs, std::vector<MXTensor>* in, std::vector<MXTensor>* out,
                       const OpResource&) {
  WGANLayout L;
  if (wgan_check(attrs, *in, 0, &L) != MX_SUCCESS) return MX_FAIL;
  const int64_t want = L.separate ? 1 : L.n_fake;
  if ((*out)[0].size() != want) return fail(WGANGPOp::kName, "output has the wrong size");
  const double lam = attr_double(attrs, "lambda_");
  return for_float(WGANGPOp::kName, (*in)[0].dtype, [&](auto t) {
    using T = decltype(t);
    wgan_forward<T>(*in, L, lam, (*out)[0].data<T>());
  });
}

MXReturnValue wgan_bwd(const Attrs& attrs, std::vector<MXTensor>* in, std::vector<MXTensor>* out,
                       const OpResource&) {
  WGANLayout L;
  // checked on the full list (the output gradient first): the positions in
  // L index it directly
  if (wgan_check(attrs, *in, 1, &L) != MX_SUCCESS) return MX_FAIL;
  const size_t grads = 1 + (L.critic ? 2 : 0) + (L.has_sw ? 1 : 0);
  if (out->size() < grads || (*in)[0].size() != (L.separate ? 1 : L.n_fake)) {
    return fail(WGANGPOp::kName, "the output gradient does not fit the inputs");
  }
  const double lam = attr_double(attrs, "lambda_");
  return for_float(WGANGPOp::kName, (*in)[1].dtype, [&](auto t) {
    using T = decltype(t);
    wgan_backward<T>(*in, *out, L, lam);
  });
}

MXReturnValue wgan_infer_shape(const Attrs& attrs, Shapes* in, Shapes* out) {
  if ((*in)[0].empty()) {
    MX_ERROR_MSG << "gluonx kernel " << WGANGPOp::kName << ": fake needs a batch axis";
    return MX_FAIL;
  }
  const bool separate = attr_flag(attrs, "has_real") && attr_flag(attrs, "separate");
  (*out)[0] = {separate ? 1u : (*in)[0][0]};
  return MX_SUCCESS;
}

struct Registration {
  Registration() {
    register_op<VAEOp>(vae_fwd, vae_bwd);
    register_op<RowSumSquaresOp>(sum_squares_fwd, sum_squares_bwd);
    register_op<WGANGPOp>(wgan_fwd, wgan_bwd, wgan_infer_shape);
  }
} registration;

}  // namespace
}  // namespace gluonx
