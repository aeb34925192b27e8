"""Segmentation cross-entropy with an auxiliary head (gluonx/loss/pixelwise.py)."""
import numpy as np
import pytest

import gluonx.loss as L
import mxnet as mx
from mxnet import autograd

import oracles
import reference as R
from cases import _seg_labels, family_tests
from conftest import MODES, run_mode

CASES, test_value_and_gradient_match_reference, test_every_option_changes_the_answer = \
    family_tests("pixelwise")


@pytest.fixture(scope="module")
def gluoncv():
    module = oracles.gluoncv_loss()
    if module is None:
        pytest.skip("gluoncv is not installed (CI's Python 3.11 environment has it)")
    return module


def _inputs(seed, n=2, classes=5, size=(4, 6)):
    rng = np.random.RandomState(seed)
    pred = rng.standard_normal((n, classes) + size) * 2
    aux = rng.standard_normal((n, classes) + size) * 2
    return pred, aux, _seg_labels(rng, classes, n, *size)


@pytest.mark.parametrize("aux,aux_weight", [(True, 0.2), (True, 0.5), (False, 0.2)])
def test_values_match_gluoncv(gluoncv, aux, aux_weight, tmp_path):
    """GluonCV's values (imperative, where it runs), in every gluonx mode."""
    pred, aux_pred, label = (a.astype(np.float32) for a in _inputs(0))
    inputs = [pred, aux_pred, label] if aux else [pred, label]
    theirs = gluoncv.MixSoftmaxCrossEntropyLoss(aux=aux, aux_weight=aux_weight)(
        *[mx.nd.array(a) for a in inputs]).asnumpy()
    for mode in MODES:
        ours, _ = run_mode(mode, lambda: L.MixSoftmaxCELoss(aux=aux, aux_weight=aux_weight),
                           inputs, tmpdir=tmp_path)
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, err_msg=mode)


def test_gluoncv_gradient_is_not_the_gradient_of_its_value(gluoncv):
    """GluonCV's backward (SoftmaxOutput) ignores aux_weight and divides by the
    batch's valid pixels; gluonx's is the gradient of the value (the case table
    checks it against finite differences)."""
    pred, aux_pred, label = _inputs(1)
    head = np.ones(2)
    fd = R.numeric_grad(lambda *x: R.ref_mix_softmax_ce(*x, aux_weight=0.5)[1],
                        [pred, aux_pred, label], (0, 1), head)
    nds = [mx.nd.array(a) for a in (pred, aux_pred, label)]
    ours = {}
    for name, block in (("gluoncv", gluoncv.MixSoftmaxCrossEntropyLoss(aux_weight=0.5)),
                        ("gluonx", L.MixSoftmaxCELoss(aux_weight=0.5))):
        for x in nds[:2]:
            x.attach_grad()
        with autograd.record():
            out = block(*nds)
        out.backward()
        ours[name] = [x.grad.asnumpy() for x in nds[:2]]
    for k in (0, 1):
        np.testing.assert_allclose(ours["gluonx"][k], fd[k], rtol=1e-3, atol=1e-6)
    assert not np.allclose(ours["gluoncv"][1], fd[1], rtol=1e-2)


def mix_ce_hybridizes_fix(module, ctx=mx.cpu()):
    pred, aux_pred, label = _inputs(2)
    loss = module.MixSoftmaxCrossEntropyLoss(aux_weight=0.3)
    loss.hybridize()
    out = loss(*[mx.nd.array(a, ctx=ctx) for a in (pred, aux_pred, label)]).asnumpy()
    np.testing.assert_allclose(out, R.ref_mix_softmax_ce(pred, aux_pred, label,
                                                         aux_weight=0.3)[1], rtol=1e-5)


def test_mix_ce_hybridizes(ctx, kernels):
    mix_ce_hybridizes_fix(L, ctx)


def test_mix_ce_does_not_hybridize_in_gluoncv(gluoncv):
    with pytest.raises(Exception):
        mix_ce_hybridizes_fix(gluoncv)


@pytest.mark.parametrize("mode", MODES)
def test_ignored_pixels_have_zero_gradient(mode, tmp_path):
    pred, aux_pred, label = _inputs(3)
    _, grads = run_mode(mode, lambda: L.MixSoftmaxCELoss(), [pred, aux_pred, label], (0, 1),
                        tmpdir=tmp_path)
    ignored = label == -1
    for k in (0, 1):
        g = np.moveaxis(grads[k], 1, -1)     # (N, H, W, C)
        assert np.all(g[ignored] == 0)
        assert np.all(np.abs(g[~ignored]).sum(-1) > 0)


def test_reduction_none_is_per_pixel():
    pred, aux_pred, label = _inputs(4)
    nds = [mx.nd.array(a) for a in (pred, aux_pred, label)]
    out = L.MixSoftmaxCELoss(reduction="none")(*nds).asnumpy()
    assert out.shape == label.shape
    np.testing.assert_allclose(out, R.ref_mix_softmax_ce(pred, aux_pred, label)[0], rtol=1e-4,
                               atol=1e-6)


@pytest.mark.parametrize("hybridize", [False, True])
def test_label_with_a_class_axis_of_size_1(hybridize):
    pred, aux_pred, label = _inputs(8)
    loss = L.MixSoftmaxCELoss()
    if hybridize:
        loss.hybridize()
    out = loss(*[mx.nd.array(a) for a in (pred, aux_pred, label[:, None])]).asnumpy()
    np.testing.assert_allclose(out, R.ref_mix_softmax_ce(pred, aux_pred, label)[1], rtol=1e-5)


@pytest.mark.parametrize("kwargs,args,arg", [
    ({}, lambda p, a, l: [p, a, l[:, :3]], "label"),
    ({}, lambda p, a, l: [p, a[:, :4], l], "aux_pred"),
    ({}, lambda p, a, l: [p, a, np.where(l == 0, 5, l)], "label"),
    ({}, lambda p, a, l: [p, a, np.where(l == -1, -2, l)], "label"),
    ({"ignore_index": None}, lambda p, a, l: [p, a, l], "label"),
    ({"aux": False}, lambda p, a, l: [p, l[:1]], "label"),
], ids=["label-shape", "aux-shape", "label-too-big", "label-negative", "no-ignore",
        "no-aux-label-batch"])
@pytest.mark.parametrize("hybridize", [False, True])
def test_bad_input(kwargs, args, arg, hybridize):
    loss = L.MixSoftmaxCELoss(**kwargs)
    if hybridize:
        loss.hybridize()
    with pytest.raises(L.LossInputError, match="MixSoftmaxCrossEntropyLoss: argument '%s'" % arg):
        loss(*[mx.nd.array(a) for a in args(*_inputs(5))]).asnumpy()


def test_aux_needs_the_aux_prediction():
    pred, _, label = _inputs(6)
    with pytest.raises(TypeError, match="label"):
        L.MixSoftmaxCELoss()(mx.nd.array(pred), mx.nd.array(label))


def test_alias():
    assert L.MixSoftmaxCELoss is L.MixSoftmaxCrossEntropyLoss


def test_gluoncv_keyword_ignore_label():
    pred, aux_pred, label = _inputs(7)
    label = np.where(label == -1, 3, label)
    loss = L.MixSoftmaxCELoss(aux_weight=0.4, ignore_label=3)
    assert L.MixSoftmaxCELoss.from_config(loss.get_config())._ignore_index == 3
    out = loss(*[mx.nd.array(a) for a in (pred, aux_pred, label)]).asnumpy()
    np.testing.assert_allclose(out, R.ref_mix_softmax_ce(pred, aux_pred, label, aux_weight=0.4,
                                                         ignore_index=3)[1], rtol=1e-5)


# ---------------------------------------------------------------- mixup
def _mixup_inputs(seed, n=3):
    pred, aux_pred, label = _inputs(seed, n=n)
    rng = np.random.RandomState(seed + 50)
    label2 = _seg_labels(rng, 5, n, 4, 6)
    return pred, aux_pred, label, label2


def _numpy_mixup(pred, aux_pred, label, label2, lam, aux_weight=0.2, ignore=-1):
    """Independent numpy reference: per pixel, lam * (CE(pred, y1) + a CE(aux, y1))
    + (1 - lam) * (the same against y2), each 0 where its label is ignored,
    averaged over the pixels of each sample."""
    def ce(scores, y):
        z = scores - scores.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        idx = np.where(y == ignore, 0, y).astype(int)
        picked = np.take_along_axis(logp, idx[:, None], axis=1)[:, 0]
        return np.where(y == ignore, 0.0, -picked)
    lam = np.broadcast_to(np.asarray(lam, dtype=np.float64).reshape(-1), (len(pred),))
    first = ce(pred, label) + aux_weight * ce(aux_pred, label)
    second = ce(pred, label2) + aux_weight * ce(aux_pred, label2)
    pixel = lam[:, None, None] * first + (1 - lam[:, None, None]) * second
    return pixel.reshape(len(pred), -1).mean(axis=1)


@pytest.mark.parametrize("lam", [0.3, [0.25], [0.1, 0.6, 1.0]], ids=["number", "batch", "sample"])
@pytest.mark.parametrize("mode", MODES)
def test_mixup_matches_numpy_in_every_mode(mode, lam, tmp_path):
    pred, aux_pred, label, label2 = _mixup_inputs(3)
    expected = _numpy_mixup(pred, aux_pred, label, label2, lam, aux_weight=0.4)
    factory = lambda: L.MixSoftmaxCELoss(aux_weight=0.4, mixup=True)  # noqa: E731
    if np.ndim(lam) == 0:   # a Python number (NDArray calls only)
        if mode in ("symbol", "export"):
            return
        loss = factory()
        if mode != "imperative":
            loss.hybridize(**({"static_alloc": True, "static_shape": True}
                              if mode == "static" else {}))
        args = [mx.nd.array(a, dtype="float64") for a in (pred, aux_pred, label, label2)]
        value = loss(*args, lam).asnumpy()
    else:
        value, _ = run_mode(mode, factory, [pred, aux_pred, label, label2,
                                            np.asarray(lam, dtype=np.float64)], (), mx.cpu(),
                            None, tmp_path)
    np.testing.assert_allclose(value, expected, rtol=1e-10)


def test_mixup_gradients_match_finite_differences():
    pred, aux_pred, label, label2 = _mixup_inputs(4, n=2)
    lam = np.array([0.3, 0.8])
    arrays = [mx.nd.array(a, dtype="float64") for a in (pred, aux_pred, label, label2, lam)]
    for k in (0, 1, 4):
        arrays[k].attach_grad()
    head = np.array([0.7, 1.3])
    with autograd.record():
        out = L.MixSoftmaxCELoss(mixup=True)(*arrays)
    out.backward(mx.nd.array(head, dtype="float64"))
    values = [pred, aux_pred, label, label2, lam]
    for k in (0, 1, 4):
        fd = np.zeros_like(values[k])
        for j in range(values[k].size):
            bumped = []
            for step in (1e-6, -1e-6):
                v = [a.copy() for a in values]
                v[k].flat[j] += step
                bumped.append(head.dot(_numpy_mixup(*v)))
            fd.flat[j] = (bumped[0] - bumped[1]) / 2e-6
        np.testing.assert_allclose(arrays[k].grad.asnumpy(), fd, rtol=1e-6, atol=1e-9)


def test_mixup_at_lambda_one_and_zero_is_the_plain_loss():
    pred, aux_pred, label, label2 = (mx.nd.array(a) for a in _mixup_inputs(5))
    plain = L.MixSoftmaxCELoss()
    mixed = L.MixSoftmaxCELoss(mixup=True)
    np.testing.assert_allclose(mixed(pred, aux_pred, label, label2, 1.0).asnumpy(),
                               plain(pred, aux_pred, label).asnumpy(), rtol=1e-6)
    np.testing.assert_allclose(mixed(pred, aux_pred, label, label2, 0.0).asnumpy(),
                               plain(pred, aux_pred, label2).asnumpy(), rtol=1e-6)


def test_mixup_fails_in_gluoncv(gluoncv):
    """GluonCV 0.10.5 has the mixup path but it raises (an attribute its
    parent class lacks); ours computes what that code is written to."""
    pred, aux_pred, label, label2 = (mx.nd.array(a) for a in _mixup_inputs(6))
    with pytest.raises(AttributeError):
        gluoncv.MixSoftmaxCrossEntropyLoss(mixup=True)(pred, aux_pred, label, label2, 0.5)


@pytest.mark.parametrize("lam, arg, fragment", [
    ([0.5, 0.5], "lam", "shape"), ([1.5], "lam", r"\[0, 1\]"), ([-0.1, 0.2, 0.3], "lam", r"\[0, 1\]"),
])
def test_mixup_bad_lambda(lam, arg, fragment):
    pred, aux_pred, label, label2 = (mx.nd.array(a) for a in _mixup_inputs(7))
    with pytest.raises(L.LossInputError, match="MixSoftmaxCrossEntropyLoss: argument '%s'.*%s"
                       % (arg, fragment)):
        L.MixSoftmaxCELoss(mixup=True)(pred, aux_pred, label, label2, mx.nd.array(lam))


def test_mixup_bad_second_label():
    pred, aux_pred, label, label2 = (mx.nd.array(a) for a in _mixup_inputs(8))
    with pytest.raises(L.LossInputError, match="argument 'label2' holds 7"):
        L.MixSoftmaxCELoss(mixup=True)(pred, aux_pred, label, label2 * 0 + 7, 0.5)
    with pytest.raises(L.LossInputError, match="argument 'label2' has shape"):
        L.MixSoftmaxCELoss(mixup=True)(pred, aux_pred, label, label2[:, :2], 0.5)


def test_mixup_in_config():
    loss = L.MixSoftmaxCELoss(mixup=True, aux=False)
    again = L.MixSoftmaxCELoss.from_config(loss.get_config())
    assert again._mixup and again._inputs == ("pred", "label", "label2", "lam")
