"""Masked softmax CE, label smoothing, AR and TAR (gluonx/loss/language.py)."""
import contextlib
import os

import numpy as np
import pytest

import gluonx.loss as L
import mxnet as mx
from mxnet import autograd, gluon

import oracles
import reference as R
from cases import _padded_labels, family_tests
from conftest import MODES, numpy_mode, run_mode

CASES, test_value_and_gradient_match_reference, test_every_option_changes_the_answer = \
    family_tests("language")


@pytest.fixture(scope="module")
def gluonnlp():
    module = oracles.gluonnlp_loss()
    if module is None:
        pytest.skip("gluonnlp is not installed (CI's Python 3.11 environment has it)")
    return module


def _grad_run(block, nds, wrt, head=None):
    for k in wrt:
        nds[k].attach_grad()
    with autograd.record():
        out = block(*nds)
    out.backward(None if head is None else mx.nd.array(head, dtype=out.dtype))
    return out.asnumpy(), {k: nds[k].grad.asnumpy() for k in wrt}


def _seq_inputs(seed, n=4, steps=6, classes=9, sparse=True):
    rng = np.random.RandomState(seed)
    lengths = np.array([steps, 3, 1, 0][:n], dtype=np.float64)
    pred = rng.standard_normal((n, steps, classes)) * 2
    label = _padded_labels(rng, classes, lengths, steps) if sparse else \
        np.exp(R.log_softmax(rng.standard_normal((n, steps, classes)), -1))
    return pred, label, lengths


# ---------------------------------------------------------------- MaskedSoftmaxCELoss
@pytest.mark.parametrize("hybridize", [False, True])
@pytest.mark.parametrize("sparse", [True, False], ids=["sparse", "dense"])
def test_padded_average_matches_gluonnlp(gluonnlp, sparse, hybridize, tmp_path):
    """average='padded' gives GluonNLP 0.10's values and gradients, in every mode
    (float32: GluonNLP's sparse path cannot take float64 inputs)."""
    pred, label, lengths = (a.astype(np.float32) for a in _seq_inputs(0, sparse=sparse))
    head = np.random.RandomState(1).uniform(0.5, 1.5, size=4)
    theirs = gluonnlp.MaskedSoftmaxCELoss(sparse_label=sparse)
    if hybridize:
        theirs.hybridize()
    nds = [mx.nd.array(a) for a in (pred, label, lengths)]
    value, grads = _grad_run(theirs, nds, (0,), head)
    factory = lambda: L.MaskedSoftmaxCELoss(sparse_label=sparse, average="padded")  # noqa
    for mode in MODES:
        ours, ograds = run_mode(mode, factory, [pred, label, lengths], (0,), head=head,
                                tmpdir=tmp_path)
        # float32: the fused kernel is within 3e-7 (sparse) / 4e-6 (dense) of the
        # float64 gradient, GluonNLP's operators within 2e-5 / 7e-5 (relative)
        np.testing.assert_allclose(ours, value, rtol=5e-6, atol=1e-7, err_msg=mode)
        np.testing.assert_allclose(ograds[0], grads[0], rtol=1e-4, atol=1e-6, err_msg=mode)


def test_valid_average_is_gluonnlp_times_padded_over_valid_length(gluonnlp):
    pred, label, lengths = _seq_inputs(2)
    nds = [mx.nd.array(a) for a in (pred, label, lengths)]
    theirs = gluonnlp.MaskedSoftmaxCELoss()(*nds).asnumpy()
    ours = L.MaskedSoftmaxCELoss()(*nds).asnumpy()
    np.testing.assert_allclose(ours, theirs * 6 / np.maximum(lengths, 1), rtol=1e-5)


def masked_ce_padding_independent_fix(loss_module, ctx=mx.cpu()):
    """gluon-nlp #238: a sequence's loss must not depend on how far the batch pads it."""
    rng = np.random.RandomState(3)
    pred = rng.standard_normal((1, 3, 5))
    label = np.array([[1.0, 4.0, 2.0]])
    values = []
    for steps in (3, 8):
        p = np.concatenate([pred, rng.standard_normal((1, steps - 3, 5))], axis=1)
        lab = np.concatenate([label, np.zeros((1, steps - 3))], axis=1)
        out = loss_module.MaskedSoftmaxCELoss()(mx.nd.array(p, ctx=ctx), mx.nd.array(lab, ctx=ctx),
                                                mx.nd.array([3.0], ctx=ctx))
        values.append(out.asnumpy()[0])
    expected = R.ref_softmax_ce(pred[0], label[0])[1].mean()
    np.testing.assert_allclose(values, [expected, expected], rtol=1e-5)


def test_masked_ce_padding_independent(ctx, kernels):
    masked_ce_padding_independent_fix(L, ctx)


def test_masked_ce_padding_dependent_in_gluonnlp(gluonnlp):
    with pytest.raises(AssertionError):
        masked_ce_padding_independent_fix(gluonnlp)


@pytest.mark.parametrize("mode", MODES)
def test_padded_steps_have_no_gradient_and_any_label(mode, tmp_path):
    """Steps beyond valid_length get gradient 0 and may hold any label (-1 here);
    an empty sequence has loss 0."""
    rng = np.random.RandomState(4)
    lengths = np.array([4.0, 2.0, 0.0])
    pred = rng.standard_normal((3, 4, 5))
    label = _padded_labels(rng, 5, lengths, 4, pad=-1.0)
    value, grads = run_mode(mode, lambda: L.MaskedSoftmaxCELoss(), [pred, label, lengths], (0,),
                            tmpdir=tmp_path)
    assert np.all(grads[0][1, 2:] == 0) and np.all(grads[0][2] == 0)
    assert np.all(grads[0][0] != 0) and np.all(grads[0][1, :2] != 0)
    assert value[2] == 0
    np.testing.assert_allclose(value, R.ref_masked_softmax_ce(pred, label, lengths)[1],
                               rtol=1e-5)


def test_reduction_none_is_each_steps_share():
    pred, label, lengths = _seq_inputs(5)
    nds = [mx.nd.array(a) for a in (pred, label, lengths)]
    shares = L.MaskedSoftmaxCELoss(reduction="none")(*nds).asnumpy()
    assert shares.shape == (4, 6)
    np.testing.assert_allclose(shares.sum(1), L.MaskedSoftmaxCELoss()(*nds).asnumpy(), rtol=1e-5)
    assert np.all(shares[1, 3:] == 0)


@pytest.mark.parametrize("args,arg", [
    (lambda p, l, v: [p[0], l[0], v[:1]], "pred"),
    (lambda p, l, v: [p, l[:, :5], v], "label"),
    (lambda p, l, v: [p, l, v[:3]], "valid_length"),
    (lambda p, l, v: [p, l, np.array([6, 3, 7, 0.0])], "valid_length"),
    (lambda p, l, v: [p, l, np.array([6, 3, -1, 0.0])], "valid_length"),
    (lambda p, l, v: [p, l, np.array([6, 3, 1.5, 0.0])], "valid_length"),
    (lambda p, l, v: [p, np.where(l == l[0, 0], 9, l), v], "label"),
], ids=["pred-rank", "label-shape", "valid_length-shape", "valid_length-too-long",
        "valid_length-negative", "valid_length-fraction", "label-too-big"])
@pytest.mark.parametrize("hybridize", [False, True])
def test_masked_ce_bad_input(args, arg, hybridize):
    pred, label, lengths = _seq_inputs(6)
    loss = L.MaskedSoftmaxCELoss()
    if hybridize:
        loss.hybridize()
    with pytest.raises(L.LossInputError, match="MaskedSoftmaxCrossEntropyLoss: argument '%s'"
                       % arg):
        loss(*[mx.nd.array(a) for a in args(pred, label, lengths)]).asnumpy()
    loss(*[mx.nd.array(a) for a in (pred, label, lengths)]).asnumpy()


def test_masked_ce_label_checked_only_on_valid_steps():
    pred, label, lengths = _seq_inputs(7)
    label[1, 4] = 99.0     # padded step: fine
    L.MaskedSoftmaxCELoss()(*[mx.nd.array(a) for a in (pred, label, lengths)]).asnumpy()
    label[1, 1] = 99.0     # valid step: not fine
    with pytest.raises(L.LossInputError, match="'label' holds 99"):
        L.MaskedSoftmaxCELoss()(*[mx.nd.array(a) for a in (pred, label, lengths)])


@pytest.mark.parametrize("kwargs,arg", [({"average": "all"}, "average"),
                                        ({"batch_axis": 2}, "batch_axis")])
def test_masked_ce_bad_options(kwargs, arg):
    with pytest.raises(L.LossInputError, match="MaskedSoftmaxCrossEntropyLoss: argument '%s'"
                       % arg):
        L.MaskedSoftmaxCELoss(**kwargs)


def test_masked_ce_alias():
    assert L.MaskedSoftmaxCELoss is L.MaskedSoftmaxCrossEntropyLoss


# ---------------------------------------------------------------- LabelSmoothing
@pytest.mark.parametrize("kwargs,call_units", [({"units": 7}, None),
                                               ({"units": 7, "epsilon": 0.3}, None), ({}, 7)],
                         ids=["units", "epsilon", "call-units"])
def test_label_smoothing_sparse_matches_gluonnlp(gluonnlp, kwargs, call_units):
    label = np.random.RandomState(8).randint(0, 7, size=(3, 4)).astype(np.float32)
    theirs = gluonnlp.LabelSmoothing(**kwargs)(mx.nd.array(label), call_units).asnumpy()
    ours = L.LabelSmoothing(**kwargs)(mx.nd.array(label), call_units).asnumpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-7)
    assert ours.dtype == theirs.dtype == np.float32
    np.testing.assert_allclose(ours, R.ref_label_smoothing(label, 7, epsilon=kwargs.get(
        "epsilon", 0.1)), rtol=1e-6)


def test_label_smoothing_dense_with_units_matches_gluonnlp(gluonnlp):
    probs = np.exp(R.log_softmax(np.random.RandomState(9).standard_normal((3, 5)), -1))
    theirs = gluonnlp.LabelSmoothing(units=5, sparse_label=False)(mx.nd.array(probs)).asnumpy()
    ours = L.LabelSmoothing(units=5, sparse_label=False)(mx.nd.array(probs)).asnumpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def label_smoothing_dense_fix(module, ctx=mx.cpu()):
    """Dense inputs without units: V from the data, gradient (1 - eps) (GluonNLP's
    custom operator fails to construct on MXNet 1.9.1)."""
    probs = np.exp(R.log_softmax(np.random.RandomState(10).standard_normal((2, 3, 6)), 1))
    x = mx.nd.array(probs, ctx=ctx)
    x.attach_grad()
    with autograd.record():
        out = module.LabelSmoothing(axis=1, epsilon=0.2, sparse_label=False)(x)
    out.backward()
    np.testing.assert_allclose(out.asnumpy(), R.ref_label_smoothing(
        probs, axis=1, epsilon=0.2, sparse_label=False), rtol=1e-6)
    np.testing.assert_allclose(x.grad.asnumpy(), 0.8, rtol=1e-6)


def test_label_smoothing_dense_without_units(ctx):
    label_smoothing_dense_fix(L, ctx)


def test_label_smoothing_dense_without_units_fails_in_gluonnlp(gluonnlp):
    with pytest.raises(Exception):
        label_smoothing_dense_fix(gluonnlp)


def _export_and_import(block, x, tmp_path):
    path = os.path.join(str(tmp_path), "smooth")
    block.export(path)
    back = mx.gluon.SymbolBlock.imports(path + "-symbol.json", ["data"])
    return back(x).asnumpy()


@pytest.mark.parametrize("sparse", [True, False], ids=["sparse", "dense"])
def test_label_smoothing_in_every_mode(sparse, tmp_path):
    rng = np.random.RandomState(11)
    x = rng.randint(0, 6, size=(2, 3)).astype(np.float32) if sparse else \
        np.exp(R.log_softmax(rng.standard_normal((2, 3, 6)), -1)).astype(np.float32)
    kwargs = {"units": 6} if sparse else {"sparse_label": False}
    expected = R.ref_label_smoothing(x, 6 if sparse else None, epsilon=0.1, sparse_label=sparse)
    for flags in ({}, {"static_alloc": True, "static_shape": True}):
        block = L.LabelSmoothing(**kwargs)
        block.hybridize(**flags)
        np.testing.assert_allclose(block(mx.nd.array(x)).asnumpy(), expected, rtol=1e-6)
        np.testing.assert_allclose(_export_and_import(block, mx.nd.array(x), tmp_path), expected,
                                   rtol=1e-6)
    sym = L.LabelSmoothing(**kwargs)(mx.sym.var("data"))
    out = sym.eval(ctx=mx.cpu(), data=mx.nd.array(x))[0].asnumpy()
    np.testing.assert_allclose(out, expected, rtol=1e-6)


@pytest.mark.parametrize("sparse", [True, False], ids=["sparse", "dense"])
@pytest.mark.parametrize("flags", [None, {}, {"static_alloc": True, "static_shape": True}],
                         ids=["imperative", "hybrid", "static"])
def test_label_smoothing_in_numpy_mode(sparse, flags, tmp_path):
    """mx.np inputs give mx.np outputs (and gradients) with the legacy numbers,
    imperative, hybridized, exported, and at call-time units."""
    rng = np.random.RandomState(12)
    x = rng.randint(0, 6, size=(2, 3)).astype(np.float32) if sparse else \
        np.exp(R.log_softmax(rng.standard_normal((2, 3, 6)), 1)).astype(np.float32)
    kwargs = {"epsilon": 0.2} if sparse else {"axis": 1, "sparse_label": False}
    units = 6 if sparse else None
    results = []
    for numpy in (False, True):
        with (numpy_mode() if numpy else contextlib.nullcontext()):
            block = L.LabelSmoothing(**kwargs)
            if flags is not None:
                block.hybridize(**flags)
            a = mx.np.array(x) if numpy else mx.nd.array(x)
            a.attach_grad()
            with autograd.record():
                out = block(a, units)
            out.backward()
            assert isinstance(out, mx.np.ndarray) == numpy, type(out)
            assert isinstance(a.grad, mx.np.ndarray) == numpy
            again = block(a, units)    # a second call (cached graph, call-time units)
            results.append((out.asnumpy(), a.grad.asnumpy(), again.asnumpy()))
            if flags is not None and units is None:
                exported = _export_and_import(block, a, tmp_path)
                np.testing.assert_allclose(exported, out.asnumpy(), rtol=1e-6)
    for legacy, numpy in zip(*results):
        np.testing.assert_allclose(numpy, legacy, rtol=1e-6)
    np.testing.assert_allclose(results[0][0], R.ref_label_smoothing(
        x, units, epsilon=0.2 if sparse else 0.1, axis=-1 if sparse else 1,
        sparse_label=sparse), rtol=1e-6)


def test_label_smoothing_inside_a_numpy_mode_network():
    """Called on mx.np symbols in a user's hybridized numpy-mode network."""
    class Net(gluon.HybridBlock):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.smooth = L.LabelSmoothing(units=4, epsilon=0.2)

        def hybrid_forward(self, F, label):
            return self.smooth(label) * 2

    label = np.array([[0, 3], [1, 2]], dtype=np.float32)
    with numpy_mode():
        net = Net()
        net.hybridize()
        out = net(mx.np.array(label))
        assert isinstance(out, mx.np.ndarray)
    np.testing.assert_allclose(out.asnumpy(), 2 * R.ref_label_smoothing(label, 4, epsilon=0.2),
                               rtol=1e-6)


def test_label_smoothing_call_time_units_hybridized():
    """GluonNLP's block cannot take units at call time once hybridized."""
    block = L.LabelSmoothing(epsilon=0.2)
    block.hybridize()
    label = mx.nd.array([[0, 2], [1, 1]])
    for units in (3, 5, 3):
        out = block(label, units).asnumpy()
        np.testing.assert_allclose(out, R.ref_label_smoothing(label.asnumpy(), units,
                                                              epsilon=0.2), rtol=1e-6)


def test_label_smoothing_config_and_dtype():
    block = L.LabelSmoothing(epsilon=0.3, units=4, dtype="float64")
    assert L.LabelSmoothing.from_config(block.get_config()).get_config() == block.get_config()
    assert block(mx.nd.array([1, 2])).dtype == np.float64


@pytest.mark.parametrize("make,args,arg", [
    (lambda: L.LabelSmoothing(), [mx.nd.array([1, 2])], "units"),
    (lambda: L.LabelSmoothing(units=3), [mx.nd.array([1, 3])], "inputs"),
    (lambda: L.LabelSmoothing(units=3), [mx.nd.array([1, -1])], "inputs"),
    (lambda: L.LabelSmoothing(units=3), [mx.nd.array([1, 2]), 0], "units"),
    (lambda: L.LabelSmoothing(units=4, sparse_label=False), [mx.nd.ones((2, 3))], "inputs"),
    (lambda: L.LabelSmoothing(axis=2, sparse_label=False), [mx.nd.ones((2, 3))], "axis"),
    (lambda: L.LabelSmoothing(units=3), [np.array([1, 2])], "inputs"),
    (lambda: L.LabelSmoothing(epsilon=1.5), None, "epsilon"),
    (lambda: L.LabelSmoothing(units=2.5), None, "units"),
], ids=["no-units", "label-too-big", "label-negative", "call-units-zero", "dense-units",
        "axis", "numpy-input", "epsilon", "units-float"])
def test_label_smoothing_bad_input(make, args, arg):
    with pytest.raises(L.LossInputError, match="LabelSmoothing: argument '%s'" % arg):
        make()(*args).asnumpy()


# ---------------------------------------------------------------- AR and TAR
REGULARIZERS = [("ActivationRegularizationLoss", "alpha", R.ref_activation_regularization),
                ("TemporalActivationRegularizationLoss", "beta",
                 R.ref_temporal_activation_regularization)]


@pytest.mark.parametrize("hybridize", [False, True])
@pytest.mark.parametrize("as_list", [False, True], ids=["star-states", "list"])
@pytest.mark.parametrize("name,coef,ref", REGULARIZERS, ids=["AR", "TAR"])
def test_regularizer_matches_gluonnlp(gluonnlp, name, coef, ref, as_list, hybridize):
    """GluonNLP's defaults: the last of the states, the mean over every element,
    shape (1,); the same gradient (zero for the other states). GluonNLP imperative
    (its TAR cannot hybridize), gluonx imperative and hybridized."""
    rng = np.random.RandomState(12)
    states = [rng.standard_normal((5, 3, 4)) for _ in range(3)]
    results = []
    for module in (gluonnlp, L):
        block = getattr(module, name)(**{coef: 1.7})
        if hybridize and module is L:
            block.hybridize()
        nds = [mx.nd.array(s, dtype="float64") for s in states]
        for x in nds:
            x.attach_grad()
        with autograd.record():
            out = block(nds) if as_list and module is L else block(*nds)
        out.backward()
        results.append((out.asnumpy(), [x.grad.asnumpy() for x in nds]))
    (theirs, tgrads), (ours, ograds) = results
    assert ours.shape == theirs.shape == (1,)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)
    np.testing.assert_allclose(ours, ref(states, **{coef: 1.7})[1].mean(), rtol=1e-10)
    for a, b in zip(ograds, tgrads):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)
    assert np.all(ograds[0] == 0) and np.any(ograds[-1] != 0)


@pytest.mark.parametrize("name,coef,ref", REGULARIZERS, ids=["AR", "TAR"])
def test_regularizer_sample_weight_by_keyword(name, coef, ref):
    rng = np.random.RandomState(13)
    h = rng.standard_normal((5, 3, 4))
    sw = rng.uniform(0.5, 2, size=3)
    loss = getattr(L, name)(batch_axis=1, **{coef: 0.5})
    out = loss(mx.nd.array(h), sample_weight=mx.nd.array(sw)).asnumpy()
    np.testing.assert_allclose(out, ref(h, sw, batch_axis=1, **{coef: 0.5})[1], rtol=1e-5)
    loss.hybridize()
    out = loss(states=mx.nd.array(h), sample_weight=mx.nd.array(sw)).asnumpy()
    np.testing.assert_allclose(out, ref(h, sw, batch_axis=1, **{coef: 0.5})[1], rtol=1e-5)


@pytest.mark.parametrize("name,coef,ref", REGULARIZERS, ids=["AR", "TAR"])
def test_regularizer_default_coefficient_is_zero(name, coef, ref):
    out = getattr(L, name)()(mx.nd.ones((3, 2, 2)) * 5).asnumpy()
    np.testing.assert_array_equal(out, [0.0])


@pytest.mark.parametrize("name", ["ActivationRegularizationLoss",
                                  "TemporalActivationRegularizationLoss"])
def test_regularizer_bad_input(name):
    loss = getattr(L, name)(1.0)
    with pytest.raises(L.LossInputError, match="%s: argument 'states'" % name):
        loss()
    with pytest.raises(L.LossInputError, match="%s: argument 'states'" % name):
        loss([])
    with pytest.raises(L.LossInputError, match="%s: argument 'sample_weight'" % name):
        loss(mx.nd.ones((3, 2, 2)), sample_weight=mx.nd.ones((2, 3))).asnumpy()


def test_tar_needs_two_steps():
    with pytest.raises(L.LossInputError, match="TemporalActivationRegularizationLoss: "
                       "argument 'states'.*2 time steps"):
        L.TemporalActivationRegularizationLoss(1.0)(mx.nd.ones((1, 2, 3)))


@pytest.mark.parametrize("kwargs,arg", [({"time_axis": 3}, "time_axis"),
                                        ({"time_axis": 1, "batch_axis": 1}, "time_axis")])
def test_tar_bad_time_axis(kwargs, arg):
    with pytest.raises(L.LossInputError, match="TemporalActivationRegularizationLoss: "
                       "argument '%s'" % arg):
        L.TemporalActivationRegularizationLoss(1.0, **kwargs)(mx.nd.ones((3, 2, 2))).asnumpy()


def tar_hybridizes_fix(module, ctx=mx.cpu()):
    h = np.random.RandomState(14).standard_normal((5, 2, 3))
    loss = module.TemporalActivationRegularizationLoss(2.0)
    loss.hybridize()
    out = loss(mx.nd.array(h, ctx=ctx)).asnumpy()
    np.testing.assert_allclose(out, R.ref_temporal_activation_regularization(h, beta=2.0)[1],
                               rtol=1e-5)


def test_tar_hybridizes(ctx):
    tar_hybridizes_fix(L, ctx)


def test_tar_does_not_hybridize_in_gluonnlp(gluonnlp):
    with pytest.raises(Exception):
        tar_hybridizes_fix(gluonnlp)


def test_tar_reduction_none_shape():
    out = L.TemporalActivationRegularizationLoss(1.0, reduction="none")(mx.nd.ones((4, 2, 3)))
    assert out.shape == (3, 2, 3)


def test_label_smoothing_gluonnlp_positional_arguments():
    block = L.LabelSmoothing(-1, 0.2, 5, True, "smooth_")
    assert block.prefix == "smooth_"
    np.testing.assert_allclose(block(mx.nd.array([4])).asnumpy(),
                               R.ref_label_smoothing(np.array([4]), 5, epsilon=0.2), rtol=1e-6)
