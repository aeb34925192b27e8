"""float16: values and gradients where the math allows, float32 inside for
log-sum-exp style parts; mixed-dtype sample weights; output dtypes.

gluonx documents that float16 inputs give a float32 loss (like torch autocast);
input gradients keep their inputs' dtype."""
import numpy as np
import pytest

import gluonx.loss as L
import mxnet as mx

import reference as R
from cases import CASES, as_dtype, assert_close, expected, ids, input_names
from conftest import run_mode

F16 = [c for c in CASES if c.f16]


@pytest.mark.parametrize("mode", ["imperative", "hybrid", "static", "symbol", "export"])
@pytest.mark.parametrize("case", F16, ids=ids(F16))
def test_float16_value_and_gradient(case, mode, kernels, ctx, tmp_path):
    inputs, out, head, grads = expected(case.id, "float16")
    value, g = run_mode(mode, case.factory(), as_dtype(inputs, "float16"), case.grad, ctx, head,
                        tmp_path)
    # (pure mx.sym composition cannot know the input dtype: float16 or float32 there)
    assert value.dtype == np.float32 or mode == "symbol" and value.dtype == np.float16
    assert_close(value, out, (1e-2, 1e-2), case.id)
    for k, ref in grads.items():
        assert g[k].dtype == np.float16
        assert_close(g[k], ref, (2e-2, 2e-2), "%s grad[%d]" % (case.id, k))


# rows whose third input is a present sample_weight (read from the loss's signature)
WEIGHTED = [c for c in CASES if input_names(c)[2:3] == ("sample_weight",)
            and len(c.inputs()) > 2 and c.inputs()[2] is not None]


@pytest.mark.parametrize("case", WEIGHTED, ids=ids(WEIGHTED))
@pytest.mark.parametrize("hybridize", [False, True])
def test_float16_loss_takes_float32_sample_weight(case, hybridize):
    """pred/label in float16, sample_weight in float32: no complaint, right answer."""
    inputs = as_dtype(case.inputs(), "float16", keep=(2,))
    inputs[2] = inputs[2].astype(np.float32)
    loss = case.factory()()
    if hybridize:
        loss.hybridize()
    args = [None if a is None else mx.nd.array(a, dtype=a.dtype) for a in inputs]
    while args[-1] is None:
        args.pop()
    out = loss(*args).asnumpy()
    assert out.dtype == np.float32
    ref = case.reference([None if a is None else a.astype(np.float64) for a in inputs])
    assert_close(out, ref, (2e-2, 2e-2), case.id)


@pytest.mark.parametrize("sw_dtype", ["float32", "float64"])
def test_float16_triplet_ctc_take_wider_sample_weight(sw_dtype):
    rng = np.random.RandomState(0)
    x = [rng.standard_normal((4, 3)).astype(np.float16) for _ in range(3)]
    sw = rng.uniform(0.5, 2, size=4)
    out = L.TripletLoss()(*[mx.nd.array(a, dtype="float16") for a in x],
                          sample_weight=mx.nd.array(sw, dtype=sw_dtype)).asnumpy()
    assert_close(out, R.ref_triplet(*x, sample_weight=sw)[1], (2e-2, 2e-2))
    pred = rng.standard_normal((2, 5, 4)).astype(np.float16)
    label = np.array([[0.0, 1.0], [2.0, -1.0]])
    out = L.CTCLoss()(mx.nd.array(pred, dtype="float16"), mx.nd.array(label),
                      sample_weight=mx.nd.array(sw[:2], dtype=sw_dtype)).asnumpy()
    assert_close(out, R.ref_ctc(pred, label, sample_weight=sw[:2])[1], (2e-2, 2e-2))


@pytest.mark.parametrize("classes", [1000, 100000])
@pytest.mark.parametrize("mode", ["imperative", "hybrid", "static", "symbol", "export"])
def test_softmax_ce_float16_many_classes(classes, mode, tmp_path):
    """Within 0.01 nats of float64 in every mode (1.9.1: off by ~1.5 nats)."""
    rng = np.random.RandomState(classes)
    logits = (rng.standard_normal((3, classes)) * 3).astype(np.float16)
    label = rng.randint(0, classes, size=3).astype(np.float32)
    out, grads = run_mode(mode, lambda: L.SoftmaxCELoss(), [logits, label], (0,),
                          tmpdir=tmp_path)
    ref = R.ref_softmax_ce(logits.astype(np.float64), label)[1]
    assert np.max(np.abs(out.astype(np.float64) - ref)) < 0.01, (out, ref)
    assert np.all(np.isfinite(grads[0]))


def test_softmax_ce_float16_symbol_without_declared_dtype_follows_mxnet():
    """mx.sym variables without a dtype: the graph cannot know it is float16,
    so nothing is cast (MXNet's rule) and the output stays float16; with
    ``mx.sym.var(..., dtype='float16')`` the loss is computed in float32."""
    logits = (np.random.RandomState(0).standard_normal((3, 50)) * 3).astype(np.float16)
    label = np.array([1, 7, 42], dtype=np.float32)
    args = {"data0": mx.nd.array(logits, dtype="float16"), "data1": mx.nd.array(label)}
    plain = L.SoftmaxCELoss()(mx.sym.var("data0"), mx.sym.var("data1"))
    typed = L.SoftmaxCELoss()(mx.sym.var("data0", dtype="float16"), mx.sym.var("data1"))
    assert plain.eval(ctx=mx.cpu(), **args)[0].dtype == np.float16
    out = typed.eval(ctx=mx.cpu(), **args)[0]
    assert out.dtype == np.float32
    ref = R.ref_softmax_ce(logits.astype(np.float64), label)[1]
    np.testing.assert_allclose(out.asnumpy(), ref, rtol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_output_dtype_follows_pred(case):
    for dtype in ("float32", "float64"):
        inputs, _, _, _ = expected(case.id, dtype)
        value, _ = run_mode("imperative", case.factory(), as_dtype(inputs, dtype))
        assert value.dtype == np.dtype(dtype), (case.id, dtype, value.dtype)
