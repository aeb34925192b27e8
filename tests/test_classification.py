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


# ---------------------------------------------------------------- LinearSoftmaxCELoss
import itertools  # noqa: E402

from conftest import MODES, grid  # noqa: E402

LN, LD, LC = 9, 5, 11       # rows, in_units, classes (chunks of 4 rows: the last short)
LCW = list(np.random.RandomState(7).randint(4, 17, LC) / 8.0)   # exact in float32


def _lce_data(seed=0, shape=(LN,)):
    rng = np.random.RandomState(seed)
    x = rng.standard_normal(shape + (LD,))
    w = rng.standard_normal((LC, LD)) * 0.7
    b = rng.standard_normal(LC)
    y = rng.randint(0, LC, size=shape).astype(np.float64)
    y.flat[1] = y.flat[4] = 3     # rows with label 3 (the ignore_index of the grid)
    return x, w, b, y


def _lce_factory(w, b, **kw):
    def make():
        kw.setdefault("chunk_size", 4)
        loss = L.LinearSoftmaxCELoss(LD, LC, dtype="float64", **kw)
        loss.initialize()
        loss.weight.set_data(mx.nd.array(w, dtype="float64"))
        if kw.get("use_bias"):
            loss.bias.set_data(mx.nd.array(b, dtype="float64"))
        return loss
    return make


def _torch_lce(x, w, b, y, kw, reduction, head):
    """torch.nn.functional.linear + cross_entropy; value and grads of x, w, b."""
    torch = pytest.importorskip("torch")
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    cw = kw.get("class_weight")
    z = torch.nn.functional.linear(tx, tw, tb if kw.get("use_bias") else None)
    ignore = kw.get("ignore_index")
    target = torch.tensor(y).long()
    e = torch.nn.functional.cross_entropy(
        z.reshape(-1, LC), target.reshape(-1), weight=None if cw is None else torch.tensor(cw),
        ignore_index=-100 if ignore is None else ignore,
        label_smoothing=kw.get("label_smoothing", 0.0),
        reduction="mean" if reduction == "mean" else "none")
    if reduction != "mean":
        e = e.reshape(y.shape)
        if y.ndim > 1 or reduction in ("sample", "sum"):
            keep = torch.ones_like(e) if ignore is None else (target != ignore).double()
            if y.ndim > 1 and reduction != "none":
                e = e.sum(1) / keep.sum(1).clamp(min=1)
        if reduction == "sum":
            e = e.sum()
    out = e.reshape(np.shape(head))
    out.backward(torch.tensor(head))
    return (out.detach().numpy(), tx.grad.numpy(), tw.grad.numpy(),
            None if tb.grad is None else tb.grad.numpy())


LCE_GRID = grid(itertools.product((False, True), (None, LCW), (None, 3), (0.0, 0.2),
                                  ("sample", "mean", "sum", "none"), ("ones", "random"),
                                  (False, True)))




@pytest.mark.parametrize("use_bias, class_weight, ignore_index, label_smoothing, reduction, "
                         "head, small_blocks", LCE_GRID)
def test_linear_softmax_ce_matches_torch(use_bias, class_weight, ignore_index, label_smoothing,
                                         reduction, head, small_blocks):
    """Value and gradients w.r.t. the input, weight and bias against torch's
    linear + cross_entropy; 'random' output gradients take the recomputing
    backward; chunks of 4 rows or (automatic) one chunk of all rows."""
    kw = dict(use_bias=use_bias, class_weight=class_weight, ignore_index=ignore_index,
              label_smoothing=label_smoothing, chunk_size=4 if small_blocks else None)
    x, w, b, y = _lce_data()
    shape = (1,) if reduction in ("mean", "sum") else (LN,)
    g = np.ones(shape) if head == "ones" else np.random.RandomState(2).uniform(0.5, 1.5, shape)
    loss = _lce_factory(w, b, reduction=reduction, **kw)()
    nx = mx.nd.array(x, dtype="float64")
    nx.attach_grad()
    with autograd.record():
        out = loss(nx, mx.nd.array(y))
    out.backward(mx.nd.array(g, dtype="float64"))
    value, dx, dw, db = _torch_lce(x, w, b, y, kw, reduction, g)
    np.testing.assert_allclose(out.asnumpy(), value, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(nx.grad.asnumpy(), dx, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(loss.weight.grad().asnumpy(), dw, rtol=1e-7, atol=1e-10)
    if use_bias:
        np.testing.assert_allclose(loss.bias.grad().asnumpy(), db, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("mode", MODES)
def test_linear_softmax_ce_every_mode(mode, tmp_path):
    kw = dict(use_bias=True, class_weight=LCW, ignore_index=3, label_smoothing=0.1)
    x, w, b, y = _lce_data(1, shape=(3, 4))   # (batch, time, in_units)
    head = np.array([0.5, 1.0, 2.0])
    value, grads = run_mode(mode, _lce_factory(w, b, **kw), [x, y], grad=(0,), head=head,
                            tmpdir=tmp_path)
    ref, dx, _, _ = _torch_lce(x, w, b, y, kw, "sample", head)
    np.testing.assert_allclose(value, ref, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(grads[0], dx, rtol=1e-7, atol=1e-10)


def test_linear_softmax_ce_is_dense_plus_softmax_ce_and_float32():
    """float32, sample_weight, (batch, time) rows, recording outside training."""
    x, w, b, y = _lce_data(2, shape=(3, 4))
    sw = np.array([0.5, 1.0, 2.0])
    kw = dict(class_weight=LCW, ignore_index=3, label_smoothing=0.1)
    auto = dict(kw)
    fused = L.LinearSoftmaxCELoss(LD, LC, use_bias=True, chunk_size=5, **auto)
    fused.initialize()
    fused.weight.set_data(mx.nd.array(w))
    fused.bias.set_data(mx.nd.array(b))
    dense = mx.gluon.nn.Dense(LC, in_units=LD, flatten=False)
    dense.initialize()
    dense.weight.set_data(mx.nd.array(w))
    dense.bias.set_data(mx.nd.array(b))
    results = []
    for train in (True, False):
        for block in (fused, lambda a, t, s: L.SoftmaxCELoss(**kw)(dense(a), t, s)):
            nx = mx.nd.array(x)
            nx.attach_grad()
            with autograd.record(train_mode=train):
                out = block(nx, mx.nd.array(y), mx.nd.array(sw))
            out.backward()
            results.append((out.asnumpy(), nx.grad.asnumpy()))
    for got in (results[0], results[2]):
        np.testing.assert_allclose(got[0], results[1][0], rtol=1e-5)
        np.testing.assert_allclose(got[1], results[1][1], rtol=1e-4, atol=1e-6)
    assert out.dtype == np.float32


def test_linear_softmax_ce_bad_input():
    loss = L.LinearSoftmaxCELoss(LD, LC)
    loss.initialize()
    x = mx.nd.ones((4, LD))
    with pytest.raises(L.LossInputError, match="LinearSoftmaxCELoss(?s:.*)pred"):
        loss(mx.nd.ones((4, LD + 1)), mx.nd.zeros((4,)))
    with pytest.raises(L.LossInputError, match="LinearSoftmaxCELoss(?s:.*)label"):
        loss(x, mx.nd.zeros((5,)))
    with pytest.raises(L.LossInputError, match="LinearSoftmaxCELoss(?s:.*)label"):
        loss(x, mx.nd.array([0, 1, LC, 2])).asnumpy()
    with pytest.raises(L.LossInputError, match="LinearSoftmaxCELoss(?s:.*)class_weight"):
        L.LinearSoftmaxCELoss(LD, LC, class_weight=[1.0, 2.0])
    with pytest.raises(L.LossInputError, match="LinearSoftmaxCELoss(?s:.*)chunk_size"):
        L.LinearSoftmaxCELoss(LD, LC, chunk_size=0)
    cfg = L.LinearSoftmaxCELoss(LD, LC, use_bias=True, ignore_index=-1).get_config()
    assert cfg["in_units"] == LD and cfg["num_classes"] == LC and cfg["ignore_index"] == -1
