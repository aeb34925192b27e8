// Losses over softmax rows of the last axis, one row of K classes at a time:
//   gluonx_distillation_loss    a S + w H (DistillationLoss), with
//       S = T^2 sum_k q_k (log q_k - log p_k)  (or without the teacher's
//           entropy: -T^2 sum_k q_k log p_k), p = softmax(x / T) the student,
//           q = softmax(t / T) from teacher logits, or q = t given (its log
//           then log(t + 1e-12)),
//       H = -sum_k l_k log softmax(x)_k (sparse labels: l one-hot at y),
//       a = 1 or 1 - w (convex mix), w the hard weight; w = 0 drops H.
//   gluonx_generalized_ce_loss  (1 - p_y^q) / q (GeneralizedCELoss), p =
//       softmax(x), or x itself (from_softmax).
// Every position of a sample is a row; a sample's value is the mean over its
// positions of the row losses times the sample weight (pred's shape with the
// class axis 1). Forward reads each row once (its statistics stay in cache);
// backward recomputes them and writes each gradient once. OpenMP runs over
// samples.
#include "common.h"

#include <type_traits>

namespace gluonx {
namespace {

// Added to given teacher probabilities before their log (the stock path's
// LOG_EPSILON in gluonx/loss/distillation.py).
constexpr double kLogEpsilon = 1e-12;

// ------------------------------------------------------------ row helpers --

template <typename T> GLUONX_INLINE Acc<T> row_max(const T* x, int64_t n) {
  using A = Acc<T>;
  A m = -std::numeric_limits<A>::infinity();
#pragma omp simd reduction(max : m)
  for (int64_t k = 0; k < n; ++k) m = std::max(m, load(x, k));
  return m;
}

// e_k = exp(x_k s - m s) (m the row's max, s = 1 / T; not Scaled: T = 1);
// the log-sum-exp of x s and 1 / sum_k e_k (softmax = e * inv). Scaled by a
// product, not divided by T: a division costs several multiplications and
// differs from it by at most one rounding.
template <typename A> struct Lse { A lse, inv; };

template <bool Scaled, typename T>
GLUONX_INLINE Lse<Acc<T>> row_exp(const T* x, int64_t n, Acc<T> m, Acc<T> scale, Acc<T>* e) {
  using A = Acc<T>;
  const A ms = Scaled ? m * scale : m;
  A s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t k = 0; k < n; ++k) {
    const A v = exp_nonpos((Scaled ? load(x, k) * scale : load(x, k)) - ms);
    e[k] = v;
    s += v;
  }
  return {ms + fast_log(s), A(1) / s};
}

template <typename T>
GLUONX_INLINE Lse<Acc<T>> row_lse(const T* x, int64_t n, Acc<T> scale, Acc<T>* e) {
  const Acc<T> m = row_max(x, n);
  return scale == Acc<T>(1) ? row_exp<false>(x, n, m, scale, e)
                            : row_exp<true>(x, n, m, scale, e);
}

// ========================================================= distillation ====

struct DistillationOp {
  static constexpr const char* kName = "gluonx_distillation_loss";
  static constexpr int kInputs = 3;  // pred, label, teacher
  static constexpr const char* kOptional = "sample_weight";
  static constexpr const char* kAttrs =
      "temperature hard_weight soft_weight sparse_label teacher_probabilities teacher_entropy";
};

struct DistillAttrs {
  double temperature, hard_weight, soft_weight;
  bool sparse, probabilities, entropy;
  explicit DistillAttrs(const Attrs& a)
      : temperature(attr_double(a, "temperature")), hard_weight(attr_double(a, "hard_weight")),
        soft_weight(attr_double(a, "soft_weight")), sparse(attr_flag(a, "sparse_label")),
        probabilities(attr_flag(a, "teacher_probabilities")),
        entropy(attr_flag(a, "teacher_entropy")) {}
  bool ok() const { return temperature > 0 && hard_weight >= 0 && soft_weight >= 0; }
};

// One row's statistics: the student's log-sum-exp at T (lse_s, exps in ps)
// and at 1 (lse_h, exps in ph; ph = ps when T = 1), and, for teacher
// logits, the teacher's at T (lse_t, exps in qs; q_k = qs_k * q_inv).
template <typename A> struct DistillRow {
  A lse_s = 0, inv_s = 0, lse_h = 0, inv_h = 0, lse_t = 0, q_inv = 1;
  const A* ph = nullptr;  // the exps at T = 1
};

template <typename T> struct DistillScratch {
  std::vector<Acc<T>> ps, ph, qs;
  explicit DistillScratch(int64_t K) : ps(K), ph(K), qs(K) {}
};

template <typename T>
GLUONX_INLINE DistillRow<Acc<T>> distill_stats(const T* xr, const T* tr, int64_t K,
                                               const DistillAttrs& o, bool hard,
                                               DistillScratch<T>& s) {
  using A = Acc<T>;
  const A scale = A(1) / A(o.temperature);
  DistillRow<A> st;
  st.ph = s.ps.data();  // read (times 0) without the hard term
  const A m = row_max(xr, K);
  Lse<A> e;
  if (scale == A(1)) {
    e = row_exp<false>(xr, K, m, scale, s.ps.data());
    st.lse_h = e.lse;
    st.inv_h = e.inv;
  } else {
    e = row_exp<true>(xr, K, m, scale, s.ps.data());
    if (hard) {
      const Lse<A> h = row_exp<false>(xr, K, m, scale, s.ph.data());
      st.lse_h = h.lse;
      st.inv_h = h.inv;
      st.ph = s.ph.data();
    }
  }
  st.lse_s = e.lse;
  st.inv_s = e.inv;
  if (!o.probabilities) {
    const Lse<A> te = row_lse(tr, K, scale, s.qs.data());
    st.lse_t = te.lse;
    st.q_inv = te.inv;
  }
  return st;
}

// log q_k and q_k of position k.
template <typename T>
GLUONX_INLINE Acc<T> teacher_log(const T* tr, int64_t k, const DistillRow<Acc<T>>& st, Acc<T> scale,
                                 bool probabilities) {
  using A = Acc<T>;
  if (probabilities) return fast_log(load(tr, k) + A(kLogEpsilon));
  return (scale == A(1) ? load(tr, k) : load(tr, k) * scale) - st.lse_t;
}

template <typename T>
GLUONX_INLINE Acc<T> student_log(const T* xr, int64_t k, Acc<T> lse, Acc<T> scale) {
  return (scale == Acc<T>(1) ? load(xr, k) : load(xr, k) * scale) - lse;
}

// The row's loss a T^2 S' + w H (see the top of the file).
template <typename T>
Acc<T> distill_row_value(const T* xr, const T* tr, const T* lr, int64_t y, int64_t K,
                         const DistillAttrs& o, const DistillRow<Acc<T>>& st,
                         const DistillScratch<T>& s) {
  using A = Acc<T>;
  const A temp = A(o.temperature), scale = A(1) / temp;
  const A* qs = s.qs.data();
  A soft = 0;
  if (o.probabilities) {
    if (o.entropy) {
#pragma omp simd reduction(+ : soft)
      for (int64_t k = 0; k < K; ++k) {
        const A q = load(tr, k);
        soft += q * (fast_log(q + A(kLogEpsilon)) - student_log(xr, k, st.lse_s, scale));
      }
    } else {
#pragma omp simd reduction(+ : soft)
      for (int64_t k = 0; k < K; ++k) soft -= load(tr, k) * student_log(xr, k, st.lse_s, scale);
    }
  } else {
    const A lt = o.entropy ? A(1) : A(0);
#pragma omp simd reduction(+ : soft)
    for (int64_t k = 0; k < K; ++k) {
      const A logq = teacher_log(tr, k, st, scale, false);
      soft += qs[k] * (lt * logq - student_log(xr, k, st.lse_s, scale));
    }
    soft *= st.q_inv;
  }
  A f = A(o.soft_weight) * temp * temp * soft;
  if (o.hard_weight != 0) {
    A hard;
    if (o.sparse) {
      hard = st.lse_h - load(xr, y);
    } else {
      A sum = 0, dot = 0;
#pragma omp simd reduction(+ : sum, dot)
      for (int64_t k = 0; k < K; ++k) {
        const A l = load(lr, k);
        sum += l;
        dot += l * load(xr, k);
      }
      hard = st.lse_h * sum - dot;
    }
    f += A(o.hard_weight) * hard;
  }
  return f;
}

template <typename T>
void distill_forward(const MXTensor& pred, const MXTensor& label, const MXTensor& teacher,
                     const MXTensor* sw_t, const DistillAttrs& o, T* out) {
  using A = Acc<T>;
  const RowLayout lay = row_layout(pred);
  const int64_t K = lay.row, R = lay.positions, rows = lay.batch * R;
  const Weight<T> sw = make_weight<T>(sw_t, lay.loss_shape, R);
  const bool hard = o.hard_weight != 0;
  const T *x = cdata<T>(pred), *t = cdata<T>(teacher);
  const T* dense = o.sparse ? nullptr : cdata<T>(label);
#pragma omp parallel num_threads(max_threads()) if (pred.size() >= kParallelMinWork)
  {
    DistillScratch<T> s(K);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < lay.batch; ++i) {
      A total = 0;
      for (int64_t r = 0; r < R; ++r) {
        const int64_t row = i * R + r;
        const T *xr = x + row * K, *tr = t + row * K;
        prefetch_next_row(x, row, rows, K);
        prefetch_next_row(t, row, rows, K);
        const DistillRow<A> st = distill_stats(xr, tr, K, o, hard, s);
        const int64_t y = hard && o.sparse ? std::min(std::max(load_index(label, row),
                                                               int64_t(0)), K - 1) : 0;
        total += distill_row_value(xr, tr, dense == nullptr ? nullptr : dense + row * K, y, K, o,
                                   st, s) * row_weight(sw, i, r);
      }
      store(out, i, total / A(R));
    }
  }
}

// Gradients, per row with weight c (head gradient x sample weight / R):
//   d/dx_k = c (a T (p_k Q - q_k) + w (P_k L - l_k)),  Q = sum q, L = sum l
//   teacher logits, as the stock log_softmax backward: with
//     u_k = a T^2 q_k (e (log q_k + 1) - log p_k)  (e: with the entropy),
//     d/dt_k = c (u_k - q_k sum_j u_j) / T
//   given q: d/dq_k = c a T^2 (e (log(q_k + eps) + q_k / (q_k + eps)) - log p_k)
//   dense labels: d/dl_k = c w (lse(x) - x_k); class indices get 0.
template <typename T>
void distill_backward(const T* ograd, const MXTensor& pred, const MXTensor& label,
                      const MXTensor& teacher, const MXTensor* sw_t, const DistillAttrs& o,
                      T* dpred, MXTensor& dlabel, T* dteacher, T* dsw_ptr) {
  using A = Acc<T>;
  const RowLayout lay = row_layout(pred);
  const int64_t K = lay.row, R = lay.positions, rows = lay.batch * R;
  const Weight<T> sw = make_weight<T>(sw_t, lay.loss_shape, R);
  WeightGrad<T> dsw;
  if (sw_t != nullptr) dsw.init(dsw_ptr, sw.kind, lay.batch, R, max_threads());
  const bool hard = o.hard_weight != 0;
  const A temp = A(o.temperature), a = A(o.soft_weight), w = A(o.hard_weight);
  const A scale = A(1) / temp;
  const A ent = o.entropy ? A(1) : A(0);
  const T *x = cdata<T>(pred), *t = cdata<T>(teacher);
  const T* dense = o.sparse ? nullptr : cdata<T>(label);
  T* dl = o.sparse ? nullptr : dlabel.data<T>();
  if (o.sparse) zero_tensor(&dlabel);
  const int64_t total = pred.size();
#pragma omp parallel num_threads(max_threads()) if (total >= kParallelMinWork)
  {
    DistillScratch<T> s(K);
    RowWriter<T> wp(dpred, total, K), wt(dteacher, total, K), wl(dl, dl ? total : 0, K);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < lay.batch; ++i) {
      const A gi = load(ograd, i) / A(R);
      A fsum = 0;
      for (int64_t r = 0; r < R; ++r) {
        const int64_t row = i * R + r;
        const T *xr = x + row * K, *tr = t + row * K;
        const T* lr = dense == nullptr ? nullptr : dense + row * K;
        prefetch_next_row(x, row, rows, K);
        prefetch_next_row(t, row, rows, K);
        const DistillRow<A> st = distill_stats(xr, tr, K, o, hard, s);
        const int64_t y = hard && o.sparse ? std::min(std::max(load_index(label, row),
                                                               int64_t(0)), K - 1) : 0;
        const A c = gi * row_weight(sw, i, r);
        const A* ps = s.ps.data();
        const A* qs = s.qs.data();
        const A inv_s = st.inv_s, inv_h = st.inv_h;
        // Q = sum q and, for teacher logits, U = sum u / (a T^2)
        A Q = 0, U = 0;
        if (o.probabilities) {
#pragma omp simd reduction(+ : Q)
          for (int64_t k = 0; k < K; ++k) Q += load(tr, k);
        } else {
#pragma omp simd reduction(+ : Q, U)
          for (int64_t k = 0; k < K; ++k) {
            const A q = qs[k] * st.q_inv;
            Q += q;
            U += q * (ent * (teacher_log(tr, k, st, scale, false) + A(1)) -
                      student_log(xr, k, st.lse_s, scale));
          }
        }
        A L = 0;
        if (hard && !o.sparse) {
#pragma omp simd reduction(+ : L)
          for (int64_t k = 0; k < K; ++k) L += load(lr, k);
        } else if (hard) {
          L = A(1);
        }
        // the soft term's factors: a T^2 (given q), a T^2 / T (through x / T, t / T);
        // the softmax terms' factors (ph holds unused values without the hard term)
        const A ct = c * a * temp, ctt = ct * temp, ch = c * w;
        const A cp = ct * Q * inv_s, cph = hard ? ch * L * inv_h : A(0);
        const A* ph = st.ph;
        T *gp = wp.row(row * K), *gt = wt.row(row * K);
        T* gl = dl == nullptr ? nullptr : wl.row(row * K);
        if (o.probabilities) {
#pragma omp simd
          for (int64_t k = 0; k < K; ++k) store(gp, k, cp * ps[k] - ct * load(tr, k) + cph * ph[k]);
          if (o.entropy) {
#pragma omp simd
            for (int64_t k = 0; k < K; ++k) {
              const A q = load(tr, k), le = q + A(kLogEpsilon);
              store(gt, k, ctt * (fast_log(le) + q / le - student_log(xr, k, st.lse_s, scale)));
            }
          } else {
#pragma omp simd
            for (int64_t k = 0; k < K; ++k) store(gt, k, -ctt * student_log(xr, k, st.lse_s, scale));
          }
        } else {
#pragma omp simd
          for (int64_t k = 0; k < K; ++k) {
            const A q = qs[k] * st.q_inv;
            store(gp, k, cp * ps[k] - ct * q + cph * ph[k]);
            const A u = q * (ent * (teacher_log(tr, k, st, scale, false) + A(1)) -
                             student_log(xr, k, st.lse_s, scale));
            store(gt, k, ct * (u - q * U));
          }
        }
        if (hard && o.sparse) store(gp, y, load(gp, y) - ch);
        if (gl != nullptr) {
          if (hard) {
#pragma omp simd
            for (int64_t k = 0; k < K; ++k) {
              store(gp, k, load(gp, k) - ch * load(lr, k));
              store(gl, k, ch * (st.lse_h - load(xr, k)));
            }
          } else {
#pragma omp simd
            for (int64_t k = 0; k < K; ++k) store(gl, k, A(0));
          }
          wl.flush(K);
        }
        wp.flush(K);
        wt.flush(K);
        if (sw_t != nullptr) {
          const A f = distill_row_value(xr, tr, lr, y, K, o, st, s);
          add_row_weight_grad(dsw, row, r, gi * f, fsum);
        }
      }
      if (sw_t != nullptr) finish_weight_row(dsw, i, fsum);
    }
  }
  if (sw_t != nullptr) dsw.finish();
}

// The inputs from `first` on (pred, label, teacher, [sample_weight]) fit
// each other. Checked in both passes: a backward can run after its forward
// failed.
bool distill_ok(const std::vector<MXTensor>& in, size_t first, bool sparse, bool has_sw) {
  if (in.size() < first + (has_sw ? 4 : 3)) return false;
  const MXTensor &pred = in[first], &label = in[first + 1], &teacher = in[first + 2];
  if (pred.shape.size() < 2 || pred.size() == 0) return false;
  const RowLayout lay = row_layout(pred);
  const bool label_fits = sparse ? label.size() == lay.batch * lay.positions
                                 : label.size() == pred.size() && label.dtype == pred.dtype;
  return label_fits && teacher.size() == pred.size() && teacher.dtype == pred.dtype &&
         (!has_sw || row_weight_fits(pred, in[first + 3]));
}

MXReturnValue distill_fwd(const Attrs& attrs, std::vector<MXTensor>* in,
                          std::vector<MXTensor>* out, const OpResource&) {
  const bool has_sw = attr_flag(attrs, "has_sample_weight");
  const DistillAttrs o(attrs);
  if (!o.ok() || !distill_ok(*in, 0, o.sparse, has_sw)) {
    return fail(DistillationOp::kName, "label, teacher or sample_weight does not fit pred, or "
                "temperature <= 0");
  }
  const MXTensor& pred = (*in)[0];
  return for_float(DistillationOp::kName, pred.dtype, [&](auto t) {
    using T = decltype(t);
    distill_forward<T>(pred, (*in)[1], (*in)[2], has_sw ? &(*in)[3] : nullptr, o,
                       (*out)[0].data<T>());
  });
}

MXReturnValue distill_bwd(const Attrs& attrs, std::vector<MXTensor>* in,
                          std::vector<MXTensor>* out, const OpResource&) {
  // in: ograd, pred, label, teacher, [sw], output; out: dpred, dlabel, dteacher, [dsw]
  const bool has_sw = attr_flag(attrs, "has_sample_weight");
  const DistillAttrs o(attrs);
  if (!o.ok() || !distill_ok(forward_inputs(*in, 3 + has_sw), 0, o.sparse, has_sw)) {
    return fail(DistillationOp::kName, "label, teacher or sample_weight does not fit pred, or "
                "temperature <= 0");
  }
  return for_float(DistillationOp::kName, (*in)[1].dtype, [&](auto t) {
    using T = decltype(t);
    distill_backward<T>((*in)[0].data<T>(), (*in)[1], (*in)[2], (*in)[3],
                        has_sw ? &(*in)[4] : nullptr, o, (*out)[0].data<T>(), (*out)[1],
                        (*out)[2].data<T>(), has_sw ? (*out)[3].data<T>() : nullptr);
  });
}

// ===================================================== generalized CE ====
// From scores: u = x_y - lse(x), f = -expm1(q u) / q, d f / d x_k =
// exp(q u) (p_k - [k = y]). From probabilities: f = (1 - x_y^q) / q,
// d f / d x_y = -x_y^(q - 1), 0 elsewhere.

struct GeneralizedCEOp {
  static constexpr const char* kName = "gluonx_generalized_ce_loss";
  static constexpr int kInputs = 2;
  static constexpr const char* kOptional = "sample_weight";
  static constexpr const char* kAttrs = "q from_softmax";
};

template <typename T>
void gce_forward(const MXTensor& pred, const MXTensor& label, const MXTensor* sw_t, double qd,
                 bool from_softmax, T* out) {
  using A = Acc<T>;
  const RowLayout lay = row_layout(pred);
  const int64_t K = lay.row, R = lay.positions, rows = lay.batch * R;
  const Weight<T> sw = make_weight<T>(sw_t, lay.loss_shape, R);
  const A q = A(qd);
  const T* x = cdata<T>(pred);
#pragma omp parallel num_threads(max_threads()) if (pred.size() >= kParallelMinWork)
  {
    std::vector<A> ex(from_softmax ? 0 : K);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < lay.batch; ++i) {
      A total = 0;
      for (int64_t r = 0; r < R; ++r) {
        const int64_t row = i * R + r;
        const T* xr = x + row * K;
        const int64_t y = std::min(std::max(load_index(label, row), int64_t(0)), K - 1);
        A f;
        if (from_softmax) {
          f = (A(1) - std::pow(load(xr, y), q)) / q;
        } else {
          prefetch_next_row(x, row, rows, K);
          const A u = load(xr, y) - row_lse(xr, K, A(1), ex.data()).lse;
          f = -std::expm1(u * q) / q;
        }
        total += f * row_weight(sw, i, r);
      }
      store(out, i, total / A(R));
    }
  }
}

template <typename T>
void gce_backward(const T* ograd, const MXTensor& pred, const MXTensor& label,
                  const MXTensor* sw_t, double qd, bool from_softmax, T* dpred, T* dsw_ptr) {
  using A = Acc<T>;
  const RowLayout lay = row_layout(pred);
  const int64_t K = lay.row, R = lay.positions, rows = lay.batch * R;
  const Weight<T> sw = make_weight<T>(sw_t, lay.loss_shape, R);
  WeightGrad<T> dsw;
  if (sw_t != nullptr) dsw.init(dsw_ptr, sw.kind, lay.batch, R, max_threads());
  const A q = A(qd);
  const T* x = cdata<T>(pred);
  const int64_t total = pred.size();
#pragma omp parallel num_threads(max_threads()) if (total >= kParallelMinWork)
  {
    std::vector<A> ex(K);
    RowWriter<T> wp(dpred, total, K);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < lay.batch; ++i) {
      const A gi = load(ograd, i) / A(R);
      A fsum = 0;
      for (int64_t r = 0; r < R; ++r) {
        const int64_t row = i * R + r;
        const T* xr = x + row * K;
        const int64_t y = std::min(std::max(load_index(label, row), int64_t(0)), K - 1);
        const A c = gi * row_weight(sw, i, r);
        T* gp = wp.row(row * K);
        A f;
        if (from_softmax) {
          const A py = load(xr, y);
          f = (A(1) - std::pow(py, q)) / q;
#pragma omp simd
          for (int64_t k = 0; k < K; ++k) store(gp, k, A(0));
          store(gp, y, -c * std::pow(py, q - A(1)));
        } else {
          prefetch_next_row(x, row, rows, K);
          const Lse<A> e = row_lse(xr, K, A(1), ex.data());
          const A u = load(xr, y) - e.lse;
          f = -std::expm1(u * q) / q;
          const A cp = c * std::exp(u * q);
          const A cs = cp * e.inv;
#pragma omp simd
          for (int64_t k = 0; k < K; ++k) store(gp, k, cs * ex[k]);
          store(gp, y, load(gp, y) - cp);
        }
        wp.flush(K);
        if (sw_t != nullptr) add_row_weight_grad(dsw, row, r, gi * f, fsum);
      }
      if (sw_t != nullptr) finish_weight_row(dsw, i, fsum);
    }
  }
  if (sw_t != nullptr) dsw.finish();
}

bool gce_ok(const std::vector<MXTensor>& in, size_t first, bool has_sw) {
  if (in.size() < first + (has_sw ? 3 : 2)) return false;
  const MXTensor &pred = in[first], &label = in[first + 1];
  if (pred.shape.size() < 2 || pred.size() == 0) return false;
  const RowLayout lay = row_layout(pred);
  return label.size() == lay.batch * lay.positions && (!has_sw || row_weight_fits(pred, in[first + 2]));
}

MXReturnValue gce_fwd(const Attrs& attrs, std::vector<MXTensor>* in, std::vector<MXTensor>* out,
                      const OpResource&) {
  const bool has_sw = attr_flag(attrs, "has_sample_weight");
  const double q = attr_double(attrs, "q");
  if (!(q > 0 && q <= 1) || !gce_ok(*in, 0, has_sw)) {
    return fail(GeneralizedCEOp::kName, "label or sample_weight does not fit pred, or q is not "
                "in (0, 1]");
  }
  const bool from_softmax = attr_flag(attrs, "from_softmax");
  return for_float(GeneralizedCEOp::kName, (*in)[0].dtype, [&](auto t) {
    using T = decltype(t);
    gce_forward<T>((*in)[0], (*in)[1], has_sw ? &(*in)[2] : nullptr, q, from_softmax,
                   (*out)[0].data<T>());
  });
}

MXReturnValue gce_bwd(const Attrs& attrs, std::vector<MXTensor>* in, std::vector<MXTensor>* out,
                      const OpResource&) {
  // in: ograd, pred, label, [sw], output; out: dpred, dlabel, [dsw]
  const bool has_sw = attr_flag(attrs, "has_sample_weight");
  const double q = attr_double(attrs, "q");
  if (!(q > 0 && q <= 1) || !gce_ok(forward_inputs(*in, 2 + has_sw), 0, has_sw)) {
    return fail(GeneralizedCEOp::kName, "label or sample_weight does not fit pred, or q is not "
                "in (0, 1]");
  }
  const bool from_softmax = attr_flag(attrs, "from_softmax");
  zero_tensor(&(*out)[1]);  // class indices get no gradient
  return for_float(GeneralizedCEOp::kName, (*in)[1].dtype, [&](auto t) {
    using T = decltype(t);
    gce_backward<T>((*in)[0].data<T>(), (*in)[1], (*in)[2], has_sw ? &(*in)[3] : nullptr, q,
                    from_softmax, (*out)[0].data<T>(), has_sw ? (*out)[2].data<T>() : nullptr);
  });
}

struct Registration {
  Registration() {
    register_op<DistillationOp>(distill_fwd, distill_bwd);
    register_op<GeneralizedCEOp>(gce_fwd, gce_bwd);
  }
} registration;

}  // namespace
}  // namespace gluonx
