"""The options PyTorch users expect on the existing losses, against torch 2.13.0
itself over their full grid, value and gradient, every reduction:

* SoftmaxCrossEntropyLoss: ignore_index, class_weight, label_smoothing, the
  valid_length input, with sparse and dense labels and the class axis last or 1
  (torch.nn.functional.cross_entropy with weight/ignore_index/label_smoothing);
* SigmoidBinaryCrossEntropyLoss: pos_weight (constructor and/or call input),
  label_smoothing (binary_cross_entropy_with_logits with pos_weight);
* KLDivLoss: log_target (kl_div with log_target);
* CTCLoss: blank_label, zero_infinity (ctc_loss with blank and zero_infinity).

The case table (tests/cases.py) has rows for these options too, so they also
run in all five modes there.
"""
import itertools

import numpy as np
import pytest

import gluonx.loss as L
import mxnet as mx
from mxnet import autograd

from cases import assert_close
from conftest import grid

torch = pytest.importorskip("torch")
TF = torch.nn.functional
from test_torch_oracle import length_mask, torch_sigmoid_bce, torch_softmax_ce  # noqa: E402

REDUCTIONS = ("sample", "mean", "sum", "none")
TOL = (1e-6, 1e-8)     # float64
CW = [0.5, 1.0, 2.0, 0.25, 1.5, 3.0]


def _t(a, grad=False):
    return None if a is None else torch.tensor(np.asarray(a, dtype=np.float64),
                                               requires_grad=grad)


def _ours(factory, inputs, grad, head, hybrid):
    """gluonx output and gradients of inputs[grad] (float64; None inputs skipped)."""
    nds = [None if a is None else mx.nd.array(a, dtype=a.dtype if a.dtype.kind != "f"
                                               else "float64") for a in inputs]
    while nds and nds[-1] is None:
        nds.pop()
    for k in grad:
        nds[k].attach_grad()
    loss = factory()
    if hybrid:
        loss.hybridize()
    with autograd.record():
        out = loss(*nds)
    out.backward(mx.nd.array(head.reshape(out.shape), dtype=out.dtype))
    return out.asnumpy(), {k: nds[k].grad.asnumpy() for k in grad}


def _theirs(fn, inputs, grad, head):
    x = [_t(a, k in grad) if a is not None and a.dtype.kind == "f" else
         (None if a is None else torch.tensor(a)) for k, a in enumerate(inputs)]
    out = fn(*x)
    if grad:
        out.backward(_t(head).reshape(out.shape))
    return out.detach().numpy(), {k: x[k].grad.numpy() for k in grad}


def _check(ours, theirs, what, tol=TOL):
    assert_close(ours[0], theirs[0], tol, what + " value")
    for k in theirs[1]:
        assert_close(ours[1][k], theirs[1][k], (tol[0] * 10, tol[1] * 10), what + " grad %d" % k)


def _per_sample(e, batch_axis, agg="mean"):
    axes = [a for a in range(e.dim()) if a != batch_axis]
    if not axes:
        return e
    return e.mean(dim=axes) if agg == "mean" else e.sum(dim=axes)


def _reduce(per_sample, reduction):
    if reduction == "mean":
        return per_sample.mean().reshape(1)
    if reduction == "sum":
        return per_sample.sum().reshape(1)
    return per_sample


# ---------------------------------------------------------------- softmax CE
SOFTMAX_GRID = grid(itertools.product(
    (True, False), (-1, 1), (None, 2), (None, CW), (0.0, 0.2), (False, True), REDUCTIONS,
    (False, True)))


def _softmax_inputs(sparse, axis, seed=0):
    rng = np.random.RandomState(seed)
    n, t, c = 3, 5, 6
    pred = rng.standard_normal((n, t, c))
    label = rng.randint(0, c, size=(n, t)).astype(np.float64)
    label[0, 1] = label[1, 0] = label[1, 3] = label[2, 0] = 2   # some positions ignored
    label[0, 0], label[1, 1] = 0, 3
    if not sparse:
        label = np.exp(rng.standard_normal((n, t, c)))
        label /= label.sum(-1, keepdims=True)
    if axis == 1:
        pred = pred.transpose(0, 2, 1).copy()
        if not sparse:
            label = label.transpose(0, 2, 1).copy()
    return pred, label, np.array([5, 2, 1], dtype=np.int32)


def _torch_softmax_ce(kw, reduction):
    def fn(pred, label, valid_length=None):
        e, keep = torch_softmax_ce(pred, label, kw, valid_length)
        if reduction == "none":
            return e
        if reduction == "mean":
            if kw.get("sparse_label", True) and (keep is not None or kw.get("class_weight")):
                # torch's own weighted mean over the kept positions
                axis = kw.get("axis", -1) % pred.dim()
                shape = pred.shape[:axis] + pred.shape[axis + 1:]
                target = label.reshape(shape).long()
                if keep is not None:
                    target = torch.where(keep, target, torch.full_like(target, -100))
                cw = None if kw.get("class_weight") is None else _t(kw["class_weight"])
                return TF.cross_entropy(torch.movedim(pred, axis, 1), target, weight=cw,
                                        label_smoothing=kw.get("label_smoothing", 0.0),
                                        reduction="mean").reshape(1)
            if keep is not None:
                return (e.sum() / keep.sum()).reshape(1)
            return e.mean().reshape(1)
        if keep is None:
            per_sample = _per_sample(e, 0)
        else:
            axes = list(range(1, e.dim()))
            per_sample = e.sum(dim=axes) / keep.double().sum(dim=axes).clamp(min=1)
        return _reduce(per_sample, reduction)
    return fn


@pytest.mark.parametrize("sparse, axis, ignore_index, class_weight, label_smoothing, "
                         "with_length, reduction, hybrid", SOFTMAX_GRID)
def test_softmax_ce_options_match_torch(sparse, axis, ignore_index, class_weight,
                                        label_smoothing, with_length, reduction, hybrid):
    kw = dict(sparse_label=sparse, axis=axis, ignore_index=ignore_index,
              class_weight=class_weight, label_smoothing=label_smoothing)
    pred, label, lengths = _softmax_inputs(sparse, axis)
    inputs = [pred, label] + ([None, lengths] if with_length else [])
    grad = (0,) if sparse else (0, 1)
    head = np.random.RandomState(1).uniform(0.5, 1.5, size={
        "none": (3, 5), "sample": (3,)}.get(reduction, (1,)))
    ours = _ours(lambda: L.SoftmaxCELoss(reduction=reduction, **kw), inputs, grad, head, hybrid)
    torch_inputs = [pred, label] + ([lengths.astype(np.int64)] if with_length else [])
    theirs = _theirs(_torch_softmax_ce(kw, reduction), torch_inputs, grad, head)
    _check(ours, theirs, "SoftmaxCE %s %s" % (kw, reduction))


def test_softmax_ce_masked_positions_have_zero_gradient_and_empty_sample_is_zero():
    pred, label, _ = _softmax_inputs(True, -1)
    label[1, :] = 2                                   # sample 1: every position ignored
    lengths = np.array([5, 2, 0], dtype=np.int32)     # sample 2: no valid step
    value, grads = _ours(lambda: L.SoftmaxCELoss(ignore_index=2), [pred, label, None, lengths],
                         (0,), np.ones(3), False)
    assert value[1] == 0 and value[2] == 0 and value[0] > 0
    masked = (label == 2) | (np.arange(5)[None, :] >= lengths[:, None])
    assert np.all(grads[0][masked] == 0) and np.all(grads[0][~masked] != 0)
    # the mean divides by the 3 valid positions of sample 0, not by all 15
    mean = L.SoftmaxCELoss(ignore_index=2, reduction="mean")(
        mx.nd.array(pred), mx.nd.array(label), None, mx.nd.array(lengths)).asnumpy()
    np.testing.assert_allclose(mean, [value[0]], rtol=1e-6)   # only sample 0 has valid steps
    nothing = L.SoftmaxCELoss(ignore_index=2, reduction="mean")(
        mx.nd.array(pred), mx.nd.array(np.full((3, 5), 2.0))).asnumpy()
    assert nothing[0] == 0   # torch: nan; gluonx: 0 (nothing to average)


def test_softmax_ce_without_the_options_is_mxnet():
    """The per-sample mean over positions of (N, T, C) is mxnet's without the options."""
    pred, label, _ = _softmax_inputs(True, -1)
    ours = L.SoftmaxCELoss()(mx.nd.array(pred), mx.nd.array(label)).asnumpy()
    theirs = mx.gluon.loss.SoftmaxCELoss()(mx.nd.array(pred), mx.nd.array(label)).asnumpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_softmax_ce_valid_length_labels_beyond_the_length_are_not_checked():
    pred, label, lengths = _softmax_inputs(True, -1)
    bad = label.copy()
    bad[1, 2:] = -1    # padding beyond valid_length 2
    out = L.SoftmaxCELoss()(mx.nd.array(pred), mx.nd.array(bad), None,
                            mx.nd.array(lengths)).asnumpy()
    ref = L.SoftmaxCELoss()(mx.nd.array(pred), mx.nd.array(label), None,
                            mx.nd.array(lengths)).asnumpy()
    np.testing.assert_allclose(out, ref)
    with pytest.raises(L.LossInputError, match="SoftmaxCrossEntropyLoss(?s:.*)label"):
        L.SoftmaxCELoss()(mx.nd.array(pred), mx.nd.array(bad)).asnumpy()


@pytest.mark.parametrize("args, what", [
    (lambda p, l: [p, l, None, mx.nd.array([5, 2])], "valid_length"),          # wrong batch
    (lambda p, l: [p, l, None, mx.nd.array([5, 2, 6])], "valid_length"),       # > T
    (lambda p, l: [p, l, None, mx.nd.array([5, 2, 1.5])], "valid_length"),     # not integer
    (lambda p, l: [p[:, 0], l[:, 0], None, mx.nd.array([1, 1, 1])], "valid_length"),  # 2 axes
])
def test_softmax_ce_bad_valid_length(args, what):
    pred, label, _ = _softmax_inputs(True, -1)
    with pytest.raises(L.LossInputError, match="SoftmaxCrossEntropyLoss(?s:.*)" + what):
        L.SoftmaxCELoss()(*args(mx.nd.array(pred), mx.nd.array(label))).asnumpy()


# ---------------------------------------------------------------- sigmoid BCE
PW = [0.5, 1.0, 2.0, 3.0, 1.5]
BCE_GRID = grid(itertools.product((False, True), ("none", "ctor", "call", "both"), (0.0, 0.1),
                                  REDUCTIONS, (False, True)))


@pytest.mark.parametrize("from_sigmoid, pos_weight, label_smoothing, reduction, hybrid",
                         BCE_GRID)
def test_sigmoid_bce_options_match_torch(from_sigmoid, pos_weight, label_smoothing, reduction,
                                         hybrid):
    rng = np.random.RandomState(2)
    pred = rng.uniform(0.05, 0.95, (4, 5)) if from_sigmoid else rng.standard_normal((4, 5)) * 2
    label = (rng.uniform(size=(4, 5)) < 0.5).astype(np.float64)
    call = rng.uniform(0.5, 3, (1, 5))
    ctor = PW if pos_weight in ("ctor", "both") else None
    kw = dict(from_sigmoid=from_sigmoid, label_smoothing=label_smoothing, pos_weight=ctor)
    inputs = [pred, label] + ([None, call] if pos_weight in ("call", "both") else [])
    head = rng.uniform(0.5, 1.5, size={"none": (4, 5), "sample": (4,)}.get(reduction, (1,)))
    ours = _ours(lambda: L.SigmoidBCELoss(reduction=reduction, **kw), inputs, (0,), head,
                 hybrid)

    def fn(pred, label, pw=None):
        e = torch_sigmoid_bce(pred, label, kw, pw)   # the call input wins
        return e if reduction == "none" else _reduce(_per_sample(e, 0), reduction)
    theirs = _theirs(fn, [pred, label] + ([call] if pos_weight in ("call", "both") else []),
                     (0,), head)
    _check(ours, theirs, "SigmoidBCE %s %s %s" % (kw, pos_weight, reduction))


def test_sigmoid_bce_pos_weight_ctor_matches_torch_module():
    """BCEWithLogitsLoss(pos_weight=...) itself, on (N, C) with one weight per class."""
    rng = np.random.RandomState(3)
    pred, label = rng.standard_normal((6, 5)), (rng.uniform(size=(6, 5)) < 0.5) * 1.0
    theirs = torch.nn.BCEWithLogitsLoss(pos_weight=_t(PW))(_t(pred), _t(label)).item()
    ours = L.SigmoidBCELoss(pos_weight=PW, reduction="mean")(
        mx.nd.array(pred, dtype="float64"), mx.nd.array(label, dtype="float64")).asnumpy()
    np.testing.assert_allclose(ours, [theirs], rtol=1e-6)
    assert L.SigmoidBCELoss(pos_weight=PW).get_config()["pos_weight"] == PW
    with pytest.raises(L.LossInputError, match="SigmoidBinaryCrossEntropyLoss(?s:.*)pos_weight"):
        L.SigmoidBCELoss(pos_weight=[1.0, 2.0])(mx.nd.array(pred), mx.nd.array(label))
    with pytest.raises(L.LossInputError, match="SigmoidBinaryCrossEntropyLoss(?s:.*)smoothing"):
        L.SigmoidBCELoss(label_smoothing=1.5)


# ---------------------------------------------------------------- KL divergence
KL_GRID = grid(itertools.product((False, True), (True, False), REDUCTIONS, (False, True)))


@pytest.mark.parametrize("log_target, from_logits, reduction, hybrid", KL_GRID)
def test_kldiv_log_target_matches_torch(log_target, from_logits, reduction, hybrid):
    rng = np.random.RandomState(4)
    pred = rng.standard_normal((4, 6))
    if from_logits:
        pred = pred - np.log(np.exp(pred).sum(-1, keepdims=True))
    target = rng.standard_normal((4, 6))
    target = target - np.log(np.exp(target).sum(-1, keepdims=True))
    if not log_target:
        target = np.exp(target)
        target[0, 0] = 0.0   # a zero probability contributes 0
    kw = dict(log_target=log_target, from_logits=from_logits)
    head = rng.uniform(0.5, 1.5, size={"none": (4, 6), "sample": (4,)}.get(reduction, (1,)))
    ours = _ours(lambda: L.KLDivLoss(reduction=reduction, **kw), [pred, target], (0, 1), head,
                 hybrid)

    def fn(pred, target):
        logq = pred if from_logits else TF.log_softmax(pred, -1)
        e = TF.kl_div(logq, target, reduction="none", log_target=log_target)
        return e if reduction == "none" else _reduce(_per_sample(e, 0, "sum"), reduction)
    grad = (0, 1) if log_target else (0,)   # d/dq at q = 0 differs (log 0): values only there
    theirs = _theirs(fn, [pred, target], grad, head)
    ours = (ours[0], {k: ours[1][k] for k in grad})
    _check(ours, theirs, "KLDiv %s %s" % (kw, reduction))


# ---------------------------------------------------------------- CTC
CTC_GRID = grid(itertools.product(("last", "first"), (False, True), (False, True),
                                  ("NTC", "TNC"), (False, True), ("sample", "mean", "sum"),
                                  (False, True)))


@pytest.mark.parametrize("blank_label, zero_infinity, lengths, layout, infeasible, reduction, "
                         "hybrid", CTC_GRID)
def test_ctc_options_match_torch(blank_label, zero_infinity, lengths, layout, infeasible,
                                 reduction, hybrid):
    rng = np.random.RandomState(5)
    n, t, c = 3, 4 if infeasible else 8, 5
    first = blank_label == "first"
    pred = rng.standard_normal((n, t, c))
    label = rng.randint(1 if first else 0, c if first else c - 1, size=(n, 3)).astype(float)
    label_lengths = np.array([3, 2, 1])
    if infeasible:
        label[0] = label[0, 0]        # three equal symbols need 5 frames > 4
    pad = 0.0 if first else -1.0
    label_in = label.copy()
    for i, k in enumerate(label_lengths):
        label_in[i, k:] = pad
    frames = np.array([t, t - 1, 2])
    inputs = [pred if layout == "NTC" else pred.transpose(1, 0, 2).copy(), label_in,
              frames.astype(np.float64) if lengths else None,
              label_lengths.astype(np.float64) if lengths else None]
    head = rng.uniform(0.5, 1.5, size=(n,) if reduction == "sample" else (1,))
    kw = dict(blank_label=blank_label, zero_infinity=zero_infinity, layout=layout)
    ours = _ours(lambda: L.CTCLoss(reduction=reduction, **kw), inputs, (0,), head, hybrid)

    def fn(zi):
        def run(x):
            logp = TF.log_softmax(x if layout == "TNC" else x.transpose(0, 1), -1)
            e = TF.ctc_loss(logp, torch.tensor(label).long(),
                            torch.tensor(frames if lengths else np.full(n, t)),
                            torch.tensor(label_lengths), blank=0 if first else c - 1,
                            reduction="none", zero_infinity=zi)
            return _reduce(e, reduction)
        return run
    value = _theirs(fn(zero_infinity), inputs[:1], (), head)[0]
    grads = _theirs(fn(True), inputs[:1], (0,), head)[1]   # infeasible: gradient 0 in both
    # computed in float32 (MXNet's CTC operator), as the CTC rows of the case table
    _check(ours, (value, grads), "CTC %s %s lengths=%s" % (kw, reduction, lengths), (2e-4, 2e-5))


def test_ctc_bad_blank_label():
    with pytest.raises(L.LossInputError, match="CTCLoss(?s:.*)blank_label"):
        L.CTCLoss(blank_label="middle")
    with pytest.raises(L.LossInputError, match="CTCLoss(?s:.*)label"):
        L.CTCLoss(blank_label="first")(mx.nd.zeros((2, 6, 4)),
                                       mx.nd.array([[1, 4], [2, 3]])).asnumpy()
