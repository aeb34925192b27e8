// Losses over a softmax of the last axis:
//   gluonx_softmax_ce_loss     softmax cross-entropy, sparse or dense labels, with
//                              label smoothing, class weights, ignore_index and
//                              valid_length masks, and the focal exponent gamma
//   gluonx_kldiv_softmax_loss  KL divergence against log_softmax(pred)
// pred is viewed as (batch, positions, classes): every position of a sample
// is one softmax row of `classes` values. A row is read from memory once per
// pass (its max/exp/sum stay in cache), OpenMP runs over samples.
#include "common.h"

#include <type_traits>

namespace gluonx {
namespace {


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
// Per position (row of K scores x, label y or distribution l), with class
// weights w (1 without), smoothing eps and lse = log(sum(exp(x))) (0 with
// from_logits, where x already holds log-probabilities):
//   f = (1 - eps) * base + eps / K * (lse * sum_k w_k - sum_k w_k x_k)
//   base = w_y (lse - x_y)                      (sparse)
//        = lse * sum_k w_k l_k - sum_k w_k l_k x_k   (dense)
// i.e. f = -sum_k q_k log p_k with q_k = (1 - eps) w_k l_k + eps w_k / K.
// Masked positions (sparse label == ignore_index, t >= valid_length[i])
// contribute 0 and get gradient 0. A sample's value is scale_i * sum_t f_t
// (times sample_weight), with scale_i one of (see ce_scales):
//   1 / positions, 1 / unmasked positions (0 if none), or, for a batch mean
//   (reduction='mean') with masks or sparse class weights, batch / sum of
//   the unmasked positions' w_y (0 if that is 0), so that the mean over the
//   samples is sum f / sum w_y, the stock path's masked-mean denominators.

// Read element i of a numeric tensor as double (labels compared with
// ignore_index, lengths with positions).
inline double load_double(const MXTensor& t, int64_t i) {
  switch (t.dtype) {
    case mxnet::ext::kFloat32: return cdata<float>(t)[i];
    case mxnet::ext::kFloat64: return cdata<double>(t)[i];
    case mxnet::ext::kFloat16: return half_to_float(cdata<half_t>(t)[i].bits);
    default: return static_cast<double>(load_index(t, i));
  }
}

template <typename A> struct CEOpts {
  A eps = 0;               // label smoothing
  A gamma = 0;             // focal exponent (sparse labels without smoothing)
  std::vector<A> cw;       // class weights (empty: all 1)
  std::vector<A> ones;     // K ones, the weights where cw is empty and needed
  A wsum = 0;              // sum_k w_k
  bool ignore = false;     // sparse labels equal to ignore_index are masked
  double ignore_index = 0;
  const MXTensor* vl = nullptr;  // valid_length, one per sample
  bool average_valid = true;     // mean over unmasked positions (else all)
  bool batch_mean = false;       // scale for a mean over the batch

  const A* w() const { return cw.empty() ? ones.data() : cw.data(); }
  A w_at(int64_t y) const { return cw.empty() ? A(1) : cw[y]; }
  bool masking(bool sparse) const { return (sparse && ignore) || vl != nullptr; }
};

// The options of one call; `cw_t` and `vl_t` may be null.
template <typename T>
CEOpts<Acc<T>> ce_opts(const Attrs& a, const MXTensor* vl_t, const MXTensor* cw_t, int64_t K) {
  using A = Acc<T>;
  CEOpts<A> o;
  o.eps = A(attr_double(a, "label_smoothing"));
  o.gamma = A(attr_double(a, "gamma"));
  o.ignore = attr_flag(a, "ignore");
  o.ignore_index = attr_double(a, "ignore_index");
  o.average_valid = attr_flag(a, "average_valid");
  o.batch_mean = attr_flag(a, "batch_mean");
  o.vl = vl_t;
  if (cw_t != nullptr) {
    o.cw.resize(K);
    for (int64_t k = 0; k < K; ++k) o.cw[k] = load(cdata<T>(*cw_t), k);
  }
  if (o.cw.empty() && o.eps != A(0)) o.ones.assign(K, A(1));
  o.wsum = 0;
  for (int64_t k = 0; k < K; ++k) o.wsum += o.w_at(k);
  return o;
}

template <bool Sparse, typename A>
GLUONX_INLINE bool ce_kept(const CEOpts<A>& o, const MXTensor& label, int64_t i, int64_t r,
                           int64_t row) {
  if (o.vl != nullptr && !(double(r) < load_double(*o.vl, i))) return false;
  if (Sparse && o.ignore && load_double(label, row) == o.ignore_index) return false;
  return true;
}

// scale_i of every sample (see the top of this section).
template <bool Sparse, typename A>
std::vector<A> ce_scales(const CEOpts<A>& o, const MXTensor& label, int64_t B, int64_t R,
                         int64_t K) {
  std::vector<A> s(B, A(1) / A(R));
  const bool masking = o.masking(Sparse), weighted = Sparse && !o.cw.empty();
  if (o.batch_mean && (masking || weighted)) {
    double total = 0;
    for (int64_t i = 0; i < B; ++i) {
      for (int64_t r = 0; r < R; ++r) {
        const int64_t row = i * R + r;
        if (!ce_kept<Sparse>(o, label, i, r, row)) continue;
        total += weighted ? double(o.cw[clip_class(load_index(label, row), K)]) : 1.0;
      }
    }
    std::fill(s.begin(), s.end(), total != 0 ? A(double(B) / total) : A(0));
  } else if (masking && o.average_valid) {
    for (int64_t i = 0; i < B; ++i) {
      int64_t count = 0;
      for (int64_t r = 0; r < R; ++r) count += ce_kept<Sparse>(o, label, i, r, i * R + r);
      s[i] = count > 0 ? A(1) / A(count) : A(0);
    }
  }
  return s;
}

// sum_k w_k x_k (the smoothing term's dot product).
template <typename T>
GLUONX_INLINE Acc<T> weighted_sum(const Acc<T>* w, const T* x, int64_t n) {
  using A = Acc<T>;
  A s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t k = 0; k < n; ++k) s += w[k] * load(x, k);
  return s;
}

// sum_k w_k l_k and sum_k w_k l_k x_k.
template <typename T>
GLUONX_INLINE LabelSums<Acc<T>> weighted_label_sums(const Acc<T>* w, const T* l, const T* x,
                                                    int64_t n) {
  using A = Acc<T>;
  A sum = 0, dot = 0;
#pragma omp simd reduction(+ : sum, dot)
  for (int64_t k = 0; k < n; ++k) {
    const A lk = w[k] * load(l, k);
    sum += lk;
    dot += lk * load(x, k);
  }
  return {sum, dot};
}

// The focal loss of a picked log-probability u (softmax focal loss, Lin et
// al.): phi(u) = -(1 - e^u)^gamma u, and d phi / du. gamma = 0 is the
// cross-entropy -u. As the stock operators: 1 - e^u = -expm1(u), floored at
// kFocalFloor for gamma < 1 (where the floor holds, no gradient through it).
constexpr double kFocalFloor = 1e-30;
template <typename A> struct Focal { A value, slope; };
template <typename A> GLUONX_INLINE Focal<A> focal_term(A u, A gamma) {
  if (gamma == A(0)) return {-u, A(-1)};
  const A raw = -std::expm1(u);
  const bool floored = gamma < A(1) && raw < A(kFocalFloor);
  const A b = floored ? A(kFocalFloor) : raw;
  const A bg = gamma == A(2) ? b * b : std::pow(b, gamma);
  if (floored) return {-bg * u, -bg};
  const A db = gamma == A(2) ? A(2) * b : gamma * std::pow(b, gamma - A(1));  // d b^g / d b
  return {-bg * u, -bg + db * u * std::exp(u)};
}

// f of one unmasked row (see above); lse is 0 with from_logits. A sparse
// row's f is w_y phi(x_y - lse) (phi: focal_term), its slope d phi / du
// goes to `slope_out`.
template <bool Sparse, typename T>
GLUONX_INLINE Acc<T> ce_row_value(const CEOpts<Acc<T>>& o, const T* xr, const T* lr, int64_t y,
                                  Acc<T> lse, int64_t K, Acc<T>* lsum_out,
                                  Acc<T>* slope_out) {
  using A = Acc<T>;
  A f;
  if (Sparse) {
    const Focal<A> ft = focal_term(load(xr, y) - lse, o.gamma);
    f = o.w_at(y) * ft.value;
    if (slope_out != nullptr) *slope_out = ft.slope;
  } else {
    const LabelSums<A> ls = o.cw.empty() ? label_sums(lr, xr, K)
                                         : weighted_label_sums(o.cw.data(), lr, xr, K);
    f = lse * ls.sum - ls.dot;
    if (lsum_out != nullptr) *lsum_out = ls.sum;
  }
  if (o.eps != A(0)) {
    f = (A(1) - o.eps) * f + o.eps / A(K) * (lse * o.wsum - weighted_sum(o.w(), xr, K));
  }
  return f;
}

template <bool Sparse, bool FromLogits, typename T>
void softmax_ce_forward(const MXTensor& pred, const MXTensor& label, const MXTensor* sw_t,
                        const CEOpts<Acc<T>>& o, T* out) {
  using A = Acc<T>;
  const RowLayout lay = row_layout(pred);
  const int64_t K = lay.row, R = lay.positions;
  const Weight<T> sw = make_weight<T>(sw_t, lay.loss_shape, R);
  const std::vector<A> scale = ce_scales<Sparse>(o, label, lay.batch, R, K);
  const bool masking = o.masking(Sparse);
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
      if (masking && !ce_kept<Sparse>(o, label, i, r, row)) continue;
      const T* xr = x + row * K;
      // a sparse row of log-probabilities (NLLLoss) reads only x_y: no prefetch
      if (!(Sparse && FromLogits && o.eps == A(0))) prefetch_next_row(x, row, lay.batch * R, K);
      if (!Sparse) prefetch_next_row(dense, row, lay.batch * R, K);
      const A lse = FromLogits ? A(0) : row_logsumexp(xr, K, ex).lse;
      const int64_t y = Sparse ? clip_class(load_index(label, row), K) : 0;
      A f = ce_row_value<Sparse, T>(o, xr, Sparse ? nullptr : dense + row * K, y, lse, K,
                                    nullptr, nullptr);
      if (sw.ptr != nullptr) f *= load(sw.row(i), sw.per_col ? r : 0);
      total += f;
    }
    store(out, i, total * scale[i]);
  }
}

template <bool Sparse, bool FromLogits, typename T>
void softmax_ce_backward(const T* ograd, const MXTensor& pred, const MXTensor& label,
                         const MXTensor* sw_t, const CEOpts<Acc<T>>& o, T* dpred,
                         MXTensor& dlabel, T* dsw_ptr) {
  using A = Acc<T>;
  const RowLayout lay = row_layout(pred);
  const int64_t K = lay.row, R = lay.positions;
  const Weight<T> sw = make_weight<T>(sw_t, lay.loss_shape, R);
  const std::vector<A> scale = ce_scales<Sparse>(o, label, lay.batch, R, K);
  const bool masking = o.masking(Sparse);
  const A eps = o.eps, keep = A(1) - eps, epsk = eps / A(K);
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
      const A gi = load(ograd, i) * scale[i];
      A fsum = 0;  // for a per-sample weight's gradient
      for (int64_t r = 0; r < R; ++r) {
        const int64_t row = i * R + r;
        const T* xr = x + row * K;
        if (!(Sparse && FromLogits && eps == A(0))) prefetch_next_row(x, row, lay.batch * R, K);
        if (!Sparse) prefetch_next_row(dense, row, lay.batch * R, K);
        T* gr = wp.row(row * K);
        T* dlr = Sparse ? nullptr : wl.row(row * K);
        if (masking && !ce_kept<Sparse>(o, label, i, r, row)) {
#pragma omp simd
          for (int64_t k = 0; k < K; ++k) store(gr, k, A(0));
          wp.flush(K);
          if (!Sparse) {
#pragma omp simd
            for (int64_t k = 0; k < K; ++k) store(dlr, k, A(0));
            wl.flush(K);
          }
          if (sw.ptr != nullptr && dsw.kind == Bcast::kFull) store(dsw.ptr, row, A(0));
          continue;
        }
        const A w = sw.ptr != nullptr ? load(sw.row(i), sw.per_col ? r : 0) : A(1);
        const A c = gi * w;
        A lse = 0, inv_sum = 0;
        if (!FromLogits) {
          const RowStats<A> st = row_logsumexp(xr, K, ex);
          lse = st.lse;
          inv_sum = st.inv_sum;
        }
        const int64_t y = Sparse ? clip_class(load_index(label, row), K) : 0;
        A lsum = 0, slope = -1;
        const A f = ce_row_value<Sparse, T>(o, xr, Sparse ? nullptr : dense + row * K, y, lse,
                                            K, &lsum, &slope);
        if (Sparse) {
          // d f / d x_k = keep w_y slope (delta_yk - p_k) (slope -1: the cross-
          // entropy), plus, with smoothing (gamma 0), eps / K (p_k sum_j w_j - w_k)
          const A wy = o.w_at(y);
          if (eps == A(0)) {
            if (FromLogits) {
#pragma omp simd
              for (int64_t k = 0; k < K; ++k) store(gr, k, A(0));
            } else {
              const A cs = -c * wy * slope * inv_sum;
#pragma omp simd
              for (int64_t k = 0; k < K; ++k) store(gr, k, cs * ex[k]);
            }
          } else {
            const A* wk = o.w();
            const A ce = c * epsk;
            if (FromLogits) {
#pragma omp simd
              for (int64_t k = 0; k < K; ++k) store(gr, k, -ce * wk[k]);
            } else {
              const A cs = c * (keep * wy + epsk * o.wsum) * inv_sum;
#pragma omp simd
              for (int64_t k = 0; k < K; ++k) store(gr, k, cs * ex[k] - ce * wk[k]);
            }
          }
          store(gr, y, load(gr, y) + c * keep * wy * slope);
        } else {
          const T* lr = dense + row * K;
          if (o.cw.empty() && eps == A(0)) {
            const A cs = c * lsum * inv_sum;
#pragma omp simd
            for (int64_t k = 0; k < K; ++k) {
              const A xk = load(xr, k);
              const A l = load(lr, k);
              store(gr, k, FromLogits ? -c * l : cs * ex[k] - c * l);
              store(dlr, k, c * (lse - xk));
            }
          } else {
            // q_k = keep w_k l_k + eps w_k / K, sum_k q_k = keep lsum + eps wsum / K
            const A* wk = o.w();
            const A cs = c * (keep * lsum + epsk * o.wsum) * inv_sum;
            const A ck = c * keep, ce = c * epsk;
#pragma omp simd
            for (int64_t k = 0; k < K; ++k) {
              const A xk = load(xr, k);
              const A l = load(lr, k);
              const A q = wk[k] * (ck * l + ce);
              store(gr, k, FromLogits ? -q : cs * ex[k] - q);
              store(dlr, k, ck * wk[k] * (lse - xk));
            }
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
  const RowLayout lay = row_layout(pred);
  const int64_t K = lay.row, R = lay.positions;
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
  const RowLayout lay = row_layout(pred);
  const int64_t K = lay.row, R = lay.positions;
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
  static constexpr const char* kOptional = "sample_weight valid_length class_weight";
  static constexpr const char* kAttrs =
      "sparse_label from_logits label_smoothing ignore ignore_index average_valid batch_mean "
      "gamma";
};

struct KLDivSoftmaxOp {
  static constexpr const char* kName = "gluonx_kldiv_softmax_loss";
  static constexpr int kInputs = 2;
  static constexpr const char* kOptional = "sample_weight";
  static constexpr const char* kAttrs = "";
};

// The optional inputs of a softmax CE call: their positions after pred and
// label (-1 when absent), in kOptional's order.
struct CEInputs {
  int sw = -1, vl = -1, cw = -1;
  explicit CEInputs(const Attrs& a) {
    int next = 2;
    if (attr_flag(a, "has_sample_weight")) sw = next++;
    if (attr_flag(a, "has_valid_length")) vl = next++;
    if (attr_flag(a, "has_class_weight")) cw = next++;
  }
};

// Softmax CE: the loss is per position, so its weight broadcasts against
// pred's shape with the class axis set to 1; sparse labels hold one class
// index (any dtype) per position, dense labels one value per class;
// valid_length one length per sample (pred of 3 axes), class_weight one
// weight per class in pred's dtype.
bool softmax_ce_ok(const std::vector<MXTensor>& in, bool sparse, const CEInputs& at) {
  if (in[0].shape.size() < 2) return false;
  const RowLayout lay = row_layout(in[0]);
  if (sparse ? in[1].size() != lay.batch * lay.positions
             : (in[1].size() != in[0].size() || in[1].dtype != in[0].dtype)) {
    return false;
  }
  if (at.vl >= 0 && (in[0].shape.size() != 3 || in[at.vl].size() != lay.batch)) return false;
  if (at.cw >= 0 && (in[at.cw].size() != lay.row || in[at.cw].dtype != in[0].dtype)) {
    return false;
  }
  Bcast kind;
  return at.sw < 0 || (in[at.sw].dtype == in[0].dtype &&
                       classify_bcast(lay.loss_shape, in[at.sw].shape, &kind));
}

template <class F> void with_ce_options(const Attrs& a, F&& f) {
  const bool sparse = attr_flag(a, "sparse_label"), logits = attr_flag(a, "from_logits");
  if (sparse && logits) f(std::true_type(), std::true_type());
  else if (sparse) f(std::true_type(), std::false_type());
  else if (logits) f(std::false_type(), std::true_type());
  else f(std::false_type(), std::false_type());
}

// label_smoothing in [0, 1]; gamma >= 0, and only with sparse labels and no smoothing.
bool ce_attrs_ok(const Attrs& a) {
  const double eps = attr_double(a, "label_smoothing"), gamma = attr_double(a, "gamma");
  return eps >= 0 && eps <= 1 && !std::isnan(attr_double(a, "ignore_index")) &&
         gamma >= 0 && (gamma == 0 || (eps == 0 && attr_flag(a, "sparse_label")));
}

MXReturnValue softmax_ce_fwd(const Attrs& attrs, std::vector<MXTensor>* in,
                             std::vector<MXTensor>* out, const OpResource&) {
  const CEInputs at(attrs);
  if (!softmax_ce_ok(*in, attr_flag(attrs, "sparse_label"), at)) {
    return fail("gluonx_softmax_ce_loss",
                "label, sample_weight, valid_length or class_weight does not fit pred");
  }
  if (!ce_attrs_ok(attrs)) {
    return fail("gluonx_softmax_ce_loss", "label_smoothing must be in [0, 1], gamma >= 0 "
                "(gamma > 0 only with sparse labels and no smoothing)");
  }
  const int64_t K = (*in)[0].shape.back();
  MXReturnValue rc = MX_FAIL;
  with_ce_options(attrs, [&](auto sparse, auto logits) {
    rc = for_float("gluonx_softmax_ce_loss", (*in)[0].dtype, [&](auto t) {
      using T = decltype(t);
      const auto o = ce_opts<T>(attrs, at.vl >= 0 ? &(*in)[at.vl] : nullptr,
                                at.cw >= 0 ? &(*in)[at.cw] : nullptr, K);
      softmax_ce_forward<decltype(sparse)::value, decltype(logits)::value, T>(
          (*in)[0], (*in)[1], at.sw >= 0 ? &(*in)[at.sw] : nullptr, o, (*out)[0].data<T>());
    });
  });
  return rc;
}

MXReturnValue softmax_ce_bwd(const Attrs& attrs, std::vector<MXTensor>* in,
                             std::vector<MXTensor>* out, const OpResource&) {
  // in: ograd, pred, label, [sw], [vl], [cw], output; out: dpred, dlabel, [dsw], [dvl], [dcw]
  const CEInputs at(attrs);
  const size_t count = 2 + (at.sw >= 0) + (at.vl >= 0) + (at.cw >= 0);
  const std::vector<MXTensor> fin = forward_inputs(*in, count);
  if (fin.empty() || !softmax_ce_ok(fin, attr_flag(attrs, "sparse_label"), at) ||
      !ce_attrs_ok(attrs)) {
    return fail("gluonx_softmax_ce_loss",
                "label, sample_weight, valid_length or class_weight does not fit pred");
  }
  const int64_t K = (*in)[1].shape.back();
  // lengths and class weights (constants) get no gradient
  if (at.vl >= 0) zero_tensor(&(*out)[at.vl]);
  if (at.cw >= 0) zero_tensor(&(*out)[at.cw]);
  MXReturnValue rc = MX_FAIL;
  with_ce_options(attrs, [&](auto sparse, auto logits) {
    rc = for_float("gluonx_softmax_ce_loss", (*in)[1].dtype, [&](auto t) {
      using T = decltype(t);
      const auto o = ce_opts<T>(attrs, at.vl >= 0 ? &(*in)[at.vl + 1] : nullptr,
                                at.cw >= 0 ? &(*in)[at.cw + 1] : nullptr, K);
      softmax_ce_backward<decltype(sparse)::value, decltype(logits)::value, T>(
          (*in)[0].data<T>(), (*in)[1], (*in)[2], at.sw >= 0 ? &(*in)[at.sw + 1] : nullptr, o,
          (*out)[0].data<T>(), (*out)[1], at.sw >= 0 ? (*out)[at.sw].data<T>() : nullptr);
    });
  });
  return rc;
}

bool kldiv_ok(const std::vector<MXTensor>& in, bool has_sw) {
  Bcast kind;
  return in.size() >= 2u + has_sw && !in[0].shape.empty() && in[1].size() == in[0].size() &&
         in[1].dtype == in[0].dtype &&
         (!has_sw || (in[2].dtype == in[0].dtype &&
                      classify_bcast(in[0].shape, in[2].shape, &kind)));
}

MXReturnValue kldiv_fwd(const Attrs& attrs, std::vector<MXTensor>* in,
                        std::vector<MXTensor>* out, const OpResource&) {
  const bool has_sw = attr_flag(attrs, "has_sample_weight");
  if (!kldiv_ok(*in, has_sw)) {
    return fail("gluonx_kldiv_softmax_loss", "label or sample_weight does not fit pred");
  }
  return for_float("gluonx_kldiv_softmax_loss", (*in)[0].dtype, [&](auto t) {
    using T = decltype(t);
    kldiv_forward<T>((*in)[0], (*in)[1], has_sw ? &(*in)[2] : nullptr, (*out)[0].data<T>());
  });
}

MXReturnValue kldiv_bwd(const Attrs& attrs, std::vector<MXTensor>* in,
                        std::vector<MXTensor>* out, const OpResource&) {
  const bool has_sw = attr_flag(attrs, "has_sample_weight");
  if (!kldiv_ok(forward_inputs(*in, 2 + has_sw), has_sw)) {
    return fail("gluonx_kldiv_softmax_loss", "label or sample_weight does not fit pred");
  }
  return for_float("gluonx_kldiv_softmax_loss", (*in)[1].dtype, [&](auto t) {
    using T = decltype(t);
    kldiv_backward<T>((*in)[0].data<T>(), (*in)[1], (*in)[2], has_sw ? &(*in)[3] : nullptr,
                      (*out)[0].data<T>(), (*out)[1].data<T>(),
                      has_sw ? (*out)[2].data<T>() : nullptr);
  });
}

struct Registration {
  Registration() {
    register_op<SoftmaxCEOp>(softmax_ce_fwd, softmax_ce_bwd);
    register_op<KLDivSoftmaxOp>(kldiv_fwd, kldiv_bwd);
  }
} registration;

}  // namespace
}  // namespace gluonx
