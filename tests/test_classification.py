"""Sigmoid BCE, softmax CE, hinge, squared hinge, logistic (gluonx/loss/classification.py)."""
import numpy as np
import pytest

import gluonx.loss as L
import mxnet as mx
from mxnet import autograd

import reference as R
from cases import family_tests, fix_tests
from conftest import run_mode

CASES, test_value_and_gradient_match_reference, test_every_option_changes_the_answer = \
    family_tests("classification")


def test_aliases():
    assert L.SigmoidBCELoss is L.SigmoidBinaryCrossEntropyLoss
    assert L.SoftmaxCELoss is L.SoftmaxCrossEntropyLoss


# ---------------------------------------------------------------- fixes over mxnet 1.9.1
LABELS = np.array([[0.0, 1.0, 1.0, 0.0, 0.3], [1.0, 0.0, 0.5, 1.0, 0.0]])


def _grad_at_zero_logit(loss, label, ctx, *extra):
    x = mx.nd.zeros(label.shape, ctx=ctx)
    x.attach_grad()
    with autograd.record():
        out = loss(x, mx.nd.array(label, ctx=ctx), *extra)
    out.backward()
    return x.grad.asnumpy()


def sigmoid_bce_grad_at_zero_fix(loss_module, ctx=mx.cpu()):
    """d/dx at x = 0 is sigmoid(0) - label (divided by the 5 elements averaged)."""
    grad = _grad_at_zero_logit(loss_module.SigmoidBCELoss(), LABELS, ctx)
    np.testing.assert_allclose(grad, (0.5 - LABELS) / 5, rtol=1e-6, atol=1e-7)


def logistic_grad_at_zero_fix(loss_module, ctx=mx.cpu()):
    signed = 2 * np.round(LABELS) - 1
    grad = _grad_at_zero_logit(loss_module.LogisticLoss(), signed, ctx)
    np.testing.assert_allclose(grad, (0.5 - np.round(LABELS)) / 5, rtol=1e-6, atol=1e-7)


def logistic_binary_grad_at_zero_fix(loss_module, ctx=mx.cpu()):
    bits = np.round(LABELS)
    grad = _grad_at_zero_logit(loss_module.LogisticLoss(label_format="binary"), bits, ctx)
    np.testing.assert_allclose(grad, (0.5 - bits) / 5, rtol=1e-6, atol=1e-7)


def softmax_ce_float16_fix(loss_module, ctx=mx.cpu()):
    """float16 logits over 100,000 classes: within 0.01 nats of float64."""
    rng = np.random.RandomState(0)
    logits = (rng.standard_normal((4, 100000)) * 2).astype(np.float16)
    label = rng.randint(0, 100000, size=4).astype(np.float64)
    out = loss_module.SoftmaxCELoss()(mx.nd.array(logits, ctx=ctx, dtype="float16"),
                                      mx.nd.array(label, ctx=ctx)).asnumpy()
    ref = R.ref_softmax_ce(logits.astype(np.float64), label)[1]
    assert np.max(np.abs(out.astype(np.float64) - ref)) < 0.01, (out, ref)


FIXES = [sigmoid_bce_grad_at_zero_fix, logistic_grad_at_zero_fix,
         logistic_binary_grad_at_zero_fix, softmax_ce_float16_fix]


test_fix, test_fix_fails_on_mxnet_1_9_1 = fix_tests(FIXES)


@pytest.mark.parametrize("mode", ["imperative", "hybrid", "symbol", "export"])
def test_sigmoid_bce_pos_weight_grad_at_zero_logit(mode, tmp_path):
    """With pos_weight p: d/dx at 0 = (1 - y) * 0.5 - p * y * 0.5."""
    pw = np.array([[1.0, 2.0, 3.0, 0.5, 1.5]])
    value, grads = run_mode(mode, lambda: L.SigmoidBCELoss(), [np.zeros((2, 5)), LABELS, None, pw],
                            grad=(0,), tmpdir=tmp_path)
    np.testing.assert_allclose(grads[0], ((1 - LABELS) * 0.5 - pw * LABELS * 0.5) / 5,
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(value, R.ref_sigmoid_bce(np.zeros((2, 5)), LABELS,
                                                        pos_weight=pw)[1], rtol=1e-6)


@pytest.mark.parametrize("mode", ["hybrid", "symbol", "export"])
def test_grad_at_zero_logit_in_graph_modes(mode, tmp_path):
    for factory, label in ((lambda: L.SigmoidBCELoss(), LABELS),
                           (lambda: L.LogisticLoss(label_format="binary"), np.round(LABELS))):
        _, grads = run_mode(mode, factory, [np.zeros((2, 5)), label], grad=(0,), tmpdir=tmp_path)
        np.testing.assert_allclose(grads[0], (0.5 - label) / 5, rtol=1e-6, atol=1e-7)


def test_softmax_ce_float16_large_vocab_hybridized():
    rng = np.random.RandomState(1)
    logits = (rng.standard_normal((2, 100000)) * 2).astype(np.float16)
    label = rng.randint(0, 100000, size=2).astype(np.float32)
    value, grads = run_mode("hybrid", lambda: L.SoftmaxCELoss(), [logits, label], grad=(0,))
    ref = R.ref_softmax_ce(logits.astype(np.float64), label)[1]
    assert np.max(np.abs(value.astype(np.float64) - ref)) < 0.01
    assert grads[0].dtype == np.float16 and np.all(np.isfinite(grads[0]))


def test_softmax_ce_integer_labels():
    """Sparse labels may be given as an integer array."""
    rng = np.random.RandomState(2)
    pred = rng.standard_normal((4, 6)).astype(np.float32)
    label = rng.randint(0, 6, size=4)
    out = L.SoftmaxCELoss()(mx.nd.array(pred), mx.nd.array(label, dtype="int32")).asnumpy()
    np.testing.assert_allclose(out, R.ref_softmax_ce(pred, label)[1], rtol=1e-5)


def test_softmax_ce_ignore_index_has_zero_gradient():
    rng = np.random.RandomState(3)
    pred = rng.standard_normal((4, 5))
    label = np.array([1.0, 4.0, 1.0, 0.0])
    _, grads = run_mode("imperative", lambda: L.SoftmaxCELoss(ignore_index=1), [pred, label],
                        grad=(0,))
    assert np.all(grads[0][[0, 2]] == 0)
    assert np.all(grads[0][[1, 3]] != 0)


def test_sigmoid_bce_from_sigmoid_extremes_finite():
    """Probabilities of exactly 0 and 1 with matching labels give finite numbers."""
    pred = np.array([[0.0, 1.0, 0.5]])
    label = np.array([[0.0, 1.0, 1.0]])
    value, grads = run_mode("imperative", lambda: L.SigmoidBCELoss(from_sigmoid=True),
                            [pred, label], grad=(0,))
    assert np.all(np.isfinite(value))
    np.testing.assert_allclose(value, [np.log(2) / 3], rtol=1e-5)


# ---------------------------------------------------------------- categorical hinge, GCE
def test_categorical_hinge_counts_the_target_slot_as_zero_like_keras():
    """Keras takes max over (1 - y) * pred, so with every other score negative
    the 'best wrong score' is the target slot's 0."""
    out = L.CategoricalHingeLoss()(mx.nd.array([[-1.0, -2.0, -3.0]]),
                                   mx.nd.array([[0.0, 0.0, 1.0]]))
    np.testing.assert_allclose(out.asnumpy(), [4.0])


def test_generalized_ce_limits():
    """q = 1: 1 - p_y; q -> 0: the softmax cross-entropy."""
    rng = np.random.RandomState(0)
    x, y = rng.standard_normal((5, 4)), np.array([0.0, 3.0, 1.0, 1.0, 2.0])
    p_y = np.exp(R.log_softmax(x, -1))[np.arange(5), y.astype(int)]
    mae = L.GeneralizedCELoss(q=1.0)(mx.nd.array(x), mx.nd.array(y)).asnumpy()
    np.testing.assert_allclose(mae, 1 - p_y, rtol=1e-5)
    near_ce = L.GeneralizedCELoss(q=1e-4)(mx.nd.array(x, dtype="float64"),
                                          mx.nd.array(y)).asnumpy()
    np.testing.assert_allclose(near_ce, -np.log(p_y), rtol=1e-3)


def test_generalized_ce_from_softmax_matches_scores():
    rng = np.random.RandomState(1)
    x, y = rng.standard_normal((5, 4)), np.array([0.0, 3.0, 1.0, 1.0, 2.0])
    probs = np.exp(R.log_softmax(x, -1))
    a = L.GeneralizedCELoss(q=0.7)(mx.nd.array(x), mx.nd.array(y)).asnumpy()
    b = L.GeneralizedCELoss(q=0.7, from_softmax=True)(mx.nd.array(probs),
                                                      mx.nd.array(y)).asnumpy()
    np.testing.assert_allclose(a, b, rtol=1e-5)
