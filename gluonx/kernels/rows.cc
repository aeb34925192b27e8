// Losses that reduce a row (the last axis) or a whole sample:
//   gluonx_categorical_hinge_loss  relu(max_k (1 - y_k) x_k - sum_k y_k x_k + margin)
//                                  per row of classes (Keras' categorical hinge)
//   gluonx_overlap_loss            1 - mean_c (a I_c + s) / (b I_c + c P_c + d Y_c + s + eps)
//                                  per sample: Dice and Tversky, binary (every
//                                  non-batch element) or classes along the last axis
//   gluonx_triplet_margin_loss     relu(|a - p + eps|_q - |a - n + eps|_q + margin) per
//                                  row (PyTorch's triplet margin loss, with swap)
// One pass over the inputs forward; backward recomputes the row's (sample's)
// reductions and writes each gradient once. OpenMP runs over samples.
#include "common.h"

#include <type_traits>

namespace gluonx {
namespace {

// ================================================== categorical hinge ====

struct CategoricalHingeOp {
  static constexpr const char* kName = "gluonx_categorical_hinge_loss";
  static constexpr int kInputs = 2;
  static constexpr const char* kOptional = "sample_weight";
  static constexpr const char* kAttrs = "margin";
};

// sum_k y_k x_k and max_k (1 - y_k) x_k of one row.
template <typename T>
GLUONX_INLINE void hinge_row(const T* x, const T* y, int64_t K, Acc<T>* pos, Acc<T>* neg) {
  using A = Acc<T>;
  A s = 0, m = -std::numeric_limits<A>::infinity();
#pragma omp simd reduction(+ : s) reduction(max : m)
  for (int64_t k = 0; k < K; ++k) {
    const A xk = load(x, k), yk = load(y, k);
    s += yk * xk;
    m = std::max(m, (A(1) - yk) * xk);
  }
  *pos = s;
  *neg = m;
}

template <typename T>
void hinge_forward(const MXTensor& pred, const MXTensor& label, const MXTensor* sw_t,
                   double margin, T* out) {
  using A = Acc<T>;
  const RowLayout lay = row_layout(pred);
  const int64_t K = lay.row, R = lay.positions, rows = lay.batch * R;
  const Weight<T> sw = make_weight<T>(sw_t, lay.loss_shape, R);
  const T *x = cdata<T>(pred), *y = cdata<T>(label);
#pragma omp parallel for schedule(static) num_threads(max_threads()) \
    if (pred.size() >= kParallelMinWork)
  for (int64_t i = 0; i < lay.batch; ++i) {
    A total = 0;
    for (int64_t r = 0; r < R; ++r) {
      const int64_t row = i * R + r;
      prefetch_next_row(x, row, rows, K);
      prefetch_next_row(y, row, rows, K);
      A pos, neg;
      hinge_row(x + row * K, y + row * K, K, &pos, &neg);
      total += std::max(neg - pos + A(margin), A(0)) * row_weight(sw, i, r);
    }
    store(out, i, total / A(R));
  }
}

template <typename T>
void hinge_backward(const T* ograd, const MXTensor& pred, const MXTensor& label,
                    const MXTensor* sw_t, double margin, T* dpred, T* dlabel, T* dsw_ptr) {
  using A = Acc<T>;
  const RowLayout lay = row_layout(pred);
  const int64_t K = lay.row, R = lay.positions, rows = lay.batch * R;
  const Weight<T> sw = make_weight<T>(sw_t, lay.loss_shape, R);
  WeightGrad<T> dsw;
  if (sw_t != nullptr) dsw.init(dsw_ptr, sw.kind, lay.batch, R, max_threads());
  const T *x = cdata<T>(pred), *y = cdata<T>(label);
  const int64_t total = pred.size();
#pragma omp parallel num_threads(max_threads()) if (total >= kParallelMinWork)
  {
    RowWriter<T> wp(dpred, total, K), wl(dlabel, total, K);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < lay.batch; ++i) {
      const A gi = load(ograd, i) / A(R);
      A fsum = 0;
      for (int64_t r = 0; r < R; ++r) {
        const int64_t row = i * R + r;
        const T *xr = x + row * K, *yr = y + row * K;
        prefetch_next_row(x, row, rows, K);
        prefetch_next_row(y, row, rows, K);
        A pos, neg;
        hinge_row(xr, yr, K, &pos, &neg);
        const A z = neg - pos + A(margin);
        const A c = z > A(0) ? gi * row_weight(sw, i, r) : A(0);
        T *gp = wp.row(row * K), *gl = wl.row(row * K);
        // every class at the maximum gets its full gradient (as MXNet's max)
#pragma omp simd
        for (int64_t k = 0; k < K; ++k) {
          const A xk = load(xr, k), yk = load(yr, k), nk = A(1) - yk;
          const bool top = nk * xk == neg;
          store(gp, k, c * ((top ? nk : A(0)) - yk));
          store(gl, k, c * ((top ? -xk : A(0)) - xk));
        }
        wp.flush(K);
        wl.flush(K);
        if (sw_t != nullptr) add_row_weight_grad(dsw, row, r, gi * std::max(z, A(0)), fsum);
      }
      if (sw_t != nullptr) finish_weight_row(dsw, i, fsum);
    }
  }
  if (sw_t != nullptr) dsw.finish();
}

// The inputs from `first` on (forward: 0; backward: 1, after the head
// gradient) fit each other. Checked in both passes: a backward can run
// after its forward failed.
bool hinge_ok(const std::vector<MXTensor>& in, size_t first, bool has_sw) {
  if (in.size() < first + (has_sw ? 3 : 2)) return false;
  const MXTensor& pred = in[first];
  return pred.shape.size() >= 2 && in[first + 1].size() == pred.size() &&
         in[first + 1].dtype == pred.dtype && (!has_sw || row_weight_fits(pred, in[first + 2]));
}

MXReturnValue hinge_fwd(const Attrs& attrs, std::vector<MXTensor>* in,
                        std::vector<MXTensor>* out, const OpResource&) {
  const bool has_sw = attr_flag(attrs, "has_sample_weight");
  const MXTensor& pred = (*in)[0];
  if (!hinge_ok(*in, 0, has_sw)) {
    return fail(CategoricalHingeOp::kName, "label or sample_weight does not fit pred");
  }
  const double margin = attr_double(attrs, "margin");
  return for_float(CategoricalHingeOp::kName, pred.dtype, [&](auto t) {
    using T = decltype(t);
    hinge_forward<T>(pred, (*in)[1], has_sw ? &(*in)[2] : nullptr, margin, (*out)[0].data<T>());
  });
}

MXReturnValue hinge_bwd(const Attrs& attrs, std::vector<MXTensor>* in,
                        std::vector<MXTensor>* out, const OpResource&) {
  // in: ograd, pred, label, [sw], output; out: dpred, dlabel, [dsw]
  const bool has_sw = attr_flag(attrs, "has_sample_weight");
  if (!hinge_ok(*in, 1, has_sw)) {
    return fail(CategoricalHingeOp::kName, "label or sample_weight does not fit pred");
  }
  const double margin = attr_double(attrs, "margin");
  return for_float(CategoricalHingeOp::kName, (*in)[1].dtype, [&](auto t) {
    using T = decltype(t);
    hinge_backward<T>((*in)[0].data<T>(), (*in)[1], (*in)[2], has_sw ? &(*in)[3] : nullptr,
                      margin, (*out)[0].data<T>(), (*out)[1].data<T>(),
                      has_sw ? (*out)[2].data<T>() : nullptr);
  });
}

// ======================================================== Dice/Tversky ====
// Per sample and class c: I = sum p y, P = sum p, Y = sum y over the
// sample's elements, ratio_c = (a I + s) / (b I + c P + d Y + (s + eps)),
// loss = 1 - mean_c ratio_c. Dice is (a, b, c, d) = (2, 0, 1, 1), Tversky
// (1, 1 - alpha - beta, alpha, beta). `multiclass`: classes along `axis`
// (softmax over it from logits; sparse labels hold one class index per
// position); otherwise one binary mask per sample (sigmoid from logits).
// Classes along the last axis are rows of C values; along another axis a
// sample is `pre` blocks of (C, inner) values, reduced along inner.

struct OverlapOp {
  static constexpr const char* kName = "gluonx_overlap_loss";
  static constexpr int kInputs = 2;
  static constexpr const char* kOptional = "sample_weight";
  static constexpr const char* kAttrs =
      "inter_num inter_den pred_den label_den smooth epsilon from_logits multiclass axis "
      "sparse_label";
};

struct OverlapAttrs {
  double inter_num, inter_den, pred_den, label_den, smooth, epsilon;
  bool from_logits, multiclass, sparse;
  int axis;
  explicit OverlapAttrs(const Attrs& a)
      : inter_num(attr_double(a, "inter_num")), inter_den(attr_double(a, "inter_den")),
        pred_den(attr_double(a, "pred_den")), label_den(attr_double(a, "label_den")),
        smooth(attr_double(a, "smooth")), epsilon(attr_double(a, "epsilon")),
        from_logits(attr_flag(a, "from_logits")), multiclass(attr_flag(a, "multiclass")),
        sparse(attr_flag(a, "sparse_label")), axis(static_cast<int>(attr_double(a, "axis"))) {}
  template <typename A> A ratio(A I, A P, A Y) const {
    return (A(inter_num) * I + A(smooth)) /
           (A(inter_den) * I + A(pred_den) * P + A(label_den) * Y + A(smooth + epsilon));
  }
  // d ratio / dI, dP, dY
  template <typename A> void slopes(A I, A P, A Y, A* dI, A* dP, A* dY) const {
    const A num = A(inter_num) * I + A(smooth);
    const A den = A(inter_den) * I + A(pred_den) * P + A(label_den) * Y + A(smooth + epsilon);
    const A q = num / (den * den);
    *dI = A(inter_num) / den - A(inter_den) * q;
    *dP = -A(pred_den) * q;
    *dY = -A(label_den) * q;
  }
};

// Probabilities of one row of C scores: softmax from logits, else a copy.
template <typename T>
GLUONX_INLINE void row_probs(const T* x, int64_t C, bool logits, Acc<T>* p) {
  using A = Acc<T>;
  if (!logits) {
#pragma omp simd
    for (int64_t k = 0; k < C; ++k) p[k] = load(x, k);
    return;
  }
  A m = -std::numeric_limits<A>::infinity();
#pragma omp simd reduction(max : m)
  for (int64_t k = 0; k < C; ++k) m = std::max(m, load(x, k));
  A s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t k = 0; k < C; ++k) {
    const A e = exp_nonpos(load(x, k) - m);
    p[k] = e;
    s += e;
  }
  const A inv = A(1) / s;
#pragma omp simd
  for (int64_t k = 0; k < C; ++k) p[k] *= inv;
}

// Binary: the three sums over one sample's n elements.
template <bool Logits, typename T>
GLUONX_INLINE void binary_sums(const T* x, const T* y, int64_t n, Acc<T>* I, Acc<T>* P,
                               Acc<T>* Y) {
  using A = Acc<T>;
  A si = 0, sp = 0, sy = 0;
#pragma omp simd reduction(+ : si, sp, sy)
  for (int64_t j = 0; j < n; ++j) {
    const A p = Logits ? sigmoid(load(x, j)) : load(x, j), l = load(y, j);
    si += p * l;
    sp += p;
    sy += l;
  }
  *I = si;
  *P = sp;
  *Y = sy;
}

// Multi-class: per-class sums of one sample (R rows of C) into I, P, Y.
template <typename T>
void class_sums(const T* x, const T* y, const MXTensor& label, int64_t i, int64_t R, int64_t C,
                const OverlapAttrs& o, Acc<T>* p, Acc<T>* I, Acc<T>* P, Acc<T>* Y) {
  using A = Acc<T>;
  for (int64_t k = 0; k < C; ++k) I[k] = P[k] = Y[k] = A(0);
  for (int64_t r = 0; r < R; ++r) {
    const int64_t row = i * R + r;
    row_probs(x + row * C, C, o.from_logits, p);
    if (o.sparse) {
      const int64_t c = load_index(label, row);
#pragma omp simd
      for (int64_t k = 0; k < C; ++k) P[k] += p[k];
      if (c >= 0 && c < C) {  // any other index marks no class (as the stock mask)
        I[c] += p[c];
        Y[c] += A(1);
      }
    } else {
      const T* yr = y + row * C;
#pragma omp simd
      for (int64_t k = 0; k < C; ++k) {
        const A l = load(yr, k);
        I[k] += p[k] * l;
        P[k] += p[k];
        Y[k] += l;
      }
    }
  }
}

// Classes along a middle axis: pred is (batch, pre, C, inner).
struct ChannelLayout {
  int64_t pre, C, inner;
};

inline ChannelLayout channel_layout(const MXTensor& pred, int axis) {
  ChannelLayout out{1, pred.shape[axis], 1};
  for (int d = 1; d < axis; ++d) out.pre *= pred.shape[d];
  for (size_t d = axis + 1; d < pred.shape.size(); ++d) out.inner *= pred.shape[d];
  return out;
}

// Per-thread scratch of the channel layout.
template <typename A> struct ChannelScratch {
  std::vector<A> m, inv, dot, sums;   // inner, inner, inner, 6 C
  std::vector<int64_t> cls;           // inner
  ChannelScratch(int64_t C, int64_t inner)
      : m(inner), inv(inner), dot(inner), sums(6 * C), cls(inner) {}
};

// One block of (C, inner) values: the softmax statistics of each position
// (from logits) and the class index of each position (sparse labels).
template <typename T>
void channel_block_prep(const T* xb, const MXTensor& label, int64_t lbase, const ChannelLayout& L,
                        const OverlapAttrs& o, ChannelScratch<Acc<T>>& s) {
  using A = Acc<T>;
  const int64_t C = L.C, n = L.inner;
  if (o.from_logits) {
    A *m = s.m.data(), *inv = s.inv.data();
    for (int64_t j = 0; j < n; ++j) {
      m[j] = -std::numeric_limits<A>::infinity();
      inv[j] = A(0);
    }
    for (int64_t c = 0; c < C; ++c) {
      const T* xc = xb + c * n;
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) m[j] = std::max(m[j], load(xc, j));
    }
    for (int64_t c = 0; c < C; ++c) {
      const T* xc = xb + c * n;
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) inv[j] += exp_nonpos(load(xc, j) - m[j]);
    }
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) inv[j] = A(1) / inv[j];
  }
  if (o.sparse) {
    for (int64_t j = 0; j < n; ++j) s.cls[j] = load_index(label, lbase + j);
  }
}

template <typename T>
GLUONX_INLINE Acc<T> channel_prob(const T* xc, int64_t j, bool logits,
                                  const ChannelScratch<Acc<T>>& s) {
  return logits ? exp_nonpos(load(xc, j) - s.m[j]) * s.inv[j] : load(xc, j);
}

// Per-class sums of one sample into I, P, Y (s.sums[0 .. 3C)).
template <typename T>
void channel_sums(const T* x, const T* y, const MXTensor& label, int64_t i, const ChannelLayout& L,
                  const OverlapAttrs& o, ChannelScratch<Acc<T>>& s) {
  using A = Acc<T>;
  const int64_t C = L.C, n = L.inner;
  A *I = s.sums.data(), *P = I + C, *Y = I + 2 * C;
  for (int64_t c = 0; c < C; ++c) I[c] = P[c] = Y[c] = A(0);
  for (int64_t b = 0; b < L.pre; ++b) {
    const int64_t block = i * L.pre + b;
    const T* xb = x + block * C * n;
    channel_block_prep(xb, label, block * n, L, o, s);
    for (int64_t c = 0; c < C; ++c) {
      const T* xc = xb + c * n;
      const T* yc = o.sparse ? nullptr : y + block * C * n + c * n;
      const int64_t* cls = s.cls.data();
      A si = 0, sp = 0, sy = 0;
#pragma omp simd reduction(+ : si, sp, sy)
      for (int64_t j = 0; j < n; ++j) {
        const A p = channel_prob(xc, j, o.from_logits, s);
        const A l = o.sparse ? (cls[j] == c ? A(1) : A(0)) : load(yc, j);
        si += p * l;
        sp += p;
        sy += l;
      }
      I[c] += si;
      P[c] += sp;
      Y[c] += sy;
    }
  }
}

template <typename T>
void channel_forward(const MXTensor& pred, const MXTensor& label, const SampleWeight<T>& sw,
                     const OverlapAttrs& o, int axis, T* out) {
  using A = Acc<T>;
  const ChannelLayout L = channel_layout(pred, axis);
  const T* x = cdata<T>(pred);
  const T* y = o.sparse ? nullptr : cdata<T>(label);
  std::vector<ChannelScratch<A>> scratch(max_threads(), ChannelScratch<A>(L.C, L.inner));
  const int64_t batch = pred.shape[0];
#pragma omp parallel for schedule(static) num_threads(max_threads()) \
    if (pred.size() >= kParallelMinWork)
  for (int64_t i = 0; i < batch; ++i) {
    ChannelScratch<A>& s = scratch[thread_id()];
    channel_sums(x, y, label, i, L, o, s);
    const A *I = s.sums.data(), *P = I + L.C, *Y = I + 2 * L.C;
    A total = 0;
    for (int64_t c = 0; c < L.C; ++c) total += o.ratio(I[c], P[c], Y[c]);
    store(out, i, (A(1) - total / A(L.C)) * sw.at(i));
  }
}

template <typename T>
void channel_backward(const T* ograd, const MXTensor& pred, const MXTensor& label,
                      const SampleWeight<T>& sw, SampleWeightGrad<T>& dsw, const OverlapAttrs& o,
                      int axis, T* dpred, T* dl) {
  using A = Acc<T>;
  const ChannelLayout L = channel_layout(pred, axis);
  const int64_t C = L.C, n = L.inner, batch = pred.shape[0], total = pred.size();
  const T* x = cdata<T>(pred);
  const T* y = o.sparse ? nullptr : cdata<T>(label);
  const int threads = max_threads();
  std::vector<ChannelScratch<A>> scratch(threads, ChannelScratch<A>(C, n));
#pragma omp parallel num_threads(threads) if (total >= kParallelMinWork)
  {
    RowWriter<T> wp(dpred, total, n), wl(dl, o.sparse ? 0 : total, n);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < batch; ++i) {
      ChannelScratch<A>& s = scratch[thread_id()];
      channel_sums(x, y, label, i, L, o, s);
      A *I = s.sums.data(), *P = I + C, *Y = I + 2 * C;
      A *cI = I + 3 * C, *cP = I + 4 * C, *cY = I + 5 * C;
      const A gi = load(ograd, i), k = -gi * sw.at(i) / A(C);
      A ratios = 0;
      for (int64_t c = 0; c < C; ++c) {
        ratios += o.ratio(I[c], P[c], Y[c]);
        o.slopes(I[c], P[c], Y[c], &cI[c], &cP[c], &cY[c]);
        cI[c] *= k;
        cP[c] *= k;
        cY[c] *= k;
      }
      const int64_t* cls = s.cls.data();
      for (int64_t b = 0; b < L.pre; ++b) {
        const int64_t block = i * L.pre + b, base = block * C * n;
        const T* xb = x + base;
        channel_block_prep(xb, label, block * n, L, o, s);
        A* dot = s.dot.data();
        if (o.from_logits) {  // sum_c g_c p_c per position, for the softmax
          for (int64_t j = 0; j < n; ++j) dot[j] = A(0);
          for (int64_t c = 0; c < C; ++c) {
            const T* xc = xb + c * n;
            const T* yc = o.sparse ? nullptr : y + base + c * n;
#pragma omp simd
            for (int64_t j = 0; j < n; ++j) {
              const A l = o.sparse ? (cls[j] == c ? A(1) : A(0)) : load(yc, j);
              dot[j] += (cI[c] * l + cP[c]) * channel_prob(xc, j, true, s);
            }
          }
        }
        for (int64_t c = 0; c < C; ++c) {
          const T* xc = xb + c * n;
          const T* yc = o.sparse ? nullptr : y + base + c * n;
          T* gp = wp.row(base + c * n);
          T* gl = o.sparse ? nullptr : wl.row(base + c * n);
          const A ci = cI[c], cp = cP[c], cy = cY[c];
#pragma omp simd
          for (int64_t j = 0; j < n; ++j) {
            const A p = channel_prob(xc, j, o.from_logits, s);
            const A l = o.sparse ? (cls[j] == c ? A(1) : A(0)) : load(yc, j);
            const A g = ci * l + cp;
            store(gp, j, o.from_logits ? p * (g - dot[j]) : g);
            if (!o.sparse) store(gl, j, ci * p + cy);
          }
          wp.flush(n);
          if (!o.sparse) wl.flush(n);
        }
      }
      dsw.add(i, gi * (A(1) - ratios / A(C)));
    }
  }
}

template <typename T>
void overlap_forward(const MXTensor& pred, const MXTensor& label, const MXTensor* sw_t,
                     const OverlapAttrs& o, T* out) {
  using A = Acc<T>;
  const int64_t batch = pred.shape[0], n = pred.size() / batch;
  const SampleWeight<T> sw(sw_t, batch);
  const T* x = cdata<T>(pred);
  const T* y = o.sparse ? nullptr : cdata<T>(label);
  if (!o.multiclass) {
#pragma omp parallel for schedule(static) num_threads(max_threads()) \
    if (pred.size() >= kParallelMinWork)
    for (int64_t i = 0; i < batch; ++i) {
      A I, P, Y;
      if (o.from_logits) binary_sums<true>(x + i * n, y + i * n, n, &I, &P, &Y);
      else binary_sums<false>(x + i * n, y + i * n, n, &I, &P, &Y);
      store(out, i, (A(1) - o.ratio(I, P, Y)) * sw.at(i));
    }
    return;
  }
  const int axis = o.axis < 0 ? o.axis + static_cast<int>(pred.shape.size()) : o.axis;
  if (axis != static_cast<int>(pred.shape.size()) - 1) {
    channel_forward<T>(pred, label, sw, o, axis, out);
    return;
  }
  const RowLayout lay = row_layout(pred);
  const int64_t C = lay.row, R = lay.positions;
  std::vector<std::vector<A>> scratch(max_threads(), std::vector<A>(4 * C));
#pragma omp parallel for schedule(static) num_threads(max_threads()) \
    if (pred.size() >= kParallelMinWork)
  for (int64_t i = 0; i < batch; ++i) {
    A* s = scratch[thread_id()].data();
    A *p = s, *I = s + C, *P = s + 2 * C, *Y = s + 3 * C;
    class_sums(x, y, label, i, R, C, o, p, I, P, Y);
    A total = 0;
    for (int64_t k = 0; k < C; ++k) total += o.ratio(I[k], P[k], Y[k]);
    store(out, i, (A(1) - total / A(C)) * sw.at(i));
  }
}

template <typename T>
void overlap_backward(const T* ograd, const MXTensor& pred, const MXTensor& label,
                      const MXTensor* sw_t, const OverlapAttrs& o, T* dpred, MXTensor& dlabel,
                      T* dsw_ptr) {
  using A = Acc<T>;
  const int64_t batch = pred.shape[0], n = pred.size() / batch;
  const SampleWeight<T> sw(sw_t, batch);
  const int threads = max_threads();
  SampleWeightGrad<T> dsw(dsw_ptr, sw, threads);
  const T* x = cdata<T>(pred);
  const T* y = o.sparse ? nullptr : cdata<T>(label);
  T* dl = o.sparse ? nullptr : dlabel.data<T>();
  if (o.sparse) zero_tensor(&dlabel);  // class indices get no gradient
  const int64_t total = pred.size();
  if (!o.multiclass) {
#pragma omp parallel num_threads(threads) if (total >= kParallelMinWork)
    {
      RowWriter<T> wp(dpred, total, n), wl(dl, total, n);
#pragma omp for schedule(static)
      for (int64_t i = 0; i < batch; ++i) {
        const T *xi = x + i * n, *yi = y + i * n;
        A I, P, Y, dI, dP, dY;
        if (o.from_logits) binary_sums<true>(xi, yi, n, &I, &P, &Y);
        else binary_sums<false>(xi, yi, n, &I, &P, &Y);
        o.slopes(I, P, Y, &dI, &dP, &dY);
        const A gi = load(ograd, i), c = -gi * sw.at(i);
        const A cI = c * dI, cP = c * dP, cY = c * dY;
        T *gp = wp.row(i * n), *gl = wl.row(i * n);
        if (o.from_logits) {
#pragma omp simd
          for (int64_t j = 0; j < n; ++j) {
            const A p = sigmoid(load(xi, j)), l = load(yi, j);
            store(gp, j, (cI * l + cP) * (p * (A(1) - p)));
            store(gl, j, cI * p + cY);
          }
        } else {
#pragma omp simd
          for (int64_t j = 0; j < n; ++j) {
            const A p = load(xi, j), l = load(yi, j);
            store(gp, j, cI * l + cP);
            store(gl, j, cI * p + cY);
          }
        }
        wp.flush(n);
        wl.flush(n);
        dsw.add(i, gi * (A(1) - o.ratio(I, P, Y)));
      }
    }
    dsw.finish();
    return;
  }
  const int axis = o.axis < 0 ? o.axis + static_cast<int>(pred.shape.size()) : o.axis;
  if (axis != static_cast<int>(pred.shape.size()) - 1) {
    channel_backward<T>(ograd, pred, label, sw, dsw, o, axis, dpred, dl);
    dsw.finish();
    return;
  }
  const RowLayout lay = row_layout(pred);
  const int64_t C = lay.row, R = lay.positions;
  std::vector<std::vector<A>> scratch(threads, std::vector<A>(8 * C));
#pragma omp parallel num_threads(threads) if (total >= kParallelMinWork)
  {
    RowWriter<T> wp(dpred, total, C), wl(dl, o.sparse ? 0 : total, C);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < batch; ++i) {
      A* s = scratch[thread_id()].data();
      A *p = s, *I = s + C, *P = s + 2 * C, *Y = s + 3 * C;
      A *cI = s + 4 * C, *cP = s + 5 * C, *cY = s + 6 * C, *g = s + 7 * C;
      class_sums(x, y, label, i, R, C, o, p, I, P, Y);
      const A gi = load(ograd, i), c = -gi * sw.at(i) / A(C);
      A ratios = 0;
      for (int64_t k = 0; k < C; ++k) {
        ratios += o.ratio(I[k], P[k], Y[k]);
        o.slopes(I[k], P[k], Y[k], &cI[k], &cP[k], &cY[k]);
        cI[k] *= c;
        cP[k] *= c;
        cY[k] *= c;
      }
      for (int64_t r = 0; r < R; ++r) {
        const int64_t row = i * R + r;
        row_probs(x + row * C, C, o.from_logits, p);
        T* gp = wp.row(row * C);
        if (o.sparse) {
          const int64_t t = load_index(label, row);
#pragma omp simd
          for (int64_t k = 0; k < C; ++k) g[k] = cP[k];
          if (t >= 0 && t < C) g[t] += cI[t];
        } else {
          const T* yr = y + row * C;
          T* gl = wl.row(row * C);
#pragma omp simd
          for (int64_t k = 0; k < C; ++k) {
            g[k] = cI[k] * load(yr, k) + cP[k];
            store(gl, k, cI[k] * p[k] + cY[k]);
          }
          wl.flush(C);
        }
        if (o.from_logits) {  // through the softmax: p_k (g_k - sum_j g_j p_j)
          A dot = 0;
#pragma omp simd reduction(+ : dot)
          for (int64_t k = 0; k < C; ++k) dot += g[k] * p[k];
#pragma omp simd
          for (int64_t k = 0; k < C; ++k) store(gp, k, p[k] * (g[k] - dot));
        } else {
#pragma omp simd
          for (int64_t k = 0; k < C; ++k) store(gp, k, g[k]);
        }
        wp.flush(C);
      }
      dsw.add(i, gi * (A(1) - ratios / A(C)));
    }
  }
  dsw.finish();
}

bool overlap_ok(const std::vector<MXTensor>& all, size_t first, const OverlapAttrs& o,
                bool has_sw) {
  if (all.size() < first + (has_sw ? 3 : 2)) return false;
  const MXTensor* in = all.data() + first;
  const MXTensor& pred = in[0];
  if (pred.shape.empty() || pred.shape[0] == 0) return false;
  const int ndim = static_cast<int>(pred.shape.size());
  const int axis = o.axis < 0 ? o.axis + ndim : o.axis;
  if (o.multiclass && (ndim < 2 || axis < 1 || axis >= ndim)) return false;
  if (o.sparse) {
    if (!o.multiclass || in[1].size() != pred.size() / pred.shape[axis]) return false;
  } else if (in[1].size() != pred.size() || in[1].dtype != pred.dtype) {
    return false;
  }
  return !has_sw || sample_weight_fits(pred, in[2]);
}

MXReturnValue overlap_fwd(const Attrs& attrs, std::vector<MXTensor>* in,
                          std::vector<MXTensor>* out, const OpResource&) {
  const bool has_sw = attr_flag(attrs, "has_sample_weight");
  const OverlapAttrs o(attrs);
  if (!overlap_ok(*in, 0, o, has_sw)) {
    return fail(OverlapOp::kName, "label or sample_weight does not fit pred");
  }
  return for_float(OverlapOp::kName, (*in)[0].dtype, [&](auto t) {
    using T = decltype(t);
    overlap_forward<T>((*in)[0], (*in)[1], has_sw ? &(*in)[2] : nullptr, o, (*out)[0].data<T>());
  });
}

MXReturnValue overlap_bwd(const Attrs& attrs, std::vector<MXTensor>* in,
                          std::vector<MXTensor>* out, const OpResource&) {
  const bool has_sw = attr_flag(attrs, "has_sample_weight");
  const OverlapAttrs o(attrs);
  if (!overlap_ok(*in, 1, o, has_sw)) {
    return fail(OverlapOp::kName, "label or sample_weight does not fit pred");
  }
  return for_float(OverlapOp::kName, (*in)[1].dtype, [&](auto t) {
    using T = decltype(t);
    overlap_backward<T>((*in)[0].data<T>(), (*in)[1], (*in)[2], has_sw ? &(*in)[3] : nullptr, o,
                        (*out)[0].data<T>(), (*out)[1], has_sw ? (*out)[2].data<T>() : nullptr);
  });
}

// ===================================================== triplet margin ====
// d(u, v) = |u - v + eps|_q along the last axis (q = 2, 1, or any q > 0);
// with swap the negative distance is min(d(a, n), d(p, n)) (ties: d(a, n)).

struct TripletMarginOp {
  static constexpr const char* kName = "gluonx_triplet_margin_loss";
  static constexpr int kInputs = 3;
  static constexpr const char* kOptional = "sample_weight";
  static constexpr const char* kAttrs = "margin p eps swap";
};

enum Norm { kL2 = 2, kL1 = 1, kLq = 0 };

template <int N, typename A> GLUONX_INLINE A norm_term(A d, A q) {
  return N == kL2 ? d * d : (N == kL1 ? std::abs(d) : std::pow(std::abs(d), q));
}

template <int N, typename A> GLUONX_INLINE A norm_root(A s, A q) {
  return N == kL2 ? std::sqrt(s) : (N == kL1 ? s : std::pow(s, A(1) / q));
}

// d dist / d diff = norm_slope(diff, k) with k = norm_scale(sum, dist) (times
// the loss's coefficient): diff / dist, sign(diff), or
// sign(diff) |diff|^(q-1) sum^(1/q-1) (the stock operators' chain rule).
template <int N, typename A> GLUONX_INLINE A norm_scale(A s, A dist, A q) {
  return N == kL2 ? A(1) / dist : (N == kL1 ? A(1) : std::pow(s, A(1) / q - A(1)));
}

template <int N, typename A> GLUONX_INLINE A norm_slope(A d, A k, A q) {
  return N == kL2 ? d * k
                  : (N == kL1 ? sign_of(d) * k
                              : sign_of(d) * std::pow(std::abs(d), q - A(1)) * k);
}

template <typename A> struct TripletSums { A ap, an, pn; };

template <int N, bool Swap, typename T>
GLUONX_INLINE TripletSums<Acc<T>> triplet_sums(const T* a, const T* p, const T* n, int64_t D,
                                               Acc<T> eps, Acc<T> q) {
  using A = Acc<T>;
  A ap = 0, an = 0, pn = 0;
#pragma omp simd reduction(+ : ap, an, pn)
  for (int64_t k = 0; k < D; ++k) {
    const A x = load(a, k), xp = load(p, k), xn = load(n, k);
    ap += norm_term<N>(x - xp + eps, q);
    an += norm_term<N>(x - xn + eps, q);
    if (Swap) pn += norm_term<N>(xp - xn + eps, q);
  }
  return {ap, an, pn};
}

template <int N, bool Swap, typename T>
void triplet_margin_forward(const std::vector<MXTensor>& in, const MXTensor* sw_t, double margin,
                            double q_, double eps_, T* out) {
  using A = Acc<T>;
  const RowLayout lay = row_layout(in[0]);
  const int64_t D = lay.row, R = lay.positions;
  const Weight<T> sw = make_weight<T>(sw_t, lay.loss_shape, R);
  const T *a = cdata<T>(in[0]), *p = cdata<T>(in[1]), *n = cdata<T>(in[2]);
  const A q = A(q_), eps = A(eps_);
#pragma omp parallel for schedule(static) num_threads(max_threads()) \
    if (in[0].size() >= kParallelMinWork)
  for (int64_t i = 0; i < lay.batch; ++i) {
    A total = 0;
    for (int64_t r = 0; r < R; ++r) {
      const int64_t o = (i * R + r) * D;
      const TripletSums<A> s = triplet_sums<N, Swap>(a + o, p + o, n + o, D, eps, q);
      A dneg = norm_root<N>(s.an, q);
      if (Swap) dneg = std::min(dneg, norm_root<N>(s.pn, q));
      total += std::max(norm_root<N>(s.ap, q) - dneg + A(margin), A(0)) * row_weight(sw, i, r);
    }
    store(out, i, total / A(R));
  }
}

template <int N, bool Swap, typename T>
void triplet_margin_backward(const std::vector<MXTensor>& in, std::vector<MXTensor>& out,
                             const MXTensor* sw_t, double margin, double q_, double eps_) {
  using A = Acc<T>;
  // in: ograd, anchor, positive, negative, [sw], output; out: da, dp, dn, [dsw]
  const MXTensor& anchor = in[1];
  const RowLayout lay = row_layout(anchor);
  const int64_t D = lay.row, R = lay.positions;
  const Weight<T> sw = make_weight<T>(sw_t, lay.loss_shape, R);
  WeightGrad<T> dsw;
  if (sw_t != nullptr) dsw.init(out[3].data<T>(), sw.kind, lay.batch, R, max_threads());
  const T* g = cdata<T>(in[0]);
  const T *a = cdata<T>(in[1]), *p = cdata<T>(in[2]), *n = cdata<T>(in[3]);
  T *da = out[0].data<T>(), *dp = out[1].data<T>(), *dn = out[2].data<T>();
  const A q = A(q_), eps = A(eps_);
  const int64_t total = anchor.size();
#pragma omp parallel num_threads(max_threads()) if (total >= kParallelMinWork)
  {
    RowWriter<T> wa(da, total, D), wp(dp, total, D), wn(dn, total, D);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < lay.batch; ++i) {
      const A gi = load(g, i) / A(R);
      A fsum = 0;
      for (int64_t r = 0; r < R; ++r) {
        const int64_t row = i * R + r, o = row * D;
        const T *ar = a + o, *pr = p + o, *nr = n + o;
        const TripletSums<A> s = triplet_sums<N, Swap>(ar, pr, nr, D, eps, q);
        const A d_ap = norm_root<N>(s.ap, q), d_an = norm_root<N>(s.an, q);
        const A d_pn = Swap ? norm_root<N>(s.pn, q) : A(0);
        const bool use_pn = Swap && d_pn < d_an;
        const A z = d_ap - (use_pn ? d_pn : d_an) + A(margin);
        const A c = z > A(0) ? gi * row_weight(sw, i, r) : A(0);
        // coefficients of the slopes of d(a, p), d(a, n), d(p, n)
        const A k_ap = c * norm_scale<N>(s.ap, d_ap, q);
        const A k_an = use_pn ? A(0) : -c * norm_scale<N>(s.an, d_an, q);
        const A k_pn = use_pn ? -c * norm_scale<N>(s.pn, d_pn, q) : A(0);
        T *gar = wa.row(o), *gpr = wp.row(o), *gnr = wn.row(o);
#pragma omp simd
        for (int64_t k = 0; k < D; ++k) {
          const A x = load(ar, k), xp = load(pr, k), xn = load(nr, k);
          const A h_ap = norm_slope<N>(x - xp + eps, k_ap, q);
          const A h_an = norm_slope<N>(x - xn + eps, k_an, q);
          const A h_pn = Swap ? norm_slope<N>(xp - xn + eps, k_pn, q) : A(0);
          store(gar, k, h_ap + h_an);
          store(gpr, k, h_pn - h_ap);
          store(gnr, k, -h_an - h_pn);
        }
        wa.flush(D);
        wp.flush(D);
        wn.flush(D);
        if (sw_t != nullptr) add_row_weight_grad(dsw, row, r, gi * std::max(z, A(0)), fsum);
      }
      if (sw_t != nullptr) finish_weight_row(dsw, i, fsum);
    }
  }
  if (sw_t != nullptr) dsw.finish();
}

template <class F> void with_norm(const Attrs& a, F&& f) {
  const double q = attr_double(a, "p");
  const bool swap = attr_flag(a, "swap");
  auto pick = [&](auto norm) {
    if (swap) f(norm, std::true_type()); else f(norm, std::false_type());
  };
  if (q == 2.0) pick(std::integral_constant<int, kL2>());
  else if (q == 1.0) pick(std::integral_constant<int, kL1>());
  else pick(std::integral_constant<int, kLq>());
}

bool triplet_margin_ok(const std::vector<MXTensor>& in, size_t first, bool has_sw) {
  if (in.size() < first + (has_sw ? 4 : 3)) return false;
  const MXTensor& a = in[first];
  bool ok = a.shape.size() >= 2 && a.shape[0] != 0;
  for (size_t k = 1; k < 3 && ok; ++k) {
    ok = in[first + k].size() == a.size() && in[first + k].dtype == a.dtype;
  }
  return ok && (!has_sw || row_weight_fits(a, in[first + 3]));
}

MXReturnValue triplet_margin_check(const Attrs& attrs, const std::vector<MXTensor>& in,
                                   size_t first) {
  if (!triplet_margin_ok(in, first, attr_flag(attrs, "has_sample_weight"))) {
    return fail(TripletMarginOp::kName, "positive, negative or sample_weight does not fit pred");
  }
  const double q = attr_double(attrs, "p");
  if (!(q > 0) || std::isinf(q)) return fail(TripletMarginOp::kName, "p must be finite and > 0");
  return MX_SUCCESS;
}

MXReturnValue triplet_margin_fwd(const Attrs& attrs, std::vector<MXTensor>* in,
                                 std::vector<MXTensor>* out, const OpResource&) {
  const bool has_sw = attr_flag(attrs, "has_sample_weight");
  const MXTensor& a = (*in)[0];
  const double q = attr_double(attrs, "p");
  if (triplet_margin_check(attrs, *in, 0) != MX_SUCCESS) return MX_FAIL;
  const double margin = attr_double(attrs, "margin"), eps = attr_double(attrs, "eps");
  MXReturnValue rc = MX_FAIL;
  with_norm(attrs, [&](auto norm, auto swap) {
    rc = for_float(TripletMarginOp::kName, a.dtype, [&](auto t) {
      using T = decltype(t);
      triplet_margin_forward<decltype(norm)::value, decltype(swap)::value, T>(
          *in, has_sw ? &(*in)[3] : nullptr, margin, q, eps, (*out)[0].data<T>());
    });
  });
  return rc;
}

MXReturnValue triplet_margin_bwd(const Attrs& attrs, std::vector<MXTensor>* in,
                                 std::vector<MXTensor>* out, const OpResource&) {
  const bool has_sw = attr_flag(attrs, "has_sample_weight");
  const double margin = attr_double(attrs, "margin"), eps = attr_double(attrs, "eps");
  const double q = attr_double(attrs, "p");
  if (triplet_margin_check(attrs, *in, 1) != MX_SUCCESS) return MX_FAIL;
  MXReturnValue rc = MX_FAIL;
  with_norm(attrs, [&](auto norm, auto swap) {
    rc = for_float(TripletMarginOp::kName, (*in)[1].dtype, [&](auto t) {
      using T = decltype(t);
      triplet_margin_backward<decltype(norm)::value, decltype(swap)::value, T>(
          *in, *out, has_sw ? &(*in)[4] : nullptr, margin, q, eps);
    });
  });
  return rc;
}

struct Registration {
  Registration() {
    register_op<CategoricalHingeOp>(hinge_fwd, hinge_bwd);
    register_op<OverlapOp>(overlap_fwd, overlap_bwd);
    register_op<TripletMarginOp>(triplet_margin_fwd, triplet_margin_bwd);
  }
} registration;

}  // namespace
}  // namespace gluonx
