// Losses from Keras and RetinaNet on the elementwise loops: log-cosh, mean
// absolute percentage error, mean squared logarithmic error, sigmoid focal.
#include "elementwise.h"

namespace gluonx {
namespace elementwise {
namespace {

// log(cosh(d)), d = p - l, as |d| + log(1 + exp(-2|d|)) - log 2; f' = tanh(d).
struct LogCosh {
  static constexpr bool kSum = false;
  explicit LogCosh(const Attrs&) {}
  template <typename A> A value(A p, A l, A) const {
    const A a = std::abs(p - l);
    return a + log1p_unit(exp_nonpos(A(-2) * a)) - A(M_LN2);
  }
  template <typename A> A both(A p, A l, A, A& dp, A& dl, A& dpw) const {
    const A d = p - l, a = std::abs(d);
    const A e = exp_nonpos(A(-2) * a);
    const A t = (A(1) - e) / (A(1) + e);         // tanh(|d|)
    dp = d >= A(0) ? t : -t; dl = -dp; dpw = 0;
    return a + log1p_unit(e) - A(M_LN2);
  }
};

// 100 |l - p| / max(|l|, eps).
struct MAPE {
  static constexpr bool kSum = false;
  double eps;
  explicit MAPE(const Attrs& a) : eps(attr_double(a, "epsilon")) {}
  template <typename A> A value(A p, A l, A) const {
    return A(100) * std::abs(l - p) / std::max(std::abs(l), A(eps));
  }
  template <typename A> A both(A p, A l, A, A& dp, A& dl, A& dpw) const {
    const A den = std::max(std::abs(l), A(eps));
    const A r = A(100) / den, diff = l - p, f = std::abs(diff) * r;
    const A s = sign_of(diff);
    dp = -s * r;
    // the denominator moves with l only where |l| > eps
    dl = s * r - (std::abs(l) > A(eps) ? f / den * sign_of(l) : A(0));
    dpw = 0;
    return f;
  }
};

// (log(1 + max(p, eps)) - log(1 + max(l, eps)))^2; 0 gradient below eps.
struct MSLE {
  static constexpr bool kSum = false;
  double eps;
  explicit MSLE(const Attrs& a) : eps(attr_double(a, "epsilon")) {}
  template <typename A> A value(A p, A l, A) const {
    const A d = fast_log1p(std::max(p, A(eps))) - fast_log1p(std::max(l, A(eps)));
    return d * d;
  }
  template <typename A> A both(A p, A l, A, A& dp, A& dl, A& dpw) const {
    const A pc = std::max(p, A(eps)), lc = std::max(l, A(eps));
    const A d = fast_log1p(pc) - fast_log1p(lc);
    dp = p > A(eps) ? A(2) * d / (A(1) + pc) : A(0);
    dl = l > A(eps) ? A(-2) * d / (A(1) + lc) : A(0);
    dpw = 0;
    return d * d;
  }
};

// RetinaNet's focal loss on one logit (or probability) per element:
//   z = (1 - s) l + s / 2, ce = -(z log p + (1 - z) log(1 - p)),
//   b = z (1 - p) + (1 - z) p, a = alpha z + (1 - alpha)(1 - z) (or 1),
//   f = a b^gamma ce; 0 where l == ignore_index.
template <bool FromLogits, bool Gamma2> struct SigmoidFocal {
  static constexpr bool kSum = false;
  static constexpr double kClip = 1e-7;     // probabilities: Keras' epsilon
  static constexpr double kFloor = 1e-30;   // gamma < 1: floor of b
  double alpha_scale, alpha_shift, gamma, smooth, ignore;
  bool has_ignore;
  explicit SigmoidFocal(const Attrs& a)
      : gamma(attr_double(a, "gamma")), smooth(attr_double(a, "label_smoothing")),
        ignore(attr_double(a, "ignore_index")), has_ignore(attr_flag(a, "has_ignore_index")) {
    const bool has_alpha = attr_flag(a, "has_alpha");
    const double alpha = attr_double(a, "alpha");
    alpha_scale = has_alpha ? 2 * alpha - 1 : 0;     // a = scale * z + shift
    alpha_shift = has_alpha ? 1 - alpha : 1;
  }
  // b^gamma and b^(gamma - 1), b in [0, 1]
  template <typename A> void power(A b, A& m, A& m1) const {
    if (Gamma2) { m = b * b; m1 = b; return; }
    const A g = A(gamma);
    const A bf = gamma < 1 ? std::max(b, A(kFloor)) : b;
    const A lb = fast_log(bf > A(0) ? bf : A(1));
    m = bf > A(0) ? fast_exp(g * lb) : (gamma == 0 ? A(1) : A(0));
    m1 = bf > A(0) ? fast_exp((g - A(1)) * lb) : (gamma == 1 ? A(1) : A(0));
  }
  template <typename A> A both(A x, A l, A, A& dp, A& dl, A& dpw) const {
    const bool keep = !(has_ignore && l == A(ignore));
    const A lk = keep ? l : A(0);
    const A z = lk * A(1 - smooth) + A(0.5 * smooth);
    A s, q, ce, dce_dx, dce_dz, dx_in;
    if (FromLogits) {
      const A e = exp_nonpos(-std::abs(x));
      const A inv = A(1) / (A(1) + e);
      s = x >= A(0) ? inv : e * inv;      // sigmoid(x)
      q = x >= A(0) ? e * inv : inv;      // sigmoid(-x)
      ce = std::max(x, A(0)) + log1p_unit(e) - x * z;
      dce_dx = s - z;
      dce_dz = -x;
      dx_in = s * q;                      // ds/dx
    } else {
      const bool inside = x > A(kClip) && x < A(1 - kClip);
      s = std::min(std::max(x, A(kClip)), A(1 - kClip));
      q = A(1) - s;
      const A ls = fast_log(s), lq = fast_log(q);
      ce = -(z * ls + (A(1) - z) * lq);
      dce_dx = inside ? -z / s + (A(1) - z) / q : A(0);
      dce_dz = lq - ls;
      dx_in = inside ? A(1) : A(0);       // ds/dp
    }
    const A b = z * q + (A(1) - z) * s;
    A m, m1;
    power(b, m, m1);
    const A dm_db = Gamma2 ? A(2) * b : A(gamma) * m1;
    const A a = A(alpha_scale) * z + A(alpha_shift);
    const A db_dx = (A(1) - A(2) * z) * dx_in;
    const A f = a * m * ce;
    dp = keep ? a * (dm_db * db_dx * ce + m * dce_dx) : A(0);
    const A df_dz = A(alpha_scale) * m * ce + a * (dm_db * (q - s) * ce + m * dce_dz);
    dl = keep ? df_dz * A(1 - smooth) : A(0);
    dpw = 0;
    return keep ? f : A(0);
  }
  template <typename A> A value(A x, A l, A w) const {
    A dp, dl, dpw;
    return both(x, l, w, dp, dl, dpw);
  }
};

struct LogCoshOp : Plain<LogCosh> {
  static constexpr const char* kName = "gluonx_log_cosh_loss";
  static constexpr const char* kAttrs = "";
  static constexpr bool kPosWeight = false;
};
struct MAPEOp : Plain<MAPE> {
  static constexpr const char* kName = "gluonx_mape_loss";
  static constexpr const char* kAttrs = "epsilon";
  static constexpr bool kPosWeight = false;
};
struct MSLEOp : Plain<MSLE> {
  static constexpr const char* kName = "gluonx_msle_loss";
  static constexpr const char* kAttrs = "epsilon";
  static constexpr bool kPosWeight = false;
};
struct SigmoidFocalOp {
  static constexpr const char* kName = "gluonx_sigmoid_focal_loss";
  static constexpr const char* kAttrs =
      "alpha has_alpha gamma from_logits label_smoothing ignore_index has_ignore_index";
  static constexpr bool kPosWeight = false;
  template <class F> static void with(const Attrs& a, F&& f) {
    const bool logits = attr_flag(a, "from_logits"), g2 = attr_double(a, "gamma") == 2.0;
    if (logits && g2) f(SigmoidFocal<true, true>(a));
    else if (logits) f(SigmoidFocal<true, false>(a));
    else if (g2) f(SigmoidFocal<false, true>(a));
    else f(SigmoidFocal<false, false>(a));
  }
};

struct Registration {
  Registration() {
    register_loss<LogCoshOp>();
    register_loss<MAPEOp>();
    register_loss<MSLEOp>();
    register_loss<SigmoidFocalOp>();
  }
} registration;

}  // namespace
}  // namespace elementwise
}  // namespace gluonx
