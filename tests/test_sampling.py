"""NCELoss (gluonx/loss/sampling.py): value and gradients against the numpy
reference with the same negatives, every mode, the sampler, training."""
import contextlib

import numpy as np
import pytest

import gluonx.loss as L
import mxnet as mx
from mxnet import autograd, gluon

import reference as R
from cases import assert_close
from conftest import MODES, NUMPY_MODES, numpy_mode, run_mode

C, D, K = 12, 5, 6
NOISE = np.arange(1.0, C + 1.0) ** 0.75


def _setup(seed=0, three_d=False, n=4):
    rng = np.random.RandomState(seed)
    pred = rng.standard_normal((n, 3, D) if three_d else (n, D))
    label = rng.randint(0, C, size=n).astype(np.float64)
    negatives = rng.randint(0, C, size=K).astype(np.float64)
    negatives[0] = label[1]   # an accidental hit: the target is also a negative
    W = rng.standard_normal((C, D)) * 0.5
    b = rng.standard_normal(C) * 0.3
    return pred, label, negatives, W, b


def _factory(W, b, dtype="float32", **kw):
    def make():
        loss = L.NCELoss(C, K, NOISE, in_units=D, dtype=dtype, **kw)
        if dtype == "float64" and mx.util.is_np_array():
            # MXNet 1.9.1's initializers fail on float64 parameters in numpy
            # mode (any gluon layer: '_npi_uniform' dtype check)
            with mx.util.np_array(False), mx.util.np_shape(False):
                loss.initialize()
            loss.weight.set_data(mx.nd.array(W, dtype=dtype))
            loss.bias.set_data(mx.nd.array(b, dtype=dtype))
            return loss
        loss.initialize()
        array = mx.np.array if mx.util.is_np_array() else mx.nd.array
        loss.weight.set_data(array(W, dtype=dtype))
        loss.bias.set_data(array(b, dtype=dtype))
        return loss
    return make


def _round(a, dtype):
    return np.asarray(a).astype(dtype).astype(np.float64)


@pytest.mark.parametrize("three_d", [False, True], ids=["2d", "contexts"])
@pytest.mark.parametrize("subtract_log_q", [True, False], ids=["nce", "negative-sampling"])
@pytest.mark.parametrize("mode", MODES)
def test_every_mode_matches_reference(mode, subtract_log_q, three_d, dtype, tmp_path):
    pred, label, negatives, W, b = _setup(three_d=three_d)
    pred, W, b = (_round(a, dtype) for a in (pred, W, b))
    sw = np.random.RandomState(9).uniform(0.5, 2, size=4)
    inputs = [pred.astype(dtype), label, sw.astype(dtype), negatives]
    factory = _factory(W, b, dtype, subtract_log_q=subtract_log_q)
    ref = lambda x: R.ref_nce(x, label, negatives, W, b, NOISE, subtract_log_q, sw)[1]  # noqa
    head = np.random.RandomState(1).uniform(0.5, 1.5, size=4)
    value, grads = run_mode(mode, factory, inputs, (0,), mx.cpu(), head, tmp_path)
    tol = (2e-4, 2e-5) if dtype == "float32" else (1e-7, 1e-9)
    assert_close(value, ref(pred), tol, "value")
    expected = R.numeric_grad(ref, [pred], (0,), head)[0]
    assert_close(grads[0], expected, (tol[0] * 5, tol[1] * 5), "grad pred")


@pytest.mark.parametrize("subtract_log_q", [True, False])
def test_parameter_gradients_match_finite_differences(subtract_log_q, dtype):
    pred, label, negatives, W, b = _setup(seed=2)
    loss = _factory(W, b, dtype, subtract_log_q=subtract_log_q)()
    x = mx.nd.array(pred, dtype=dtype)
    with autograd.record():
        out = loss(x, mx.nd.array(label), None, mx.nd.array(negatives))
    out.backward()
    W, b = (_round(a, dtype) for a in (W, b))
    ref = lambda W_, b_: R.ref_nce(_round(pred, dtype), label, negatives, W_, b_, NOISE,  # noqa
                                   subtract_log_q)[1]
    grads = R.numeric_grad(ref, [W, b], (0, 1), np.ones(4))
    tol = (1e-3, 1e-4) if dtype == "float32" else (1e-6, 1e-8)
    assert_close(loss.weight.grad().asnumpy(), grads[0], tol, "dW")
    assert_close(loss.bias.grad().asnumpy(), grads[1], tol, "db")


def test_subtract_log_q_matters():
    pred, label, negatives, W, b = _setup()
    args = (mx.nd.array(pred), mx.nd.array(label), None, mx.nd.array(negatives))
    a = _factory(W, b, subtract_log_q=True)()(*args).asnumpy()
    b_ = _factory(W, b, subtract_log_q=False)()(*args).asnumpy()
    assert np.abs(a - b_).min() > 1e-3


def test_weight_and_reductions():
    pred, label, negatives, W, b = _setup()
    args = (mx.nd.array(pred), mx.nd.array(label), None, mx.nd.array(negatives))
    per = _factory(W, b)()(*args).asnumpy()
    np.testing.assert_allclose(_factory(W, b, weight=0.25)()(*args).asnumpy(), per * 0.25,
                               rtol=1e-6)
    np.testing.assert_allclose(_factory(W, b, reduction="mean")()(*args).asnumpy(),
                               [per.mean()], rtol=1e-6)
    np.testing.assert_allclose(_factory(W, b, reduction="sum")()(*args).asnumpy(),
                               [per.sum()], rtol=1e-6)


# ---------------------------------------------------------------- the sampler
def test_alias_tables_reproduce_the_distribution():
    q = np.random.RandomState(0).uniform(0, 1, size=50) ** 3
    keep, alias = L.sampling.alias_tables(q)
    implied = keep / q.size
    np.add.at(implied, alias.astype(int), (1 - keep) / q.size)
    np.testing.assert_allclose(implied, q / q.sum(), rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("hybridize", [False, True])
def test_negatives_follow_the_noise_distribution(hybridize):
    loss = L.NCELoss(C, 40000, NOISE, in_units=D)
    drawn = loss._sample(mx.nd, loss.noise_keep.data(), loss.noise_alias.data()).asnumpy()
    counts = np.bincount(drawn.astype(int), minlength=C)
    expected = NOISE / NOISE.sum() * drawn.size
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 40, chi2   # 11 degrees of freedom: p ~ 1e-5


@pytest.mark.parametrize("flags", [None, {}, {"static_alloc": True, "static_shape": True}],
                         ids=["imperative", "hybrid", "static"])
def test_deterministic_under_seed_and_fresh_each_call(flags):
    pred, label, _, W, b = _setup()
    loss = _factory(W, b)()
    if flags is not None:
        loss.hybridize(**flags)
    x, y = mx.nd.array(pred), mx.nd.array(label)
    mx.random.seed(11)
    first = [loss(x, y).asnumpy() for _ in range(3)]
    mx.random.seed(11)
    again = [loss(x, y).asnumpy() for _ in range(3)]
    for a, b_ in zip(first, again):
        np.testing.assert_array_equal(a, b_)
    assert not np.allclose(first[0], first[1])   # new negatives each call


def test_sampled_loss_equals_reference_with_the_drawn_negatives():
    """Seeded draw: replay the same uniforms in numpy to recover the negatives."""
    pred, label, _, W, b = _setup()
    loss = _factory(W, b)()
    mx.random.seed(5)
    out = loss(mx.nd.array(pred), mx.nd.array(label)).asnumpy()
    mx.random.seed(5)
    drawn = loss._sample(mx.nd, loss.noise_keep.data(), loss.noise_alias.data()).asnumpy()
    W32, b32, p32 = (_round(a, "float32") for a in (W, b, pred))
    np.testing.assert_allclose(out, R.ref_nce(p32, label, drawn, W32, b32, NOISE)[1],
                               rtol=1e-5)


# ---------------------------------------------------------------- numpy mode
@pytest.mark.parametrize("three_d", [False, True], ids=["2d", "contexts"])
@pytest.mark.parametrize("mode", NUMPY_MODES)
def test_numpy_mode_matches_legacy(mode, three_d, dtype, tmp_path):
    pred, label, negatives, W, b = _setup(three_d=three_d)
    sw = np.random.RandomState(9).uniform(0.5, 2, size=4)
    inputs = [pred.astype(dtype), label, sw.astype(dtype), negatives]
    factory = _factory(W, b, dtype)
    legacy = run_mode(mode[len("numpy-"):], factory, inputs, (0, 2), mx.cpu(), None, tmp_path)
    numpy = run_mode(mode, factory, inputs, (0, 2), mx.cpu(), None, tmp_path)
    tol = (1e-6, 1e-7) if dtype == "float32" else (1e-12, 1e-14)
    assert_close(numpy[0], legacy[0], tol, "value")
    for k in (0, 2):
        assert_close(numpy[1][k], legacy[1][k], tol, "grad %d" % k)


@pytest.mark.parametrize("hybridize", [False, True])
def test_numpy_mode_sampled_negatives_parameters_and_logits(hybridize):
    """Sampled negatives (same seed, same draw), parameter gradients, deferred
    in_units and logits() in numpy mode equal legacy mode's."""
    pred, label, _, W, b = _setup(three_d=True)
    results = []
    for numpy in (False, True):
        with (numpy_mode() if numpy else contextlib.nullcontext()):
            array = mx.np.array if numpy else mx.nd.array
            loss = L.NCELoss(C, K, NOISE)              # in_units inferred at the first call
            loss.initialize()
            if hybridize:
                loss.hybridize()
            x, y = array(pred, dtype="float32"), array(label, dtype="float32")
            loss(x, y).wait_to_read()
            assert loss.weight.shape == (C, D)
            loss.weight.set_data(array(W, dtype="float32"))
            loss.bias.set_data(array(b, dtype="float32"))
            mx.random.seed(4)
            with autograd.record():
                out = loss(x, y)
            out.backward()
            logits = loss.logits(x)
            assert all(isinstance(a, mx.np.ndarray) == numpy
                       for a in (out, logits, loss.weight.grad()))
            results.append([a.asnumpy() for a in (out, loss.weight.grad(), loss.bias.grad(),
                                                 logits)])
    for legacy, numpy in zip(*results):
        np.testing.assert_allclose(numpy, legacy, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(results[0][3], pred @ W.T + b, rtol=1e-5, atol=1e-6)


def test_numpy_mode_logits_symbol():
    loss = _factory(*_setup()[3:])()
    with numpy_mode():
        sym = loss.logits(mx.sym.var("x").as_np_ndarray())
        assert isinstance(sym, mx.sym.np._Symbol)
    assert sym.as_nd_ndarray().list_arguments() == ["x", loss.weight.name, loss.bias.name]


# ---------------------------------------------------------------- parameters, training
def test_in_units_is_inferred_at_the_first_call():
    loss = L.NCELoss(C, K, NOISE)
    loss.initialize()
    out = loss(mx.nd.ones((2, 7)), mx.nd.array([0, 1]))
    assert loss.weight.shape == (C, 7) and out.shape == (2,)


def test_logits_full_softmax_path():
    pred, label, _, W, b = _setup()
    loss = _factory(W, b)()
    x = mx.nd.array(pred)
    np.testing.assert_allclose(loss.logits(x).asnumpy(), pred @ W.T + b, rtol=1e-5, atol=1e-6)
    sym = loss.logits(mx.sym.var("x"))
    assert sym.list_arguments() == ["x", loss.weight.name, loss.bias.name]
    ce = L.SoftmaxCELoss()(loss.logits(x), mx.nd.array(label)).asnumpy()
    np.testing.assert_allclose(ce, R.ref_softmax_ce(pred @ W.T + b, label)[1], rtol=1e-5)


def test_trains_with_gluon_trainer():
    """An embedding + NCE output layer learns a fixed class-to-class mapping."""
    mx.random.seed(0)
    n_classes = 50
    target_of = np.random.RandomState(0).permutation(n_classes)
    embed = gluon.nn.Embedding(n_classes, 16)
    nce = L.NCELoss(n_classes, 8, np.ones(n_classes), in_units=16)
    embed.initialize(mx.init.Normal(0.1))
    nce.initialize()
    nce.hybridize()
    params = embed.collect_params()
    params.update(nce.collect_params())
    trainer = gluon.Trainer(params, "adam", {"learning_rate": 0.05})
    inputs = mx.nd.arange(n_classes)
    labels = mx.nd.array(target_of)
    losses = []
    for _ in range(200):
        with autograd.record():
            loss = nce(embed(inputs), labels).mean()
        loss.backward()
        trainer.step(1)
        losses.append(float(loss.asscalar()))
    assert losses[-1] < losses[0] / 5, (losses[0], losses[-1])
    predicted = nce.logits(embed(inputs)).argmax(axis=1).asnumpy()
    assert (predicted == target_of).mean() > 0.9


def test_export_imports_with_parameters(tmp_path):
    pred, label, negatives, W, b = _setup()
    loss = _factory(W, b)()
    loss.hybridize()
    args = [mx.nd.array(pred), mx.nd.array(label), mx.nd.array(negatives)]
    out = loss(args[0], args[1], negatives=args[2]).asnumpy()
    path = str(tmp_path / "nce")
    loss.export(path)
    block = gluon.SymbolBlock.imports(path + "-symbol.json", ["data0", "data1", "data2"],
                                      path + "-0000.params")
    np.testing.assert_allclose(block(*args).asnumpy(), out, rtol=1e-6)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs, arg", [
    (dict(num_classes=0), "num_classes"),
    (dict(num_sampled=0), "num_sampled"),
    (dict(noise_distribution=np.ones(C - 1)), "noise_distribution"),
    (dict(noise_distribution=-np.ones(C)), "noise_distribution"),
    (dict(in_units=-1), "in_units"),
])
def test_bad_constructor_arguments(kwargs, arg):
    full = dict(num_classes=C, num_sampled=K, noise_distribution=NOISE)
    full.update(kwargs)
    with pytest.raises(L.LossInputError, match="NCELoss: argument '%s'" % arg):
        L.NCELoss(**full)


@pytest.mark.parametrize("args, arg, fragment", [
    ((np.ones((4, D + 1)), np.zeros(4)), "pred", "expected"),
    ((np.ones(D), np.zeros(1)), "pred", "expected"),
    ((np.ones((4, D)), np.zeros(3)), "label", "one class per sample"),
    ((np.ones((4, D)), np.array([0, 1, 2, C])), "label", "integers in"),
    ((np.ones((4, D)), np.array([0, 1, 2, 0.5])), "label", "integers in"),
    ((np.ones((4, D)), np.zeros(4), None, np.zeros(K + 1)), "negatives", "num_sampled"),
    ((np.ones((4, D)), np.zeros(4), None, np.full(K, -1.0)), "negatives", "integers in"),
])
def test_bad_call(args, arg, fragment):
    loss = L.NCELoss(C, K, NOISE, in_units=D)
    loss.initialize()
    with pytest.raises(L.LossInputError, match="NCELoss: argument '%s'.*%s" % (arg, fragment)):
        loss(*(None if a is None else mx.nd.array(a) for a in args))
