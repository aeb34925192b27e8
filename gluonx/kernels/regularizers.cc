// The AWD-LSTM regularisers' sums (gluonx/loss/language.py):
//   gluonx_step_sum_squares  s_t = sum_j (x_{t+1,j} - x_{t,j})^2 for t < T - 1,
//       x viewed as (T, D) with the time axis first (TemporalActivation-
//       RegularizationLoss; ActivationRegularizationLoss's sums of squares are
//       gluonx_row_sum_squares of generative.cc). The loss takes the mean of
//       the T - 1 sums over its elements in stock operators.
// Forward reads x once; backward reads it once and writes the gradient once:
//   dx_t = 2 (g_{t-1} d_{t-1} - g_t d_t),  d_t = x_{t+1} - x_t  (g_{-1} = g_{T-1} = 0).
#include "common.h"

namespace gluonx {
namespace {

struct StepSumSquaresOp {
  static constexpr const char* kName = "gluonx_step_sum_squares";
  static constexpr int kInputs = 1;
  static constexpr const char* kOptional = "";
  static constexpr const char* kAttrs = "";
};

bool steps_ok(const std::vector<MXTensor>& in) {
  return !in.empty() && !in[0].shape.empty() && in[0].shape[0] >= 2;
}

template <typename T> GLUONX_INLINE Acc<T> step_squares(const T* x, const T* next, int64_t D) {
  using A = Acc<T>;
  A s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < D; ++j) {
    const A d = load(next, j) - load(x, j);
    s += d * d;
  }
  return s;
}

MXReturnValue step_fwd(const Attrs&, std::vector<MXTensor>* in, std::vector<MXTensor>* out,
                       const OpResource&) {
  if (!steps_ok(*in)) return fail(StepSumSquaresOp::kName, "x needs at least 2 time steps");
  const MXTensor& x = (*in)[0];
  return for_float(StepSumSquaresOp::kName, x.dtype, [&](auto t) {
    using T = decltype(t);
    const int64_t T_ = x.shape[0], D = x.size() / T_;
    const T* p = cdata<T>(x);
    T* o = (*out)[0].data<T>();
#pragma omp parallel for schedule(static) num_threads(max_threads()) \
    if (x.size() >= kParallelMinWork)
    for (int64_t s = 0; s < T_ - 1; ++s) {
      prefetch_next_row(p, s + 1, T_, D);
      store(o, s, step_squares(p + s * D, p + (s + 1) * D, D));
    }
  });
}

MXReturnValue step_bwd(const Attrs&, std::vector<MXTensor>* in, std::vector<MXTensor>* out,
                       const OpResource&) {
  // in: ograd (T - 1), x, output; out: dx
  const std::vector<MXTensor> fwd = forward_inputs(*in, 1);
  if (!steps_ok(fwd) || (*in)[0].size() != fwd[0].shape[0] - 1 || out->empty()) {
    return fail(StepSumSquaresOp::kName, "x needs at least 2 time steps");
  }
  const MXTensor& x = fwd[0];
  return for_float(StepSumSquaresOp::kName, x.dtype, [&](auto t) {
    using T = decltype(t);
    using A = Acc<T>;
    const int64_t T_ = x.shape[0], D = x.size() / T_, total = x.size();
    const T *g = cdata<T>((*in)[0]), *p = cdata<T>(x);
    T* dx = (*out)[0].data<T>();
#pragma omp parallel num_threads(max_threads()) if (total >= kParallelMinWork)
    {
      RowWriter<T> w(dx, total, D);
#pragma omp for schedule(static)
      for (int64_t s = 0; s < T_; ++s) {
        // row s's gradient from the steps before (s - 1 -> s) and after (s -> s + 1)
        const A before = s > 0 ? A(2) * load(g, s - 1) : A(0);
        const A after = s < T_ - 1 ? A(2) * load(g, s) : A(0);
        const T* prev = p + (s > 0 ? s - 1 : s) * D;
        const T* cur = p + s * D;
        const T* next = p + (s < T_ - 1 ? s + 1 : s) * D;
        prefetch_next_row(p, s + 1, T_, D);
        T* o = w.row(s * D);
#pragma omp simd
        for (int64_t j = 0; j < D; ++j) {
          const A c = load(cur, j);
          store(o, j, before * (c - load(prev, j)) - after * (load(next, j) - c));
        }
        w.flush(D);
      }
    }
  });
}

MXReturnValue step_infer_shape(const Attrs&, Shapes* in, Shapes* out) {
  if ((*in)[0].empty() || (*in)[0][0] < 2) {
    MX_ERROR_MSG << "gluonx kernel " << StepSumSquaresOp::kName
                 << ": x needs at least 2 time steps along its first axis";
    return MX_FAIL;
  }
  (*out)[0] = {(*in)[0][0] - 1};
  return MX_SUCCESS;
}

struct Registration {
  Registration() {
    register_op<StepSumSquaresOp>(step_fwd, step_bwd, step_infer_shape);
  }
} registration;

}  // namespace
}  // namespace gluonx
