"""VAE bound, WGAN-GP and the critic's input gradient (gluonx/loss/generative.py)."""
import numpy as np
import pytest

import gluonx.loss as L
import mxnet as mx
from mxnet import autograd, gluon

import reference as R
from cases import family_tests

CASES, test_value_and_gradient_match_reference, test_every_option_changes_the_answer = \
    family_tests("generative")


def nd(a, dtype="float64"):
    return mx.nd.array(np.asarray(a), dtype=dtype)


# ---------------------------------------------------------------- VAELoss
def test_vae_logits_equal_probabilities():
    """from_sigmoid=False on logits equals the default on sigmoid(logits)."""
    rng = np.random.RandomState(0)
    logits, y = rng.standard_normal((3, 6)) * 3, (rng.uniform(size=(3, 6)) < 0.5) * 1.0
    mean, lv = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    a = L.VAELoss(from_sigmoid=False)(nd(logits), nd(y), nd(mean), nd(lv)).asnumpy()
    b = L.VAELoss(eps=0)(nd(1 / (1 + np.exp(-logits))), nd(y), nd(mean), nd(lv)).asnumpy()
    np.testing.assert_allclose(a, b, rtol=1e-10)


def test_vae_logits_are_stable_at_large_values():
    logits = np.array([[800.0, -800.0]])
    y = np.array([[0.0, 1.0]])
    z = np.zeros((1, 1))
    x = nd(logits)
    x.attach_grad()
    with autograd.record():
        out = L.VAELoss(from_sigmoid=False)(x, nd(y), nd(z), nd(z))
    out.backward()
    np.testing.assert_allclose(out.asnumpy(), [1600.0])
    np.testing.assert_allclose(x.grad.asnumpy(), [[1.0, -1.0]])


def test_vae_kl_is_zero_at_the_prior_and_positive_elsewhere():
    y = nd(np.full((2, 3), 0.5))
    p = nd(np.full((2, 3), 0.5))
    zero = L.VAELoss()(p, y, nd(np.zeros((2, 4))), nd(np.zeros((2, 4)))).asnumpy()
    np.testing.assert_allclose(zero, [3 * np.log(2)] * 2, rtol=1e-12)
    moved = L.VAELoss()(p, y, nd(np.ones((2, 4))), nd(np.zeros((2, 4)))).asnumpy()
    np.testing.assert_allclose(moved - zero, [2.0, 2.0], rtol=1e-12)


@pytest.mark.parametrize("args, arg, fragment", [
    (dict(log_var=np.zeros((4, 2))), "log_var", "mean's shape"),
    (dict(mean=np.zeros((3, 3)), log_var=np.zeros((3, 3))), "mean", "samples"),
    (dict(pred=np.full((4, 5), 1.5)), "pred", "probabilities"),
    (dict(label=np.full((4, 5), -0.5)), "label", "[0, 1]"),
    (dict(label=np.zeros((4, 6))), "label", "shape"),
])
def test_vae_bad_input(args, arg, fragment):
    inputs = dict(pred=np.full((4, 5), 0.5), label=np.zeros((4, 5)), mean=np.zeros((4, 3)),
                  log_var=np.zeros((4, 3)))
    inputs.update(args)
    with pytest.raises(L.LossInputError, match=r"VAELoss: argument '%s'.*%s"
                       % (arg, fragment.replace("[", r"\[").replace("]", r"\]"))):
        L.VAELoss()(*(nd(inputs[k]) for k in ("pred", "label", "mean", "log_var")))


def test_vae_bad_eps():
    with pytest.raises(L.LossInputError, match="VAELoss: argument 'eps'"):
        L.VAELoss(eps=0.7)


# ---------------------------------------------------------------- WGANGPLoss
def test_wgan_mean_reduction_is_the_paper_objective():
    rng = np.random.RandomState(1)
    fake, real, g = rng.standard_normal(6), rng.standard_normal(6), rng.standard_normal((6, 3))
    out = L.WGANGPLoss(lambda_=3, reduction="mean")(nd(fake), nd(real), nd(g)).asnumpy()
    norm = np.linalg.norm(g, axis=1)
    np.testing.assert_allclose(out, [fake.mean() - real.mean() + 3 * ((norm - 1) ** 2).mean()],
                               rtol=1e-10)
    gen = L.WGANGPLoss(reduction="mean")(nd(fake)).asnumpy()
    np.testing.assert_allclose(gen, [-fake.mean()], rtol=1e-12)


@pytest.mark.parametrize("mode", ["imperative", "hybrid", "static", "symbol"])
def test_wgan_mean_takes_separate_means_of_different_lengths(mode, kernels):
    """reduction='mean': mean D(fake) - mean D(real) + lambda mean (||g|| - 1)^2,
    each over its own samples, and its derivative (1/n_fake, -1/n_real, ...);
    with kernels on, from the fused operator (but in mx.sym: shapes unknown)."""
    import gluonx
    from conftest import run_mode
    rng = np.random.RandomState(12)
    fake, real, g = rng.standard_normal((4, 1)), rng.standard_normal(7), \
        rng.standard_normal((3, 2, 2))
    norm = np.sqrt((g ** 2).sum(axis=(1, 2)))
    gluonx.kernels.reset_calls()
    value, grads = run_mode(mode, lambda: L.WGANGPLoss(lambda_=1.5, weight=2.0,
                                                       reduction="mean"),
                            [fake, real, g], (0, 1, 2))
    fused = kernels and mode != "symbol"
    assert bool(gluonx.kernels.calls()) == fused, gluonx.kernels.calls()
    expected = 2.0 * (fake.mean() - real.mean() + 1.5 * ((norm - 1) ** 2).mean())
    np.testing.assert_allclose(value, [expected], rtol=1e-12)
    np.testing.assert_allclose(grads[0], np.full((4, 1), 2.0 / 4), rtol=1e-12)
    np.testing.assert_allclose(grads[1], np.full(7, -2.0 / 7), rtol=1e-12)
    dg = 2.0 * 1.5 * 2 * (norm - 1)[:, None, None] * g / norm[:, None, None] / 3
    np.testing.assert_allclose(grads[2], dg, rtol=1e-10)


@pytest.mark.parametrize("reduction, weighted", [("sample", False), ("none", False),
                                                 ("sum", False), ("mean", True)])
@pytest.mark.parametrize("lengths, arg", [((4, 5, 4), "real"), ((4, 4, 3), "grad_interp")])
def test_wgan_different_lengths_need_the_mean(reduction, weighted, lengths, arg):
    args = [nd(np.zeros(lengths[0])), nd(np.zeros(lengths[1])), nd(np.ones((lengths[2], 2)))]
    if weighted:
        args.append(nd(np.ones(lengths[0])))
    with pytest.raises(L.LossInputError, match="WGANGPLoss: argument '%s'.*reduction='mean' "
                       "and no sample_weight" % arg):
        L.WGANGPLoss(reduction=reduction)(*args)


def test_wgan_penalty_gradient_is_finite_at_zero_gradient():
    g = nd(np.zeros((2, 3)))
    g.attach_grad()
    with autograd.record():
        out = L.WGANGPLoss()(nd(np.zeros(2)), nd(np.zeros(2)), g)
    out.backward()
    np.testing.assert_allclose(out.asnumpy(), [10.0, 10.0], rtol=1e-9)
    assert np.all(np.isfinite(g.grad.asnumpy()))


def test_wgan_critic_and_generator_from_one_hybridized_block():
    loss = L.WGANGPLoss()
    loss.hybridize()
    fake, real, g = nd([1.0, 2.0]), nd([3.0, 1.0]), nd([[0.6, 0.8], [0.0, 2.0]])
    np.testing.assert_allclose(loss(fake, real, g).asnumpy(), [-2.0, 11.0])
    np.testing.assert_allclose(loss(fake).asnumpy(), [-1.0, -2.0])
    np.testing.assert_allclose(loss(fake, real=real, grad_interp=g).asnumpy(), [-2.0, 11.0])


@pytest.mark.parametrize("args, arg, fragment", [
    ((np.zeros(4), np.zeros(4)), "grad_interp", "missing"),
    ((np.zeros(4), None, np.zeros((4, 2))), "real", "missing"),
    ((np.zeros((4, 2)),), "fake", "one critic score"),
    ((np.zeros(4), np.zeros(4), np.zeros((3, 2))), "grad_interp", "batch_size=4"),
    ((np.zeros(4), np.zeros(5), np.zeros((4, 2))), "real", "shape"),
])
def test_wgan_bad_input(args, arg, fragment):
    with pytest.raises(L.LossInputError, match="WGANGPLoss: argument '%s'.*%s" % (arg, fragment)):
        L.WGANGPLoss()(*(None if a is None else nd(a) for a in args))


def test_wgan_bad_lambda():
    with pytest.raises(L.LossInputError, match="WGANGPLoss: argument 'lambda_'"):
        L.WGANGPLoss(lambda_=-1)


# ---------------------------------------------------------------- critic_input_gradient
def _critic(layers, shape=(3,), seed=0):
    net = gluon.nn.HybridSequential()
    with net.name_scope():
        for layer in layers:
            net.add(layer)
    mx.random.seed(seed)
    net.initialize(mx.init.Normal(0.7))
    net.cast("float64")
    net(nd(np.zeros((1,) + shape)))
    rng = np.random.RandomState(seed + 100)
    for p in net.collect_params().values():    # BatchNorm: statistics not 0 and 1
        if p.name.endswith("running_mean"):
            p.set_data(nd(rng.standard_normal(p.shape) * 0.3))
        elif p.name.endswith("running_var"):
            p.set_data(nd(rng.uniform(0.5, 2.0, p.shape)))
        elif p.name.endswith(("gamma", "beta")):
            p.set_data(nd(rng.uniform(0.5, 1.5, p.shape) * (1 if "gamma" in p.name else 0.5)))
    return net


C2 = gluon.nn.Conv2D
CRITICS = {
    "relu": lambda: [gluon.nn.Dense(7, activation="relu"), gluon.nn.Dense(1)],
    "tanh-sigmoid": lambda: [gluon.nn.Dense(6, activation="tanh"),
                             gluon.nn.Dense(5), gluon.nn.Activation("sigmoid"),
                             gluon.nn.Dense(1)],
    "leaky-softrelu": lambda: [gluon.nn.Dense(6), gluon.nn.LeakyReLU(0.2),
                               gluon.nn.Dense(5, activation="softrelu"), gluon.nn.Dense(1)],
    "elu-nested-nobias": lambda: [gluon.nn.Dense(6, use_bias=False), gluon.nn.ELU(0.7),
                                  _nested(), gluon.nn.Dense(1)],
    # the DCGAN-style critic of the issue
    "conv-leaky": lambda: [C2(3, 3), gluon.nn.LeakyReLU(0.2), C2(4, 3, strides=2, padding=1),
                           gluon.nn.Flatten(), gluon.nn.Dense(1)],
    "conv-pool-groups": lambda: [
        C2(4, 3, padding=1, use_bias=False, activation="tanh"),
        gluon.nn.AvgPool2D(3, strides=2, padding=1, count_include_pad=False),
        C2(4, (2, 3), strides=(2, 1), dilation=2, groups=2, activation="softrelu"),
        gluon.nn.GlobalAvgPool2D(), gluon.nn.Dense(1)],
    "conv-bn-dropout": lambda: [
        C2(3, 3, strides=(1, 2), padding=(0, 1)), gluon.nn.BatchNorm(), gluon.nn.ELU(0.5),
        gluon.nn.Dropout(0.5), gluon.nn.AvgPool2D(2, ceil_mode=True),
        C2(2, 1, activation="sigmoid"), gluon.nn.Flatten(), gluon.nn.Dense(1)],
}
#: one sample's shape (default (3,))
SHAPES = {"conv-leaky": (2, 7, 7), "conv-pool-groups": (2, 11, 12), "conv-bn-dropout": (2, 8, 9)}
#: critics whose Dropout/BatchNorm need predict mode for a deterministic gradient
PREDICT = {"conv-bn-dropout"}


def _nested():
    inner = gluon.nn.HybridSequential()
    inner.add(gluon.nn.Dense(4), gluon.nn.Activation("tanh"))
    return inner


def _net(name, seed=0):
    return _critic(CRITICS[name](), SHAPES.get(name, (3,)), seed)


def _points(name, n, seed, scale=1.0):
    return nd(np.random.RandomState(seed).standard_normal((n,) + SHAPES.get(name, (3,))) * scale)


def _record(name):
    return autograd.record(train_mode=name not in PREDICT)


@pytest.mark.parametrize("name", sorted(CRITICS))
def test_input_gradient_equals_autograd(name):
    net = _net(name)
    x = _points(name, 5, 2)
    x.attach_grad()
    # MXNet's BatchNorm backward differentiates the batch-statistics formula
    # even in predict mode: the reference uses use_global_stats=True, the same
    # function as predict mode
    norms = [layer for layer in L.generative._layers(net) if isinstance(layer, gluon.nn.BatchNorm)]
    for layer in norms:
        layer._kwargs["use_global_stats"] = True
    with _record(name):
        out = net(x)
    out.backward()
    for layer in norms:
        layer._kwargs["use_global_stats"] = False
    with _record(name):
        g, output = L.critic_input_gradient(net, x, return_output=True)
    # (MXNet's float64 LeakyReLU/ELU, used by the critic, are accurate to ~1e-8 only)
    np.testing.assert_allclose(output.asnumpy(), out.asnumpy(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(g.asnumpy(), x.grad.asnumpy(), rtol=1e-6, atol=1e-7)


def _penalty(net, x, lambda_=10.0):
    """The critic loss of WGAN-GP with constant scores: only the penalty depends on
    the critic here, through critic_input_gradient."""
    g = L.critic_input_gradient(net, x)
    return L.WGANGPLoss(lambda_=lambda_, reduction="sum")(nd(np.zeros(len(x))),
                                                         nd(np.zeros(len(x))), g)


@pytest.mark.parametrize("name", sorted(CRITICS))
def test_penalty_gradient_reaches_every_parameter_and_matches_finite_differences(name):
    net = _net(name)
    x = _points(name, 4, 3, 0.8)
    params = [p for p in net.collect_params().values() if p.grad_req != "null"]
    with _record(name):
        loss = _penalty(net, x)
    loss.backward()
    rng = np.random.RandomState(4)
    # the input gradient does not depend on the output layer's bias, nor on
    # any bias of a piecewise-linear (relu, leaky relu) critic: their finite
    # differences are 0 too, checked below
    zero = {net[len(net) - 1].bias.name}
    if name in ("relu", "conv-leaky"):
        zero = {p.name for p in params if p.name.endswith("bias")}
    for p in params:
        grad = p.grad().asnumpy()
        assert p.name in zero or np.abs(grad).max() > 0, \
            "penalty gradient does not reach %s" % p.name
        data = p.data()
        flat = data.asnumpy().ravel()
        for j in rng.choice(flat.size, size=min(4, flat.size), replace=False):
            h = 1e-6
            values = []
            for step in (h, -h):
                bumped = flat.copy()
                bumped[j] += step
                data[:] = bumped.reshape(data.shape)
                values.append(float(_penalty(net, x).asscalar()))
            data[:] = flat.reshape(data.shape)
            numeric = (values[0] - values[1]) / (2 * h)
            np.testing.assert_allclose(grad.ravel()[j], numeric, rtol=1e-5, atol=1e-7,
                                       err_msg="%s[%d]" % (p.name, j))


@pytest.mark.parametrize("config", [
    dict(kernel_size=3),
    dict(kernel_size=3, strides=2, padding=1),
    dict(kernel_size=(2, 3), strides=(3, 2), padding=(1, 0), use_bias=False),
    dict(kernel_size=3, strides=2, dilation=2),          # MXNet's float64 Deconvolution
    dict(kernel_size=(3, 2), strides=(2, 3), dilation=(1, 2), padding=1, groups=2),
    dict(kernel_size=1, strides=2, activation="tanh"),
], ids=lambda c: ",".join("%s=%s" % kv for kv in sorted(c.items())))
@pytest.mark.parametrize("size", [(9, 9), (10, 7)])
def test_conv_input_gradient_for_every_size_stride_and_dilation(config, size, dtype):
    """The transposed convolution gets the input's exact shape back, whatever
    the remainder of (size + 2 pad - dilated kernel) / stride."""
    net = _critic([C2(4, **config), gluon.nn.Dense(1)], (4,) + size)
    net.cast(dtype)
    x = mx.nd.array(np.random.RandomState(8).standard_normal((3, 4) + size), dtype=dtype)
    x.attach_grad()
    with autograd.record():
        out = net(x)
    out.backward()
    g = L.critic_input_gradient(net, x)
    tol = (1e-10, 1e-12) if dtype == "float64" else (1e-4, 1e-5)
    np.testing.assert_allclose(g.asnumpy(), x.grad.asnumpy(), rtol=tol[0], atol=tol[1])


@pytest.mark.parametrize("config", [
    dict(pool_size=2), dict(pool_size=3, strides=2, padding=1),
    dict(pool_size=3, strides=2, padding=1, count_include_pad=False),
    dict(pool_size=(2, 3), strides=(2, 2), ceil_mode=True),
    dict(pool_size=3, strides=2, padding=1, ceil_mode=True, count_include_pad=False),
], ids=lambda c: ",".join("%s=%s" % kv for kv in sorted(c.items())))
@pytest.mark.parametrize("size", [(9, 9), (10, 7)])
def test_avg_pool_input_gradient_for_every_window(config, size):
    net = _critic([C2(2, 1), gluon.nn.AvgPool2D(**config), gluon.nn.Dense(1)], (2,) + size)
    x = nd(np.random.RandomState(9).standard_normal((3, 2) + size))
    x.attach_grad()
    with autograd.record():
        out = net(x)
    out.backward()
    np.testing.assert_allclose(L.critic_input_gradient(net, x).asnumpy(), x.grad.asnumpy(),
                               rtol=1e-10, atol=1e-12)


def test_dropout_in_training_mode_uses_one_mask_for_output_and_gradient():
    """With Dense(3) -> Dropout -> Dense(1) on 6 inputs, g_i = W1^T (m_i * w2):
    the mask m_i recovered from g_i holds 0 and 1 / (1 - p) only, and differs
    between samples; the output uses the same mask."""
    net = _critic([gluon.nn.Dense(3), gluon.nn.Dropout(0.5), gluon.nn.Dense(1)], (6,))
    x = nd(np.random.RandomState(10).standard_normal((40, 6)))
    with autograd.record():
        g, out = L.critic_input_gradient(net, x, return_output=True)
    w1, b1 = net[0].weight.data().asnumpy(), net[0].bias.data().asnumpy()
    w2, b2 = net[2].weight.data().asnumpy()[0], net[2].bias.data().asnumpy()
    masks = np.linalg.lstsq(w1.T, g.asnumpy().T, rcond=None)[0].T / w2
    assert np.allclose(masks[np.abs(masks) > 0.5], 2.0) and np.allclose(
        masks[np.abs(masks) <= 0.5], 0.0), masks
    assert 0 < (masks > 1).mean() < 1
    hidden = x.asnumpy().dot(w1.T) + b1
    np.testing.assert_allclose(out.asnumpy()[:, 0], (hidden * np.round(masks)).dot(w2) + b2,
                               rtol=1e-10)
    g_predict = L.critic_input_gradient(net, x).asnumpy()     # predict mode: the identity
    np.testing.assert_allclose(g_predict, np.tile(w1.T.dot(w2), (40, 1)), rtol=1e-10)


def test_batchnorm_with_batch_statistics_raises_in_training_mode():
    layers = lambda s: [gluon.nn.Dense(4), gluon.nn.BatchNorm(use_global_stats=s),  # noqa: E731
                        gluon.nn.Dense(1)]
    net = _critic(layers(False))
    x = _points("", 4, 11)
    with pytest.raises(L.LossInputError, match="critic_input_gradient.*BatchNorm.*batch "
                       "statistics.*use_global_stats=True"):
        with autograd.record():
            L.critic_input_gradient(net, x)
    block = L.CriticInputGradient(net)
    block.hybridize()
    with pytest.raises(L.LossInputError, match="batch statistics"):
        with autograd.record():
            block(x)
    with autograd.record(train_mode=False):
        a = block(x)
    global_net = _critic(layers(True))
    with autograd.record():
        b = L.critic_input_gradient(global_net, x)
    np.testing.assert_allclose(a.asnumpy(), b.asnumpy(), rtol=1e-12)


def test_mxnet_second_order_autograd_does_not_train_the_critic():
    """Why the helper exists: create_graph=True fails through MXNet 1.9.1's layers."""
    net = _critic(CRITICS["relu"]())
    x = nd(np.random.RandomState(5).standard_normal((4, 3)))
    x.attach_grad()
    with pytest.raises(mx.base.MXNetError):
        with autograd.record():
            g = autograd.grad(net(x), [x], create_graph=True, retain_graph=True)[0]
            penalty = L.WGANGPLoss(reduction="sum")(nd(np.zeros(4)), nd(np.zeros(4)), g)
        penalty.backward()
        mx.nd.waitall()


@pytest.mark.parametrize("layer, fragment", [
    (lambda: gluon.nn.MaxPool2D(), "MaxPool2D.*argmax"),
    (lambda: gluon.nn.GlobalMaxPool2D(), "GlobalMaxPool2D.*argmax"),
    (lambda: gluon.nn.Conv2D(2, 1, layout="NHWC"), "Conv2D.*'NHWC'.*NCHW only"),
    (lambda: gluon.nn.AvgPool2D(layout="NHWC"), "AvgPool2D.*'NHWC'"),
    (lambda: gluon.nn.Conv1D(2, 1), "Conv1D"),
    (lambda: gluon.nn.Conv2DTranspose(2, 1), "Conv2DTranspose"),
    (lambda: gluon.nn.Activation("softsign"), "softsign"),
    (lambda: gluon.nn.Dense(3, activation="softsign"), "softsign"),
    (lambda: gluon.nn.Conv2D(2, 1, activation="softsign"), "softsign"),
])
def test_input_gradient_names_unsupported_layers(layer, fragment):
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Conv2D(2, 1), layer(), gluon.nn.Dense(1))
    net.initialize()
    with pytest.raises(L.LossInputError, match="critic_input_gradient.*%s" % fragment):
        L.critic_input_gradient(net, mx.nd.ones((2, 2, 4, 4)))
    with pytest.raises(L.LossInputError, match="critic_input_gradient.*%s" % fragment):
        L.CriticInputGradient(net)


def test_input_gradient_finishes_deferred_initialisation():
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(4, activation="relu"), gluon.nn.Dense(1))
    net.initialize()
    g = L.critic_input_gradient(net, mx.nd.ones((2, 3)))
    assert g.shape == (2, 3)


def test_penalty_trains_a_critic_towards_unit_gradient_norm():
    """A few Trainer steps on the penalty alone bring ||grad D|| towards 1."""
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(16, activation="tanh"), gluon.nn.Dense(1))
    mx.random.seed(6)
    net.initialize(mx.init.Normal(2.0))
    trainer = gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 0.02})
    x = mx.nd.random.normal(shape=(64, 2))
    zeros = mx.nd.zeros(64)
    loss = L.WGANGPLoss(reduction="mean")
    values = []
    for _ in range(60):
        with autograd.record():
            out = loss(zeros, zeros, L.critic_input_gradient(net, x))
        out.backward()
        trainer.step(1)
        values.append(float(out.asscalar()))
    assert values[-1] < values[0] / 10, (values[0], values[-1])


@pytest.mark.parametrize("name", ["tanh-sigmoid", "conv-leaky", "conv-pool-groups",
                                  "conv-bn-dropout"])
@pytest.mark.parametrize("flags", [None, {}, {"static_alloc": True, "static_shape": True}],
                         ids=["imperative", "hybrid", "static"])
def test_input_gradient_block_matches_the_function_and_trains(flags, name):
    net = _net(name)
    block = L.CriticInputGradient(net)
    if flags is not None:
        block.hybridize(**flags)
    x = _points(name, 5, 7)
    np.testing.assert_allclose(block(x).asnumpy(), L.critic_input_gradient(net, x).asnumpy(),
                               rtol=1e-12, atol=1e-14)
    grads = []
    for fn in (block, lambda v: L.critic_input_gradient(net, v)):
        with _record(name):
            loss = L.WGANGPLoss(reduction="sum")(nd(np.zeros(5)), nd(np.zeros(5)), fn(x))
        loss.backward()
        grads.append([p.grad().asnumpy().copy() for p in net.collect_params().values()
                      if p.grad_req != "null"])
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["tanh-sigmoid", "conv-pool-groups"])
@pytest.mark.parametrize("flags", [None, {"static_alloc": True, "static_shape": True}],
                         ids=["imperative", "static"])
def test_input_gradient_block_in_numpy_mode(flags, name):
    """Under npx.set_np() the block takes and returns mx.np arrays, with the
    gradient of legacy mode, and the penalty's gradient reaches the critic."""
    from mxnet import npx
    net = _net(name)
    x = _points(name, 5, 7)
    want = L.critic_input_gradient(net, x).asnumpy()
    with autograd.record(train_mode=False):
        penalty = L.WGANGPLoss(reduction="sum")(nd(np.zeros(5)), nd(np.zeros(5)),
                                                 L.critic_input_gradient(net, x))
    penalty.backward()
    params = [p for p in net.collect_params().values() if p.grad_req != "null"]
    want_grads = [p.grad().asnumpy().copy() for p in params]
    npx.set_np()
    try:
        block = L.CriticInputGradient(net)
        if flags is not None:
            block.hybridize(**flags)
        xn = x.as_np_ndarray()
        got = block(xn)
        assert isinstance(got, mx.np.ndarray)
        np.testing.assert_allclose(got.asnumpy(), want, rtol=1e-12, atol=1e-14)
        zeros = mx.np.zeros(5, dtype="float64")
        with autograd.record(train_mode=False):
            penalty = L.WGANGPLoss(reduction="sum")(zeros, zeros, block(xn))
        penalty.backward()
        got_grads = [p.grad().asnumpy().copy() for p in params]
    finally:
        npx.reset_np()
    for a, b in zip(got_grads, want_grads):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["conv-leaky", "conv-pool-groups", "conv-bn-dropout"])
def test_input_gradient_of_a_hybridized_critic(name):
    """A hybridized critic (its own cached graph) gives the same gradient and
    parameter gradients; the critic's scores and the penalty train together."""
    results = []
    for hybridize in (False, True):
        net = _net(name)
        if hybridize:
            net.hybridize()
        block = L.CriticInputGradient(net)
        block.hybridize()
        x = _points(name, 4, 13)
        with _record(name):
            g = block(x)
            loss = L.WGANGPLoss(reduction="mean")(net(x), net(x * 0.5), g)
        loss.backward()
        results.append([g.asnumpy(), loss.asnumpy()] + [
            p.grad().asnumpy() for p in net.collect_params().values() if p.grad_req != "null"])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_penalty_trains_a_conv_critic_towards_unit_gradient_norm():
    net = gluon.nn.HybridSequential()
    net.add(C2(4, 3, padding=1, activation="tanh"), gluon.nn.AvgPool2D(2),
            gluon.nn.Flatten(), gluon.nn.Dense(1))
    mx.random.seed(14)
    net.initialize(mx.init.Normal(1.0))
    gradient = L.CriticInputGradient(net)
    gradient.hybridize()
    trainer = gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 0.02})
    x = mx.nd.random.normal(shape=(32, 2, 6, 6))
    zeros = mx.nd.zeros(32)
    loss = L.WGANGPLoss(reduction="mean")
    values = []
    for _ in range(60):
        with autograd.record():
            out = loss(zeros, zeros, gradient(x))
        out.backward()
        trainer.step(1)
        values.append(float(out.asscalar()))
    assert values[-1] < values[0] / 10, (values[0], values[-1])


@pytest.mark.parametrize("name", ["conv-leaky", "conv-pool-groups", "conv-bn-dropout"])
def test_penalty_gradient_in_float32_equals_float64(name):
    """float32 runs MKL-DNN's kernels (float64 does not): same parameter
    gradients, to float32 accuracy, imperative and hybridized."""
    results = []
    for dtype in ("float64", "float32"):
        net = _net(name)
        net.cast(dtype)
        for hybridize in (False, True):
            block = L.CriticInputGradient(net)
            if hybridize:
                block.hybridize()
            x = _points(name, 4, 15).astype(dtype)
            with _record(name):
                g = block(x)
                loss = L.WGANGPLoss(reduction="sum")(mx.nd.zeros(4, dtype=dtype),
                                                     mx.nd.zeros(4, dtype=dtype), g)
            loss.backward()
            results.append([g.asnumpy()] + [p.grad().asnumpy().astype(np.float64) for p in
                                            net.collect_params().values()
                                            if p.grad_req != "null"])
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_allclose(b, a, rtol=2e-3, atol=2e-4 * np.abs(a).max())
