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


def test_mixup_is_refused():
    with pytest.raises(L.LossInputError, match="MixSoftmaxCrossEntropyLoss: argument 'mixup'"):
        L.MixSoftmaxCELoss(mixup=True)
