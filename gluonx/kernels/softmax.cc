// Losses over a softmax of the last axis:
//   gluonx_softmax_ce_loss     softmax cross-entropy, sparse or dense labels
//   gluonx_kldiv_softmax_loss  KL divergence against log_softmax(pred)
// pred is viewed as (batch, positions, classes): every position of a sample
// is one softmax row of `classes` values. A row is read from memory once per
// pass (its max/exp/sum stay in cache), OpenMP runs over samples.
#include "common.h"

#include <type_traits>

namespace gluonx {
namespace {

struct Layout {
  int64_t batch, positions, classes;
  std::vector<int64_t> loss_shape;  // pred's shape with the class axis set to 1
};

inline Layout layout_of(const MXTensor& pred) {
  Layout out;
  out.batch = pred.shape[0];
  out.classes = pred.shape.back();
  out.positions = out.batch * out.classes == 0 ? 0 : pred.size() / (out.batch * out.classes);
  out.loss_shape = pred.shape;
  out.loss_shape.back() = 1;
  return out;
}

// log(sum(exp(x))) of one row and 1 / sum(exp(x - max)); `ex` receives
// exp(x - max), so softmax_k = ex[k] * inv_sum.
template <typename A> struct RowStats {
  A lse, inv_sum;
};

template <typename T>
GLUONX_INLINE RowStats<Acc<T>> row_logsumexp(const T* x, int64_t n, Acc<T>* ex) {
  using A = Acc<T>;
  A m = -std::numeric_limits<A>::infinity();
#pragma omp simd reduction(max : m)
  for (int64_t k = 0; k < n; ++k) m = std::max(m, load(x, k));
  A s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t k = 0; k < n; ++k) {
    const A e = exp_nonpos(load(x, k) - m);
    ex[k] = e;
    s += e;
  }
  return {m + fast_log(s), A(1) / s};
}

// A dense label row l against a score row x: sum_k l_k and sum_k l_k x_k
// (the cross-entropy of row k is lse * sum - dot).
template <typename A> struct LabelSums { A sum, dot; };
template <typename T>
GLUONX_INLINE LabelSums<Acc<T>> label_sums(const T* l, const T* x, int64_t n) {
  using A = Acc<T>;
  A sum = 0, dot = 0;
#pragma omp simd reduction(+ : sum, dot)
  for (int64_t k = 0; k < n; ++k) {
    const A lk = load(l, k);
    sum += lk;
    dot += lk * load(x, k);
  }
  return {sum, dot};
}

inline int64_t clip_class(int64_t y, int64_t classes) {
  return y < 0 ? 0 : (y >= classes ? classes - 1 : y);
}

// ------------------------------------------------------ softmax CE --------

template <bool Sparse, bool FromLogits, typename T>
void softmax_ce_forward(const MXTensor& pred, const MXTensor& label, const MXTensor* sw_t,
                        T* out) {
  using A = Acc<T>;
  const Layout lay = layout_of(pred);
  const int64_t K = lay.classes, R = lay.positions;
  const Weight<T> sw = make_weight<T>(sw_t, lay.loss_shape, R);
  const T* x = cdata<T>(pred);
  const T* dense = Sparse ? nullptr : cdata<T>(label);
  const int threads = max_threads();
  std::vector<std::vector<A>> scratch(threads, std::vector<A>(FromLogits ? 0 : K));
#pragma omp parallel for schedule(static) num_threads(max_threads()) \
    if (pred.size() >= kParallelMinWork)
  for (int64_t i = 0; i < lay.batch; ++i) {
    A* ex = FromLogits ? nullptr : scratch[thread_id()].data();
    A total = 0;
    for (int64_t r = 0; r < R; ++r) {
      const int64_t row = i * R + r;
      const T* xr = x + row * K;
      prefetch_next_row(x, row, lay.batch * R, K);
      if (!Sparse) prefetch_next_row(dense, row, lay.batch * R, K);
      const A lse = FromLogits ? A(0) : row_logsumexp(xr, K, ex).lse;
      A f;
      if (Sparse) {
        const int64_t y = clip_class(load_index(label, row), K);
        f = lse - load(xr, y);
      } else {
        const LabelSums<A> ls = label_sums(dense + row * K, xr, K);
        f = lse * ls.sum - ls.dot;
      }
      if (sw.ptr != nullptr) f *= load(sw.row(i), sw.per_col ? r : 0);
      total += f;
    }
    store(out, i, total / A(R));
  }
}

template <bool Sparse, bool FromLogits, typename T>
void softmax_ce_backward(const T* ograd, const MXTensor& pred, const MXTensor& label,
                         const MXTensor* sw_t, T* dpred, MXTensor& dlabel, T* dsw_ptr) {
  using A = Acc<T>;
  const Layout lay = layout_of(pred);
  const int64_t K = lay.classes, R = lay.positions;
  const Weight<T> sw = make_weight<T>(sw_t, lay.loss_shape, R);
  const int threads = max_threads();
  WeightGrad<T> dsw;
  if (sw_t != nullptr) dsw.init(dsw_ptr, sw.kind, lay.batch, R, threads);
  const T* x = cdata<T>(pred);
  const T* dense = Sparse ? nullptr : cdata<T>(label);
  T* dl = Sparse ? nullptr : dlabel.data<T>();
  if (Sparse) zero_tensor(&dlabel);  // the class index gets no gradient
  std::vector<std::vector<A>> scratch(threads, std::vector<A>(K));
  const int64_t total = pred.size();
#pragma omp parallel num_threads(max_threads()) \
    if (total >= kParallelMinWork)
  {
    RowWriter<T> wp(dpred, total, K), wl(dl, Sparse ? 0 : total, K);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < lay.batch; ++i) {
      A* ex = scratch[thread_id()].data();
      const A gi = load(ograd, i) / A(R);
      A fsum = 0;  // for a per-sample weight's gradient
      for (int64_t r = 0; r < R; ++r) {
        const int64_t row = i * R + r;
        const T* xr = x + row * K;
        prefetch_next_row(x, row, lay.batch * R, K);
        if (!Sparse) prefetch_next_row(dense, row, lay.batch * R, K);
        T* gr = wp.row(row * K);
        const A w = sw.ptr != nullptr ? load(sw.row(i), sw.per_col ? r : 0) : A(1);
        const A c = gi * w;
        A lse = 0, inv_sum = 0;
        if (!FromLogits) {
          const RowStats<A> st = row_logsumexp(xr, K, ex);
          lse = st.lse;
          inv_sum = st.inv_sum;
        }
        A f;
        if (Sparse) {
          const int64_t y = clip_class(load_index(label, row), K);
          f = lse - load(xr, y);
          if (FromLogits) {
  #pragma omp simd
            for (int64_t k = 0; k < K; ++k) store(gr, k, A(0));
          } else {
  #pragma omp simd
            for (int64_t k = 0; k < K; ++k) store(gr, k, c * ex[k] * inv_sum);
          }
          store(gr, y, load(gr, y) - c);
        } else {
          const T* lr = dense + row * K;
          T* dlr = wl.row(row * K);
          const LabelSums<A> ls = label_sums(lr, xr, K);
          const A lsum = ls.sum;
          f = lse * lsum - ls.dot;
          const A cs = c * lsum * inv_sum;
  #pragma omp simd
          for (int64_t k = 0; k < K; ++k) {
            const A xk = load(xr, k);
            const A l = load(lr, k);
            store(gr, k, FromLogits ? -c * l : cs * ex[k] - c * l);
            store(dlr, k, FromLogits ? -c * xk : c * (lse - xk));
          }
        }
        wp.flush(K);
        if (!Sparse) wl.flush(K);
        if (sw.ptr != nullptr) {
          const A v = gi * f;  // d(out_i)/d(w) for this position
          if (dsw.kind == Bcast::kFull) store(dsw.ptr, row, v);
          else if (dsw.kind == Bcast::kCol) dsw.partial[thread_id()][r] += v;
          else fsum += v;
        }
      }
      if (sw.ptr != nullptr) finish_weight_row(dsw, i, fsum);
    }
  }
  if (sw_t != nullptr) dsw.finish();
}

// ------------------------------------------------- KL div on softmax ------
// f = sum_k w_k l_k (log(l_k + eps) - log_softmax(x)_k), summed per sample.
// The weight broadcasts against pred itself (elementwise loss).

constexpr double kKLEps = 1e-12;

template <typename T>
void kldiv_forward(const MXTensor& pred, const MXTensor& label, const MXTensor* sw_t, T* out) {
  using A = Acc<T>;
  const Layout lay = layout_of(pred);
  const int64_t K = lay.classes, R = lay.positions;
  const Weight<T> sw = make_weight<T>(sw_t, pred.shape, R * K);
  const int64_t ws = sw.per_col ? 1 : 0;
  const T* x = cdata<T>(pred);
  const T* lab = cdata<T>(label);
  const int threads = max_threads();
  std::vector<std::vector<A>> scratch(threads, std::vector<A>(K));
#pragma omp parallel for schedule(static) num_threads(max_threads()) \
    if (pred.size() >= kParallelMinWork)
  for (int64_t i = 0; i < lay.batch; ++i) {
    A* ex = scratch[thread_id()].data();
    A total = 0;
    for (int64_t r = 0; r < R; ++r) {
      const int64_t row = i * R + r;
      const T* xr = x + row * K;
      const T* lr = lab + row * K;
      const T* wr = sw.ptr != nullptr ? sw.row(i) + ws * r * K : nullptr;
      prefetch_next_row(x, row, lay.batch * R, K);
      prefetch_next_row(lab, row, lay.batch * R, K);
      const A lse = row_logsumexp(xr, K, ex).lse;
      A s = 0;
      if (ws == 0) {  // no weight, or one per row: the loop vectorises
#pragma omp simd reduction(+ : s)
        for (int64_t k = 0; k < K; ++k) {
          const A l = load(lr, k);
          s += l * (fast_log(l + A(kKLEps)) - (load(xr, k) - lse));
        }
        if (wr != nullptr) s *= load(wr, 0);
      } else {
#pragma omp simd reduction(+ : s)
        for (int64_t k = 0; k < K; ++k) {
          const A l = load(lr, k);
          s += l * (fast_log(l + A(kKLEps)) - (load(xr, k) - lse)) * load(wr, k);
        }
      }
      total += s;
    }
    store(out, i, total);
  }
}

template <typename T>
void kldiv_backward(const T* ograd, const MXTensor& pred, const MXTensor& label,
                    const MXTensor* sw_t, T* dpred, T* dlabel, T* dsw_ptr) {
  using A = Acc<T>;
  const Layout lay = layout_of(pred);
  const int64_t K = lay.classes, R = lay.positions;
  const Weight<T> sw = make_weight<T>(sw_t, pred.shape, R * K);
  const int64_t ws = sw.per_col ? 1 : 0;
  const int threads = max_threads();
  WeightGrad<T> dsw;
  if (sw_t != nullptr) dsw.init(dsw_ptr, sw.kind, lay.batch, R * K, threads);
  const T* x = cdata<T>(pred);
  const T* lab = cdata<T>(label);
  std::vector<std::vector<A>> scratch(threads, std::vector<A>(K));
  const int64_t total = pred.size();
#pragma omp parallel num_threads(max_threads()) if (total >= kParallelMinWork)
  {
    RowWriter<T> wp(dpred, total, K), wl(dlabel, total, K);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < lay.batch; ++i) {
      A* ex = scratch[thread_id()].data();
      const A gi = load(ograd, i);
      A fsum = 0;
      for (int64_t r = 0; r < R; ++r) {
        const int64_t row = i * R + r;
        const T* xr = x + row * K;
        const T* lr = lab + row * K;
        const T* wr = sw.ptr != nullptr ? sw.row(i) + ws * r * K : nullptr;
        prefetch_next_row(x, row, lay.batch * R, K);
        prefetch_next_row(lab, row, lay.batch * R, K);
        const RowStats<A> st = row_logsumexp(xr, K, ex);
        const A lse = st.lse;
        T* gp = wp.row(row * K);
        T* gl = wl.row(row * K);
        if (ws == 0) {
          // no weight, or one per row: the loop vectorises
          const A w = wr != nullptr ? load(wr, 0) : A(1);
          A lsum = 0;
#pragma omp simd reduction(+ : lsum)
          for (int64_t k = 0; k < K; ++k) lsum += load(lr, k);
          const A gs = gi * w * lsum * st.inv_sum, gw = gi * w;
          A fs = 0;
#pragma omp simd reduction(+ : fs)
          for (int64_t k = 0; k < K; ++k) {
            const A l = load(lr, k);
            const A logp = load(xr, k) - lse;
            const A le = l + A(kKLEps);
            const A ll = fast_log(le);
            store(gp, k, gs * ex[k] - gw * l);
            store(gl, k, gw * (ll - logp + l / le));
            fs += l * (ll - logp);
          }
          fsum += gi * fs;
        } else {
          A gsum = 0;  // sum_k w_k l_k: the softmax part of d/dx
#pragma omp simd reduction(+ : gsum)
          for (int64_t k = 0; k < K; ++k) gsum += load(lr, k) * load(wr, k);
          A* csw = dsw.kind == Bcast::kCol ? dsw.partial[thread_id()].data() + r * K : nullptr;
          T* fsw = dsw.kind == Bcast::kFull ? dsw_ptr + row * K : nullptr;
          for (int64_t k = 0; k < K; ++k) {
            const A l = load(lr, k);
            const A w = load(wr, k);
            const A logp = load(xr, k) - lse;
            const A ll = fast_log(l + A(kKLEps));
            store(gp, k, gi * (ex[k] * st.inv_sum * gsum - w * l));
            store(gl, k, gi * w * (ll - logp + l / (l + A(kKLEps))));
            const A f = l * (ll - logp);
            if (fsw != nullptr) store(fsw, k, gi * f);
            else if (csw != nullptr) csw[k] += gi * f;
            else fsum += gi * f;
          }
        }
        wp.flush(K);
        wl.flush(K);
      }
      if (sw.ptr != nullptr) finish_weight_row(dsw, i, fsum);
    }
  }
  if (sw_t != nullptr) dsw.finish();
}

// ---------------------------------------------------------- operators ------

struct SoftmaxCEOp {
  static constexpr const char* kName = "gluonx_softmax_ce_loss";
  static constexpr int kInputs = 2;
  static constexpr const char* kOptional = "sample_weight";
  static constexpr const char* kAttrs = "sparse_label from_logits";
};

struct KLDivSoftmaxOp {
  static constexpr const char* kName = "gluonx_kldiv_softmax_loss";
  static constexpr int kInputs = 2;
  static constexpr const char* kOptional = "sample_weight";
  static constexpr const char* kAttrs = "";
};

// Softmax CE: the loss is per position, so its weight broadcasts against
// pred's shape with the class axis set to 1; sparse labels hold one class
// index (any dtype) per position, dense labels one value per class.
bool softmax_ce_ok(const std::vector<MXTensor>& in, bool sparse, bool has_sw) {
  if (in[0].shape.size() < 2) return false;
  const Layout lay = layout_of(in[0]);
  if (sparse ? in[1].size() != lay.batch * lay.positions
             : (in[1].size() != in[0].size() || in[1].dtype != in[0].dtype)) {
    return false;
  }
  Bcast kind;
  return !has_sw || (in[2].dtype == in[0].dtype &&
                     classify_bcast(lay.loss_shape, in[2].shape, &kind));
}

template <class F> void with_ce_options(const Attrs& a, F&& f) {
  const bool sparse = attr_flag(a, "sparse_label"), logits = attr_flag(a, "from_logits");
  if (sparse && logits) f(std::true_type(), std::true_type());
  else if (sparse) f(std::true_type(), std::false_type());
  else if (logits) f(std::false_type(), std::true_type());
  else f(std::false_type(), std::false_type());
}

MXReturnValue softmax_ce_fwd(const Attrs& attrs, std::vector<MXTensor>* in,
                             std::vector<MXTensor>* out, const OpResource&) {
  const bool has_sw = attr_flag(attrs, "has_sample_weight");
  if (!softmax_ce_ok(*in, attr_flag(attrs, "sparse_label"), has_sw)) {
    return fail("gluonx_softmax_ce_loss", "label or sample_weight does not fit pred");
  }
  bool ok = false;
  with_ce_options(attrs, [&](auto sparse, auto logits) {
    ok = dispatch_float((*in)[0].dtype, [&](auto t) {
      using T = decltype(t);
      softmax_ce_forward<decltype(sparse)::value, decltype(logits)::value, T>(
          (*in)[0], (*in)[1], has_sw ? &(*in)[2] : nullptr, (*out)[0].data<T>());
    });
  });
  return ok ? MX_SUCCESS : fail("gluonx_softmax_ce_loss", "pred must be a float type");
}

MXReturnValue softmax_ce_bwd(const Attrs& attrs, std::vector<MXTensor>* in,
                             std::vector<MXTensor>* out, const OpResource&) {
  // in: ograd, pred, label, [sw], output; out: dpred, dlabel, [dsw]
  const bool has_sw = attr_flag(attrs, "has_sample_weight");
  bool ok = false;
  with_ce_options(attrs, [&](auto sparse, auto logits) {
    ok = dispatch_float((*in)[1].dtype, [&](auto t) {
      using T = decltype(t);
      softmax_ce_backward<decltype(sparse)::value, decltype(logits)::value, T>(
          (*in)[0].data<T>(), (*in)[1], (*in)[2], has_sw ? &(*in)[3] : nullptr,
          (*out)[0].data<T>(), (*out)[1], has_sw ? (*out)[2].data<T>() : nullptr);
    });
  });
  return ok ? MX_SUCCESS : fail("gluonx_softmax_ce_loss", "pred must be a float type");
}

MXReturnValue kldiv_fwd(const Attrs& attrs, std::vector<MXTensor>* in,
                        std::vector<MXTensor>* out, const OpResource&) {
  const bool has_sw = attr_flag(attrs, "has_sample_weight");
  Bcast kind;
  if ((*in)[0].shape.empty() || (*in)[1].size() != (*in)[0].size() ||
      (*in)[1].dtype != (*in)[0].dtype ||
      (has_sw && ((*in)[2].dtype != (*in)[0].dtype ||
                  !classify_bcast((*in)[0].shape, (*in)[2].shape, &kind)))) {
    return fail("gluonx_kldiv_softmax_loss", "label or sample_weight does not fit pred");
  }
  const bool ok = dispatch_float((*in)[0].dtype, [&](auto t) {
    using T = decltype(t);
    kldiv_forward<T>((*in)[0], (*in)[1], has_sw ? &(*in)[2] : nullptr, (*out)[0].data<T>());
  });
  return ok ? MX_SUCCESS : fail("gluonx_kldiv_softmax_loss", "pred must be a float type");
}

MXReturnValue kldiv_bwd(const Attrs& attrs, std::vector<MXTensor>* in,
                        std::vector<MXTensor>* out, const OpResource&) {
  const bool has_sw = attr_flag(attrs, "has_sample_weight");
  const bool ok = dispatch_float((*in)[1].dtype, [&](auto t) {
    using T = decltype(t);
    kldiv_backward<T>((*in)[0].data<T>(), (*in)[1], (*in)[2], has_sw ? &(*in)[3] : nullptr,
                      (*out)[0].data<T>(), (*out)[1].data<T>(),
                      has_sw ? (*out)[2].data<T>() : nullptr);
  });
  return ok ? MX_SUCCESS : fail("gluonx_kldiv_softmax_loss", "pred must be a float type");
}

struct Registration {
  Registration() {
    register_op<SoftmaxCEOp>(softmax_ce_fwd, softmax_ce_bwd);
    register_op<KLDivSoftmaxOp>(kldiv_fwd, kldiv_bwd);
  }
} registration;

}  // namespace
}  // namespace gluonx
