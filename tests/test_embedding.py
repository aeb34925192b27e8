"""Triplet, cosine embedding and SDML (gluonx/loss/embedding.py)."""
import numpy as np
import pytest

import gluonx.loss as L
import mxnet as mx

import reference as R
from cases import family_tests, fix_tests
from conftest import run_mode

CASES, test_value_and_gradient_match_reference, test_every_option_changes_the_answer = \
    family_tests("embedding")


# ---------------------------------------------------------------- fixes over mxnet 1.9.1
def cosine_shape_fix(loss_module, ctx=mx.cpu()):
    rng = np.random.RandomState(0)
    a, b = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    label = np.array([1.0, -1.0, 1.0, -1.0, -1.0])
    out = loss_module.CosineEmbeddingLoss()(mx.nd.array(a, ctx=ctx), mx.nd.array(b, ctx=ctx),
                                            mx.nd.array(label, ctx=ctx)).asnumpy()
    assert out.shape == (5,), "CosineEmbeddingLoss output shape %s" % (out.shape,)
    np.testing.assert_allclose(out, R.ref_cosine_embedding(a, b, label)[1], rtol=1e-5,
                               atol=1e-7)


def sdml_hybridizes_fix(loss_module, ctx=mx.cpu()):
    rng = np.random.RandomState(1)
    x1, x2 = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    loss = loss_module.SDMLLoss()
    loss.hybridize()
    out = loss(mx.nd.array(x1, ctx=ctx), mx.nd.array(x2, ctx=ctx)).asnumpy()
    np.testing.assert_allclose(out, R.ref_sdml(x1, x2)[1], rtol=1e-5)


def sdml_symbol_fix(loss_module, ctx=mx.cpu()):
    out = loss_module.SDMLLoss()(mx.sym.var("data0"), mx.sym.var("data1"))
    rng = np.random.RandomState(2)
    x1, x2 = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    res = out.eval(ctx=ctx, data0=mx.nd.array(x1, ctx=ctx), data1=mx.nd.array(x2, ctx=ctx))
    np.testing.assert_allclose(res[0].asnumpy(), R.ref_sdml(x1, x2)[1], rtol=1e-5)


FIXES = [cosine_shape_fix, sdml_hybridizes_fix, sdml_symbol_fix]


test_fix, test_fix_fails_on_mxnet_1_9_1 = fix_tests(FIXES)


@pytest.mark.parametrize("sw_shape", [(6,), (6, 1)])
def test_cosine_sample_weight_per_sample_shapes(sw_shape):
    """A per-sample weight may be (batch,) or mxnet's (batch, 1); output stays (batch,)."""
    rng = np.random.RandomState(3)
    a, b = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    label = np.array([1.0, -1.0, 1.0, -1.0, 1.0, -1.0])
    sw = rng.uniform(0.5, 2.0, size=sw_shape)
    out = L.CosineEmbeddingLoss()(mx.nd.array(a), mx.nd.array(b), mx.nd.array(label),
                                  mx.nd.array(sw)).asnumpy()
    np.testing.assert_allclose(out, R.ref_cosine_embedding(a, b, label, sw)[1], rtol=1e-5,
                               atol=1e-7)


def test_cosine_zero_vector_is_finite():
    a = np.zeros((2, 3))
    b = np.ones((2, 3))
    value, grads = run_mode("imperative", lambda: L.CosineEmbeddingLoss(),
                            [a, b, np.array([1.0, -1.0])], grad=(1,))
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(grads[1]))
    np.testing.assert_allclose(value, [1.0, 0.0], atol=1e-6)


@pytest.mark.parametrize("keyword", [False, True])
def test_triplet_sample_weight_by_position_and_keyword(keyword):
    rng = np.random.RandomState(4)
    p, pos, neg = (mx.nd.array(rng.standard_normal((4, 3))) for _ in range(3))
    sw = rng.uniform(0.5, 2.0, size=4)
    loss = L.TripletLoss(margin=2.0)
    out = (loss(p, pos, neg, sample_weight=mx.nd.array(sw)) if keyword
           else loss(p, pos, neg, mx.nd.array(sw))).asnumpy()
    ref = R.ref_triplet(p.asnumpy(), pos.asnumpy(), neg.asnumpy(), sw, margin=2.0)[1]
    np.testing.assert_allclose(out, ref, rtol=1e-5)


def test_sdml_batch_size_changes_between_calls():
    """One SDML block serves different batch sizes, also hybridized."""
    loss = L.SDMLLoss()
    loss.hybridize()
    rng = np.random.RandomState(5)
    for n in (3, 5, 3):
        x1, x2 = rng.standard_normal((n, 4)), rng.standard_normal((n, 4))
        out = loss(mx.nd.array(x1), mx.nd.array(x2)).asnumpy()
        np.testing.assert_allclose(out, R.ref_sdml(x1, x2)[1], rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- circle
def test_circle_anchor_without_positive_or_negative_costs_nothing():
    rng = np.random.RandomState(6)
    x = rng.standard_normal((4, 3))
    value, grads = run_mode("hybrid", lambda: L.CircleLoss(gamma=32), [x, np.array(
        [0.0, 0.0, 1.0, 2.0])], (0,))
    assert value[0] > 0 and value[1] > 0 and value[2] == 0 and value[3] == 0
    assert np.all(np.isfinite(grads[0]))
    value, grads = run_mode("hybrid", lambda: L.CircleLoss(gamma=32), [x, np.zeros(4)], (0,))
    np.testing.assert_allclose(value, 0.0)        # no negatives at all
    np.testing.assert_allclose(grads[0], 0.0)


def test_circle_is_permutation_equivariant_and_serves_any_batch_size():
    rng = np.random.RandomState(7)
    loss = L.CircleLoss(gamma=64, margin=0.3)
    loss.hybridize()
    for n in (6, 10, 6):
        x, y = rng.standard_normal((n, 5)), rng.randint(0, 3, n).astype(np.float64)
        perm = rng.permutation(n)
        a = loss(mx.nd.array(x), mx.nd.array(y)).asnumpy()
        b = loss(mx.nd.array(x[perm]), mx.nd.array(y[perm])).asnumpy()
        np.testing.assert_allclose(b, a[perm], rtol=1e-4)
        np.testing.assert_allclose(a, R.ref_circle(x, y, gamma=64, margin=0.3)[1], rtol=1e-4)


@pytest.mark.parametrize("normalize", [True, False])
def test_circle_kernel_matches_stock_on_edge_inputs(normalize):
    """A zero embedding (the norm clamp), a NaN label (equals nothing: no
    positive of its own, everyone's negative) and integer labels: the fused
    operator gives the stock graph's values and gradients."""
    import gluonx
    from gluonx import kernels
    rng = np.random.RandomState(9)
    x = rng.standard_normal((7, 4)) * 0.5
    x[2] = 0.0
    labels = [np.array([0.0, 0.0, 1.0, 1.0, np.nan, 2.0, 2.0]),
              np.array([5, 5, 1, 1, 1, 3, 3], dtype=np.int64)]
    for label in labels:
        results = []
        for use in (True, False):
            gluonx.config.use_kernels = use
            kernels.reset_calls()
            results.append(run_mode("static", lambda: L.CircleLoss(
                gamma=32, normalize=normalize), [x, label], (0,)))
            assert bool(kernels.calls()) == (use and kernels.available())
        (a, ga), (b, gb) = results
        assert np.all(np.isfinite(a)) and np.all(np.isfinite(ga[0]))
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(ga[0], gb[0], rtol=1e-6,
                                   atol=1e-9 * max(1.0, np.abs(gb[0]).max()))


def test_circle_large_scale_is_stable():
    """gamma = 1024: exp would overflow without the shifted log-sum-exp."""
    rng = np.random.RandomState(8)
    x, y = rng.standard_normal((8, 4)).astype(np.float32), np.array([0., 0., 1., 1.] * 2)
    value, grads = run_mode("hybrid", lambda: L.CircleLoss(gamma=1024), [x, y], (0,))
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(grads[0]))
    np.testing.assert_allclose(value, R.ref_circle(x, y, gamma=1024)[1], rtol=1e-3)
