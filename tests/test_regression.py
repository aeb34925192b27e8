"""L1, L2, Huber and Poisson NLL (gluonx/loss/regression.py)."""
import numpy as np
import pytest

import gluonx.loss as L
import mxnet as mx
from mxnet import autograd

import reference as R
from cases import family_tests, fix_tests

CASES, test_value_and_gradient_match_reference, test_every_option_changes_the_answer = \
    family_tests("regression")


# ---------------------------------------------------------------- fixes over mxnet 1.9.1
def poisson_full_fix(loss_module, ctx=mx.cpu()):
    """compute_full=True: finite at target 0 and 1, per-sample (batch,) output,
    trains under autograd.record()."""
    rng = np.random.RandomState(3)
    pred = rng.standard_normal((4, 3))
    target = np.array([[0, 1, 2], [0, 0, 5], [1, 3, 0], [7, 1, 1]], dtype=np.float64)
    x, t = mx.nd.array(pred, ctx=ctx), mx.nd.array(target, ctx=ctx)
    x.attach_grad()
    loss = loss_module.PoissonNLLLoss(compute_full=True)
    with autograd.record():
        out = loss(x, t)
    out.backward()
    value, grad = out.asnumpy(), x.grad.asnumpy()
    assert value.shape == (4,), "PoissonNLL output shape %s, expected (4,)" % (value.shape,)
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(value, R.ref_poisson_nll(pred, target, compute_full=True)[1],
                               rtol=1e-5)
    np.testing.assert_allclose(grad, (np.exp(pred) - target) / 3, rtol=1e-5, atol=1e-6)


def poisson_batch_axis_fix(loss_module, ctx=mx.cpu()):
    pred = np.random.RandomState(0).standard_normal((3, 5))
    target = np.ones((3, 5))
    out = loss_module.PoissonNLLLoss(batch_axis=1)(mx.nd.array(pred, ctx=ctx),
                                                   mx.nd.array(target, ctx=ctx)).asnumpy()
    assert out.shape == (5,)
    np.testing.assert_allclose(out, R.ref_poisson_nll(pred, target, batch_axis=1)[1], rtol=1e-5)


def poisson_epsilon_fix(loss_module, ctx=mx.cpu()):
    loss = loss_module.PoissonNLLLoss(from_logits=False, epsilon=0.5)
    pred, target = np.array([[0.1, 0.2]]), np.array([[1.0, 2.0]])
    out = loss(mx.nd.array(pred, ctx=ctx), mx.nd.array(target, ctx=ctx)).asnumpy()
    np.testing.assert_allclose(
        out, R.ref_poisson_nll(pred, target, from_logits=False, epsilon=0.5)[1], rtol=1e-5)


def l2_weight_none_fix(loss_module, ctx=mx.cpu()):
    pred, label = np.array([[1.0, 2.0], [0.0, -1.0]]), np.zeros((2, 2))
    out = loss_module.L2Loss(weight=None)(mx.nd.array(pred, ctx=ctx),
                                          mx.nd.array(label, ctx=ctx)).asnumpy()
    np.testing.assert_allclose(out, [1.25, 0.25], rtol=1e-6)


FIXES = [poisson_full_fix, poisson_batch_axis_fix, poisson_epsilon_fix, l2_weight_none_fix]


test_fix, test_fix_fails_on_mxnet_1_9_1 = fix_tests(FIXES)


@pytest.mark.parametrize("mode", ["hybrid", "export"])
def test_poisson_full_trains_hybridized(mode, tmp_path):
    from conftest import run_mode
    pred = np.random.RandomState(1).standard_normal((4, 3))
    target = np.array([[0, 1, 2], [0, 0, 5], [1, 3, 0], [7, 1, 1]], dtype=np.float64)
    value, grads = run_mode(mode, lambda: L.PoissonNLLLoss(compute_full=True), [pred, target],
                            grad=(0,), tmpdir=tmp_path)
    np.testing.assert_allclose(value, R.ref_poisson_nll(pred, target, compute_full=True)[1],
                               rtol=1e-5)
    np.testing.assert_allclose(grads[0], (np.exp(pred) - target) / 3, rtol=1e-5, atol=1e-6)


def test_huber_switches_at_rho():
    """Quadratic d^2/(2 rho) below rho, linear |d| - rho/2 above, continuous at rho."""
    d = np.array([[0.1, 0.5 - 1e-4, 0.5, 0.5 + 1e-4, 2.0]])
    out = L.HuberLoss(rho=0.5, reduction="none")(mx.nd.array(d, dtype="float64"),
                                                  mx.nd.zeros((1, 5), dtype="float64")).asnumpy()
    np.testing.assert_allclose(out, [[0.01, (0.5 - 1e-4) ** 2, 0.25, 0.25 + 1e-4, 1.75]],
                               rtol=1e-9)


def test_l2_label_with_same_size_other_shape():
    """mxnet reshapes label like pred when sizes match: (B,) label for (B, 1) pred."""
    pred = np.array([[1.0], [2.0], [3.0]])
    label = np.array([1.5, 2.0, 2.0])
    out = L.L2Loss()(mx.nd.array(pred), mx.nd.array(label)).asnumpy()
    np.testing.assert_allclose(out, [0.125, 0.0, 0.5], rtol=1e-6)


# ---------------------------------------------------------------- log-cosh, MAPE, MSLE
def test_log_cosh_huge_errors_are_finite_with_tanh_gradient():
    from conftest import run_mode
    d = np.array([[-1e4, -100.0, -1e-3, 0.0, 1e-3, 100.0, 1e4]], dtype=np.float32)
    value, grads = run_mode("hybrid", lambda: L.LogCoshLoss(reduction="none"),
                            [d, np.zeros_like(d)], (0,))
    np.testing.assert_allclose(value, np.abs(d) + np.log1p(np.exp(-2 * np.abs(d))) - np.log(2),
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(grads[0], np.tanh(d), rtol=1e-5, atol=1e-7)


def test_mape_zero_label_uses_epsilon():
    out = L.MAPELoss(reduction="none")(mx.nd.array([[0.5, 2.0]]), mx.nd.array([[0.0, 1.0]]))
    np.testing.assert_allclose(out.asnumpy(), [[100 * 0.5 / 1e-7, 100.0]], rtol=1e-5)


def test_msle_clamps_below_epsilon_with_zero_gradient():
    from conftest import run_mode
    pred = np.array([[-3.0, 0.0, 1.0]])
    value, grads = run_mode("imperative", lambda: L.MSLELoss(reduction="none"),
                            [pred, np.ones((1, 3))], (0,))
    floor = np.log1p(1e-7)
    np.testing.assert_allclose(value, [[(floor - np.log(2)) ** 2] * 2 + [0.0]], rtol=1e-5)
    assert grads[0][0, 0] == 0.0 and grads[0][0, 2] == 0.0
