// Multi-class and multi-label hinge losses over a row of C class scores:
//   gluonx_multi_margin_loss       w_y / C sum_{c != y} max(0, margin - x_y + x_c)^p,
//                                  p = 1 or 2 (PyTorch's MultiMarginLoss)
//   gluonx_multilabel_margin_loss  1 / C sum_{j in Y} sum_{i not in Y} max(0, 1 - x_j + x_i),
//                                  Y the entries of a label row before its first
//                                  negative one (PyTorch's MultiLabelMarginLoss)
// pred is (batch, C); labels are class indices of any numeric dtype. A label
// out of range fails the call (forward and backward), it is never read past.
// The multi-label loss works on the listed entries and a per-row mask of the
// listed classes: O(C) memory per thread and O(C |Y|) work per row.
// sample_weight is one value per sample or one for all.
#include "common.h"

namespace gluonx {
namespace {

// The (batch, 1) shape a per-sample weight broadcasts against.
inline std::vector<int64_t> per_sample_shape(const MXTensor& pred) {
  return {pred.shape[0], 1};
}

bool per_sample_weight_fits(const MXTensor& pred, const MXTensor& w) {
  Bcast kind = Bcast::kNone;
  return w.dtype == pred.dtype && classify_bcast(per_sample_shape(pred), w.shape, &kind) &&
         (kind == Bcast::kRow || kind == Bcast::kScalar);
}

// Zero the gradient slots of the inputs that get none (labels, constants).
inline void zero_grads(std::vector<MXTensor>* out, std::initializer_list<int> slots) {
  for (int k : slots) {
    if (k >= 0) zero_tensor(&(*out)[k]);
  }
}

// ======================================================= multi margin ====

struct MultiMarginOp {
  static constexpr const char* kName = "gluonx_multi_margin_loss";
  static constexpr int kInputs = 2;
  static constexpr const char* kOptional = "sample_weight class_weight";
  static constexpr const char* kAttrs = "p margin";
};

// Positions of the optional inputs after pred and label (-1: absent).
struct MarginInputs {
  int sw = -1, cw = -1;
  explicit MarginInputs(const Attrs& a) {
    int next = 2;
    if (attr_flag(a, "has_sample_weight")) sw = next++;
    if (attr_flag(a, "has_class_weight")) cw = next++;
  }
  size_t count() const { return 2 + (sw >= 0) + (cw >= 0); }
};

const char* multi_margin_check(const std::vector<MXTensor>& in, const MarginInputs& at,
                               const Attrs& attrs) {
  if (in.size() < at.count()) return "missing inputs";
  const MXTensor& pred = in[0];
  if (pred.shape.size() != 2 || pred.shape[0] == 0 || pred.shape[1] == 0) {
    return "pred must have shape (batch_size, C)";
  }
  if (in[1].size() != pred.shape[0]) return "label must hold one class index per sample";
  if (at.sw >= 0 && !per_sample_weight_fits(pred, in[at.sw])) {
    return "sample_weight must hold one value per sample, in pred's dtype";
  }
  if (at.cw >= 0 && (in[at.cw].size() != pred.shape[1] || in[at.cw].dtype != pred.dtype)) {
    return "class_weight must hold one value per class, in pred's dtype";
  }
  const double p = attr_double(attrs, "p");
  if (p != 1.0 && p != 2.0) return "p must be 1 or 2";
  if (!std::isfinite(attr_double(attrs, "margin"))) return "margin must be finite";
  const int64_t C = pred.shape[1], N = pred.shape[0];
  for (int64_t i = 0; i < N; ++i) {
    const int64_t y = load_index(in[1], i);
    if (y < 0 || y >= C) return "label holds a class index outside [0, C)";
  }
  return nullptr;
}

// sum_{c != y} max(0, margin - x_y + x_c)^P of one row.
template <int P, typename T>
GLUONX_INLINE Acc<T> multi_margin_row(const T* x, int64_t C, int64_t y, Acc<T> margin) {
  using A = Acc<T>;
  const A base = margin - load(x, y);
  A s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t c = 0; c < C; ++c) {
    const A h = std::max(base + load(x, c), A(0));
    s += c == y ? A(0) : (P == 2 ? h * h : h);
  }
  return s;
}

template <int P, typename T>
void multi_margin_forward(const std::vector<MXTensor>& in, const MarginInputs& at,
                          double margin, T* out) {
  using A = Acc<T>;
  const MXTensor& pred = in[0];
  const int64_t N = pred.shape[0], C = pred.shape[1];
  const Weight<T> sw = make_weight<T>(at.sw >= 0 ? &in[at.sw] : nullptr,
                                      per_sample_shape(pred), 1);
  const T* cw = at.cw >= 0 ? cdata<T>(in[at.cw]) : nullptr;
  const T* x = cdata<T>(pred);
  const A inv_c = A(1) / A(C);
#pragma omp parallel for schedule(static) num_threads(max_threads()) \
    if (pred.size() >= kParallelMinWork)
  for (int64_t i = 0; i < N; ++i) {
    prefetch_next_row(x, i, N, C);
    const int64_t y = load_index(in[1], i);
    A v = multi_margin_row<P>(x + i * C, C, y, A(margin)) * inv_c;
    if (cw != nullptr) v *= load(cw, y);
    store(out, i, v * row_weight(sw, i, 0));
  }
}

template <int P, typename T>
void multi_margin_backward(const std::vector<MXTensor>& in, const MarginInputs& at,
                           double margin_, std::vector<MXTensor>* out) {
  using A = Acc<T>;
  // in: ograd, then the forward inputs (at's positions + 1)
  const MXTensor& pred = in[1];
  const int64_t N = pred.shape[0], C = pred.shape[1];
  const MXTensor* sw_t = at.sw >= 0 ? &in[at.sw + 1] : nullptr;
  const Weight<T> sw = make_weight<T>(sw_t, per_sample_shape(pred), 1);
  WeightGrad<T> dsw;
  if (sw_t != nullptr) dsw.init((*out)[at.sw].data<T>(), sw.kind, N, 1, max_threads());
  const T* cw = at.cw >= 0 ? cdata<T>(in[at.cw + 1]) : nullptr;
  const T *g = cdata<T>(in[0]), *x = cdata<T>(pred);
  T* dx = (*out)[0].data<T>();
  const A margin = A(margin_), inv_c = A(1) / A(C);
  const int64_t total = pred.size();
#pragma omp parallel num_threads(max_threads()) if (total >= kParallelMinWork)
  {
    RowWriter<T> wx(dx, total, C);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < N; ++i) {
      prefetch_next_row(x, i, N, C);
      const T* xi = x + i * C;
      const int64_t y = load_index(in[1 + 1], i);
      const A wy = cw != nullptr ? load(cw, y) : A(1);
      const A gi = load(g, i);
      const A k = gi * row_weight(sw, i, 0) * wy * inv_c;
      const A base = margin - load(xi, y);
      T* gx = wx.row(i * C);
      A sum_d = 0, value = 0;
#pragma omp simd reduction(+ : sum_d, value)
      for (int64_t c = 0; c < C; ++c) {
        const A z = base + load(xi, c);
        const bool on = z > A(0) && c != y;
        const A d = on ? (P == 2 ? A(2) * z * k : k) : A(0);
        value += on ? (P == 2 ? z * z : z) : A(0);
        sum_d += d;
        store(gx, c, d);
      }
      store(gx, y, -sum_d);
      wx.flush(C);
      // d loss_i / d sw_i: per sample, or summed for one weight for all
      if (sw_t != nullptr) finish_weight_row(dsw, i, gi * value * wy * inv_c);
    }
  }
  if (sw_t != nullptr) dsw.finish();
}

template <class F> void with_power(const Attrs& a, F&& f) {
  if (attr_double(a, "p") == 2.0) f(std::integral_constant<int, 2>());
  else f(std::integral_constant<int, 1>());
}

MXReturnValue multi_margin_fwd(const Attrs& attrs, std::vector<MXTensor>* in,
                               std::vector<MXTensor>* out, const OpResource&) {
  const MarginInputs at(attrs);
  if (const char* bad = multi_margin_check(*in, at, attrs)) return fail(MultiMarginOp::kName, bad);
  const double margin = attr_double(attrs, "margin");
  MXReturnValue rc = MX_FAIL;
  with_power(attrs, [&](auto p) {
    rc = for_float(MultiMarginOp::kName, (*in)[0].dtype, [&](auto t) {
      using T = decltype(t);
      multi_margin_forward<decltype(p)::value, T>(*in, at, margin, (*out)[0].data<T>());
    });
  });
  return rc;
}

MXReturnValue multi_margin_bwd(const Attrs& attrs, std::vector<MXTensor>* in,
                               std::vector<MXTensor>* out, const OpResource&) {
  // in: ograd, pred, label, [sw], [cw], output; out: dpred, dlabel, [dsw], [dcw]
  const MarginInputs at(attrs);
  const std::vector<MXTensor> fin = forward_inputs(*in, at.count());
  const char* bad = fin.empty() ? "missing inputs" : multi_margin_check(fin, at, attrs);
  if (bad != nullptr) return fail(MultiMarginOp::kName, bad);
  zero_grads(out, {1, at.cw});  // class indices and class weights get no gradient
  const double margin = attr_double(attrs, "margin");
  MXReturnValue rc = MX_FAIL;
  with_power(attrs, [&](auto p) {
    rc = for_float(MultiMarginOp::kName, (*in)[1].dtype, [&](auto t) {
      using T = decltype(t);
      multi_margin_backward<decltype(p)::value, T>(*in, at, margin, out);
    });
  });
  return rc;
}

// ================================================= multi-label margin ====

struct MultiLabelMarginOp {
  static constexpr const char* kName = "gluonx_multilabel_margin_loss";
  static constexpr int kInputs = 2;
  static constexpr const char* kOptional = "sample_weight";
  static constexpr const char* kAttrs = "";
};

bool multilabel_margin_fits(const std::vector<MXTensor>& in, bool has_sw) {
  if (in.size() < (has_sw ? 3u : 2u)) return false;
  const MXTensor& pred = in[0];
  return pred.shape.size() == 2 && pred.shape[0] != 0 && pred.shape[1] != 0 &&
         in[1].shape == pred.shape && (!has_sw || per_sample_weight_fits(pred, in[2]));
}

// The listed classes of row i: the label entries before the first negative
// one, in `cls` (duplicates kept: each entry is a term of the sum), with
// mask[c] = 0 for every listed class (the caller resets it). False when an
// entry is >= C.
template <typename A>
GLUONX_INLINE bool listed_classes(const MXTensor& label, int64_t i, int64_t C,
                                  std::vector<int64_t>* cls, A* mask) {
  cls->clear();
  for (int64_t j = 0; j < C; ++j) {
    const int64_t t = load_index(label, i * C + j);
    if (t < 0) break;
    if (t >= C) return false;
    cls->push_back(t);
    mask[t] = A(0);
  }
  return true;
}

template <typename A> GLUONX_INLINE void reset_mask(const std::vector<int64_t>& cls, A* mask) {
  for (int64_t t : cls) mask[t] = A(1);
}

// v += sum_{i not listed} max(0, b_t + x_i) for up to four listed classes t
// (b_t = 1 - x_t) in one pass over the row, each class's sum added in turn
// as a pass per class would.
template <int G, typename T>
GLUONX_INLINE void multilabel_terms(const T* x, int64_t C, const Acc<T>* mask, const Acc<T>* b,
                                    Acc<T>* v) {
  using A = Acc<T>;
  const A b0 = b[0], b1 = G > 1 ? b[1] : A(0), b2 = G > 2 ? b[2] : A(0),
          b3 = G > 3 ? b[3] : A(0);
  A s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
  for (int64_t c = 0; c < C; ++c) {
    const A xc = load(x, c), m = mask[c];
    s0 += m * std::max(b0 + xc, A(0));
    if (G > 1) s1 += m * std::max(b1 + xc, A(0));
    if (G > 2) s2 += m * std::max(b2 + xc, A(0));
    if (G > 3) s3 += m * std::max(b3 + xc, A(0));
  }
  *v += s0;
  if (G > 1) *v += s1;
  if (G > 2) *v += s2;
  if (G > 3) *v += s3;
}

// Row i's loss sum over its listed classes `cls`.
template <typename T>
GLUONX_INLINE Acc<T> multilabel_row(const T* xi, int64_t C, const std::vector<int64_t>& cls,
                                    const Acc<T>* mask) {
  using A = Acc<T>;
  const int64_t n = static_cast<int64_t>(cls.size());
  A v = 0, b[4];
  for (int64_t first = 0; first < n; first += 4) {
    const int G = static_cast<int>(std::min<int64_t>(4, n - first));
    for (int g = 0; g < G; ++g) b[g] = A(1) - load(xi, cls[first + g]);
    switch (G) {
      case 1: multilabel_terms<1>(xi, C, mask, b, &v); break;
      case 2: multilabel_terms<2>(xi, C, mask, b, &v); break;
      case 3: multilabel_terms<3>(xi, C, mask, b, &v); break;
      default: multilabel_terms<4>(xi, C, mask, b, &v); break;
    }
  }
  return v;
}

// Returns false when a label is out of range (the output is then unspecified).
template <typename T>
bool multilabel_margin_forward(const std::vector<MXTensor>& in, bool has_sw, T* out) {
  using A = Acc<T>;
  const MXTensor& pred = in[0];
  const int64_t N = pred.shape[0], C = pred.shape[1];
  const Weight<T> sw = make_weight<T>(has_sw ? &in[2] : nullptr, per_sample_shape(pred), 1);
  const T* x = cdata<T>(pred);
  const A inv_c = A(1) / A(C);
  bool ok = true;
#pragma omp parallel num_threads(max_threads()) if (pred.size() >= kParallelMinWork)
  {
    std::vector<A> mask(C, A(1));
    std::vector<int64_t> cls;
    cls.reserve(C);
    bool mine = true;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < N; ++i) {
      prefetch_next_row(x, i, N, C);
      const T* xi = x + i * C;
      A v = 0;
      if (listed_classes(in[1], i, C, &cls, mask.data())) {
        v = multilabel_row(xi, C, cls, mask.data());
      } else {
        mine = false;
      }
      reset_mask(cls, mask.data());
      store(out, i, v * inv_c * row_weight(sw, i, 0));
    }
    if (!mine) {
#pragma omp atomic write
      ok = false;
    }
  }
  return ok;
}

// One pass over a row for up to four listed classes t (bases b = 1 - x_t):
// d[c] (+)= k [c not listed] sum_t [b_t + x_c > 0], the terms added one class
// after another as a pass per class would; count[t] = the classes above
// t's margin, value += their hinge terms (when Value). First: d[c] is
// written, else added to. A pass per class read and rewrote d each time.
template <int G, bool First, bool Value, typename T>
GLUONX_INLINE void multilabel_grad_pass(const T* x, int64_t C, const Acc<T>* mask, Acc<T> k,
                                        const Acc<T>* b, Acc<T>* d, Acc<T>* count,
                                        Acc<T>* value) {
  using A = Acc<T>;
  const A b0 = b[0], b1 = G > 1 ? b[1] : A(0), b2 = G > 2 ? b[2] : A(0),
          b3 = G > 3 ? b[3] : A(0);
  A n0 = 0, n1 = 0, n2 = 0, n3 = 0, s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : n0, n1, n2, n3, s0, s1, s2, s3)
  for (int64_t c = 0; c < C; ++c) {
    const A xc = load(x, c), m = mask[c];
    A dc = First ? A(0) : d[c];
    const A z0 = b0 + xc, o0 = z0 > A(0) ? m : A(0);
    dc += o0 * k;
    n0 += o0;
    if (Value) s0 += o0 * z0;
    if (G > 1) {
      const A z1 = b1 + xc, o1 = z1 > A(0) ? m : A(0);
      dc += o1 * k;
      n1 += o1;
      if (Value) s1 += o1 * z1;
    }
    if (G > 2) {
      const A z2 = b2 + xc, o2 = z2 > A(0) ? m : A(0);
      dc += o2 * k;
      n2 += o2;
      if (Value) s2 += o2 * z2;
    }
    if (G > 3) {
      const A z3 = b3 + xc, o3 = z3 > A(0) ? m : A(0);
      dc += o3 * k;
      n3 += o3;
      if (Value) s3 += o3 * z3;
    }
    d[c] = dc;
  }
  count[0] = n0;
  if (G > 1) count[1] = n1;
  if (G > 2) count[2] = n2;
  if (G > 3) count[3] = n3;
  if (Value) {
    *value += s0;
    if (G > 1) *value += s1;
    if (G > 2) *value += s2;
    if (G > 3) *value += s3;
  }
}

template <bool First, bool Value, typename T>
GLUONX_INLINE void multilabel_grad_group(int G, const T* x, int64_t C, const Acc<T>* mask,
                                         Acc<T> k, const Acc<T>* b, Acc<T>* d, Acc<T>* count,
                                         Acc<T>* value) {
  switch (G) {
    case 1: multilabel_grad_pass<1, First, Value>(x, C, mask, k, b, d, count, value); break;
    case 2: multilabel_grad_pass<2, First, Value>(x, C, mask, k, b, d, count, value); break;
    case 3: multilabel_grad_pass<3, First, Value>(x, C, mask, k, b, d, count, value); break;
    default: multilabel_grad_pass<4, First, Value>(x, C, mask, k, b, d, count, value); break;
  }
}

// Row i's gradient in d (C values) and, when Value, its loss sum in *value.
template <bool Value, typename T>
GLUONX_INLINE void multilabel_row_grad(const T* xi, int64_t C, const std::vector<int64_t>& cls,
                                       const Acc<T>* mask, Acc<T> k, Acc<T>* d, Acc<T>* value) {
  using A = Acc<T>;
  const int64_t n = static_cast<int64_t>(cls.size());
  if (n == 0) {
    std::fill(d, d + C, A(0));
    return;
  }
  A b[4], count[4];
  for (int64_t first = 0; first < n; first += 4) {
    const int G = static_cast<int>(std::min<int64_t>(4, n - first));
    for (int g = 0; g < G; ++g) b[g] = A(1) - load(xi, cls[first + g]);
    if (first == 0) multilabel_grad_group<true, Value>(G, xi, C, mask, k, b, d, count, value);
    else multilabel_grad_group<false, Value>(G, xi, C, mask, k, b, d, count, value);
    // each listed class loses what the classes above its margin gained; no
    // listed class is among those (mask 0), so the passes after this one
    // never add to d[t] and the order of the terms is kept
    for (int g = 0; g < G; ++g) d[cls[first + g]] -= count[g] * k;
  }
}

template <typename T>
bool multilabel_margin_backward(const std::vector<MXTensor>& in, bool has_sw,
                                std::vector<MXTensor>* out) {
  using A = Acc<T>;
  // in: ograd, pred, label, [sw], output; out: dpred, dlabel, [dsw]
  const MXTensor& pred = in[1];
  const int64_t N = pred.shape[0], C = pred.shape[1];
  const MXTensor* sw_t = has_sw ? &in[3] : nullptr;
  const Weight<T> sw = make_weight<T>(sw_t, per_sample_shape(pred), 1);
  WeightGrad<T> dsw;
  if (sw_t != nullptr) dsw.init((*out)[2].data<T>(), sw.kind, N, 1, max_threads());
  const T *g = cdata<T>(in[0]), *x = cdata<T>(pred);
  T* dx = (*out)[0].data<T>();
  const A inv_c = A(1) / A(C);
  const int64_t total = pred.size();
  constexpr bool kInPlace = std::is_same<T, A>::value;  // d is the gradient row itself
  bool ok = true;
#pragma omp parallel num_threads(max_threads()) if (total >= kParallelMinWork)
  {
    std::vector<A> mask(C, A(1)), buffer(kInPlace ? 0 : C);
    std::vector<int64_t> cls;
    cls.reserve(C);
    RowWriter<T> wx(dx, total, C);
    bool mine = true;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < N; ++i) {
      prefetch_next_row(x, i, N, C);
      const T* xi = x + i * C;
      const A gi = load(g, i);
      const A k = gi * row_weight(sw, i, 0) * inv_c;
      T* gx = wx.row(i * C);
      A* d = kInPlace ? reinterpret_cast<A*>(gx) : buffer.data();
      A value = 0;
      if (listed_classes(in[2], i, C, &cls, mask.data())) {
        if (sw_t != nullptr) multilabel_row_grad<true>(xi, C, cls, mask.data(), k, d, &value);
        else multilabel_row_grad<false>(xi, C, cls, mask.data(), k, d, &value);
      } else {
        mine = false;
        std::fill(d, d + C, A(0));
      }
      reset_mask(cls, mask.data());
      if (!kInPlace) {
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) store(gx, c, d[c]);
      }
      wx.flush(C);
      if (sw_t != nullptr) finish_weight_row(dsw, i, gi * value * inv_c);
    }
    if (!mine) {
#pragma omp atomic write
      ok = false;
    }
  }
  if (sw_t != nullptr) dsw.finish();
  return ok;
}

constexpr const char* kMultiLabelFit =
    "pred must be (batch_size, C), label of pred's shape, sample_weight one value per sample";
constexpr const char* kMultiLabelRange =
    "label holds a class index >= C before its row's first -1";

MXReturnValue multilabel_margin_fwd(const Attrs& attrs, std::vector<MXTensor>* in,
                                    std::vector<MXTensor>* out, const OpResource&) {
  const bool has_sw = attr_flag(attrs, "has_sample_weight");
  if (!multilabel_margin_fits(*in, has_sw)) return fail(MultiLabelMarginOp::kName, kMultiLabelFit);
  bool ok = true;
  const MXReturnValue rc = for_float(MultiLabelMarginOp::kName, (*in)[0].dtype, [&](auto t) {
    using T = decltype(t);
    ok = multilabel_margin_forward<T>(*in, has_sw, (*out)[0].data<T>());
  });
  if (rc == MX_SUCCESS && !ok) return fail(MultiLabelMarginOp::kName, kMultiLabelRange);
  return rc;
}

MXReturnValue multilabel_margin_bwd(const Attrs& attrs, std::vector<MXTensor>* in,
                                    std::vector<MXTensor>* out, const OpResource&) {
  const bool has_sw = attr_flag(attrs, "has_sample_weight");
  const std::vector<MXTensor> fin = forward_inputs(*in, has_sw ? 3 : 2);
  if (fin.empty() || !multilabel_margin_fits(fin, has_sw)) {
    return fail(MultiLabelMarginOp::kName, kMultiLabelFit);
  }
  zero_grads(out, {1});  // class indices get no gradient
  bool ok = true;
  const MXReturnValue rc = for_float(MultiLabelMarginOp::kName, (*in)[1].dtype, [&](auto t) {
    using T = decltype(t);
    ok = multilabel_margin_backward<T>(*in, has_sw, out);
  });
  if (rc == MX_SUCCESS && !ok) return fail(MultiLabelMarginOp::kName, kMultiLabelRange);
  return rc;
}

struct Registration {
  Registration() {
    register_op<MultiMarginOp>(multi_margin_fwd, multi_margin_bwd);
    register_op<MultiLabelMarginOp>(multilabel_margin_fwd, multilabel_margin_bwd);
  }
} registration;

}  // namespace
}  // namespace gluonx
