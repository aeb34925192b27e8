// Elementwise-plus-reduce losses: loss_i = mean_j f(pred_ij, label_ij) * w_ij
// (KLDiv: sum_j). One pass forward, one pass backward, OpenMP over rows.
//
// A loss is a small policy struct: value(p, l, pw) and both(p, l, pw, dp, dl,
// dpw) (value plus partial derivatives); the loops below do the rest. The
// operators are registered by elementwise_*.cc, two files so that they
// compile in parallel.
#ifndef GLUONX_KERNELS_ELEMENTWISE_H_
#define GLUONX_KERNELS_ELEMENTWISE_H_

#include "common.h"

#include <type_traits>

namespace gluonx {
namespace elementwise {

// ----------------------------------------------------------------- losses --

struct L2 {
  static constexpr bool kSum = false;
  explicit L2(const Attrs&) {}
  template <typename A> A value(A p, A l, A) const {
    const A d = l - p;
    return A(0.5) * d * d;
  }
  template <typename A> A both(A p, A l, A, A& dp, A& dl, A& dpw) const {
    const A d = p - l;
    dp = d; dl = -d; dpw = 0;
    return A(0.5) * d * d;
  }
};

struct L1 {
  static constexpr bool kSum = false;
  explicit L1(const Attrs&) {}
  template <typename A> A value(A p, A l, A) const { return std::abs(l - p); }
  template <typename A> A both(A p, A l, A, A& dp, A& dl, A& dpw) const {
    const A d = l - p;
    dl = sign_of(d); dp = -dl; dpw = 0;
    return std::abs(d);
  }
};

struct Huber {
  static constexpr bool kSum = false;
  double rho;
  explicit Huber(const Attrs& a) : rho(attr_double(a, "rho")) {}
  template <typename A> A value(A p, A l, A) const {
    const A r = A(rho), d = std::abs(l - p);
    return d > r ? d - A(0.5) * r : (A(0.5) / r) * d * d;
  }
  template <typename A> A both(A p, A l, A, A& dp, A& dl, A& dpw) const {
    const A r = A(rho), diff = p - l, d = std::abs(diff);
    const bool lin = d > r;
    dp = lin ? sign_of(diff) : diff / r;
    dl = -dp; dpw = 0;
    return lin ? d - A(0.5) * r : (A(0.5) / r) * d * d;
  }
};

struct Hinge {
  static constexpr bool kSum = false;
  double margin;
  explicit Hinge(const Attrs& a) : margin(attr_double(a, "margin")) {}
  template <typename A> A value(A p, A l, A) const {
    return std::max(A(margin) - p * l, A(0));
  }
  template <typename A> A both(A p, A l, A, A& dp, A& dl, A& dpw) const {
    const A z = A(margin) - p * l;
    const bool on = z > A(0);
    dp = on ? -l : A(0); dl = on ? -p : A(0); dpw = 0;
    return on ? z : A(0);
  }
};

struct SquaredHinge {
  static constexpr bool kSum = false;
  double margin;
  explicit SquaredHinge(const Attrs& a) : margin(attr_double(a, "margin")) {}
  template <typename A> A value(A p, A l, A) const {
    const A z = std::max(A(margin) - p * l, A(0));
    return z * z;
  }
  template <typename A> A both(A p, A l, A, A& dp, A& dl, A& dpw) const {
    const A z = std::max(A(margin) - p * l, A(0));
    dp = -A(2) * z * l; dl = -A(2) * z * p; dpw = 0;
    return z * z;
  }
};

// torch.nn's losses, Gluon-style (issue 10) --------------------------------
// (p - l)^2, without L2's 1/2.
struct MSE {
  static constexpr bool kSum = false;
  explicit MSE(const Attrs&) {}
  template <typename A> A value(A p, A l, A) const {
    const A d = p - l;
    return d * d;
  }
  template <typename A> A both(A p, A l, A, A& dp, A& dl, A& dpw) const {
    const A d = p - l;
    dp = A(2) * d; dl = -dp; dpw = 0;
    return d * d;
  }
};

// log(1 + exp(-l p)) for labels -1/1 (and any real label).
struct SoftMargin {
  static constexpr bool kSum = false;
  explicit SoftMargin(const Attrs&) {}
  template <typename A> A value(A p, A l, A) const { return softplus(-l * p); }
  template <typename A> A both(A p, A l, A, A& dp, A& dl, A& dpw) const {
    const A z = -l * p, s = sigmoid(z);
    dp = -l * s; dl = -p * s; dpw = 0;
    return softplus(z);
  }
};

// p where l != -1, plus max(0, margin - p) where l != 1 (PyTorch's form:
// a label of 1 or -1 selects one term). The labels get no gradient.
struct HingeEmbedding {
  static constexpr bool kSum = false;
  double margin;
  explicit HingeEmbedding(const Attrs& a) : margin(attr_double(a, "margin")) {}
  template <typename A> A value(A p, A l, A) const {
    const A keep = l != A(-1) ? A(1) : A(0), push = l != A(1) ? A(1) : A(0);
    return keep * p + push * std::max(A(margin) - p, A(0));
  }
  template <typename A> A both(A p, A l, A, A& dp, A& dl, A& dpw) const {
    const A keep = l != A(-1) ? A(1) : A(0), push = l != A(1) ? A(1) : A(0);
    const A z = A(margin) - p;
    const bool on = z > A(0);
    dp = keep - (on ? push : A(0)); dl = 0; dpw = 0;
    return keep * p + (on ? push * z : A(0));
  }
};

// Logistic loss on logits; label 0/1, or -1/1 when `signed` (mapped to
// t = 0.5 l + 0.5). f = softplus(p) - p t, df/dp = sigmoid(p) - t, also at
// p == 0 (the stock abs/relu form gives -t there).
struct Logistic {
  static constexpr bool kSum = false;
  float scale, shift;  // t = scale * l + shift: no branch in the inner loop
  explicit Logistic(bool is_signed)
      : scale(is_signed ? 0.5f : 1.0f), shift(is_signed ? 0.5f : 0.0f) {}
  explicit Logistic(const Attrs& a) : Logistic(attr_flag(a, "signed")) {}
  template <typename A> A value(A p, A l, A) const {
    const A t = A(scale) * l + A(shift);
    return std::max(p, A(0)) - p * t + softplus_tail(p);
  }
  template <typename A> A both(A p, A l, A, A& dp, A& dl, A& dpw) const {
    const A t = A(scale) * l + A(shift);
    const A e = exp_nonpos(-std::abs(p));
    const A inv = A(1) / (A(1) + e);
    dp = (p >= A(0) ? inv : e * inv) - t;
    dl = -A(scale) * p;
    dpw = 0;
    return std::max(p, A(0)) - p * t + log1p_unit(e);
  }
};

// Sigmoid binary cross-entropy with pos_weight (the weight of the positive
// term, 1 when absent). On logits: f = p - p t + (1 + (pw - 1) t) softplus(-p).
// On probabilities: f = -(pw t log(p + eps) + (1 - t) log(1 - p + eps)).
template <bool FromSigmoid> struct SigmoidBCE {
  static constexpr bool kSum = false;
  static constexpr double kEps = 1e-12;
  explicit SigmoidBCE(const Attrs&) {}
  template <typename A> A value(A p, A l, A pw) const {
    if (FromSigmoid) {
      return -(fast_log(p + A(kEps)) * l * pw + fast_log(A(1) - p + A(kEps)) * (A(1) - l));
    }
    const A sp_neg = std::max(-p, A(0)) + softplus_tail(p);  // softplus(-p)
    return p - p * l + (A(1) + (pw - A(1)) * l) * sp_neg;
  }
  template <typename A> A both(A p, A l, A pw, A& dp, A& dl, A& dpw) const {
    if (FromSigmoid) {
      const A a = p + A(kEps), b = A(1) - p + A(kEps);
      const A la = fast_log(a), lb = fast_log(b);
      dp = -(l * pw / a - (A(1) - l) / b);
      dl = -(la * pw - lb);
      dpw = -la * l;
      return -(la * l * pw + lb * (A(1) - l));
    }
    const A e = exp_nonpos(-std::abs(p));
    const A inv = A(1) / (A(1) + e);
    const A sig = p >= A(0) ? inv : e * inv;           // sigmoid(p)
    const A sp_neg = std::max(-p, A(0)) + log1p_unit(e);
    const A lw = A(1) + (pw - A(1)) * l;
    dp = A(1) - l - lw * (A(1) - sig);
    dl = -p + (pw - A(1)) * sp_neg;
    dpw = l * sp_neg;
    return p - p * l + lw * sp_neg;
  }
};

// Poisson negative log-likelihood. FromLogits: f = exp(p) - t p, else
// f = p - t log(p + eps); Full adds Stirling's term where t > 1 (0 elsewhere,
// finite at t == 0).
template <bool FromLogits, bool Full> struct PoissonNLL {
  static constexpr bool kSum = false;
  double eps;
  explicit PoissonNLL(const Attrs& a) : eps(attr_double(a, "epsilon")) {}
  template <typename A> static A stirling(A t) {
    const A ts = t > A(1) ? t : A(2);  // keep the untaken branch finite
    const A s = ts * fast_log(ts) - ts + A(0.5) * fast_log(A(2 * M_PI) * ts);
    return t > A(1) ? s : A(0);
  }
  template <typename A> A value(A p, A t, A) const {
    A f = FromLogits ? fast_exp(p) - t * p : p - t * fast_log(p + A(eps));
    if (Full) f += stirling(t);
    return f;
  }
  template <typename A> A both(A p, A t, A, A& dp, A& dt, A& dpw) const {
    A f;
    if (FromLogits) {
      const A e = fast_exp(p);
      f = e - t * p; dp = e - t; dt = -p;
    } else {
      const A lp = fast_log(p + A(eps));
      f = p - t * lp; dp = A(1) - t / (p + A(eps)); dt = -lp;
    }
    if (Full) {
      f += stirling(t);
      const A ts = t > A(1) ? t : A(2);
      dt += t > A(1) ? fast_log(ts) + A(0.5) / ts : A(0);
    }
    dpw = 0;
    return f;
  }
};

// KL divergence with pred already log-probabilities; summed, not averaged.
struct KLDivLogits {
  static constexpr bool kSum = true;
  static constexpr double kEps = 1e-12;
  explicit KLDivLogits(const Attrs&) {}
  template <typename A> A value(A p, A l, A) const {
    return l * (fast_log(l + A(kEps)) - p);
  }
  template <typename A> A both(A p, A l, A, A& dp, A& dl, A& dpw) const {
    const A ll = fast_log(l + A(kEps));
    dp = -l; dl = ll - p + l / (l + A(kEps)); dpw = 0;
    return l * (ll - p);
  }
};

// Three-input losses: the third tensor comes in the weight slot `pw` (full,
// per row, per column or scalar, like pos_weight) and gets its gradient there.

// Gaussian negative log-likelihood, pw = the variance: v = max(var, eps),
// f = (log v + (p - l)^2 / v) / 2 + c (c = log(2 pi) / 2 when full, else 0).
// var gets df/dv also where it is clamped (torch's gradient).
struct GaussianNLL {
  static constexpr bool kSum = false;
  double eps, konst;
  explicit GaussianNLL(const Attrs& a)
      : eps(attr_double(a, "eps")), konst(attr_flag(a, "full") ? 0.5 * std::log(2 * M_PI) : 0) {}
  template <typename A> A value(A p, A l, A var) const {
    const A v = std::max(var, A(eps)), d = p - l;
    return A(0.5) * (fast_log(v) + d * d / v) + A(konst);
  }
  template <typename A> A both(A p, A l, A var, A& dp, A& dl, A& dv) const {
    const A v = std::max(var, A(eps)), d = p - l, r = A(1) / v, q = d * r;
    dp = q; dl = -q;
    dv = A(0.5) * (r - q * q);
    return A(0.5) * (fast_log(v) + d * q) + A(konst);
  }
};

// Margin ranking, p = input1, l = input2, pw = the label y:
// f = max(0, margin - y (p - l)).
struct MarginRanking {
  static constexpr bool kSum = false;
  double margin;
  explicit MarginRanking(const Attrs& a) : margin(attr_double(a, "margin")) {}
  template <typename A> A value(A p, A l, A y) const {
    return std::max(A(margin) - y * (p - l), A(0));
  }
  template <typename A> A both(A p, A l, A y, A& dp, A& dl, A& dy) const {
    const A d = p - l, z = A(margin) - y * d;
    const bool on = z > A(0);
    dp = on ? -y : A(0); dl = -dp; dy = on ? -d : A(0);
    return on ? z : A(0);
  }
};

// ------------------------------------------------------------------ loops --

// How a weight is read inside a row: absent, one value per row (row or
// scalar broadcast), or one value per element (column or full broadcast).
enum WMode { kAbsent = 0, kPerRow = 1, kPerElem = 2 };

template <typename T> inline int mode_of(const Weight<T>& w) {
  return w.ptr == nullptr ? kAbsent : (w.per_col ? kPerElem : kPerRow);
}

template <class L, typename T, int SW, int PW>
void forward_rows(const L& loss, const T* pred, const T* label, const Weight<T>& sw,
                  const Weight<T>& pw, int64_t rows, int64_t cols, T* out) {
  using A = Acc<T>;
  const A scale = L::kSum ? A(1) : A(1) / A(cols);
#pragma omp parallel for schedule(static) num_threads(max_threads()) \
    if (rows * cols >= kParallelMinWork)
  for (int64_t i = 0; i < rows; ++i) {
    const T* p = pred + i * cols;
    const T* l = label + i * cols;
    const T* w = SW == kAbsent ? nullptr : sw.row(i);
    const T* q = PW == kAbsent ? nullptr : pw.row(i);
    const A q0 = PW == kPerRow ? load(q, 0) : A(1);
    prefetch_next_row(pred, i, rows, cols);
    prefetch_next_row(label, i, rows, cols);
    A s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < cols; ++j) {
      const A qj = PW == kPerElem ? load(q, j) : q0;
      A f = loss.value(load(p, j), load(l, j), qj);
      if (SW == kPerElem) f *= load(w, j);
      s += f;
    }
    if (SW == kPerRow) s *= load(w, 0);
    store(out, i, s * scale);
  }
}

template <class L, typename T, int SW, int PW>
void backward_rows(const L& loss, const T* ograd, const T* pred, const T* label,
                   const Weight<T>& sw, const Weight<T>& pw, int64_t rows, int64_t cols,
                   T* dpred, T* dlabel, WeightGrad<T>& dsw, WeightGrad<T>& dpw) {
  using A = Acc<T>;
  const A scale = L::kSum ? A(1) : A(1) / A(cols);
  // large gradients: compute a row into a buffer, then stream it out
  const bool stream = Streamable<T>::value && rows * cols >= kStreamMinElements && cols >= 64;
#pragma omp parallel num_threads(max_threads()) \
    if (rows * cols >= kParallelMinWork)
  {
    std::vector<T> row_buffer(stream ? 2 * cols : 0);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < rows; ++i) {
      const T* p = pred + i * cols;
      const T* l = label + i * cols;
      T* gp = stream ? row_buffer.data() : dpred + i * cols;
      T* gl = stream ? row_buffer.data() + cols : dlabel + i * cols;
      const T* w = SW == kAbsent ? nullptr : sw.row(i);
      const T* q = PW == kAbsent ? nullptr : pw.row(i);
      const A gi = load(ograd, i) * scale;              // d(out_i)/d(mean term)
      const A w0 = SW == kPerRow ? load(w, 0) : A(1);
      const A q0 = PW == kPerRow ? load(q, 0) : A(1);
      const A gw = gi * w0;
      prefetch_next_row(pred, i, rows, cols);
      prefetch_next_row(label, i, rows, cols);
      // per-element weight gradients: full broadcast writes, column sums add
      const bool sw_full = SW == kPerElem && dsw.kind == Bcast::kFull;
      const bool pw_full = PW == kPerElem && dpw.kind == Bcast::kFull;
      T* gsw = sw_full ? dsw.ptr + i * cols : nullptr;
      T* gpw = pw_full ? dpw.ptr + i * cols : nullptr;
      A* csw = (SW == kPerElem && !sw_full) ? dsw.partial[thread_id()].data() : nullptr;
      A* cpw = (PW == kPerElem && !pw_full) ? dpw.partial[thread_id()].data() : nullptr;
      A fsum = 0, qsum = 0;
#pragma omp simd reduction(+ : fsum, qsum)
      for (int64_t j = 0; j < cols; ++j) {
        const A qj = PW == kPerElem ? load(q, j) : q0;
        const A wj = SW == kPerElem ? load(w, j) : A(1);
        A dp, dl, dq;
        const A f = loss.both(load(p, j), load(l, j), qj, dp, dl, dq);
        const A c = gw * wj;
        store(gp, j, c * dp);
        store(gl, j, c * dl);
        if (SW == kPerRow) fsum += f;
        if (SW == kPerElem) {
          if (sw_full) store(gsw, j, gi * f); else csw[j] += gi * f;
        }
        if (PW == kPerRow) qsum += c * dq;
        if (PW == kPerElem) {
          if (pw_full) store(gpw, j, c * dq); else cpw[j] += c * dq;
        }
      }
      if (stream) {
        stream_copy(dpred + i * cols, gp, cols);
        stream_copy(dlabel + i * cols, gl, cols);
      }
      if (SW == kPerRow) finish_weight_row(dsw, i, gi * fsum);
      if (PW == kPerRow) finish_weight_row(dpw, i, qsum);
    }
    if (stream) stream_fence();
  }
}

// ------------------------------------------------------------- operators --
// An operator descriptor: its name, whether it takes pos_weight, and with()
// that turns the boolean attributes into template arguments, so that no
// option is tested inside an inner loop (GCC will not vectorise it then).

template <class L> struct Plain {
  template <class F> static void with(const Attrs& a, F&& f) { f(L(a)); }
};

struct L2Op : Plain<L2> {
  static constexpr const char* kName = "gluonx_l2_loss";
  static constexpr const char* kAttrs = "";
  static constexpr bool kPosWeight = false;
};
struct L1Op : Plain<L1> {
  static constexpr const char* kName = "gluonx_l1_loss";
  static constexpr const char* kAttrs = "";
  static constexpr bool kPosWeight = false;
};
struct HuberOp : Plain<Huber> {
  static constexpr const char* kName = "gluonx_huber_loss";
  static constexpr const char* kAttrs = "rho";
  static constexpr bool kPosWeight = false;
};
struct HingeOp : Plain<Hinge> {
  static constexpr const char* kName = "gluonx_hinge_loss";
  static constexpr const char* kAttrs = "margin";
  static constexpr bool kPosWeight = false;
};
struct SquaredHingeOp : Plain<SquaredHinge> {
  static constexpr const char* kName = "gluonx_squared_hinge_loss";
  static constexpr const char* kAttrs = "margin";
  static constexpr bool kPosWeight = false;
};
struct MSEOp : Plain<MSE> {
  static constexpr const char* kName = "gluonx_mse_loss";
  static constexpr const char* kAttrs = "";
  static constexpr bool kPosWeight = false;
};
struct SoftMarginOp : Plain<SoftMargin> {
  static constexpr const char* kName = "gluonx_soft_margin_loss";
  static constexpr const char* kAttrs = "";
  static constexpr bool kPosWeight = false;
};
struct HingeEmbeddingOp : Plain<HingeEmbedding> {
  static constexpr const char* kName = "gluonx_hinge_embedding_loss";
  static constexpr const char* kAttrs = "margin";
  static constexpr bool kPosWeight = false;
};
struct LogisticOp : Plain<Logistic> {
  static constexpr const char* kName = "gluonx_logistic_loss";
  static constexpr const char* kAttrs = "signed";
  static constexpr bool kPosWeight = false;
};
struct KLDivOp : Plain<KLDivLogits> {
  static constexpr const char* kName = "gluonx_kldiv_loss";
  static constexpr const char* kAttrs = "";
  static constexpr bool kPosWeight = false;
};

// On logits without pos_weight, sigmoid BCE is the binary logistic loss
// (same value and gradient); its policy skips the pos_weight terms, which
// the compiler cannot drop itself (0 * x is not 0 for x = inf).
struct SigmoidBCEOp {
  static constexpr const char* kName = "gluonx_sigmoid_bce_loss";
  static constexpr const char* kAttrs = "from_sigmoid";
  static constexpr bool kPosWeight = true;
  template <class F> static void with(const Attrs& a, F&& f) {
    if (attr_flag(a, "from_sigmoid")) {
      f(SigmoidBCE<true>(a));
    } else if (attr_flag(a, "has_pos_weight")) {
      f(SigmoidBCE<false>(a));
    } else {
      f(Logistic(false));  // binary labels
    }
  }
};

// Operators of three-input losses (kThird = true): the third input is
// required, right after label, and the policy reads it as pos_weight.
struct GaussianNLLOp : Plain<GaussianNLL> {
  static constexpr const char* kName = "gluonx_gaussian_nll_loss";
  static constexpr const char* kAttrs = "full eps";
  static constexpr bool kPosWeight = false;
  static constexpr bool kThird = true;
};
struct MarginRankingOp : Plain<MarginRanking> {
  static constexpr const char* kName = "gluonx_margin_ranking_loss";
  static constexpr const char* kAttrs = "margin";
  static constexpr bool kPosWeight = false;
  static constexpr bool kThird = true;
};

template <class Op, class = void> struct HasThird : std::false_type {};
template <class Op>
struct HasThird<Op, std::void_t<decltype(Op::kThird)>> : std::bool_constant<Op::kThird> {};

// Whether a policy reads pos_weight (instantiate the pos_weight loops only then).
template <class L> struct UsesPosWeight : std::false_type {};
template <bool FromSigmoid> struct UsesPosWeight<SigmoidBCE<FromSigmoid>> : std::true_type {};

// Whether operator Op instantiates the loops that read the pw slot for policy L.
template <class Op, class L>
constexpr bool kReadsPw = HasThird<Op>::value || (Op::kPosWeight && UsesPosWeight<L>::value);

struct PoissonNLLOp {
  static constexpr const char* kName = "gluonx_poisson_nll_loss";
  static constexpr const char* kAttrs = "from_logits compute_full epsilon";
  static constexpr bool kPosWeight = false;
  template <class F> static void with(const Attrs& a, F&& f) {
    const bool logits = attr_flag(a, "from_logits"), full = attr_flag(a, "compute_full");
    if (logits && full) f(PoissonNLL<true, true>(a));
    else if (logits) f(PoissonNLL<true, false>(a));
    else if (full) f(PoissonNLL<false, true>(a));
    else f(PoissonNLL<false, false>(a));
  }
};

// Weights come after pred and label: sample_weight first, then pos_weight;
// a third input comes before sample_weight.
template <class Op>
void weight_slots(const Attrs& attrs, int* sw_slot, int* pw_slot) {
  int next = 2;
  if (HasThird<Op>::value) *pw_slot = next++;
  *sw_slot = attr_flag(attrs, "has_sample_weight") ? next++ : -1;
  if (!HasThird<Op>::value) {
    *pw_slot = (Op::kPosWeight && attr_flag(attrs, "has_pos_weight")) ? next++ : -1;
  }
}

template <bool PosWeight, class L, typename T>
void run_forward(const L& loss, std::vector<MXTensor>& in, MXTensor& out, int sw_slot,
                 int pw_slot) {
  const std::vector<int64_t>& shape = in[0].shape;
  const int64_t rows = shape[0];
  const int64_t cols = rows == 0 ? 0 : in[0].size() / rows;
  const Weight<T> sw = make_weight<T>(sw_slot >= 0 ? &in[sw_slot] : nullptr, shape, cols);
  const Weight<T> pw = make_weight<T>(pw_slot >= 0 ? &in[pw_slot] : nullptr, shape, cols);
  const T* p = in[0].data<T>();
  const T* l = in[1].data<T>();
  T* o = out.data<T>();
  const int swm = mode_of(sw), pwm = mode_of(pw);
#define GLUONX_FWD(S, P) \
  if (swm == S && pwm == P) { forward_rows<L, T, S, P>(loss, p, l, sw, pw, rows, cols, o); return; }
  GLUONX_FWD(kAbsent, kAbsent) GLUONX_FWD(kPerRow, kAbsent) GLUONX_FWD(kPerElem, kAbsent)
  if constexpr (PosWeight) {
    GLUONX_FWD(kAbsent, kPerRow) GLUONX_FWD(kPerRow, kPerRow) GLUONX_FWD(kPerElem, kPerRow)
    GLUONX_FWD(kAbsent, kPerElem) GLUONX_FWD(kPerRow, kPerElem) GLUONX_FWD(kPerElem, kPerElem)
  }
#undef GLUONX_FWD
}

template <bool PosWeight, class L, typename T>
void run_backward(const L& loss, std::vector<MXTensor>& in, std::vector<MXTensor>& out,
                  int sw_slot, int pw_slot) {
  // in: ograd, pred, label, [sw], [pw], output ; out: one gradient per input
  std::vector<MXTensor> fwd_in(in.begin() + 1, in.end() - 1);
  const std::vector<int64_t>& shape = fwd_in[0].shape;
  const int64_t rows = shape[0];
  const int64_t cols = rows == 0 ? 0 : fwd_in[0].size() / rows;
  const Weight<T> sw = make_weight<T>(sw_slot >= 0 ? &fwd_in[sw_slot] : nullptr, shape, cols);
  const Weight<T> pw = make_weight<T>(pw_slot >= 0 ? &fwd_in[pw_slot] : nullptr, shape, cols);
  const int threads = max_threads();
  WeightGrad<T> dsw, dpw;
  if (sw_slot >= 0) dsw.init(out[sw_slot].data<T>(), sw.kind, rows, cols, threads);
  if (pw_slot >= 0) dpw.init(out[pw_slot].data<T>(), pw.kind, rows, cols, threads);
  const T* g = in[0].data<T>();
  const T* p = fwd_in[0].data<T>();
  const T* l = fwd_in[1].data<T>();
  T* gp = out[0].data<T>();
  T* gl = out[1].data<T>();
  const int swm = mode_of(sw), pwm = mode_of(pw);
  bool done = false;
#define GLUONX_BWD(S, P)                                                              \
  if (!done && swm == S && pwm == P) {                                                \
    backward_rows<L, T, S, P>(loss, g, p, l, sw, pw, rows, cols, gp, gl, dsw, dpw); \
    done = true;                                                                      \
  }
  GLUONX_BWD(kAbsent, kAbsent) GLUONX_BWD(kPerRow, kAbsent) GLUONX_BWD(kPerElem, kAbsent)
  if constexpr (PosWeight) {
    GLUONX_BWD(kAbsent, kPerRow) GLUONX_BWD(kPerRow, kPerRow) GLUONX_BWD(kPerElem, kPerRow)
    GLUONX_BWD(kAbsent, kPerElem) GLUONX_BWD(kPerRow, kPerElem) GLUONX_BWD(kPerElem, kPerElem)
  }
#undef GLUONX_BWD
  if (sw_slot >= 0) dsw.finish();
  if (pw_slot >= 0) dpw.finish();
}

// Inputs must share pred's dtype, label pred's size, weights must broadcast.
inline bool check_inputs(const std::vector<MXTensor>& in, int sw_slot, int pw_slot) {
  const size_t count = 2 + (sw_slot >= 0) + (pw_slot >= 0);
  if (in.size() != count || in[0].shape.empty() || in[1].size() != in[0].size()) return false;
  for (const auto& t : in) {
    if (t.dtype != in[0].dtype) return false;
  }
  Bcast kind;
  if (sw_slot >= 0 && !classify_bcast(in[0].shape, in[sw_slot].shape, &kind)) return false;
  if (pw_slot >= 0 && !classify_bcast(in[0].shape, in[pw_slot].shape, &kind)) return false;
  return true;
}

template <class Op>
MXReturnValue forward(const Attrs& attrs, std::vector<MXTensor>* in,
                      std::vector<MXTensor>* out, const OpResource&) {
  int sw_slot, pw_slot;
  weight_slots<Op>(attrs, &sw_slot, &pw_slot);
  if (!check_inputs(*in, sw_slot, pw_slot)) {
    return fail(Op::kName, "inputs must share pred's dtype and size; weights must broadcast");
  }
  MXReturnValue rc = MX_FAIL;
  Op::with(attrs, [&](auto loss) {
    rc = for_float(Op::kName, (*in)[0].dtype, [&](auto t) {
      using L = decltype(loss);
      constexpr bool kPw = kReadsPw<Op, L>;
      run_forward<kPw, L, decltype(t)>(loss, *in, (*out)[0], sw_slot, pw_slot);
    });
  });
  return rc;
}

template <class Op>
MXReturnValue backward(const Attrs& attrs, std::vector<MXTensor>* in,
                       std::vector<MXTensor>* out, const OpResource&) {
  int sw_slot, pw_slot;
  weight_slots<Op>(attrs, &sw_slot, &pw_slot);
  const size_t count = 2 + (sw_slot >= 0) + (pw_slot >= 0);
  if (!check_inputs(forward_inputs(*in, count), sw_slot, pw_slot)) {
    return fail(Op::kName, "inputs must share pred's dtype and size; weights must broadcast");
  }
  MXReturnValue rc = MX_FAIL;
  Op::with(attrs, [&](auto loss) {
    rc = for_float(Op::kName, (*in)[1].dtype, [&](auto t) {
      using L = decltype(loss);
      constexpr bool kPw = kReadsPw<Op, L>;
      run_backward<kPw, L, decltype(t)>(loss, *in, *out, sw_slot, pw_slot);
    });
  });
  return rc;
}

// The descriptor register_op reads: pred and label, then the weights.
template <class Op> struct Described : Op {
  static constexpr int kInputs = HasThird<Op>::value ? 3 : 2;
  static constexpr const char* kOptional =
      Op::kPosWeight ? "sample_weight pos_weight" : "sample_weight";
};

template <class Op> void register_loss() {
  register_op<Described<Op>>(forward<Op>, backward<Op>);
}

}  // namespace elementwise
}  // namespace gluonx

#endif  // GLUONX_KERNELS_ELEMENTWISE_H_
