"""KL divergence (gluonx/loss/divergence.py)."""
import numpy as np

import gluonx.loss as L
import mxnet as mx

import reference as R
from cases import family_tests

CASES, test_value_and_gradient_match_reference, test_every_option_changes_the_answer = \
    family_tests("divergence")


def test_kldiv_sums_over_non_batch_axes_as_mxnet_1_9_1():
    rng = np.random.RandomState(0)
    pred = R.log_softmax(rng.standard_normal((3, 4, 5)), -1)
    label = np.exp(R.log_softmax(rng.standard_normal((3, 4, 5)), -1))
    ours = L.KLDivLoss()(mx.nd.array(pred), mx.nd.array(label)).asnumpy()
    theirs = mx.gluon.loss.KLDivLoss()(mx.nd.array(pred), mx.nd.array(label)).asnumpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)
    np.testing.assert_allclose(ours, R.ref_kldiv(pred, label)[1], rtol=1e-5)


def test_kldiv_zero_label_contributes_nothing():
    pred = np.log(np.array([[0.5, 0.5, 1e-30]]))
    label = np.array([[0.5, 0.5, 0.0]])
    out = L.KLDivLoss()(mx.nd.array(pred, dtype="float64"),
                        mx.nd.array(label, dtype="float64")).asnumpy()
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, [0.0], atol=1e-9)
