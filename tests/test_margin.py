"""Multi-class and multi-label hinge, soft margin (gluonx/loss/margin.py)."""
import numpy as np
import pytest

import gluonx
import gluonx.loss as L
import mxnet as mx
from gluonx import kernels

import reference as R
from cases import family_tests

CASES, test_value_and_gradient_match_reference, test_every_option_changes_the_answer = \
    family_tests("margin")


def test_multilabel_margin_ignores_entries_after_the_first_padding():
    pred = np.random.RandomState(0).standard_normal((2, 4))
    a = np.array([[1., -1., 2., 3.], [0., 3., -1., 0.]])
    b = np.array([[1., -1., -1., -1.], [0., 3., -1., 2.]])
    loss = L.MultiLabelMarginLoss()
    np.testing.assert_allclose(loss(mx.nd.array(pred), mx.nd.array(a)).asnumpy(),
                               loss(mx.nd.array(pred), mx.nd.array(b)).asnumpy())
    np.testing.assert_allclose(loss(mx.nd.array(pred), mx.nd.array(a)).asnumpy(),
                               R.ref_multilabel_margin(pred, a)[1], rtol=1e-5)


def test_multi_margin_excludes_the_labelled_class():
    """x = [0, 0]: only the other class counts, (margin - 0 + 0) / C = 0.5."""
    out = L.MultiMarginLoss()(mx.nd.zeros((1, 2)), mx.nd.array([1])).asnumpy()
    np.testing.assert_allclose(out, [0.5])


# ------------------------------------------------------ the fused operators --

needs_kernels = pytest.mark.skipif(not kernels.available(), reason="kernels not built")

_MULTI_MARGIN = "gluonx_multi_margin_loss"
_MULTILABEL_MARGIN = "gluonx_multilabel_margin_loss"


def _op_call(name, pred, label, record=False):
    attrs = {"has_sample_weight": "0"}
    if name == _MULTI_MARGIN:
        attrs.update(p="1", margin="1", has_class_weight="0")
    pred, label = mx.nd.array(pred), mx.nd.array(label)
    pred.attach_grad()
    with mx.autograd.record(record):
        out = getattr(mx.nd, name)(pred, label, **attrs)
    if record:
        out.backward()
    mx.nd.waitall()
    return out.asnumpy(), pred.grad.asnumpy()


def _drain():
    try:
        mx.nd.waitall()
    except mx.base.MXNetError:
        pass


BAD_LABELS = [
    pytest.param(_MULTI_MARGIN, np.array([0., 6., 1.]), "outside", id="multi-too-big"),
    pytest.param(_MULTI_MARGIN, np.array([0., -1., 1.]), "outside", id="multi-negative"),
    pytest.param(_MULTI_MARGIN, np.array([0., np.nan, 1.]), "outside", id="multi-nan"),
    pytest.param(_MULTI_MARGIN, np.array([0., 1.]), "one class index", id="multi-short"),
    pytest.param(_MULTILABEL_MARGIN, np.array([[0., 1., -1., 2., 3., 4.],
                                               [6., -1., 0., 0., 0., 0.],
                                               [-1., 0., 0., 0., 0., 0.]]), ">= C",
                 id="multilabel-too-big"),
    pytest.param(_MULTILABEL_MARGIN, np.zeros((3, 5)), "does not fit|shape",
                 id="multilabel-shape"),
]


@needs_kernels
@pytest.mark.parametrize("record", [False, True], ids=["forward", "backward"])
@pytest.mark.parametrize("name,label,message", BAD_LABELS)
def test_operators_fail_cleanly_on_bad_labels(name, label, message, record):
    """A class index out of range fails the operator, forward and (MXNet runs
    it even after a failed forward) backward, and the next call is fine."""
    pred = np.random.RandomState(0).standard_normal((3, 6))
    with pytest.raises(mx.base.MXNetError, match=message):
        _op_call(name, pred, label, record)
    _drain()
    good = np.array([0., 5., 2.]) if name == _MULTI_MARGIN else np.full((3, 6), -1.)
    out, _ = _op_call(name, pred, good, True)
    assert np.isfinite(out).all()


@needs_kernels
def test_multilabel_operator_ignores_entries_after_the_first_padding():
    """Entries after a row's first -1 are never read as classes (an index >= C
    there is not an error, as in the stock path and PyTorch)."""
    rng = np.random.RandomState(1)
    pred = rng.standard_normal((2, 5))
    a = np.array([[1., -1., 9., 9., 9.], [0., 3., -1., -7., 100.]])
    b = np.array([[1., -1., -1., -1., -1.], [0., 3., -1., -1., -1.]])
    out_a, grad_a = _op_call(_MULTILABEL_MARGIN, pred, a, True)
    out_b, grad_b = _op_call(_MULTILABEL_MARGIN, pred, b, True)
    np.testing.assert_allclose(out_a, R.ref_multilabel_margin(pred, b)[1], rtol=1e-5)
    np.testing.assert_allclose(out_a, out_b)
    np.testing.assert_allclose(grad_a, grad_b)


@needs_kernels
def test_bad_label_with_value_checks_off_is_an_error_not_a_number(check_values_off):
    """With gluonx's value checks off the operator's own check still stops a
    class index out of range (the stock path would clip it)."""
    gluonx.config.use_kernels = True
    pred = mx.nd.array(np.random.RandomState(2).standard_normal((3, 4)))
    with pytest.raises(mx.base.MXNetError, match="outside"):
        L.MultiMarginLoss()(pred, mx.nd.array([0., 4., 1.])).asnumpy()
    _drain()
    with pytest.raises(mx.base.MXNetError, match=">= C"):
        L.MultiLabelMarginLoss()(pred, mx.nd.array([[0., 4., -1., 1.]] * 3)).asnumpy()
    _drain()


@needs_kernels
def test_multilabel_margin_at_many_classes_is_fused_and_linear_in_memory():
    """64 x 4000 with 3 targets per row: the stock path's pairs would be 64 x
    4000 x 4000 values (8 GB in float64); the kernel needs one row of mask."""
    rng = np.random.RandomState(3)
    N, C = 64, 4000
    pred = rng.standard_normal((N, C))
    label = -np.ones((N, C))
    for i in range(N):
        label[i, :3] = rng.permutation(C)[:3]
    kernels.reset_calls()
    gluonx.config.use_kernels = True
    p = mx.nd.array(pred, dtype="float64")
    p.attach_grad()
    with mx.autograd.record():
        out = L.MultiLabelMarginLoss()(p, mx.nd.array(label))
    out.backward()
    assert kernels.calls() == {_MULTILABEL_MARGIN: 1}
    # closed form per row: listed j, unlisted i, relu(1 - x_j + x_i) / C
    want = np.empty(N)
    grad = np.zeros((N, C))
    for i in range(N):
        listed = label[i, :3].astype(int)
        others = np.setdiff1d(np.arange(C), listed)
        z = 1 - pred[i, listed][:, None] + pred[i, others][None, :]
        want[i] = np.maximum(z, 0).sum() / C
        on = (z > 0) / C / N   # the head of 'sample' then the batch mean is 1/N
        np.add.at(grad[i], others, on.sum(0))
        np.add.at(grad[i], listed, -on.sum(1))
    np.testing.assert_allclose(out.asnumpy(), want, rtol=1e-10)
    p2 = mx.nd.array(pred, dtype="float64")
    p2.attach_grad()
    with mx.autograd.record():
        mean = L.MultiLabelMarginLoss(reduction="mean")(p2, mx.nd.array(label))
    mean.backward()
    np.testing.assert_allclose(p2.grad.asnumpy(), grad, rtol=1e-10, atol=1e-15)


@needs_kernels
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_torch_namespace_wrappers_run_the_kernels(reduction):
    """gluonx.loss.torch's wrappers are per-sample losses: every PyTorch
    reduction runs the fused operator (and gives the stock path's numbers)."""
    from gluonx.loss import torch as T
    rng = np.random.RandomState(4)
    pred = rng.standard_normal((5, 4))
    calls = [(T.MultiMarginLoss(p=2, weight=[1., 2., .5, 3.], reduction=reduction),
              np.array([0., 3., 1., 2., 2.]), _MULTI_MARGIN),
             (T.MultiLabelMarginLoss(reduction=reduction),
              np.array([[0., 3., -1., 1.], [1., -1., 0., 0.], [-1., 0., 0., 0.],
                        [0., 1., 2., 3.], [2., 2., -1., 0.]]), _MULTILABEL_MARGIN)]
    for loss, label, op in calls:
        results = []
        for use in (True, False):
            gluonx.config.use_kernels = use
            kernels.reset_calls()
            p = mx.nd.array(pred)
            p.attach_grad()
            with mx.autograd.record():
                out = loss(p, mx.nd.array(label))
            out.backward()
            results.append((out.asnumpy(), p.grad.asnumpy()))
            assert kernels.calls() == ({op: 1} if use else {})
        np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5)
        np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-5, atol=1e-7)


def _rounded16(*arrays):
    """Inputs every dtype represents exactly (so one float64 reference fits all)."""
    return [a.astype(np.float16).astype(np.float64) for a in arrays]


OP_ROWS = [
    pytest.param(_MULTI_MARGIN, {"p": 1, "margin": 1.0}, False, id="multi-p1"),
    pytest.param(_MULTI_MARGIN, {"p": 2, "margin": 0.7}, True, id="multi-p2-class_weight"),
    pytest.param(_MULTILABEL_MARGIN, {}, False, id="multilabel"),
]


@needs_kernels
@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
@pytest.mark.parametrize("sw_shape", [None, (7, 1), (1,)])
@pytest.mark.parametrize("name,options,with_cw", OP_ROWS)
def test_operators_in_every_dtype(name, options, with_cw, sw_shape, dtype):
    """The operators themselves (the loss classes compute float16 in float32,
    so only this reaches their float16 code): value, pred's gradient and
    sample_weight's against the reference and its finite differences."""
    rng = np.random.RandomState(5)
    C = 9
    pred, = _rounded16(rng.standard_normal((7, C)) * 2)
    if name == _MULTI_MARGIN:
        label = rng.randint(0, C, 7).astype(np.float64)
    else:
        label = -np.ones((7, C))
        for i, k in enumerate((0, 1, 2, 3, 5, 9, 2)):
            label[i, :k] = rng.permutation(C)[:k]
    sw = None if sw_shape is None else _rounded16(rng.uniform(0.5, 2, sw_shape))[0]
    cw = _rounded16(rng.uniform(0.25, 2, C))[0] if with_cw else None
    head = _rounded16(rng.uniform(0.5, 1.5, 7))[0]

    def ref(p, w):
        kw = dict(options, class_weight=cw) if name == _MULTI_MARGIN else {}
        fn = R.ref_multi_margin if name == _MULTI_MARGIN else R.ref_multilabel_margin
        return fn(p, label, None if w is None else np.broadcast_to(w, (7, 1)), **kw)[1]

    want = ref(pred, sw)
    grads = R.numeric_grad(ref, [pred, sw], (0,) if sw is None else (0, 1), head)
    attrs = {"has_sample_weight": "0" if sw is None else "1"}
    if name == _MULTI_MARGIN:
        attrs.update(p=repr(float(options["p"])), margin=repr(options["margin"]),
                     has_class_weight="1" if with_cw else "0")
    args = [mx.nd.array(pred, dtype=dtype), mx.nd.array(label, dtype="int32")]
    args += [mx.nd.array(a, dtype=dtype) for a in (sw, cw) if a is not None]
    for a in args:
        a.attach_grad()
    with mx.autograd.record():
        out = getattr(mx.nd, name)(*args, **attrs)
    out.backward(mx.nd.array(head, dtype=dtype))
    tol = {"float64": 1e-7, "float32": 1e-5, "float16": 2e-2}[dtype]
    np.testing.assert_allclose(out.asnumpy().astype(np.float64), want, rtol=tol, atol=tol)
    np.testing.assert_allclose(args[0].grad.asnumpy().astype(np.float64), grads[0],
                               rtol=tol, atol=max(tol, 1e-6))
    if sw is not None:
        np.testing.assert_allclose(args[2].grad.asnumpy().astype(np.float64), grads[1],
                                   rtol=tol, atol=max(tol, 1e-6))
