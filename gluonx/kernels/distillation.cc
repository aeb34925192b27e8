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
// class axis 1). Each pass reads a row from memory once (its first loop;
// the others run on cache) and takes one exp per element and softmax (the
// hard term's exps are powers of the soft term's at T = 2, 3, 4); the
// forward keeps only sums, the backward recomputes the exps into per-thread
// scratch and writes each gradient once. OpenMP runs over samples.
#include "common.h"

#include <type_traits>

namespace gluonx {
namespace {

// Added to given teacher probabilities before their log (the stock path's
// LOG_EPSILON in gluonx/loss/distillation.py).
constexpr double kLogEpsilon = 1e-12;

// ------------------------------------------------------------ row helpers --

// The log-sum-exp of a row (GeneralizedCE) and 1 / sum_k e_k, e_k = exp(x_k
// - max) (softmax = e * inv); Store: keep e in `e` (the backward), else only
// the sum (the forward).
template <typename A> struct Lse { A lse, inv; };

template <bool Store, typename T>
GLUONX_INLINE Lse<Acc<T>> row_lse(const T* x, int64_t n, Acc<T>* e) {
  using A = Acc<T>;
  A m = -std::numeric_limits<A>::infinity();
#pragma omp simd reduction(max : m)
  for (int64_t k = 0; k < n; ++k) m = std::max(m, load(x, k));
  A s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t k = 0; k < n; ++k) {
    const A v = exp_nonpos(load(x, k) - m);
    if (Store) e[k] = v;
    s += v;
  }
  return {m + fast_log(s), A(1) / s};
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

// One row's statistics, from at most three passes over it: the first (the
// only one that reads x and t from memory) takes the student's max m and,
// for given probabilities q = t, Q = sum q, D = sum q x and, for the KL,
// E = sum q (log(q + eps) - x / T); the second the student's exps at T (and
// at 1 for the hard term); the third, for teacher logits, the teacher's exps
// e_k at T with Q = sum q, D = sum q x and E = sum q t (q = e / sum e).
// The soft term's value is then a closed form of these sums (see
// distill_value) instead of a fourth pass.
enum Teacher { kProbsCE, kProbsKL, kLogits };

template <typename A> struct DistillRow {
  A lse_s = 0, inv_s = 0, lse_h = 0, inv_h = 0, lse_t = 0, q_inv = 1;
  A Q = 0, D = 0, E = 0;
};

// How the hard term's exps exp(x_k - m) come from the soft term's
// e_k = exp((x_k - m) / T): T = 1 (the same), e^P for T = P a small integer
// (products, not a second exp), kOwnExp (any other T) or kNoHard (w = 0).
constexpr int kNoHard = -1, kOwnExp = 0;

inline int hard_power(double temperature, bool hard) {
  if (temperature == 1) return 1;
  if (!hard) return kNoHard;
  for (int p = 2; p <= 4; ++p) {
    if (temperature == p) return p;
  }
  return kOwnExp;
}

template <typename T> struct DistillScratch {
  std::vector<Acc<T>> ps, ph, qs;
  explicit DistillScratch(int64_t K) : ps(K), ph(K), qs(K) {}
};

// The first pass (see above); WithE: compute E (kProbsKL).
template <Teacher M, bool WithE, typename T>
GLUONX_INLINE void distill_first(const T* xr, const T* tr, int64_t K, Acc<T> scale,
                                 Acc<T>& m_out, Acc<T>& mt_out, DistillRow<Acc<T>>& st) {
  using A = Acc<T>;
  A m = -std::numeric_limits<A>::infinity(), mt = m;
  if (M == kLogits) {
#pragma omp simd reduction(max : m, mt)
    for (int64_t k = 0; k < K; ++k) {
      m = std::max(m, load(xr, k));
      mt = std::max(mt, load(tr, k));
    }
  } else {
    A Q = 0, D = 0, E = 0;
#pragma omp simd reduction(max : m) reduction(+ : Q, D, E)
    for (int64_t k = 0; k < K; ++k) {
      const A x = load(xr, k), q = load(tr, k);
      m = std::max(m, x);
      Q += q;
      D += q * x;
      if (WithE && M == kProbsKL) E += q * (fast_log(q + A(kLogEpsilon)) - x * scale);
    }
    st.Q = Q;
    st.D = D;
    st.E = E;
  }
  m_out = m;
  mt_out = mt;
}

// The student's exps: e_k = exp((x_k - m) / T) into ps, and the hard
// term's h_k = exp(x_k - m) into ph (P as hard_power; P = 1: ps holds both);
// Store = false keeps only the sums.
template <int P, bool Store, typename T>
GLUONX_INLINE void student_exps(const T* xr, int64_t K, Acc<T> m, Acc<T> scale, Acc<T>* ps,
                                Acc<T>* ph, DistillRow<Acc<T>>& st) {
  using A = Acc<T>;
  const A ms = P == 1 ? m : m * scale;
  A ss = 0, sh = 0;
#pragma omp simd reduction(+ : ss, sh)
  for (int64_t k = 0; k < K; ++k) {
    const A x = load(xr, k);
    const A e = exp_nonpos(P == 1 ? x - ms : x * scale - ms);
    A h = 0;
    if (P == kOwnExp) h = exp_nonpos(x - m);
    if (P >= 2) h = P == 3 ? e * e * e : e * e;
    if (P == 4) h = h * h;
    if (Store) {
      ps[k] = e;
      if (P == kOwnExp || P >= 2) ph[k] = h;
    }
    ss += e;
    sh += h;
  }
  st.lse_s = ms + fast_log(ss);
  st.inv_s = A(1) / ss;
  if (P == 1) {
    st.lse_h = st.lse_s;
    st.inv_h = st.inv_s;
  } else if (P != kNoHard) {
    st.lse_h = m + fast_log(sh);
    st.inv_h = A(1) / sh;
  }
}

template <bool Store, typename T>
GLUONX_INLINE void distill_exps(int power, const T* xr, int64_t K, Acc<T> m, Acc<T> scale,
                                Acc<T>* ps, Acc<T>* ph, DistillRow<Acc<T>>& st) {
  switch (power) {
    case 1: student_exps<1, Store>(xr, K, m, scale, ps, ph, st); break;
    case 2: student_exps<2, Store>(xr, K, m, scale, ps, ph, st); break;
    case 3: student_exps<3, Store>(xr, K, m, scale, ps, ph, st); break;
    case 4: student_exps<4, Store>(xr, K, m, scale, ps, ph, st); break;
    case kOwnExp: student_exps<kOwnExp, Store>(xr, K, m, scale, ps, ph, st); break;
    default: student_exps<kNoHard, Store>(xr, K, m, scale, ps, ph, st); break;
  }
}

// The third pass (teacher logits): the teacher's exps at T into qs, and
// Q, D, E over q = qs * q_inv.
template <bool Store, typename T>
GLUONX_INLINE void teacher_exps(const T* xr, const T* tr, int64_t K, Acc<T> mt, Acc<T> scale,
                                Acc<T>* qs, DistillRow<Acc<T>>& st) {
  using A = Acc<T>;
  const A mts = mt * scale;
  A s = 0, D = 0, E = 0;
#pragma omp simd reduction(+ : s, D, E)
  for (int64_t k = 0; k < K; ++k) {
    const A t = load(tr, k);
    const A e = exp_nonpos(t * scale - mts);
    if (Store) qs[k] = e;
    s += e;
    D += e * load(xr, k);
    E += e * t;
  }
  st.lse_t = mts + fast_log(s);
  st.q_inv = A(1) / s;
  st.Q = s * st.q_inv;
  st.D = D * st.q_inv;
  st.E = E * st.q_inv;
}

// All of a row's statistics; m is the student's max. Store: keep the exps
// for the backward.
template <Teacher M, bool Store, bool WithE, typename T>
GLUONX_INLINE DistillRow<Acc<T>> distill_stats(const T* xr, const T* tr, int64_t K, int power,
                                               Acc<T> scale, DistillScratch<T>& s) {
  using A = Acc<T>;
  DistillRow<A> st;
  A m, mt;
  distill_first<M, WithE>(xr, tr, K, scale, m, mt, st);
  distill_exps<Store>(power, xr, K, m, scale, s.ps.data(), s.ph.data(), st);
  if (M == kLogits) teacher_exps<Store>(xr, tr, K, mt, scale, s.qs.data(), st);
  return st;
}

// S' = sum_k q_k (e log q_k - log p_k) (e = 1 with the entropy) of a row
// from its statistics: log p_k = x_k / T - lse_s, and log q_k = t_k / T -
// lse_t or log(q_k + eps).
template <Teacher M, typename A> GLUONX_INLINE A soft_value(const DistillRow<A>& st, A scale,
                                                           bool entropy) {
  const A cross = st.lse_s * st.Q - scale * st.D;  // -sum q log p
  if (M == kProbsKL) return st.E + st.lse_s * st.Q;
  if (M == kLogits && entropy) return scale * (st.E - st.D) + (st.lse_s - st.lse_t) * st.Q;
  return cross;
}

// The row's loss a T^2 S' + w H (see the top of the file).
template <Teacher M, typename T>
GLUONX_INLINE Acc<T> distill_value(const T* xr, const T* lr, int64_t y, int64_t K,
                                   const DistillAttrs& o, const DistillRow<Acc<T>>& st) {
  using A = Acc<T>;
  const A temp = A(o.temperature);
  A f = A(o.soft_weight) * temp * temp * soft_value<M>(st, A(1) / temp, o.entropy);
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

template <Teacher M, typename T>
void distill_forward(const MXTensor& pred, const MXTensor& label, const MXTensor& teacher,
                     const MXTensor* sw_t, const DistillAttrs& o, T* out) {
  using A = Acc<T>;
  const RowLayout lay = row_layout(pred);
  const int64_t K = lay.row, R = lay.positions, rows = lay.batch * R;
  const Weight<T> sw = make_weight<T>(sw_t, lay.loss_shape, R);
  const bool hard = o.hard_weight != 0;
  const int power = hard_power(o.temperature, hard);
  const A scale = A(1) / A(o.temperature);
  const T *x = cdata<T>(pred), *t = cdata<T>(teacher);
  const T* dense = o.sparse ? nullptr : cdata<T>(label);
#pragma omp parallel num_threads(max_threads()) if (pred.size() >= kParallelMinWork)
  {
    DistillScratch<T> s(0);  // the forward keeps no exps
#pragma omp for schedule(static)
    for (int64_t i = 0; i < lay.batch; ++i) {
      A total = 0;
      for (int64_t r = 0; r < R; ++r) {
        const int64_t row = i * R + r;
        const T *xr = x + row * K, *tr = t + row * K;
        prefetch_next_row(x, row, rows, K);
        prefetch_next_row(t, row, rows, K);
        const DistillRow<A> st = distill_stats<M, false, true>(xr, tr, K, power, scale, s);
        const int64_t y = hard && o.sparse ? std::min(std::max(load_index(label, row),
                                                               int64_t(0)), K - 1) : 0;
        total += distill_value<M>(xr, dense == nullptr ? nullptr : dense + row * K, y, K, o,
                                  st) * row_weight(sw, i, r);
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
// Each row is read from memory once (the first pass); one more loop writes
// both gradients from the kept exps.
template <Teacher M, typename T>
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
  const int power = hard_power(o.temperature, hard);
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
        // E only where the value is needed (a sample weight's gradient)
        const DistillRow<A> st = sw_t != nullptr
            ? distill_stats<M, true, true>(xr, tr, K, power, scale, s)
            : distill_stats<M, true, false>(xr, tr, K, power, scale, s);
        const int64_t y = hard && o.sparse ? std::min(std::max(load_index(label, row),
                                                               int64_t(0)), K - 1) : 0;
        const A c = gi * row_weight(sw, i, r);
        const A* ps = s.ps.data();
        const A* qs = s.qs.data();
        const A lse_s = st.lse_s, q_inv = st.q_inv, Q = st.Q;
        A L = 0;
        if (hard && !o.sparse) {
#pragma omp simd reduction(+ : L)
          for (int64_t k = 0; k < K; ++k) L += load(lr, k);
        } else if (hard) {
          L = A(1);
        }
        // the soft term's factors: a T^2 (given q), a T^2 / T (through x / T, t / T);
        // the softmax terms' factors (ph is ps at T = 1; unused without the hard term)
        const A ct = c * a * temp, ctt = ct * temp, ch = c * w;
        const A cp = ct * Q * st.inv_s, cph = hard ? ch * L * st.inv_h : A(0);
        const A* ph = power == 1 || !hard ? ps : s.ph.data();
        T *gp = wp.row(row * K), *gt = wt.row(row * K);
        T* gl = dl == nullptr ? nullptr : wl.row(row * K);
        if (M == kProbsCE) {
#pragma omp simd
          for (int64_t k = 0; k < K; ++k) {
            const A xk = load(xr, k);
            store(gp, k, cp * ps[k] - ct * load(tr, k) + cph * ph[k]);
            store(gt, k, ctt * (lse_s - xk * scale));
          }
        } else if (M == kProbsKL) {
#pragma omp simd
          for (int64_t k = 0; k < K; ++k) {
            const A xk = load(xr, k), q = load(tr, k), le = q + A(kLogEpsilon);
            store(gp, k, cp * ps[k] - ct * q + cph * ph[k]);
            store(gt, k, ctt * (fast_log(le) + q / le + lse_s - xk * scale));
          }
        } else {
          // U = sum u / (a T^2) = e (sum q log q + Q) - sum q log p
          const A U = ent * (scale * (st.E - st.D) + (lse_s - st.lse_t + A(1)) * Q) +
                      (A(1) - ent) * (lse_s * Q - scale * st.D);
          const A lse_t = st.lse_t;
#pragma omp simd
          for (int64_t k = 0; k < K; ++k) {
            const A q = qs[k] * q_inv;
            const A xk = load(xr, k);
            store(gp, k, cp * ps[k] - ct * q + cph * ph[k]);
            const A logp = xk * scale - lse_s;
            const A logq = load(tr, k) * scale - lse_t;
            store(gt, k, ct * q * (ent * (logq + A(1)) - logp - U));
          }
        }
        if (hard && o.sparse) store(gp, y, load(gp, y) - ch);
        if (gl != nullptr) {
          if (hard) {
            const A lse_h = st.lse_h;
#pragma omp simd
            for (int64_t k = 0; k < K; ++k) {
              store(gp, k, load(gp, k) - ch * load(lr, k));
              store(gl, k, ch * (lse_h - load(xr, k)));
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
          const A f = distill_value<M>(xr, lr, y, K, o, st);
          add_row_weight_grad(dsw, row, r, gi * f, fsum);
        }
      }
      if (sw_t != nullptr) finish_weight_row(dsw, i, fsum);
    }
  }
  if (sw_t != nullptr) dsw.finish();
}

inline Teacher teacher_kind(const DistillAttrs& o) {
  return !o.probabilities ? kLogits : o.entropy ? kProbsKL : kProbsCE;
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
    const MXTensor* sw = has_sw ? &(*in)[3] : nullptr;
    T* res = (*out)[0].data<T>();
    switch (teacher_kind(o)) {
      case kProbsCE: distill_forward<kProbsCE, T>(pred, (*in)[1], (*in)[2], sw, o, res); break;
      case kProbsKL: distill_forward<kProbsKL, T>(pred, (*in)[1], (*in)[2], sw, o, res); break;
      default: distill_forward<kLogits, T>(pred, (*in)[1], (*in)[2], sw, o, res); break;
    }
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
    const T* og = (*in)[0].data<T>();
    const MXTensor* sw = has_sw ? &(*in)[4] : nullptr;
    T *dp = (*out)[0].data<T>(), *dt = (*out)[2].data<T>();
    T* dsw = has_sw ? (*out)[3].data<T>() : nullptr;
    switch (teacher_kind(o)) {
      case kProbsCE:
        distill_backward<kProbsCE, T>(og, (*in)[1], (*in)[2], (*in)[3], sw, o, dp, (*out)[1],
                                      dt, dsw);
        break;
      case kProbsKL:
        distill_backward<kProbsKL, T>(og, (*in)[1], (*in)[2], (*in)[3], sw, o, dp, (*out)[1],
                                      dt, dsw);
        break;
      default:
        distill_backward<kLogits, T>(og, (*in)[1], (*in)[2], (*in)[3], sw, o, dp, (*out)[1],
                                     dt, dsw);
        break;
    }
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
          const A u = load(xr, y) - row_lse<false>(xr, K, static_cast<A*>(nullptr)).lse;
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
          const Lse<A> e = row_lse<true>(xr, K, ex.data());
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
