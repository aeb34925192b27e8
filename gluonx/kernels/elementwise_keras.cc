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
// Branch-free, so that the loops vectorise: options are constants of the
// loop (no ignore_index: a NaN that no label equals), b^gamma is b * b for
// gamma == 2, a product of squarings for integer gamma, exp/log otherwise.
enum FocalGamma { kGammaAny, kGammaTwo, kGammaInt };
constexpr int kFocalIntBits = 4;  // integer gamma by multiplications: up to 15

template <bool FromLogits, int Gamma> struct SigmoidFocal {
  static constexpr bool kSum = false;
  static constexpr double kClip = 1e-7;     // probabilities: Keras' epsilon
  static constexpr double kFloor = 1e-30;   // floor of b (any gamma)
  double alpha_scale, alpha_shift, gamma, z_scale, z_shift, ignore;
  int n, n1;  // kGammaInt: gamma and gamma - 1 (0 for gamma == 0)
  explicit SigmoidFocal(const Attrs& a)
      : gamma(attr_double(a, "gamma")) {
    const bool has_alpha = attr_flag(a, "has_alpha");
    const double alpha = attr_double(a, "alpha"), smooth = attr_double(a, "label_smoothing");
    alpha_scale = has_alpha ? 2 * alpha - 1 : 0;     // a = scale * z + shift
    alpha_shift = has_alpha ? 1 - alpha : 1;
    z_scale = 1 - smooth;
    z_shift = 0.5 * smooth;
    ignore = attr_flag(a, "has_ignore_index") ? attr_double(a, "ignore_index")
                                              : std::numeric_limits<double>::quiet_NaN();
    n = static_cast<int>(gamma);
    n1 = std::max(n - 1, 0);
  }
  // Whether gamma takes the integer path.
  static bool integer(double g) { return g == std::floor(g) && g >= 0 && g < (1 << kFocalIntBits); }

  // m = b^gamma and dm = d(b^gamma)/db, b in [0, 1]
  template <typename A> GLUONX_INLINE void power(A b, A& m, A& dm) const {
    if (Gamma == kGammaTwo) {
      m = b * b; dm = A(2) * b;
    } else if (Gamma == kGammaInt) {
      A r = A(1), r1 = A(1), sq = b;   // b^n, b^(n - 1) over the bits of n
      for (int k = 0; k < kFocalIntBits; ++k) {
        r = ((n >> k) & 1) ? r * sq : r;
        r1 = ((n1 >> k) & 1) ? r1 * sq : r1;
        sq = sq * sq;
      }
      m = r; dm = A(gamma) * r1;
    } else {
      // b floored at 1e-30, as in the stock path for gamma < 1; for gamma >= 1
      // the floor changes nothing measurable (b < 1e-30 only where ce and
      // db/dx are about as small)
      const A bf = std::max(b, A(kFloor));
      m = exp_nonpos(A(gamma) * log_normal(bf));     // gamma * log b <= 0
      dm = A(gamma) * m / bf;                        // gamma b^(gamma - 1)
    }
  }
  // sigmoid(x), sigmoid(-x) and the cross-entropy's parts
  template <typename A>
  GLUONX_INLINE void parts(A x, A z, A& s, A& q, A& ce, A& dce_dx, A& dce_dz, A& dx_in) const {
    if (FromLogits) {
      const A e = exp_nonpos(-std::abs(x));
      const A inv = A(1) / (A(1) + e), einv = e * inv;
      const bool nonneg = x >= A(0);
      s = nonneg ? inv : einv;
      q = nonneg ? einv : inv;
      ce = std::max(x, A(0)) + log1p_unit(e) - x * z;
      dce_dx = s - z;
      dce_dz = -x;
      dx_in = s * q;                      // ds/dx
    } else {
      const bool inside = (x > A(kClip)) & (x < A(1 - kClip));
      s = std::min(std::max(x, A(kClip)), A(1 - kClip));
      q = A(1) - s;
      const A ls = log_normal(s), lq = log_normal(q);  // s, q in [kClip, 1 - kClip]
      ce = -(z * ls + (A(1) - z) * lq);
      dce_dx = inside ? (A(1) - z) / q - z / s : A(0);
      dce_dz = lq - ls;
      dx_in = inside ? A(1) : A(0);       // ds/dp
    }
  }
  template <typename A> GLUONX_INLINE A value(A x, A l, A) const {
    const bool drop = l == A(ignore);
    const A z = (drop ? A(0) : l) * A(z_scale) + A(z_shift);
    A s, q, ce, dce_dx, dce_dz, dx_in;
    parts(x, z, s, q, ce, dce_dx, dce_dz, dx_in);
    A m, dm;
    power(z * q + (A(1) - z) * s, m, dm);
    const A f = (A(alpha_scale) * z + A(alpha_shift)) * m * ce;
    return drop ? A(0) : f;
  }
  template <typename A> GLUONX_INLINE A both(A x, A l, A, A& dp, A& dl, A& dpw) const {
    const bool drop = l == A(ignore);
    const A z = (drop ? A(0) : l) * A(z_scale) + A(z_shift);
    A s, q, ce, dce_dx, dce_dz, dx_in;
    parts(x, z, s, q, ce, dce_dx, dce_dz, dx_in);
    A m, dm;
    power(z * q + (A(1) - z) * s, m, dm);
    const A a = A(alpha_scale) * z + A(alpha_shift);
    const A dmce = dm * ce;
    const A db_dx = (A(1) - A(2) * z) * dx_in;
    const A df_dz = A(alpha_scale) * m * ce + a * (dmce * (q - s) + m * dce_dz);
    dp = drop ? A(0) : a * (dmce * db_dx + m * dce_dx);
    dl = drop ? A(0) : df_dz * A(z_scale);
    dpw = 0;
    return drop ? A(0) : a * m * ce;
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
  template <bool Logits, class F> static void pick(double g, const Attrs& a, F&& f) {
    if (g == 2.0) f(SigmoidFocal<Logits, kGammaTwo>(a));
    else if (SigmoidFocal<Logits, kGammaInt>::integer(g)) f(SigmoidFocal<Logits, kGammaInt>(a));
    else f(SigmoidFocal<Logits, kGammaAny>(a));
  }
  template <class F> static void with(const Attrs& a, F&& f) {
    const double g = attr_double(a, "gamma");
    if (attr_flag(a, "from_logits")) pick<true>(g, a, f);
    else pick<false>(g, a, f);
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
