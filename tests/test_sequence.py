"""CTC (gluonx/loss/sequence.py)."""
import numpy as np
import pytest

import gluonx.loss as L
import mxnet as mx
from mxnet import autograd

import reference as R
from cases import CASE_BY_ID, family_tests
from conftest import MODES, run_mode

CASES, test_value_and_gradient_match_reference, test_every_option_changes_the_answer = \
    family_tests("sequence")


def _infeasible_inputs():
    return CASE_BY_ID["CTC-infeasible"].inputs()


def ctc_infeasible_fix(loss_module, ctx=mx.cpu(), dtype="float32"):
    """Sample 1's label [1, 1, 1, 1] needs 7 frames, T = 5: loss +inf and
    gradient exactly 0; the other samples are unaffected."""
    pred, label = _infeasible_inputs()[:2]
    x = mx.nd.array(pred, ctx=ctx, dtype=dtype)
    x.attach_grad()
    with autograd.record():
        out = loss_module.CTCLoss()(x, mx.nd.array(label, ctx=ctx))
    out.backward()
    value, grad = out.asnumpy(), x.grad.asnumpy()
    assert value[1] == np.inf, value
    assert np.all(grad[1] == 0), np.abs(grad[1]).max()
    ref = R.ref_ctc(pred.astype(dtype), label)[1]
    np.testing.assert_allclose(value[[0, 2]], ref[[0, 2]], rtol=1e-3)
    assert np.all(np.isfinite(grad))


def test_infeasible_label_gives_inf_and_zero_gradient(ctx, kernels):
    ctc_infeasible_fix(L, ctx)


def test_infeasible_fix_fails_on_mxnet_1_9_1():
    with pytest.raises(AssertionError):
        ctc_infeasible_fix(mx.gluon.loss)


@pytest.mark.parametrize("mode", MODES)
def test_infeasible_in_every_mode_is_deterministic(mode, tmp_path, kernels):
    inputs = [a.astype(np.float32) for a in _infeasible_inputs()[:2]]
    runs = [run_mode(mode, lambda: L.CTCLoss(), inputs, grad=(0,), tmpdir=tmp_path)
            for _ in range(2)]
    for value, grads in runs:
        assert value[1] == np.inf
        assert np.all(grads[0][1] == 0)
        assert np.all(np.isfinite(grads[0]))
    np.testing.assert_array_equal(runs[0][1][0], runs[1][1][0])


@pytest.mark.parametrize("lengths", [False, True])
def test_infeasible_through_lengths(lengths, kernels):
    """Feasibility counts the frames in pred_lengths and the labels in label_lengths."""
    rng = np.random.RandomState(0)
    pred = rng.standard_normal((2, 6, 4))
    label = np.array([[0.0, 1.0, 2.0], [1.0, 1.0, 0.0]])
    pred_len = np.array([6.0, 3.0])      # sample 1: [1, 1] needs 3 frames -> fits in 3
    label_len = np.array([3.0, 3.0])     # sample 1: [1, 1, 0] needs 4 frames > 3
    inputs = [pred, label, pred_len, label_len] if lengths else [pred, label, pred_len,
                                                                 np.array([3.0, 2.0])]
    value, grads = run_mode("imperative", lambda: L.CTCLoss(), inputs, grad=(0,))
    ref = R.ref_ctc(*inputs)[1]
    np.testing.assert_allclose(value, ref, rtol=1e-4)
    if lengths:
        assert value[1] == np.inf and np.all(grads[0][1] == 0)
    else:
        assert np.isfinite(value[1])


@pytest.mark.parametrize("dtype", ["float16", "float64"])
@pytest.mark.parametrize("mode", ["imperative", "hybrid"])
def test_float16_and_float64_activations(dtype, mode, kernels):
    """1.9.1 fails asynchronously on these dtypes; gluonx computes them (float32 inside)."""
    case = CASE_BY_ID["CTC"]
    inputs = case.inputs()
    inputs = [None if a is None else a.astype(dtype) for a in inputs]
    value, grads = run_mode(mode, case.factory(), inputs, grad=(0,))
    assert grads[0].dtype == np.dtype(dtype)
    ref = R.ref_ctc(*[None if a is None else a.astype(np.float64) for a in inputs])[1]
    np.testing.assert_allclose(value.astype(np.float64), ref,
                               rtol=2e-3 if dtype == "float16" else 1e-4)
    # and a later, unrelated call is unaffected
    out = L.L2Loss()(mx.nd.ones((2, 3)), mx.nd.zeros((2, 3))).asnumpy()
    np.testing.assert_allclose(out, [0.5, 0.5])


def test_blank_is_the_last_class(kernels):
    """With C = 3 the blank is 2: an all-blank input has loss ~0 for the empty label
    and labels 0 and 1 are real symbols."""
    pred = np.zeros((1, 4, 3))
    pred[0, :, 2] = 20.0   # every frame is confidently the blank
    value = L.CTCLoss()(mx.nd.array(pred), mx.nd.array([[-1.0, -1.0]])).asnumpy()
    assert value[0] < 1e-6
    value = L.CTCLoss()(mx.nd.array(pred), mx.nd.array([[0.0, 1.0]])).asnumpy()
    assert value[0] > 10


def test_layouts_agree(kernels):
    """TNC/TN inputs are the transposes of NTC/NT ones."""
    case = CASE_BY_ID["CTC"]
    pred, label = case.inputs()[:2]
    a = L.CTCLoss()(mx.nd.array(pred), mx.nd.array(label)).asnumpy()
    b = L.CTCLoss(layout="TNC", label_layout="TN")(
        mx.nd.array(pred.transpose(1, 0, 2)), mx.nd.array(label.T)).asnumpy()
    c = L.CTCLoss(layout="TNC")(mx.nd.array(pred.transpose(1, 0, 2)),
                                mx.nd.array(label)).asnumpy()
    np.testing.assert_allclose(a, b, rtol=1e-6)
    np.testing.assert_allclose(a, c, rtol=1e-6)


@pytest.mark.parametrize("all_empty", [False, True], ids=["one-empty", "all-empty"])
@pytest.mark.parametrize("via", ["padding", "label_lengths"])
def test_empty_label_is_exact_and_deterministic(via, all_empty, kernels):
    """An empty label (all padding, or label_lengths 0) is feasible: the loss is
    -sum_t log p_t(blank) and the gradient softmax - onehot(blank), on every run
    (1.9.1's op reads uninitialised memory here: values up to 1e36, any sign)."""
    rng = np.random.RandomState(0)
    pred = rng.standard_normal((2, 4, 3))
    label = np.array([[-1.0, -1.0], [-1.0, -1.0] if all_empty else [0.0, 1.0]])
    lengths = (label >= 0).sum(axis=1).astype(np.float64)
    args = [pred, label] if via == "padding" else [pred, np.where(label < 0, 0, label), None,
                                                   lengths]
    ref = R.ref_ctc(pred, label)[1]
    head = np.ones(2)
    fd = R.numeric_grad(lambda *xs: R.ref_ctc(*xs)[1], [pred, label], [0], head)[0]
    for _ in range(30):
        junk = mx.nd.array(rng.standard_normal((64, 64)) * 1e6)   # dirty the allocator
        (junk * 3).wait_to_read()
        value, grads = run_mode("imperative", lambda: L.CTCLoss(), args, grad=(0,))
        np.testing.assert_allclose(value, ref, rtol=1e-4)
        np.testing.assert_allclose(grads[0], fd, rtol=1e-3, atol=1e-5)


def test_all_samples_infeasible(kernels):
    rng = np.random.RandomState(1)
    pred = rng.standard_normal((2, 3, 4))
    label = np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 2.0]])   # need 5 and 4 frames > 3
    for _ in range(10):
        junk = mx.nd.array(rng.standard_normal((64, 64)) * 1e6)
        (junk * 3).wait_to_read()
        value, grads = run_mode("imperative", lambda: L.CTCLoss(), [pred, label], grad=(0,))
        assert np.all(value == np.inf)
        assert np.all(grads[0] == 0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_ctc_after_torch_ran_in_the_same_process(dtype, kernels):
    """A differential test runs torch and gluonx side by side: a torch CTC call
    must not make a later gluonx CTC call fail (an 'inf' scalar in the graph is
    parsed by MXNet and rejected when errno is left at ERANGE)."""
    torch = pytest.importorskip("torch")
    rng = np.random.RandomState(0)
    pred = rng.standard_normal((2, 6, 4))
    label = np.array([[0.0, 1.0], [1.0, 1.0]])
    ref = R.ref_ctc(pred, label)[1]
    L.CTCLoss()(mx.nd.array(pred, dtype=dtype), mx.nd.array(label)).asnumpy()
    lp = torch.tensor(R.log_softmax(pred, -1)).permute(1, 0, 2).requires_grad_()
    t = torch.nn.functional.ctc_loss(lp, torch.tensor(label).long(), torch.tensor([6, 6]),
                                     torch.tensor([2, 2]), blank=3, reduction="none")
    t.sum().backward()
    for hybridize in (False, True):
        loss = L.CTCLoss()
        if hybridize:
            loss.hybridize()
        out = loss(mx.nd.array(pred, dtype=dtype), mx.nd.array(label)).asnumpy()
        np.testing.assert_allclose(out, ref, rtol=1e-4)
