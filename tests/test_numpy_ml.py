"""gluonx.loss.numpy_ml against numpy-ml 0.1.2 itself (a test-only oracle, installed
by CI on Python 3.11): every value equals numpy-ml's ``loss()``, every
gradient equals numpy-ml's ``grad()`` where numpy-ml is right, and finite
differences of numpy-ml's own loss where it is not (listed in the docs)."""
import collections
import collections.abc

import numpy as np
import pytest

import mxnet as mx
from mxnet import autograd

from cases import assert_close
from conftest import MODES, NUMPY_MODES, numpy_mode, run_mode

# numpy-ml 0.1.2 imports collections.Hashable & co., moved to collections.abc
# (and removed from collections) in Python 3.10: restore them for its import.
for _name in ("Hashable", "Iterable", "Mapping", "MutableMapping", "Sequence", "Callable"):
    if not hasattr(collections, _name):
        setattr(collections, _name, getattr(collections.abc, _name))

pytest.importorskip("scipy", reason="numpy-ml needs scipy")
npml_losses = pytest.importorskip("numpy_ml.neural_nets.losses",
                                  reason="the numpy-ml oracle: pip install numpy-ml==0.1.2")
from numpy_ml.neural_nets import activations as npml_act  # noqa: E402
from numpy_ml.utils.data_structures import DiscreteSampler  # noqa: E402

from gluonx.loss import numpy_ml as G  # noqa: E402

TOL = {"float32": (2e-5, 1e-6), "float64": (1e-10, 1e-12)}


def nd(a, dtype="float64"):
    return mx.nd.array(np.asarray(a), dtype=dtype)


def _rounded(a, dtype):
    return np.asarray(a).astype(dtype).astype(np.float64)


def _fd(fn, x, h=1e-6):
    """Central differences of the scalar fn at x (float64)."""
    x = np.array(x, dtype=np.float64)
    g = np.zeros_like(x)
    for j in range(x.size):
        old = x.flat[j]
        x.flat[j] = old + h
        up = fn(x)
        x.flat[j] = old - h
        down = fn(x)
        x.flat[j] = old
        g.flat[j] = (up - down) / (2 * h)
    return g


def _modes_agree(factory, inputs, grad, expected, dtype, tmp_path):
    """Every mode, legacy and numpy (mx.np arrays, :data:`NUMPY_MODES`), gives
    numpy-ml's value (and one set of gradients)."""
    results = {m: run_mode(m, factory, [a.astype(dtype) if a.dtype.kind == "f" else a
                                        for a in inputs], grad, mx.cpu(), None, tmp_path)
               for m in MODES + NUMPY_MODES}
    for mode, (value, _) in results.items():
        assert_close(value, [expected], TOL[dtype], "%s value" % mode)
    first = results["imperative"][1]
    for mode, (_, grads) in results.items():
        for k in grad:
            assert_close(grads[k], first[k], TOL[dtype], "%s grad[%d]" % (mode, k))
    return results["imperative"]


# ---------------------------------------------------------------- SquaredError
@pytest.mark.parametrize("shape", [(4, 3), (6, 1), (2, 3, 2)])
def test_squared_error_value_in_every_mode(shape, dtype, tmp_path):
    rng = np.random.RandomState(0)
    y, y_pred = (_rounded(rng.standard_normal(shape), dtype) for _ in range(2))
    _modes_agree(G.SquaredError, [y, y_pred], (1,), npml_losses.SquaredError.loss(y, y_pred),
                 dtype, tmp_path)
    assert G.SquaredError().loss(nd(y), nd(y_pred)).shape == (1,)


@pytest.mark.parametrize("act", ["Sigmoid", "Tanh", "Identity"])
def test_squared_error_grad_through_the_activation(act, dtype):
    """numpy-ml's grad(y, y_pred, z, act_fn) is d loss / d z: autograd through act."""
    rng = np.random.RandomState(1)
    y, z = (_rounded(rng.standard_normal((5, 3)), dtype) for _ in range(2))
    fn = getattr(npml_act, act)()
    zz = nd(z, dtype)
    zz.attach_grad()
    with autograd.record():
        ours = {"Sigmoid": mx.nd.sigmoid, "Tanh": mx.nd.tanh, "Identity": lambda v: v * 1}[act](zz)
        out = G.SquaredError()(nd(y, dtype), ours)
    out.backward()
    assert_close(out.asnumpy(), [npml_losses.SquaredError.loss(y, fn(z))], TOL[dtype], "value")
    assert_close(zz.grad.asnumpy(), npml_losses.SquaredError.grad(y, fn(z), z, fn),
                 TOL[dtype], "grad")


# ---------------------------------------------------------------- CrossEntropy
def _one_hot(rng, n, m):
    return np.eye(m)[rng.randint(0, m, size=n)]


def test_cross_entropy_value_in_every_mode(dtype, tmp_path):
    rng = np.random.RandomState(2)
    y = _one_hot(rng, 6, 4)
    z = rng.standard_normal((6, 4)) * 2
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    p = _rounded(p, dtype)
    _modes_agree(G.CrossEntropy, [y, p], (1,), npml_losses.CrossEntropy.loss(y, p), dtype,
                 tmp_path)


def test_cross_entropy_integer_one_hot_targets():
    rng = np.random.RandomState(12)
    y = _one_hot(rng, 5, 3).astype(np.int64)
    p = rng.dirichlet(np.ones(3), size=5)
    ours = G.CrossEntropy()(mx.nd.array(y, dtype="int64"), nd(p)).asnumpy()
    assert_close(ours, [npml_losses.CrossEntropy.loss(y, p)], TOL["float64"], "value")


@pytest.mark.parametrize("int_dtype", ["int32", "int64"])
def test_integer_targets_in_every_mode(int_dtype, dtype, tmp_path):
    """Integer one-hot y (numpy-ml's usual targets) also in mx.sym and in an
    exported graph: cast to y_pred's dtype inside the graph."""
    rng = np.random.RandomState(13)
    y = _one_hot(rng, 5, 3).astype(int_dtype)
    p = _rounded(rng.dirichlet(np.ones(3), size=5), dtype)
    _modes_agree(G.CrossEntropy, [y, p], (1,), npml_losses.CrossEntropy.loss(y, p), dtype,
                 tmp_path)
    _modes_agree(G.SquaredError, [y, p], (1,), npml_losses.SquaredError.loss(y, p), dtype,
                 tmp_path)


def test_cross_entropy_eps_keeps_zero_probabilities_finite():
    y = np.array([[0.0, 1.0], [1.0, 0.0]])
    p = np.array([[1.0, 0.0], [1.0, 0.0]])
    ours = G.CrossEntropy()(nd(y), nd(p)).asnumpy()
    assert_close(ours, [npml_losses.CrossEntropy.loss(y, p)], TOL["float64"], "value")
    assert np.isfinite(ours).all()


def test_cross_entropy_grad_is_softmax_minus_one_hot(dtype):
    rng = np.random.RandomState(3)
    y = _one_hot(rng, 5, 6)
    z = _rounded(rng.standard_normal((5, 6)), dtype)
    zz = nd(z, dtype)
    zz.attach_grad()
    with autograd.record():
        out = G.CrossEntropy()(nd(y, dtype), mx.nd.softmax(zz))
    out.backward()
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    # numpy-ml ignores its eps in grad; the difference is ~eps / p
    assert_close(zz.grad.asnumpy(), npml_losses.CrossEntropy.grad(y, p),
                 (1e-5, 1e-6) if dtype == "float32" else (1e-9, 1e-11), "grad")


@pytest.mark.parametrize("y, p, arg", [
    (np.array([[0.5, 0.5]]), np.array([[0.5, 0.5]]), "y"),
    (np.array([[0.0, 1.0]]), np.array([[0.7, 0.7]]), "y_pred"),
    (np.array([[0.0, 1.0]]), np.array([[1.5, -0.5]]), "y_pred"),
    (np.array([[0.0, 1.0]]), np.array([[0.2, 0.3, 0.5]]), "y_pred"),
])
def test_cross_entropy_bad_input(y, p, arg):
    for fn in (npml_losses.CrossEntropy.loss,):     # numpy-ml rejects them too
        with pytest.raises((AssertionError, ValueError)):
            fn(y, p)
    with pytest.raises(G.LossInputError, match="CrossEntropy: argument '%s'" % arg):
        G.CrossEntropy()(nd(y), nd(p))


# ---------------------------------------------------------------- VAELoss
def _vae_inputs(rng, n=4, features=6, latent=3, edge=False):
    y = (rng.uniform(size=(n, features)) < 0.5).astype(np.float64)
    y[:, 0] = rng.uniform(size=n)   # soft targets too
    y_pred = rng.uniform(0.02, 0.98, size=(n, features))
    if edge:
        y_pred[0, :2] = [0.0, 1.0]   # numpy-ml clips to [eps, 1 - eps]
    return y, y_pred, rng.standard_normal((n, latent)), rng.standard_normal((n, latent)) * 0.5


def test_vae_value_in_every_mode(dtype, tmp_path):
    inputs = [_rounded(a, dtype) for a in _vae_inputs(np.random.RandomState(4))]
    _modes_agree(G.VAELoss, inputs, (1, 2, 3), npml_losses.VAELoss.loss(*inputs), dtype,
                 tmp_path)


def test_vae_value_at_clipped_probabilities():
    inputs = _vae_inputs(np.random.RandomState(5), edge=True)
    ours = G.VAELoss()(*(nd(a) for a in inputs)).asnumpy()
    assert_close(ours, [npml_losses.VAELoss.loss(*inputs)], TOL["float64"], "value")


def test_vae_grad_equals_numpy_ml(dtype):
    y, y_pred, mean, log_var = (_rounded(a, dtype) for a in
                                _vae_inputs(np.random.RandomState(6)))
    arrays = [nd(a, dtype) for a in (y, y_pred, mean, log_var)]
    for a in arrays[1:]:
        a.attach_grad()
    with autograd.record():
        out = G.VAELoss()(*arrays)
    out.backward()
    d_pred, d_log_var, d_mean = npml_losses.VAELoss.grad(y, y_pred, mean, log_var)
    tol = (1e-4, 1e-6) if dtype == "float32" else TOL["float64"]
    assert_close(arrays[1].grad.asnumpy(), d_pred, tol, "dY_pred")
    assert_close(arrays[3].grad.asnumpy(), d_log_var, tol, "dLogVar")
    assert_close(arrays[2].grad.asnumpy(), d_mean, tol, "dMean")


# ---------------------------------------------------------------- WGAN_GPLoss
class _Critic(G.WGAN_GPLoss):
    """module='C' bound, so the mode runner can pass tensors only."""

    def __call__(self, Y_fake, Y_real, gradInterp):  # noqa: N803
        return super(_Critic, self).__call__(Y_fake, "C", Y_real, gradInterp)


class _Generator(G.WGAN_GPLoss):
    def __call__(self, Y_fake):  # noqa: N803
        return super(_Generator, self).__call__(Y_fake, "G")


def _wgan_inputs(seed, n=5, feats=3):
    rng = np.random.RandomState(seed)
    return rng.standard_normal(n), rng.standard_normal(n), rng.standard_normal((n, feats))


@pytest.mark.parametrize("lambda_", [10, 0.5])
def test_wgan_critic_value_in_every_mode(lambda_, dtype, tmp_path):
    fake, real, grad = (_rounded(a, dtype) for a in _wgan_inputs(7))
    expected = npml_losses.WGAN_GPLoss(lambda_).loss(fake, "C", real, grad)
    _modes_agree(lambda: _Critic(lambda_), [fake, real, grad], (0, 1, 2), expected, dtype,
                 tmp_path)


def test_wgan_generator_value_in_every_mode(dtype, tmp_path):
    fake = _rounded(_wgan_inputs(8)[0], dtype)
    _modes_agree(_Generator, [fake], (0,), npml_losses.WGAN_GPLoss().loss(fake, "G"), dtype,
                 tmp_path)


def test_wgan_grad_interp_and_generator_grad_equal_numpy_ml():
    fake, real, grad = _wgan_inputs(9)
    npml = npml_losses.WGAN_GPLoss(lambda_=3)
    arrays = [nd(a) for a in (fake, real, grad)]
    for a in arrays:
        a.attach_grad()
    with autograd.record():
        out = G.WGAN_GPLoss(lambda_=3)(arrays[0], "C", arrays[1], arrays[2])
    out.backward()
    _, _, d_grad = npml.grad(fake, "C", real, grad)
    assert_close(arrays[2].grad.asnumpy(), d_grad, (1e-9, 1e-12), "dGradInterp")
    with autograd.record():
        out = G.WGAN_GPLoss()(arrays[0], "G")
    out.backward()
    assert_close(arrays[0].grad.asnumpy(), npml.grad(fake, "G"), TOL["float64"], "G dY_fake")


def test_wgan_score_grads_follow_numpy_ml_loss_not_its_grad():
    """numpy-ml 0.1.2's critic grad has the wrong sign for dY_fake/dY_real:
    we match finite differences of its own loss, and show its grad differs."""
    fake, real, grad = _wgan_inputs(10)
    npml = npml_losses.WGAN_GPLoss()
    arrays = [nd(a) for a in (fake, real, grad)]
    for a in arrays:
        a.attach_grad()
    with autograd.record():
        out = G.WGAN_GPLoss()(arrays[0], "C", arrays[1], arrays[2])
    out.backward()
    fd_fake = _fd(lambda f: npml.loss(f, "C", real, grad), fake)
    fd_real = _fd(lambda r: npml.loss(fake, "C", r, grad), real)
    assert_close(arrays[0].grad.asnumpy(), fd_fake, (1e-7, 1e-9), "dY_fake")
    assert_close(arrays[1].grad.asnumpy(), fd_real, (1e-7, 1e-9), "dY_real")
    their_fake, their_real, _ = npml.grad(fake, "C", real, grad)
    np.testing.assert_allclose(their_fake, -fd_fake, rtol=1e-6)   # the documented sign error
    np.testing.assert_allclose(their_real, -fd_real, rtol=1e-6)


@pytest.mark.parametrize("lengths", [(5, 3, 5), (3, 6, 4), (2, 2, 7)])
def test_wgan_critic_with_different_lengths_equals_numpy_ml(lengths, dtype, tmp_path):
    """numpy-ml's loss takes three separate means: Y_fake, Y_real and
    gradInterp may have different lengths. Values equal numpy-ml's loss() in
    every mode, gradients its finite differences."""
    n_fake, n_real, n_interp = lengths
    rng = np.random.RandomState(sum(lengths))
    fake, real = rng.standard_normal(n_fake), rng.standard_normal(n_real)
    grad = rng.standard_normal((n_interp, 3))
    fake, real, grad = (_rounded(a, dtype) for a in (fake, real, grad))
    npml = npml_losses.WGAN_GPLoss(2.5)
    value, grads = _modes_agree(lambda: _Critic(2.5), [fake, real, grad], (0, 1, 2),
                                npml.loss(fake, "C", real, grad), dtype, tmp_path)
    if dtype != "float64":
        return
    fds = [_fd(lambda f: npml.loss(f, "C", real, grad), fake),
           _fd(lambda r: npml.loss(fake, "C", r, grad), real),
           _fd(lambda g: npml.loss(fake, "C", real, g), grad)]
    for k, fd in enumerate(fds):
        assert_close(grads[k], fd, (1e-6, 1e-8), "grad[%d]" % k)
    # numpy-ml's grad divides the penalty's gradient by len(Y_fake): right only
    # when gradInterp has that length
    _, _, their = npml.grad(fake, "C", real, grad)
    if n_interp == n_fake:
        assert_close(their, fds[2], (1e-6, 1e-8), "numpy-ml dGradInterp")
    else:
        np.testing.assert_allclose(their, fds[2] * n_interp / n_fake, rtol=1e-5, atol=1e-8)


def test_wgan_bad_module():
    with pytest.raises(ValueError):
        npml_losses.WGAN_GPLoss().loss(np.zeros(2), "X")
    with pytest.raises(G.LossInputError, match="'module' must be 'C' or 'G'"):
        G.WGAN_GPLoss()(nd(np.zeros(2)), "X")
    with pytest.raises(G.LossInputError, match="needs Y_real and gradInterp"):
        G.WGAN_GPLoss()(nd(np.zeros(2)), "C")


# ---------------------------------------------------------------- NCELoss
N_CLASSES, N_NEG = 11, 5


def _nce_pair(seed, subtract, dtype="float64"):
    """numpy-ml's NCELoss and ours with the same parameters."""
    rng = np.random.RandomState(seed)
    probs = rng.uniform(0.2, 1, size=N_CLASSES)
    probs /= probs.sum()
    sampler = DiscreteSampler(probs)
    ours = G.NCELoss(N_CLASSES, sampler, N_NEG, subtract_log_label_prob=subtract, dtype=dtype)
    ours.initialize()
    ours.weight.shape = (N_CLASSES, 4)
    ours.weight._finish_deferred_init()
    ours.bias.set_data(nd(rng.standard_normal(N_CLASSES) * 0.3, dtype))
    npml = npml_losses.NCELoss(N_CLASSES, sampler, N_NEG, subtract_log_label_prob=subtract)
    X = rng.standard_normal((3, 2, 4))
    npml.loss(X, np.array([0, 1, 2]), np.arange(N_NEG))   # initialises numpy-ml's parameters
    npml.parameters["W"] = ours.weight.data().asnumpy().astype(np.float64)
    npml.parameters["b"] = ours.bias.data().asnumpy().astype(np.float64)[None, :]
    npml.flush_gradients()
    return ours, npml, rng


def _nce_data(rng, hit):
    X = rng.standard_normal((3, 2, 4))
    target = np.array([1, 4, 7])
    neg = np.array([0, 3, 9, 9, 10])
    if hit:
        neg[1] = 4   # a negative equal to a target
    return X, target, neg


@pytest.mark.parametrize("subtract", [True, False], ids=["nce", "negative-sampling"])
def test_nce_value_and_y_pred_in_every_mode(subtract, dtype, tmp_path):
    ours, npml, rng = _nce_pair(11, subtract, dtype)
    X, target, neg = _nce_data(rng, hit=True)
    X = _rounded(X, dtype)
    value, y_pred = npml.loss(X, target, neg)
    W, b = ours.weight.data().asnumpy(), ours.bias.data().asnumpy()

    def factory():
        # built in legacy mode also for the numpy modes: MXNet 1.9.1's
        # initializers fail on float64 parameters in numpy mode
        with mx.util.np_array(False), mx.util.np_shape(False):
            loss = G.NCELoss(N_CLASSES, npml.noise_sampler, N_NEG,
                             subtract_log_label_prob=subtract, dtype=dtype)
            loss.initialize()
            loss(nd(X, dtype), nd(target), nd(neg))
            loss.weight.set_data(nd(W, dtype))
            loss.bias.set_data(nd(b, dtype))
        return loss
    _modes_agree(factory, [X, target.astype(np.float64), neg.astype(np.float64)], (0,), value,
                 dtype, tmp_path)
    ours_value, ours_y_pred = ours.loss(nd(X, dtype), nd(target), nd(neg))
    assert_close(ours_value.asnumpy(), [value], TOL[dtype], "loss()[0]")
    assert_close(ours_y_pred.asnumpy(), y_pred, TOL[dtype], "loss()[1] y_pred")
    with numpy_mode():
        np_value, np_y_pred = ours.loss(*(mx.np.array(a, dtype=dt) for a, dt in
                                          ((X, dtype), (target, "float32"), (neg, "float32"))))
    assert isinstance(np_value, mx.np.ndarray) and isinstance(np_y_pred, mx.np.ndarray)
    assert_close(np_value.asnumpy(), [value], TOL[dtype], "numpy mode loss()[0]")
    assert_close(np_y_pred.asnumpy(), y_pred, TOL[dtype], "numpy mode loss()[1] y_pred")


def _nce_input_grads(ours, npml, X, target, neg):
    """Backward of ours on the given negatives (its parameter gradients are
    left in place) and numpy-ml's input gradient there: (our x, numpy-ml's dX)."""
    npml.loss(X, target, neg)
    dX = npml.grad(update_params=False)
    x = nd(X)
    x.attach_grad()
    with autograd.record():
        out = ours(x, nd(target), nd(neg))
    out.backward()
    return x, dX


@pytest.mark.parametrize("subtract", [True, False], ids=["nce", "negative-sampling"])
def test_nce_grads_equal_numpy_ml_without_accidental_hits(subtract):
    ours, npml, rng = _nce_pair(12, subtract)
    X, target, neg = _nce_data(rng, hit=False)
    x, dX = _nce_input_grads(ours, npml, X, target, neg)
    assert_close(x.grad.asnumpy(), dX, TOL["float64"], "dX")
    assert_close(ours.weight.grad().asnumpy(), npml.gradients["W"], TOL["float64"], "dW")
    assert_close(ours.bias.grad().asnumpy(), npml.gradients["b"].ravel(), TOL["float64"], "db")


def test_nce_grads_at_an_accidental_hit_follow_numpy_ml_loss():
    """numpy-ml 0.1.2's NCELoss.grad drops the target's W/b gradient when a
    negative equals the target: there we match finite differences of its loss."""
    ours, npml, rng = _nce_pair(13, True)
    X, target, neg = _nce_data(rng, hit=True)
    x, dX = _nce_input_grads(ours, npml, X, target, neg)
    assert_close(x.grad.asnumpy(), dX, TOL["float64"], "dX (numpy-ml is right here)")
    W0, b0 = npml.parameters["W"].copy(), npml.parameters["b"].copy()

    def loss_at(W=W0, b=b0):
        npml.parameters["W"], npml.parameters["b"] = W, b
        value = npml.loss(X, target, neg, retain_derived=False)[0]
        npml.parameters["W"], npml.parameters["b"] = W0, b0
        return value
    fd_W = _fd(lambda W: loss_at(W=W), W0)
    fd_b = _fd(lambda b: loss_at(b=b), b0).ravel()
    assert_close(ours.weight.grad().asnumpy(), fd_W, (1e-6, 1e-8), "dW")
    assert_close(ours.bias.grad().asnumpy(), fd_b, (1e-6, 1e-8), "db")
    hit = 4
    assert not np.allclose(npml.gradients["b"].ravel()[hit], fd_b[hit], rtol=1e-3)  # its bug


def test_nce_draws_its_own_negatives_reproducibly():
    ours, npml, rng = _nce_pair(14, True)
    X, target, _ = _nce_data(rng, hit=False)
    mx.random.seed(3)
    a = ours(nd(X), nd(target)).asnumpy()
    mx.random.seed(3)
    b = ours(nd(X), nd(target)).asnumpy()
    np.testing.assert_array_equal(a, b)
    assert np.isfinite(a).all()


def test_nce_initialises_itself_like_numpy_ml():
    probs = np.full(N_CLASSES, 1.0 / N_CLASSES)
    ours = G.NCELoss(N_CLASSES, probs, N_NEG)
    out = ours(nd(np.ones((2, 3, 8))), nd([0, 1]), nd(np.arange(N_NEG)))
    assert out.shape == (1,) and ours.weight.shape == (N_CLASSES, 8)
    limit = np.sqrt(6.0 / (N_CLASSES + 8))
    assert np.abs(ours.weight.data().asnumpy()).max() <= limit
    with pytest.raises(G.LossInputError, match="NCELoss: argument 'init'"):
        G.NCELoss(N_CLASSES, probs, N_NEG, init="zeros")


def test_nce_errors_use_numpy_ml_names():
    ours = G.NCELoss(N_CLASSES, np.ones(N_CLASSES), N_NEG)
    with pytest.raises(G.LossInputError, match="argument 'target'"):
        ours(nd(np.ones((2, 3, 4))), nd([0, N_CLASSES]), nd(np.arange(N_NEG)))
    with pytest.raises(G.LossInputError, match="argument 'neg_samples'"):
        ours(nd(np.ones((2, 3, 4))), nd([0, 1]), nd(np.arange(N_NEG + 1)))
