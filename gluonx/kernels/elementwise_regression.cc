// Regression losses on the elementwise loops: L2, L1, Huber, Poisson NLL, MSE,
// Gaussian NLL.
#include "elementwise.h"

namespace gluonx {
namespace elementwise {
namespace {

struct Registration {
  Registration() {
    register_loss<L2Op>();
    register_loss<L1Op>();
    register_loss<HuberOp>();
    register_loss<PoissonNLLOp>();
    register_loss<MSEOp>();
    register_loss<GaussianNLLOp>();
  }
} registration;

}  // namespace
}  // namespace elementwise
}  // namespace gluonx
