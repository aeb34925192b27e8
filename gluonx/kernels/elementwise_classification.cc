// Classification and divergence losses on the elementwise loops: hinge,
// squared hinge, logistic, sigmoid BCE, KL divergence on log-probabilities,
// soft margin, hinge embedding and margin ranking.
#include "elementwise.h"

namespace gluonx {
namespace elementwise {
namespace {

struct Registration {
  Registration() {
    register_loss<HingeOp>();
    register_loss<SquaredHingeOp>();
    register_loss<LogisticOp>();
    register_loss<SigmoidBCEOp>();
    register_loss<KLDivOp>();
    register_loss<SoftMarginOp>();
    register_loss<HingeEmbeddingOp>();
    register_loss<MarginRankingOp>();
  }
} registration;

}  // namespace
}  // namespace elementwise
}  // namespace gluonx
