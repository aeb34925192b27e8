"""Parity with mxnet.gluon.loss 1.9.1 wherever mxnet is right: same values and
gradients on the same inputs (gluonx-only options and the fixed bugs excluded)."""
import numpy as np
import pytest

import gluonx.loss as L
import mxnet as mx

from cases import CASES, as_dtype, assert_close, head_for
from conftest import run_mode

GLUONX_ONLY = {"label_smoothing", "class_weight", "ignore_index", "epsilon", "reduction",
               "pos_weight", "log_target", "blank_label", "zero_infinity"}
# inputs mxnet cannot take or gets wrong (fixed in gluonx): see docs
MXNET_WRONG = {
    "L2-weight-None",                 # TypeError on None / 2
    "L2-sw-per-sample",               # (batch,) weights do not broadcast in mxnet
    "SoftmaxCE-sw-per-sample",
    "CosineEmbedding-margin-sw",      # (batch,) weight broadcasts to (batch, batch)
    "Triplet-margin-sw",              # no sample_weight in mxnet
    "SDML-smoothing-sw",
    "CTC-infeasible",                 # uninitialised gradients in mxnet
    "CTC-int32-labels-lengths",       # mxnet's CTC op rejects int32 lengths with float data
    "SoftmaxCE-valid_length",         # no valid_length input in mxnet
    "SoftmaxCE-valid_length-TNC",
}
PARITY = [c for c in CASES if c.id not in MXNET_WRONG and not GLUONX_ONLY & set(c.kwargs)
          and c.cls != "PoissonNLLLoss" and hasattr(mx.gluon.loss, c.cls)]


def _mx_factory(case):
    return lambda: getattr(mx.gluon.loss, case.cls)(**case.kwargs)


@pytest.mark.parametrize("hybridize", [False, True], ids=["imperative", "hybrid"])
@pytest.mark.parametrize("case", PARITY, ids=[c.id for c in PARITY])
def test_same_as_mxnet(case, hybridize):
    inputs = as_dtype(case.inputs(), "float32")
    ours = run_mode("imperative", case.factory(), inputs, case.grad)
    head = head_for(ours[0].shape)
    ours = run_mode("hybrid" if hybridize else "imperative", case.factory(), inputs, case.grad,
                    head=head)
    theirs = run_mode("imperative", _mx_factory(case), inputs, case.grad, head=head)
    value = theirs[0].reshape(-1) if case.cls == "CosineEmbeddingLoss" else theirs[0]
    assert_close(ours[0], value, (1e-5, 1e-6), case.id)
    for k in case.grad:
        assert_close(ours[1][k], theirs[1][k], (1e-4, 1e-6), "%s grad[%d]" % (case.id, k))


POISSON = [c for c in CASES if c.cls == "PoissonNLLLoss" and not c.kwargs.get("compute_full")
           and "epsilon" not in c.kwargs and c.kwargs.get("batch_axis", 0) == 0]


@pytest.mark.parametrize("case", POISSON, ids=[c.id for c in POISSON])
def test_poisson_mean_matches_mxnet_scalar(case):
    """mxnet's PoissonNLLLoss returns the mean over everything: gluonx's
    reduction='mean' (equal-sized samples) is that number."""
    inputs = as_dtype(case.inputs(), "float32")
    nds = [mx.nd.array(a) for a in inputs if a is not None]
    ours = L.PoissonNLLLoss(reduction="mean", **case.kwargs)(*nds).asnumpy()
    theirs = mx.gluon.loss.PoissonNLLLoss(**case.kwargs)(*nds).asnumpy()
    np.testing.assert_allclose(ours.reshape(-1), theirs.reshape(-1), rtol=1e-5)
    per_sample = L.PoissonNLLLoss(**case.kwargs)(*nds).asnumpy()
    np.testing.assert_allclose(per_sample.mean(), theirs.reshape(-1)[0], rtol=1e-5)


def test_cosine_mxnet_style_sample_weight_matches():
    rng = np.random.RandomState(0)
    a, b = rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
    label = np.array([1.0, -1.0, 1.0, -1.0, -1.0])
    sw = rng.uniform(0.5, 2, size=(5, 1))
    args = [mx.nd.array(x) for x in (a, b, label, sw)]
    ours = L.CosineEmbeddingLoss(margin=0.1)(*args).asnumpy()
    theirs = mx.gluon.loss.CosineEmbeddingLoss(margin=0.1)(*args).asnumpy()
    np.testing.assert_allclose(ours, theirs.reshape(-1), rtol=1e-5, atol=1e-7)
