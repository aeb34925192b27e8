// Regression losses on the elementwise loops: L2, L1, Huber, Poisson NLL, MSE.
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
  }
} registration;

}  // namespace
}  // namespace elementwise
}  // namespace gluonx
