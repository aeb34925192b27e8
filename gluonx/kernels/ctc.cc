// gluonx_ctc_loss: connectionist temporal classification, blank = last class.
//
// Inputs: pred (activations, softmax taken here; layout NTC or TNC), label
// (class indices, -1 pads; layout NT or TN; any dtype), then optionally
// pred_lengths, label_lengths (any dtype), sample_weight (one per sample, or
// one value). Output: -log p(label | pred) per sample, times its weight.
//
// Log-space alpha (forward) and beta (backward) recursions, parallel over the
// batch. A label that cannot fit (length plus the blanks needed between
// repeated symbols exceeds the frames) has loss +inf and gradient exactly 0.
#include "common.h"

namespace gluonx {
namespace {

struct CtcOptions {
  bool ntc, label_nt, has_pred_len, has_label_len, has_sw;
  explicit CtcOptions(const Attrs& a)
      : ntc(attr_flag(a, "layout_ntc")),
        label_nt(attr_flag(a, "label_nt")),
        has_pred_len(attr_flag(a, "has_pred_lengths")),
        has_label_len(attr_flag(a, "has_label_lengths")),
        has_sw(attr_flag(a, "has_sample_weight")) {}
  int num_inputs() const { return 2 + has_pred_len + has_label_len + has_sw; }
  int slot_pred_len() const { return has_pred_len ? 2 : -1; }
  int slot_label_len() const { return has_label_len ? 2 + has_pred_len : -1; }
  int slot_sw() const { return has_sw ? 2 + has_pred_len + has_label_len : -1; }
};

template <typename A> GLUONX_INLINE A log_add(A a, A b) {
  const A m = std::max(a, b);
  if (m == -std::numeric_limits<A>::infinity()) return m;
  return m + std::log1p(std::exp(-std::abs(a - b)));
}

// One sample's view of the inputs.
struct Sample {
  int64_t frames;               // T_n
  std::vector<int64_t> label;   // the used labels (no padding)
  bool feasible;
};

struct CtcShapes {
  int64_t N, T, C, L;
};

inline CtcShapes ctc_shapes(const MXTensor& pred, const MXTensor& label, const CtcOptions& o) {
  CtcShapes s;
  s.N = o.ntc ? pred.shape[0] : pred.shape[1];
  s.T = o.ntc ? pred.shape[1] : pred.shape[0];
  s.C = pred.shape[2];
  s.L = o.label_nt ? label.shape[1] : label.shape[0];
  return s;
}

// Labels of sample n: the first label_lengths[n] entries, or (without
// lengths) as many entries as are not -1; frames from pred_lengths or T.
inline Sample sample_of(int64_t n, const std::vector<MXTensor>& in, const CtcOptions& o,
                        const CtcShapes& s) {
  Sample out;
  const MXTensor& label = in[1];
  auto at = [&](int64_t j) { return load_index(label, o.label_nt ? n * s.L + j : j * s.N + n); };
  int64_t len = 0;
  if (o.has_label_len) {
    len = load_index(in[o.slot_label_len()], n);
  } else {
    for (int64_t j = 0; j < s.L; ++j) len += at(j) != -1;
  }
  len = std::max<int64_t>(0, std::min(len, s.L));
  out.frames = o.has_pred_len ? load_index(in[o.slot_pred_len()], n) : s.T;
  out.frames = std::max<int64_t>(0, std::min(out.frames, s.T));
  out.label.resize(len);
  int64_t repeats = 0;
  for (int64_t j = 0; j < len; ++j) {
    out.label[j] = std::max<int64_t>(0, std::min(at(j), s.C - 1));
    if (j > 0 && out.label[j] == out.label[j - 1]) ++repeats;
  }
  out.feasible = len + repeats <= out.frames;
  return out;
}

// Log-softmax of every frame of sample n into lp[t * C + k].
template <typename T>
void frame_log_softmax(const T* pred, int64_t n, const CtcOptions& o, const CtcShapes& s,
                       int64_t frames, double* lp) {
  using A = double;
  for (int64_t t = 0; t < frames; ++t) {
    const T* x = pred + (o.ntc ? (n * s.T + t) : (t * s.N + n)) * s.C;
    A m = -std::numeric_limits<A>::infinity();
    for (int64_t k = 0; k < s.C; ++k) m = std::max(m, A(load(x, k)));
    A sum = 0;
    for (int64_t k = 0; k < s.C; ++k) sum += std::exp(A(load(x, k)) - m);
    const A lse = m + std::log(sum);
    for (int64_t k = 0; k < s.C; ++k) lp[t * s.C + k] = A(load(x, k)) - lse;
  }
}

// Extended label: blank, l1, blank, l2, ..., blank.
inline int64_t ext(const Sample& smp, int64_t s, int64_t blank) {
  return (s & 1) ? smp.label[s >> 1] : blank;
}

// alpha[t * S + s] for t < frames; returns log p(label).
template <typename A>
A ctc_alpha(const Sample& smp, const A* lp, int64_t C, A* alpha) {
  const A kNegInf = -std::numeric_limits<A>::infinity();
  const int64_t S = 2 * static_cast<int64_t>(smp.label.size()) + 1;
  const int64_t blank = C - 1;
  const int64_t T = smp.frames;
  if (T == 0) return S == 1 ? A(0) : kNegInf;
  for (int64_t s = 0; s < S; ++s) alpha[s] = kNegInf;
  alpha[0] = lp[blank];
  if (S > 1) alpha[1] = lp[ext(smp, 1, blank)];
  for (int64_t t = 1; t < T; ++t) {
    const A* prev = alpha + (t - 1) * S;
    A* cur = alpha + t * S;
    for (int64_t s = 0; s < S; ++s) {
      const int64_t k = ext(smp, s, blank);
      A a = prev[s];
      if (s >= 1) a = log_add(a, prev[s - 1]);
      if (s >= 2 && k != blank && k != ext(smp, s - 2, blank)) a = log_add(a, prev[s - 2]);
      cur[s] = a + lp[t * C + k];
    }
  }
  const A* last = alpha + (T - 1) * S;
  return S > 1 ? log_add(last[S - 1], last[S - 2]) : last[0];
}

// ---- probability space with per-frame rescaling (fast path) --------------
// alpha and beta are kept in linear space, each frame normalised to sum 1,
// in double. Far cheaper than log space (no exp/log per state); if a frame
// underflows to all zeros, the sample is redone in log space.

struct Buffers {
  std::vector<double> y, alpha, beta, occ;
  std::vector<double> lp, lalpha;  // log-space fallback
};

template <typename T>
void frame_softmax(const T* pred, int64_t n, const CtcOptions& o, const CtcShapes& s,
                   int64_t frames, double* y) {
  for (int64_t t = 0; t < frames; ++t) {
    const T* x = pred + (o.ntc ? (n * s.T + t) : (t * s.N + n)) * s.C;
    double m = -std::numeric_limits<double>::infinity();
    for (int64_t k = 0; k < s.C; ++k) m = std::max(m, static_cast<double>(load(x, k)));
    double sum = 0;
    double* yt = y + t * s.C;
    for (int64_t k = 0; k < s.C; ++k) {
      yt[k] = std::exp(static_cast<double>(load(x, k)) - m);
      sum += yt[k];
    }
    const double inv = 1.0 / sum;
    for (int64_t k = 0; k < s.C; ++k) yt[k] *= inv;
  }
}

// Scaled alpha; false when a frame underflows. *logp = log p(label).
inline bool alpha_linear(const Sample& smp, const double* y, int64_t C, double* alpha,
                         double* logp) {
  const int64_t S = 2 * static_cast<int64_t>(smp.label.size()) + 1;
  const int64_t blank = C - 1, T = smp.frames;
  if (T == 0) {
    *logp = S == 1 ? 0.0 : -std::numeric_limits<double>::infinity();
    return true;
  }
  double logsum = 0;
  for (int64_t t = 0; t < T; ++t) {
    double* cur = alpha + t * S;
    const double* yt = y + t * C;
    if (t == 0) {
      for (int64_t q = 0; q < S; ++q) cur[q] = 0;
      cur[0] = yt[blank];
      if (S > 1) cur[1] = yt[ext(smp, 1, blank)];
    } else {
      const double* prev = alpha + (t - 1) * S;
      for (int64_t q = 0; q < S; ++q) {
        const int64_t k = ext(smp, q, blank);
        double a = prev[q];
        if (q >= 1) a += prev[q - 1];
        if (q >= 2 && k != blank && k != ext(smp, q - 2, blank)) a += prev[q - 2];
        cur[q] = a * yt[k];
      }
    }
    double c = 0;
    for (int64_t q = 0; q < S; ++q) c += cur[q];
    if (!(c > 0) || !std::isfinite(c)) return false;
    const double inv = 1.0 / c;
    for (int64_t q = 0; q < S; ++q) cur[q] *= inv;
    logsum += std::log(c);
  }
  const double* last = alpha + (T - 1) * S;
  const double tail = S > 1 ? last[S - 1] + last[S - 2] : last[0];
  if (!(tail > 0)) return false;
  *logp = logsum + std::log(tail);
  return true;
}

// Gradient of one sample into occupancy-based frames; false on underflow.
// grad(t, k) = c * (y_tk - sum_{s: ext(s) = k} gamma_t(s)).
template <typename T, typename G>
bool grad_linear(const Sample& smp, Buffers& b, int64_t C, double c, G&& frame_grad) {
  const int64_t S = 2 * static_cast<int64_t>(smp.label.size()) + 1;
  const int64_t blank = C - 1, frames = smp.frames;
  b.beta.assign(2 * S, 0.0);
  double* bcur = b.beta.data();
  double* bnext = b.beta.data() + S;
  for (int64_t t = frames - 1; t >= 0; --t) {
    if (t == frames - 1) {
      for (int64_t q = 0; q < S; ++q) bcur[q] = q >= S - 2 ? 1.0 : 0.0;
    } else {
      const double* yn = b.y.data() + (t + 1) * C;
      double d = 0;
      for (int64_t q = 0; q < S; ++q) {
        const int64_t k = ext(smp, q, blank);
        double v = bnext[q] * yn[k];
        if (q + 1 < S) v += bnext[q + 1] * yn[ext(smp, q + 1, blank)];
        if (q + 2 < S) {
          const int64_t k2 = ext(smp, q + 2, blank);
          if (k2 != blank && k2 != k) v += bnext[q + 2] * yn[k2];
        }
        bcur[q] = v;
        d += v;
      }
      if (!(d > 0) || !std::isfinite(d)) return false;
      const double inv = 1.0 / d;
      for (int64_t q = 0; q < S; ++q) bcur[q] *= inv;
    }
    const double* at = b.alpha.data() + t * S;
    double total = 0;
    for (int64_t q = 0; q < S; ++q) total += at[q] * bcur[q];
    if (!(total > 0) || !std::isfinite(total)) return false;
    const double inv = 1.0 / total;
    for (int64_t k = 0; k < C; ++k) b.occ[k] = 0;
    for (int64_t q = 0; q < S; ++q) b.occ[ext(smp, q, blank)] += at[q] * bcur[q] * inv;
    T* gr = frame_grad(t);
    const double* yt = b.y.data() + t * C;
    for (int64_t k = 0; k < C; ++k) store(gr, k, static_cast<Acc<T>>(c * (yt[k] - b.occ[k])));
    std::swap(bcur, bnext);
  }
  return true;
}

// ---- log space (fallback) ----------------------------------------------------

template <typename T>
double loss_log(const T* pred, int64_t n, const Sample& smp, const CtcOptions& o,
                const CtcShapes& s, Buffers& b) {
  b.lp.resize(s.T * s.C);
  b.lalpha.resize(s.T * (2 * smp.label.size() + 1));
  frame_log_softmax(pred, n, o, s, smp.frames, b.lp.data());
  return -ctc_alpha(smp, b.lp.data(), s.C, b.lalpha.data());
}

template <typename T, typename G>
void grad_log(const T* pred, int64_t n, const Sample& smp, const CtcOptions& o,
              const CtcShapes& s, Buffers& b, double c, G&& frame_grad) {
  const double kNegInf = -std::numeric_limits<double>::infinity();
  const int64_t S = 2 * static_cast<int64_t>(smp.label.size()) + 1;
  const int64_t blank = s.C - 1;
  const double logz = -loss_log(pred, n, smp, o, s, b);
  const double* lp = b.lp.data();
  const double* alpha = b.lalpha.data();
  b.beta.assign(2 * S, kNegInf);
  double* bcur = b.beta.data();
  double* bnext = b.beta.data() + S;
  for (int64_t t = smp.frames - 1; t >= 0; --t) {
    if (t == smp.frames - 1) {
      for (int64_t q = 0; q < S; ++q) bcur[q] = q >= S - 2 ? 0.0 : kNegInf;
    } else {
      for (int64_t q = 0; q < S; ++q) {
        const int64_t k = ext(smp, q, blank);
        double v = bnext[q] + lp[(t + 1) * s.C + k];
        if (q + 1 < S) v = log_add(v, bnext[q + 1] + lp[(t + 1) * s.C + ext(smp, q + 1, blank)]);
        if (q + 2 < S) {
          const int64_t k2 = ext(smp, q + 2, blank);
          if (k2 != blank && k2 != k) v = log_add(v, bnext[q + 2] + lp[(t + 1) * s.C + k2]);
        }
        bcur[q] = v;
      }
    }
    for (int64_t k = 0; k < s.C; ++k) b.occ[k] = 0;
    for (int64_t q = 0; q < S; ++q) {
      const double v = alpha[t * S + q] + bcur[q] - logz;
      if (v > kNegInf) b.occ[ext(smp, q, blank)] += std::exp(v);
    }
    T* gr = frame_grad(t);
    for (int64_t k = 0; k < s.C; ++k) {
      store(gr, k, static_cast<Acc<T>>(c * (std::exp(lp[t * s.C + k]) - b.occ[k])));
    }
    std::swap(bcur, bnext);
  }
}

// ---- operators ---------------------------------------------------------------

template <typename T>
void ctc_forward(std::vector<MXTensor>& in, const CtcOptions& o, T* out) {
  using A = Acc<T>;
  const CtcShapes s = ctc_shapes(in[0], in[1], o);
  const T* pred = in[0].data<T>();
  std::vector<Buffers> buffers(max_threads());
  const MXTensor* sw = o.has_sw ? &in[o.slot_sw()] : nullptr;
#pragma omp parallel for schedule(dynamic, 1) num_threads(max_threads()) \
    if (s.N * s.T * s.C >= kParallelMinWork / 8)
  for (int64_t n = 0; n < s.N; ++n) {
    const Sample smp = sample_of(n, in, o, s);
    double loss = std::numeric_limits<double>::infinity();
    if (smp.feasible) {
      Buffers& b = buffers[thread_id()];
      b.y.resize(s.T * s.C);
      b.alpha.resize(s.T * (2 * smp.label.size() + 1));
      frame_softmax(pred, n, o, s, smp.frames, b.y.data());
      double logp;
      loss = alpha_linear(smp, b.y.data(), s.C, b.alpha.data(), &logp)
                 ? -logp : loss_log(pred, n, smp, o, s, b);
    }
    A value = static_cast<A>(loss);
    if (sw != nullptr) value *= load(cdata<T>(*sw), sw->size() == 1 ? 0 : n);
    store(out, n, value);
  }
}

template <typename T>
void ctc_backward(std::vector<MXTensor>& in_all, std::vector<MXTensor>& out,
                  const CtcOptions& o) {
  using A = Acc<T>;
  // in_all: ograd, inputs..., output
  std::vector<MXTensor> in(in_all.begin() + 1, in_all.end() - 1);
  const CtcShapes s = ctc_shapes(in[0], in[1], o);
  const T* pred = in[0].data<T>();
  const T* g = in_all[0].data<T>();
  T* dpred = out[0].data<T>();
  for (size_t k = 1; k < out.size(); ++k) zero_tensor(&out[k]);  // labels, lengths
  const MXTensor* sw = o.has_sw ? &in[o.slot_sw()] : nullptr;
  T* dsw = o.has_sw ? out[o.slot_sw()].data<T>() : nullptr;
  const bool sw_scalar = sw != nullptr && sw->size() == 1 && s.N != 1;
  const int threads = max_threads();
  std::vector<A> dsw_total(threads, A(0));
  std::vector<Buffers> buffers(threads);
#pragma omp parallel for schedule(dynamic, 1) num_threads(max_threads()) \
    if (s.N * s.T * s.C >= kParallelMinWork / 8)
  for (int64_t n = 0; n < s.N; ++n) {
    const Sample smp = sample_of(n, in, o, s);
    auto frame_grad = [&](int64_t t) {
      return dpred + (o.ntc ? (n * s.T + t) : (t * s.N + n)) * s.C;
    };
    const A w = sw != nullptr ? load(cdata<T>(*sw), sw->size() == 1 ? 0 : n) : A(1);
    const A gn = load(g, n);
    double loss = std::numeric_limits<double>::infinity();
    int64_t zero_from = 0;  // frames from here on get gradient 0
    if (smp.feasible) {
      Buffers& b = buffers[thread_id()];
      const int64_t S = 2 * static_cast<int64_t>(smp.label.size()) + 1;
      b.y.resize(s.T * s.C);
      b.alpha.resize(s.T * S);
      b.occ.resize(s.C);
      frame_softmax(pred, n, o, s, smp.frames, b.y.data());
      const double c = static_cast<double>(gn) * static_cast<double>(w);
      double logp;
      if (alpha_linear(smp, b.y.data(), s.C, b.alpha.data(), &logp) &&
          grad_linear<T>(smp, b, s.C, c, frame_grad)) {
        loss = -logp;
      } else {
        grad_log<T>(pred, n, smp, o, s, b, c, frame_grad);
        loss = loss_log(pred, n, smp, o, s, b);
      }
      zero_from = smp.frames;
    }
    for (int64_t t = zero_from; t < s.T; ++t) {
      T* gr = frame_grad(t);
      for (int64_t k = 0; k < s.C; ++k) store(gr, k, A(0));
    }
    if (dsw != nullptr) {
      const A v = gn * static_cast<A>(loss);
      if (sw_scalar) dsw_total[thread_id()] += v; else store(dsw, n, v);
    }
  }
  if (sw_scalar) {
    A total = 0;
    for (A v : dsw_total) total += v;
    store(dsw, 0, total);
  }
}

struct CtcOp {
  static constexpr const char* kName = "gluonx_ctc_loss";
  static constexpr int kInputs = 2;
  static constexpr const char* kOptional = "pred_lengths label_lengths sample_weight";
  static constexpr const char* kAttrs = "layout_ntc label_nt";
};

MXReturnValue ctc_shape(const Attrs& attrs, Shapes* in, Shapes* out) {
  const CtcOptions o(attrs);
  if ((*in)[0].size() != 3) return fail("gluonx_ctc_loss", "pred needs 3 axes");
  (*out)[0] = {o.ntc ? (*in)[0][0] : (*in)[0][1]};
  return MX_SUCCESS;
}

bool ctc_ok(const std::vector<MXTensor>& in, const CtcOptions& o) {
  if (in[0].shape.size() != 3 || in[1].shape.size() != 2) return false;
  const CtcShapes s = ctc_shapes(in[0], in[1], o);
  if ((o.label_nt ? in[1].shape[0] : in[1].shape[1]) != s.N || s.C < 1) return false;
  if (o.has_pred_len && in[o.slot_pred_len()].size() != s.N) return false;
  if (o.has_label_len && in[o.slot_label_len()].size() != s.N) return false;
  if (o.has_sw) {
    const MXTensor& w = in[o.slot_sw()];
    if (w.dtype != in[0].dtype || (w.size() != s.N && w.size() != 1)) return false;
  }
  return true;
}

MXReturnValue ctc_fwd(const Attrs& attrs, std::vector<MXTensor>* in,
                      std::vector<MXTensor>* out, const OpResource&) {
  const CtcOptions o(attrs);
  if (!ctc_ok(*in, o)) return fail("gluonx_ctc_loss", "inputs do not fit pred");
  return for_float("gluonx_ctc_loss", (*in)[0].dtype, [&](auto t) {
    using T = decltype(t);
    ctc_forward<T>(*in, o, (*out)[0].data<T>());
  });
}

MXReturnValue ctc_bwd(const Attrs& attrs, std::vector<MXTensor>* in,
                      std::vector<MXTensor>* out, const OpResource&) {
  const CtcOptions o(attrs);
  const std::vector<MXTensor> fin = forward_inputs(*in, o.num_inputs());
  if (fin.empty() || !ctc_ok(fin, o)) return fail("gluonx_ctc_loss", "inputs do not fit pred");
  return for_float("gluonx_ctc_loss", (*in)[1].dtype, [&](auto t) {
    ctc_backward<decltype(t)>(*in, *out, o);
  });
}

struct Registration {
  Registration() { register_op<CtcOp>(ctc_fwd, ctc_bwd, ctc_shape); }
} registration;

}  // namespace
}  // namespace gluonx
