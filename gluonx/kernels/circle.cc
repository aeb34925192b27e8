// gluonx_circle_loss: circle loss (Sun et al., 2020), one anchor per row of
// the batch's (N, N) similarity matrix.
//
// Inputs: g (N, N), the Gram matrix of the embeddings x (a BLAS product the
// loss forms ahead of this operator, see CircleLoss's Kernel declaration),
// label (N values, any numeric dtype; equal values are one class),
// [sample_weight] (N values or one). With normalize, the similarities are the
// cosines s_ij = g_ij r_i r_j, r_i = 1 / sqrt(max(g_ii, 1e-24)) (the stock
// graph's x_i / sqrt(max(|x_i|^2, eps^2)), whose squared norms are g's
// diagonal), else s = g. Row i's positives are the j with label_j == label_i, j != i;
// its negatives the j with label_j != label_i (as in the stock graph: an entry
// is in a mask where (same_ij - diag_ij), resp. (1 - same_ij), is nonzero, and
// a mask is present where its sum is > 0). With
//   lp_ij = relu(1 + m - s_ij) (1 - m - s_ij) gamma      (positives)
//   ln_ij = relu(s_ij + m) (s_ij - m) gamma              (negatives)
//   out_i = w_i softplus(lse_{j in P_i} lp_ij + lse_{j in N_i} ln_ij)
// and out_i = 0 where P_i or N_i is empty (their gradient is 0 too).
// Backward: d out_i / d s_ij = w_i sigmoid(z_i) softmax_j(l_i.) d l_ij / d s_ij,
// where the relu factor is a constant with detach_weights (BlockGrad in the
// stock graph), else differentiated (relu' = [argument > 0]). With normalize,
// dg_ij = ds_ij r_i r_j off the diagonal, and the norms add
// dg_ii = -(sum_j ds_ij s_ij + sum_j ds_ji s_ji) / (2 g_ii) where
// g_ii >= 1e-24 (0 where the clamp holds; ds_ii itself is 0).
#include "common.h"

namespace gluonx {
namespace {

struct CircleOp {
  static constexpr const char* kName = "gluonx_circle_loss";
  static constexpr int kInputs = 2;
  static constexpr const char* kOptional = "sample_weight";
  static constexpr const char* kAttrs = "margin gamma detach_weights normalize";
};

// the smallest squared norm of the normalisation (COSINE_EPSILON ** 2)
constexpr double kCircleNormMin = 1e-24;

struct CircleParams {
  double margin, gamma;
  bool detach, normalize;
};

CircleParams circle_params(const Attrs& attrs) {
  return {attr_double(attrs, "margin"), attr_double(attrs, "gamma"),
          attr_flag(attrs, "detach_weights"), attr_flag(attrs, "normalize")};
}

// r_i = 1 / sqrt(max(g_ii, 1e-24)) with normalize, else 1.
template <typename T> std::vector<Acc<T>> inverse_norms(const T* g, int64_t n, bool normalize) {
  using A = Acc<T>;
  std::vector<A> r(static_cast<size_t>(n), A(1));
  if (normalize) {
    for (int64_t i = 0; i < n; ++i) {
      r[i] = A(1) / std::sqrt(std::max(load(g, i * n + i), A(kCircleNormMin)));
    }
  }
  return r;
}

bool is_float_dtype(int dtype) {
  return dtype == mxnet::ext::kFloat32 || dtype == mxnet::ext::kFloat64 ||
         dtype == mxnet::ext::kFloat16;
}

bool is_int_dtype(int dtype) {
  return dtype == mxnet::ext::kUint8 || dtype == mxnet::ext::kInt8 ||
         dtype == mxnet::ext::kInt32 || dtype == mxnet::ext::kInt64;
}

// The labels as comparable keys: float labels as double (exact for every
// float dtype; NaN equals nothing, as in broadcast_equal), integers as int64.
template <typename K> std::vector<K> label_keys(const MXTensor& t) {
  const int64_t n = t.size();
  std::vector<K> keys(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    switch (t.dtype) {
      case mxnet::ext::kFloat32: keys[i] = static_cast<K>(cdata<float>(t)[i]); break;
      case mxnet::ext::kFloat64: keys[i] = static_cast<K>(cdata<double>(t)[i]); break;
      case mxnet::ext::kFloat16: keys[i] = static_cast<K>(half_to_float(cdata<half_t>(t)[i].bits));
        break;
      default: keys[i] = static_cast<K>(load_index(t, i)); break;
    }
  }
  return keys;
}

// Calls f(keys) with the labels' keys in their natural type.
template <typename F> void with_keys(const MXTensor& label, F&& f) {
  if (is_float_dtype(label.dtype)) {
    f(label_keys<double>(label));
  } else {
    f(label_keys<int64_t>(label));
  }
}

// One anchor row's masks and log-sum-exps. `z` receives the logits (masked
// entries: anything), `e` (optional) exp(l_ij - max of its mask).
template <typename A> struct RowState {
  bool live;        // both masks present
  A sum_p, sum_n;   // sums of exp(l - max) over each mask
  A lse_p, lse_n;
};

// counts as the stock graph forms them: sum_j (same_ij - diag_ij) and
// sum_j (1 - same_ij)
template <typename K>
GLUONX_INLINE bool row_live(const K* keys, int64_t n, int64_t i) {
  const K ki = keys[i];
  int64_t same = 0;
  for (int64_t j = 0; j < n; ++j) same += keys[j] == ki ? 1 : 0;
  const int64_t positives = same - 1;   // the diagonal is 1 in diag, whatever same says
  const int64_t negatives = n - same;
  return positives > 0 && negatives > 0;
}

// In a live row the diagonal is in neither mask (label_i equals itself) and
// no entry is in both, so one logit per entry and a flag suffice.
// s: row i of g; r: the inverse norms (all 1 without normalize). The row's
// similarities go to `x`.
template <typename T, typename K>
GLUONX_INLINE RowState<Acc<T>> circle_row(const T* s, const Acc<T>* r, const K* keys, int64_t n,
                                          int64_t i, const CircleParams& p, Acc<T>* xs,
                                          Acc<T>* z, Acc<T>* e) {
  using A = Acc<T>;
  RowState<A> st{};
  st.live = row_live(keys, n, i);
  if (!st.live) return st;
  const K ki = keys[i];
  const A m = A(p.margin), gamma = A(p.gamma);
  const A hi = A(1.0 + p.margin), lo = A(1.0 - p.margin);
  const A ninf = -std::numeric_limits<A>::infinity();
  const A ri = r[i];
  A max_p = ninf, max_n = ninf;
#pragma omp simd reduction(max : max_p, max_n)
  for (int64_t j = 0; j < n; ++j) {
    const A x = load(s, j) * (ri * r[j]);
    xs[j] = x;
    const bool pos = keys[j] == ki;
    const A lp = std::max(hi - x, A(0)) * (lo - x) * gamma;
    const A ln = std::max(x + m, A(0)) * (x - m) * gamma;
    const A l = pos ? lp : ln;
    z[j] = l;
    // selects of values, not std::max's references: GCC if-converted
    // `c ? std::max(a, l) : a` into masked loads through a stack address
    const A lp_in = pos && j != i ? l : ninf;
    const A ln_in = pos ? ninf : l;
    max_p = max_p > lp_in ? max_p : lp_in;
    max_n = max_n > ln_in ? max_n : ln_in;
  }
  A sum_p = 0, sum_n = 0;
  if (e != nullptr) {
#pragma omp simd reduction(+ : sum_p, sum_n)
    for (int64_t j = 0; j < n; ++j) {
      const bool pos = keys[j] == ki;
      const A x = exp_nonpos(z[j] - (pos ? max_p : max_n));
      const A v = j == i ? A(0) : x;
      e[j] = v;
      sum_p += pos ? v : A(0);
      sum_n += pos ? A(0) : v;
    }
  } else {
#pragma omp simd reduction(+ : sum_p, sum_n)
    for (int64_t j = 0; j < n; ++j) {
      const bool pos = keys[j] == ki;
      const A x = exp_nonpos(z[j] - (pos ? max_p : max_n));
      const A v = j == i ? A(0) : x;
      sum_p += pos ? v : A(0);
      sum_n += pos ? A(0) : v;
    }
  }
  st.sum_p = sum_p;
  st.sum_n = sum_n;
  st.lse_p = max_p + fast_log(sum_p);
  st.lse_n = max_n + fast_log(sum_n);
  return st;
}

inline bool parallel_rows(int64_t n) { return n * n >= kParallelMinWork; }

template <typename T> GLUONX_INLINE Acc<T> sample_weight_of(const MXTensor* sw, int64_t i) {
  if (sw == nullptr) return Acc<T>(1);
  return load(cdata<T>(*sw), sw->size() == 1 ? 0 : i);
}

template <typename T, typename K>
void circle_forward(const MXTensor& gt, const std::vector<K>& keys, const MXTensor* sw,
                    const CircleParams& p, T* out) {
  using A = Acc<T>;
  const int64_t n = gt.shape[0];
  const T* g = cdata<T>(gt);
  const std::vector<A> r = inverse_norms(g, n, p.normalize);
  const int threads = max_threads();
#pragma omp parallel num_threads(threads) if (parallel_rows(n))
  {
    std::vector<A> x(static_cast<size_t>(n)), z(static_cast<size_t>(n));
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const RowState<A> st = circle_row(g + i * n, r.data(), keys.data(), n, i, p, x.data(),
                                        z.data(), nullptr);
      const A f = st.live ? softplus(st.lse_p + st.lse_n) : A(0);
      store(out, i, f * sample_weight_of<T>(sw, i));
    }
  }
}

template <typename T, typename K>
void circle_backward(const T* ograd, const MXTensor& gt, const std::vector<K>& keys,
                     const MXTensor* sw, const CircleParams& p, T* dg, T* dsw) {
  using A = Acc<T>;
  const int64_t n = gt.shape[0];
  const T* g = cdata<T>(gt);
  const std::vector<A> r = inverse_norms(g, n, p.normalize);
  const int threads = max_threads();
  const bool par = parallel_rows(n);
  const A m = A(p.margin), gamma = A(p.gamma);
  const A hi = A(1.0 + p.margin), lo = A(1.0 - p.margin);
  const A keep = p.detach ? A(0) : A(1);
  std::vector<A> row_loss(static_cast<size_t>(n), A(0));
  // with normalize: sum_j ds_ij s_ij per row, and per thread its column sums
  std::vector<A> row_sum(p.normalize ? n : 0, A(0));
  std::vector<std::vector<A>> col_sum(p.normalize ? (par ? threads : 1) : 0,
                                      std::vector<A>(static_cast<size_t>(n), A(0)));
#pragma omp parallel num_threads(threads) if (par)
  {
    std::vector<A> x(static_cast<size_t>(n)), z(static_cast<size_t>(n)), e(static_cast<size_t>(n));
    A* col = p.normalize ? col_sum[thread_id()].data() : nullptr;
    RowWriter<T> writer(dg, n * n, n);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const RowState<A> st = circle_row(g + i * n, r.data(), keys.data(), n, i, p, x.data(),
                                        z.data(), e.data());
      T* gi = writer.row(i * n);
      if (!st.live) {
        for (int64_t j = 0; j < n; ++j) store(gi, j, A(0));
        writer.flush(n);
        continue;
      }
      const A zi = st.lse_p + st.lse_n;
      row_loss[i] = softplus(zi);
      const A c = load(ograd, i) * sample_weight_of<T>(sw, i) * sigmoid(zi);
      const A cp = c / st.sum_p, cn = c / st.sum_n;
      const A ri = r[i];
      const K ki = keys[i];
      A acc = 0;
#pragma omp simd reduction(+ : acc)
      for (int64_t j = 0; j < n; ++j) {
        const A xj = x[j];
        const bool pos = keys[j] == ki;
        // d lp / ds = -gamma (relu(hi - s) + [hi - s > 0] (lo - s)), the second
        // term only when the weights are differentiated; likewise d ln / ds
        const A ap = hi - xj;
        const A dlp = -gamma * (std::max(ap, A(0)) + (ap > A(0) ? keep * (lo - xj) : A(0)));
        const A an = xj + m;
        const A dln = gamma * (std::max(an, A(0)) + (an > A(0) ? keep * (xj - m) : A(0)));
        const A d = e[j] * (pos ? cp * dlp : cn * dln);   // e is 0 on the diagonal
        store(gi, j, d * (ri * r[j]));
        if (p.normalize) {
          const A t = d * xj;
          acc += t;
          col[j] += t;
        }
      }
      if (p.normalize) row_sum[i] = acc;
      writer.flush(n);
    }
  }
  if (p.normalize) {
    // the norms' share of the gradient goes to the diagonal (written after
    // the rows, whose streaming stores are fenced by now)
    for (int64_t i = 0; i < n; ++i) {
      const A gii = load(g, i * n + i);
      A total = row_sum[i];
      for (const auto& part : col_sum) total += part[i];
      store(dg, i * n + i, gii >= A(kCircleNormMin) ? -total / (A(2) * gii) : A(0));
    }
  }
  if (dsw != nullptr) {
    if (sw->size() == 1 && n != 1) {
      A total = 0;
      for (int64_t i = 0; i < n; ++i) total += load(ograd, i) * row_loss[i];
      store(dsw, 0, total);
    } else {
      for (int64_t i = 0; i < n; ++i) store(dsw, i, load(ograd, i) * row_loss[i]);
    }
  }
}

// The forward inputs (s, label, [sample_weight]) fit the operator.
bool circle_inputs_ok(const std::vector<MXTensor>& in, bool has_sw) {
  if (in.size() < (has_sw ? 3u : 2u)) return false;
  const MXTensor& s = in[0];
  if (s.shape.size() != 2 || s.shape[0] != s.shape[1] || s.shape[0] == 0) return false;
  const int64_t n = s.shape[0];
  const MXTensor& label = in[1];
  if (label.size() != n || !(is_float_dtype(label.dtype) || is_int_dtype(label.dtype))) {
    return false;
  }
  return !has_sw || (in[2].dtype == s.dtype && (in[2].size() == n || in[2].size() == 1));
}

MXReturnValue circle_check(const Attrs& attrs, const std::vector<MXTensor>& in) {
  if (!circle_inputs_ok(in, attr_flag(attrs, "has_sample_weight"))) {
    return fail(CircleOp::kName, "label or sample_weight does not fit s: s must be a square "
                "(N, N) similarity matrix, label N class labels of a numeric dtype, "
                "sample_weight N values (or one) of s's dtype");
  }
  const CircleParams p = circle_params(attrs);
  if (!std::isfinite(p.margin) || !(p.gamma > 0) || std::isinf(p.gamma)) {
    return fail(CircleOp::kName, "margin must be finite and gamma finite and > 0");
  }
  return MX_SUCCESS;
}

MXReturnValue circle_fwd(const Attrs& attrs, std::vector<MXTensor>* in,
                         std::vector<MXTensor>* out, const OpResource&) {
  if (circle_check(attrs, *in) != MX_SUCCESS) return MX_FAIL;
  const bool has_sw = attr_flag(attrs, "has_sample_weight");
  const CircleParams p = circle_params(attrs);
  return for_float(CircleOp::kName, (*in)[0].dtype, [&](auto t) {
    using T = decltype(t);
    with_keys((*in)[1], [&](const auto& keys) {
      circle_forward<T>((*in)[0], keys, has_sw ? &(*in)[2] : nullptr, p, (*out)[0].data<T>());
    });
  });
}

MXReturnValue circle_bwd(const Attrs& attrs, std::vector<MXTensor>* in,
                         std::vector<MXTensor>* out, const OpResource&) {
  // in: ograd, s, label, [sw], output; out: ds, dlabel, [dsw]
  const bool has_sw = attr_flag(attrs, "has_sample_weight");
  const std::vector<MXTensor> fwd = forward_inputs(*in, has_sw ? 3 : 2);
  if (fwd.empty() || circle_check(attrs, fwd) != MX_SUCCESS) return MX_FAIL;
  if (out->size() < (has_sw ? 3u : 2u) || (*out)[0].size() != fwd[0].size() ||
      (*in)[0].size() != fwd[0].shape[0]) {
    return fail(CircleOp::kName, "unexpected gradient shapes");
  }
  const CircleParams p = circle_params(attrs);
  zero_tensor(&(*out)[1]);
  return for_float(CircleOp::kName, fwd[0].dtype, [&](auto t) {
    using T = decltype(t);
    with_keys(fwd[1], [&](const auto& keys) {
      circle_backward<T>((*in)[0].data<T>(), fwd[0], keys, has_sw ? &fwd[2] : nullptr, p,
                         (*out)[0].data<T>(), has_sw ? (*out)[2].data<T>() : nullptr);
    });
  });
}

MXReturnValue circle_shape(const Attrs&, Shapes* in, Shapes* out) {
  if ((*in)[0].size() != 2 || (*in)[0][0] != (*in)[0][1]) {
    MX_ERROR_MSG << "gluonx kernel " << CircleOp::kName
                 << ": s does not fit: it must be a square (N, N) similarity matrix";
    return MX_FAIL;
  }
  (*out)[0] = {(*in)[0][0]};
  return MX_SUCCESS;
}

struct Registration {
  Registration() { register_op<CircleOp>(circle_fwd, circle_bwd, circle_shape); }
} registration;

}  // namespace
}  // namespace gluonx
