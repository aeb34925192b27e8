"""gluonx.kernels: build, cache, load, fallback, and every fused operator against
a plain numpy reference (values in float16/32/64, gradients of every input
against float64 finite differences).

Skipped, with the reason, where no C++ compiler is present; CI has g++.
"""
import json
import os
import zlib
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import gluonx
import mxnet as mx
from gluonx import kernels
from gluonx.kernels import _build

import reference as R
from cases import CASES, as_dtype
from conftest import run_mode

pytestmark = pytest.mark.skipif(_build.compiler() is None,
                                reason="no C++ compiler (g++/c++/clang++ or $CXX) on PATH")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module", autouse=True)
def built():
    return kernels.build()


def _run_python(code, env_extra=None, env_drop=()):
    env = {k: v for k, v in os.environ.items() if k not in env_drop}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=300, check=False)


# ------------------------------------------------------- build and caching --

def test_build_is_cached(built):
    assert os.path.isfile(built)
    assert built.startswith(_build.cache_root())
    assert mx.__version__ in built
    mtime = os.path.getmtime(built)
    assert kernels.build() == built
    assert os.path.getmtime(built) == mtime  # not recompiled
    assert kernels.load() and kernels.status()["loaded"] == built


def test_cache_key_follows_sources_and_cache_dir(tmp_path, monkeypatch):
    base = _build.library_path()
    extra = tmp_path / "extra.cc"
    extra.write_text("// changed source\n")
    monkeypatch.setattr(_build, "sources", lambda: sorted(
        [os.path.join(_build.SOURCE_DIR, n) for n in os.listdir(_build.SOURCE_DIR)
         if n.endswith((".cc", ".h"))] + [str(extra)]))
    assert _build.library_path() != base
    monkeypatch.setenv("GLUONX_CACHE_DIR", str(tmp_path / "cache"))
    assert _build.library_path().startswith(str(tmp_path / "cache"))


def test_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.delenv("GLUONX_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert _build.cache_root() == os.path.join(str(tmp_path), "gluonx")


def test_cli_status():
    out = _run_python("from gluonx.kernels.__main__ import main; main(['status'])")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["compiler"] and info["cache_dir"]


def test_ops_in_both_namespaces():
    for name in ("gluonx_l2_loss", "gluonx_softmax_ce_loss", "gluonx_ctc_loss"):
        assert hasattr(mx.nd, name) and hasattr(mx.sym, name)


# ---------------------------------------------------------------- fallback --

_FALLBACK = """
    import warnings
    import numpy as np
    import gluonx, mxnet as mx
    from gluonx import loss as L
    gluonx.config.check_values = False
    p, l = mx.nd.array(np.arange(12.).reshape(3, 4)), mx.nd.ones((3, 4))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a = L.L2Loss()(p, l).asnumpy()
        b = L.HuberLoss()(p, l).asnumpy()
    gluonx.config.use_kernels = False
    assert np.allclose(a, L.L2Loss()(p, l).asnumpy())
    assert np.allclose(b, L.HuberLoss()(p, l).asnumpy())
    msgs = [str(w.message) for w in caught if "kernels unavailable" in str(w.message)]
    print(len(msgs), msgs[0] if msgs else "")
"""


def test_no_compiler_falls_back_with_one_warning(tmp_path):
    out = _run_python(_FALLBACK, env_extra={"GLUONX_CACHE_DIR": str(tmp_path), "PATH": "",
                                            "GLUONX_KERNELS": "1"}, env_drop=("CXX",))
    assert out.returncode == 0, out.stderr
    count, message = out.stdout.strip().split(" ", 1)
    assert count == "1" and "no C++ compiler" in message


def test_failed_build_falls_back_with_one_warning(tmp_path):
    fake = tmp_path / "fake-cxx"
    fake.write_text("#!/bin/sh\necho 'fake compiler error' >&2\nexit 1\n")
    fake.chmod(0o755)
    out = _run_python(_FALLBACK, env_extra={"GLUONX_CACHE_DIR": str(tmp_path / "cache"),
                                            "CXX": str(fake), "GLUONX_KERNELS": "1"})
    assert out.returncode == 0, out.stderr
    count, message = out.stdout.strip().split(" ", 1)
    assert count == "1" and "compiling the gluonx kernels failed" in message


def test_gpu_context_is_not_fused():
    from gluonx.loss._base import Plan
    plan = Plan(("pred", "label"), {"pred": (2, 3), "label": (2, 3)},
                {"pred": np.float32, "label": np.float32}, mx.gpu(0))
    loss = gluonx.loss.L2Loss()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert kernels.prepare(loss, plan) is None
    assert any("CPU-only" in str(w.message) for w in caught)
    plan.ctx = mx.cpu()
    assert kernels.prepare(loss, plan) is not None


def test_operators_require_every_attribute():
    """C++ has no defaults: an attribute left out is an error, not a silent default."""
    p, l = mx.nd.ones((2, 3)), mx.nd.zeros((2, 3))
    with pytest.raises(mx.base.MXNetError, match="missing attribute 'rho'"):
        mx.nd.gluonx_huber_loss(p, l, has_sample_weight="0").wait_to_read()
    with pytest.raises(mx.base.MXNetError, match="missing attribute 'has_sample_weight'"):
        mx.nd.gluonx_l2_loss(p, l).wait_to_read()
    with pytest.raises(mx.base.MXNetError, match="missing attribute 'epsilon'"):
        mx.nd.gluonx_poisson_nll_loss(p, l, has_sample_weight="0", from_logits="1",
                                      compute_full="0").wait_to_read()


def test_exported_graph_imports_in_a_fresh_process(tmp_path):
    gluonx.config.check_values = False
    loss = gluonx.loss.SigmoidBCELoss()
    loss.hybridize()
    p = mx.nd.array(np.random.RandomState(0).randn(4, 5))
    l = mx.nd.array(np.random.RandomState(1).rand(4, 5) > 0.5)
    want = loss(p, l).asnumpy()
    path = str(tmp_path / "bce")
    loss.export(path)
    assert "gluonx_sigmoid_bce_loss" in open(path + "-symbol.json").read()
    np.save(str(tmp_path / "p.npy"), p.asnumpy())
    np.save(str(tmp_path / "l.npy"), l.asnumpy())
    out = _run_python("""
        import numpy as np, gluonx, mxnet as mx
        gluonx.kernels.load()
        net = mx.gluon.SymbolBlock.imports(%r, ["data0", "data1"], %r)
        p, l = mx.nd.array(np.load(%r)), mx.nd.array(np.load(%r))
        print(list(net(p, l).asnumpy()))
    """ % (path + "-symbol.json", path + "-0000.params", str(tmp_path / "p.npy"),
           str(tmp_path / "l.npy")))
    assert out.returncode == 0, out.stderr
    assert np.allclose(eval(out.stdout.strip().splitlines()[-1]), want, rtol=1e-6)


def test_import_gluonx_loads_the_cached_library():
    source = open(os.path.join(ROOT, "gluonx", "__init__.py")).read()
    if "kernels" not in source:
        pytest.skip("gluonx/__init__.py does not call gluonx.kernels.load() yet")
    out = _run_python("import gluonx, mxnet as mx; print(hasattr(mx.sym, 'gluonx_l2_loss'))")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("True")


# ------------------------------------------------ operators against numpy --

def _softplus(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _log_softmax(x):
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def _stirling(t):
    s = np.where(t > 1, t, 2.0)
    return np.where(t > 1, s * np.log(s) - s + 0.5 * np.log(2 * np.pi * s), 0.0)


# op -> (attrs, label generator, elementwise reference f(p, l, pw), per-sample reduce)
_FOCAL = {"alpha": "0.25", "has_alpha": "1", "gamma": "2.0", "from_logits": "1",
          "label_smoothing": "0.0", "ignore_index": "0", "has_ignore_index": "0"}

ELEMENTWISE = {
    "l2": ("gluonx_l2_loss", {}, "normal", lambda p, l, w: 0.5 * (p - l) ** 2),
    "l1": ("gluonx_l1_loss", {}, "normal", lambda p, l, w: np.abs(p - l)),
    "huber": ("gluonx_huber_loss", {"rho": "0.7"}, "normal",
              lambda p, l, w: np.where(np.abs(p - l) > 0.7, np.abs(p - l) - 0.35,
                                       (p - l) ** 2 / 1.4)),
    "hinge": ("gluonx_hinge_loss", {"margin": "1.5"}, "sign",
              lambda p, l, w: np.maximum(1.5 - p * l, 0)),
    "squared_hinge": ("gluonx_squared_hinge_loss", {"margin": "1.0"}, "sign",
                      lambda p, l, w: np.maximum(1 - p * l, 0) ** 2),
    "logistic_signed": ("gluonx_logistic_loss", {"signed": "1"}, "sign",
                        lambda p, l, w: _softplus(p) - p * (l + 1) / 2),
    "logistic_binary": ("gluonx_logistic_loss", {"signed": "0"}, "bit",
                        lambda p, l, w: _softplus(p) - p * l),
    "bce_logits": ("gluonx_sigmoid_bce_loss", {"from_sigmoid": "0"}, "bit",
                   lambda p, l, w: (1 - l) * p + (1 + (w - 1) * l) * _softplus(-p)),
    "bce_probs": ("gluonx_sigmoid_bce_loss", {"from_sigmoid": "1"}, "bit",
                  lambda p, l, w: -(w * l * np.log(p + 1e-12)
                                    + (1 - l) * np.log(1 - p + 1e-12))),
    "poisson_logits_full": ("gluonx_poisson_nll_loss",
                            {"from_logits": "1", "compute_full": "1", "epsilon": "1e-8"},
                            "count", lambda p, l, w: np.exp(p) - l * p + _stirling(l)),
    "poisson_rate": ("gluonx_poisson_nll_loss",
                     {"from_logits": "0", "compute_full": "0", "epsilon": "1e-8"},
                     "count", lambda p, l, w: p - l * np.log(p + 1e-8)),
    "kldiv": ("gluonx_kldiv_loss", {}, "prob", lambda p, l, w: l * (np.log(l + 1e-12) - p)),
    "log_cosh": ("gluonx_log_cosh_loss", {}, "normal",
                 lambda p, l, w: R.ref_log_cosh(p, l)[0]),
    "mape": ("gluonx_mape_loss", {"epsilon": "0.3"}, "normal",
             lambda p, l, w: R.ref_mape(p, l, epsilon=0.3)[0]),
    "msle": ("gluonx_msle_loss", {"epsilon": "0.2"}, "prob",
             lambda p, l, w: R.ref_msle(p, l, epsilon=0.2)[0]),
    "focal_logits": ("gluonx_sigmoid_focal_loss", dict(_FOCAL, label_smoothing="0.1"), "bit",
                     lambda p, l, w: R.ref_sigmoid_focal(p, l, label_smoothing=0.1)[0]),
    "focal_probs": ("gluonx_sigmoid_focal_loss",
                    dict(_FOCAL, has_alpha="0", gamma="1.5", from_logits="0"), "prob",
                    lambda p, l, w: R.ref_sigmoid_focal(p, l, alpha=None, gamma=1.5,
                                                        from_logits=False)[0]),
    # (ignored elements: tests/test_detection.py; finite differences across the
    # ignore_index step would not be the gradient)
    "focal_gamma": ("gluonx_sigmoid_focal_loss",
                    dict(_FOCAL, alpha="0.7", gamma="0.5", ignore_index="-1",
                         has_ignore_index="1"), "bit",
                    lambda p, l, w: R.ref_sigmoid_focal(p, l, alpha=0.7, gamma=0.5,
                                                        ignore_index=-1)[0]),
    # integer gamma (products of squarings), gamma 0, and any gamma on logits
    "focal_gamma_int": ("gluonx_sigmoid_focal_loss", dict(_FOCAL, gamma="3.0"), "prob",
                        lambda p, l, w: R.ref_sigmoid_focal(p, l, gamma=3.0)[0]),
    "focal_gamma0": ("gluonx_sigmoid_focal_loss", dict(_FOCAL, gamma="0.0", alpha="0.6"), "bit",
                     lambda p, l, w: R.ref_sigmoid_focal(p, l, alpha=0.6, gamma=0.0)[0]),
    "focal_gamma_any": ("gluonx_sigmoid_focal_loss", dict(_FOCAL, gamma="1.7"), "prob",
                        lambda p, l, w: R.ref_sigmoid_focal(p, l, gamma=1.7)[0]),
    "focal_probs_int": ("gluonx_sigmoid_focal_loss",
                        dict(_FOCAL, gamma="5.0", from_logits="0"), "prob",
                        lambda p, l, w: R.ref_sigmoid_focal(p, l, gamma=5.0,
                                                            from_logits=False)[0]),
    "mse": ("gluonx_mse_loss", {}, "normal", lambda p, l, w: (p - l) ** 2),
    "soft_margin": ("gluonx_soft_margin_loss", {}, "normal", lambda p, l, w: _softplus(-l * p)),
}

SHAPE = (5, 4, 3)
WEIGHTS = {"none": None, "row": (5, 1, 1), "col": (4, 3), "full": SHAPE, "scalar": (1,)}


def _inputs(rng, kind, probs=False):
    p = rng.uniform(0.05, 0.95, SHAPE) if probs else rng.randn(*SHAPE)
    label = {"normal": lambda: rng.randn(*SHAPE), "sign": lambda: np.sign(rng.randn(*SHAPE)),
             "bit": lambda: (rng.rand(*SHAPE) > 0.5) * 1.0,
             "count": lambda: rng.poisson(2.0, SHAPE) + 0.5,  # off the t = 1 step
             "prob": lambda: rng.rand(*SHAPE)}[kind]()
    return p, label


def _numeric_grad(f, x, eps=1e-6):
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return grad


def _run_op(op, arrays, attrs, dtype, head):
    nd = [mx.nd.array(a, dtype=dtype) for a in arrays]
    for a in nd:
        a.attach_grad()
    with mx.autograd.record():
        out = getattr(mx.nd, op)(*nd, **attrs)
    out.backward(mx.nd.array(head, dtype=dtype))
    return out.asnumpy().astype(np.float64), [a.grad.asnumpy().astype(np.float64) for a in nd]


TOLERANCE = {"float16": 2e-2, "float32": 2e-5, "float64": 1e-9}


@pytest.mark.parametrize("weight", list(WEIGHTS))
@pytest.mark.parametrize("case", list(ELEMENTWISE))
@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
def test_elementwise_ops(case, weight, dtype):
    op, attrs, kind, ref = ELEMENTWISE[case]
    # a seed that is the same in every process (hash() of a str is salted per process)
    rng = np.random.RandomState(zlib.crc32(("%s/%s" % (case, weight)).encode()))
    p, l = _inputs(rng, kind, probs=(case in ("bce_probs", "poisson_rate", "focal_probs",
                                              "focal_probs_int")))
    if dtype == "float16":
        p, l = p.astype(np.float16).astype(np.float64), l.astype(np.float16).astype(np.float64)
    sw = None if WEIGHTS[weight] is None else rng.uniform(0.5, 1.5, WEIGHTS[weight])
    pos = op == "gluonx_sigmoid_bce_loss"
    pw = rng.uniform(0.5, 2.0, (4, 3)) if pos else None
    arrays = [p, l] + ([sw] if sw is not None else []) + ([pw] if pos else [])
    attrs = dict(attrs, has_sample_weight="1" if sw is not None else "0")
    if pos:
        attrs["has_pos_weight"] = "1"
    head = rng.rand(SHAPE[0])
    reduce = np.sum if op == "gluonx_kldiv_loss" else np.mean

    def per_sample():
        e = ref(p, l, pw if pos else 1.0) * (1.0 if sw is None else sw)
        return reduce(e.reshape(SHAPE[0], -1), axis=1)

    out, grads = _run_op(op, arrays, attrs, dtype, head)
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(out, per_sample(), rtol=tol, atol=tol)
    if dtype != "float64":
        return
    for k, arr in enumerate(arrays):
        want = _numeric_grad(lambda: float((per_sample() * head).sum()), arr)
        np.testing.assert_allclose(grads[k], want, rtol=1e-5, atol=1e-6,
                                   err_msg="gradient of input %d" % k)


@pytest.mark.parametrize("weight", ["none", "row", "full"])
@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
def test_hinge_embedding_op(weight, dtype):
    """p where the label is 1, max(0, margin - p) where it is -1; the labels
    (discrete) get gradient 0. Its own test: the table's finite differences
    would step a label off 1 or -1."""
    rng = np.random.RandomState(zlib.crc32(("hinge_embedding/%s" % weight).encode()))
    p = rng.uniform(0, 2.5, SHAPE)
    l = np.sign(rng.randn(*SHAPE))
    if dtype == "float16":
        p = p.astype(np.float16).astype(np.float64)
    sw = None if WEIGHTS[weight] is None else rng.uniform(0.5, 1.5, WEIGHTS[weight])
    head = rng.rand(SHAPE[0])

    def per_sample():
        e = np.where(l == 1, p, np.maximum(1.2 - p, 0)) * (1.0 if sw is None else sw)
        return e.reshape(SHAPE[0], -1).mean(axis=1)

    arrays = [p, l] + ([sw] if sw is not None else [])
    out, grads = _run_op("gluonx_hinge_embedding_loss", arrays,
                         {"margin": "1.2", "has_sample_weight": "1" if sw is not None else "0"},
                         dtype, head)
    np.testing.assert_allclose(out, per_sample(), rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])
    if dtype == "float64":
        want = _numeric_grad(lambda: float((per_sample() * head).sum()), p)
        np.testing.assert_allclose(grads[0], want, rtol=1e-5, atol=1e-6)
        assert not grads[1].any()


# three-input ops: (attrs, third input's generator, elementwise reference f(a, b, c))
THREE_INPUT = {
    "gluonx_gaussian_nll_loss": (
        {"full": "1", "eps": "0.3"}, lambda rng, shape: rng.uniform(0.05, 2.0, shape),
        lambda a, b, v: 0.5 * (np.log(np.maximum(v, 0.3)) + (a - b) ** 2 / np.maximum(v, 0.3))
        + 0.5 * np.log(2 * np.pi)),
    "gluonx_margin_ranking_loss": (
        {"margin": "0.4"}, lambda rng, shape: np.sign(rng.randn(*shape)),
        lambda a, b, y: np.maximum(0.4 - y * (a - b), 0)),
}


@pytest.mark.parametrize("third", ["full", "row", "col", "scalar"])
@pytest.mark.parametrize("weight", ["none", "row", "full"])
@pytest.mark.parametrize("op", list(THREE_INPUT))
@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
def test_three_input_ops(op, weight, third, dtype):
    """Gaussian NLL (var, clamped at eps, gets the gradient at the clamped
    value, as in torch) and margin ranking (the label gets its gradient too,
    as in the stock path); the third input broadcasts like a weight."""
    attrs, make, ref = THREE_INPUT[op]
    rng = np.random.RandomState(zlib.crc32(("%s/%s/%s" % (op, weight, third)).encode()))
    a, b = rng.randn(*SHAPE), rng.randn(*SHAPE)
    c = make(rng, WEIGHTS[third])
    if dtype == "float16":
        a, b, c = (x.astype(np.float16).astype(np.float64) for x in (a, b, c))
    sw = None if WEIGHTS[weight] is None else rng.uniform(0.5, 1.5, WEIGHTS[weight])
    head = rng.rand(SHAPE[0])

    def per_sample():
        e = ref(a, b, c) * (1.0 if sw is None else sw)
        return e.reshape(SHAPE[0], -1).mean(axis=1)

    def clamped_var_grad():   # d/dv at v = max(var, eps), summed over var's broadcast
        v = np.maximum(c, 0.3)
        g = 0.5 * (1 / v - (a - b) ** 2 / v ** 2) * (1.0 if sw is None else sw)
        g = g * (head / (a.size // SHAPE[0])).reshape(-1, 1, 1)
        lead = g.ndim - c.ndim
        g = g.sum(axis=tuple(range(lead)))
        return g.sum(axis=tuple(i for i, n in enumerate(c.shape) if n == 1), keepdims=True)

    arrays = [a, b, c] + ([sw] if sw is not None else [])
    out, grads = _run_op(op, arrays, dict(attrs, has_sample_weight="0" if sw is None else "1"),
                         dtype, head)
    np.testing.assert_allclose(out, per_sample(), rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])
    if dtype != "float64":
        return
    for k, arr in enumerate(arrays):
        if k == 2 and op == "gluonx_gaussian_nll_loss":
            want = clamped_var_grad()
        else:
            want = _numeric_grad(lambda: float((per_sample() * head).sum()), arr)
        np.testing.assert_allclose(grads[k], want, rtol=1e-5, atol=1e-6,
                                   err_msg="gradient of input %d" % k)


def test_three_input_op_rejects_bad_shapes():
    a = mx.nd.ones((4, 3))
    for bad in (mx.nd.ones((3, 4)), mx.nd.ones((4, 3, 2))):
        with pytest.raises(mx.base.MXNetError):
            mx.nd.gluonx_gaussian_nll_loss(a, a, bad, full="0", eps="1e-6",
                                           has_sample_weight="0").asnumpy()


def test_logistic_gradient_at_zero():
    p, l = np.zeros((2, 3)), np.array([[1., 0., 1.], [0., 1., 0.]])
    for op, attrs in (("gluonx_logistic_loss", {"signed": "0"}),
                      ("gluonx_sigmoid_bce_loss", {"from_sigmoid": "0", "has_pos_weight": "0"})):
        _, grads = _run_op(op, [p, l], dict(attrs, has_sample_weight="0"), "float32", np.ones(2))
        np.testing.assert_allclose(grads[0], (0.5 - l) / 3, rtol=1e-6)


# the softmax CE operator's attributes that leave plain softmax CE
_CE_PLAIN = {"label_smoothing": "0", "ignore": "0", "ignore_index": "0", "average_valid": "1",
             "batch_mean": "0", "gamma": "0", "has_valid_length": "0", "has_class_weight": "0"}


@pytest.mark.parametrize("sparse", [True, False])
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("shape", [(5, 7), (4, 3, 6)])
@pytest.mark.parametrize("weight", ["none", "row", "pos", "scalar"])
def test_softmax_ce_op(sparse, from_logits, shape, weight):
    rng = np.random.RandomState(3)
    p = rng.randn(*shape)
    l = rng.randint(0, shape[-1], shape[:-1]) * 1.0 if sparse else rng.rand(*shape)
    sw = {"none": None, "row": rng.rand(shape[0], *[1] * (len(shape) - 1)),
          "pos": rng.rand(*shape[:-1], 1), "scalar": rng.rand(1)}[weight]
    head = rng.rand(shape[0])

    def per_sample():
        lp = p if from_logits else _log_softmax(p)
        if sparse:
            f = -np.take_along_axis(lp, l.astype(int)[..., None], -1)
        else:
            f = -(lp * l).sum(-1, keepdims=True)
        f = f if sw is None else f * sw
        return f.reshape(shape[0], -1).mean(1)

    arrays = [p, l] + ([sw] if sw is not None else [])
    attrs = dict(_CE_PLAIN, has_sample_weight="1" if sw is not None else "0",
                 sparse_label="1" if sparse else "0", from_logits="1" if from_logits else "0")
    out32, _ = _run_op("gluonx_softmax_ce_loss", arrays, attrs, "float32", head)
    np.testing.assert_allclose(out32, per_sample(), rtol=2e-5, atol=2e-5)
    out, grads = _run_op("gluonx_softmax_ce_loss", arrays, attrs, "float64", head)
    np.testing.assert_allclose(out, per_sample(), rtol=1e-9)
    for k, arr in enumerate(arrays):
        if k == 1 and sparse:
            assert not grads[1].any()  # class indices get no gradient
            continue
        want = _numeric_grad(lambda: float((per_sample() * head).sum()), arr)
        np.testing.assert_allclose(grads[k], want, rtol=1e-5, atol=1e-6)


# softmax CE with its options: label smoothing (torch's), class weights,
# ignore_index and valid_length masks, and the three normalisations
CE_OPTIONS = {
    "smooth": dict(eps=0.2),
    "cw": dict(cw=True),
    "cw-smooth-sw": dict(cw=True, eps=0.3, sw=True),
    "ignore": dict(ignore=True),
    "ignore-cw-batch_mean": dict(ignore=True, cw=True, batch_mean=True),
    "cw-batch_mean": dict(cw=True, batch_mean=True, sw=True),
    "vl": dict(vl=True),
    "vl-padded-sw": dict(vl=True, average_valid=False, sw=True),
    "vl-ignore-cw-smooth-batch_mean-sw": dict(vl=True, ignore=True, cw=True, eps=0.1,
                                              batch_mean=True, sw=True),
    "vl-ignore-all": dict(vl=True, ignore=True, all_ignored=True),
}


# (every position ignored only makes sense for sparse labels: ignore_index masks class indices)
@pytest.mark.parametrize("sparse, option", [
    (sparse, option) for option in CE_OPTIONS for sparse in (True, False)
    if sparse or not CE_OPTIONS[option].get("all_ignored")])
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
def test_softmax_ce_op_options(sparse, from_logits, option, dtype):
    o = CE_OPTIONS[option]
    rng = np.random.RandomState(zlib.crc32(option.encode()))
    B, T, C, ignore_index = 4, 5, 6, 2
    p = rng.randn(B, T, C)
    if sparse:
        l = rng.randint(0, C, (B, T)) * 1.0
        l[:, ::2] = ignore_index
        if o.get("all_ignored"):
            l[1] = ignore_index
    else:
        l = rng.rand(B, T, C)
    cw = rng.uniform(0.2, 2.0, C) if o.get("cw") else None
    vl = np.array([5., 0., 2., 3.]) if o.get("vl") else None
    sw = rng.uniform(0.5, 1.5, (B, T, 1)) if o.get("sw") else None
    if dtype == "float16":
        p, l = p.astype(np.float16).astype(np.float64), l.astype(np.float16).astype(np.float64)
        cw = None if cw is None else cw.astype(np.float16).astype(np.float64)
        sw = None if sw is None else sw.astype(np.float16).astype(np.float64)
    eps = o.get("eps", 0.0)
    ignore = bool(o.get("ignore")) and sparse
    average_valid = o.get("average_valid", True)
    batch_mean = bool(o.get("batch_mean"))
    head = rng.rand(B)

    def per_sample():
        lp = p if from_logits else _log_softmax(p)
        w = np.ones(C) if cw is None else cw
        if sparse:
            y = l.astype(int)
            base = -w[y] * np.take_along_axis(lp, y[..., None], -1)[..., 0]
        else:
            base = -(w * l * lp).sum(-1)
        f = (1 - eps) * base - eps * (w * lp).mean(-1)          # (B, T)
        keep = np.ones((B, T), bool)
        if ignore:
            keep &= l != ignore_index
        if vl is not None:
            keep &= np.arange(T)[None, :] < vl[:, None]
        f = np.where(keep, f, 0.0) * (1.0 if sw is None else sw[..., 0])
        masking = ignore or vl is not None
        if batch_mean and (masking or (sparse and cw is not None)):
            den = (keep * (w[l.astype(int)] if sparse else 1.0)).sum()
            return f.sum(1) * (B / den if den else 0.0)
        if masking and average_valid:
            count = keep.sum(1)
            return np.where(count > 0, f.sum(1) / np.maximum(count, 1), 0.0)
        return f.mean(1)

    arrays = [p, l] + [a for a in (sw, vl, cw) if a is not None]
    attrs = {"sparse_label": "1" if sparse else "0", "from_logits": "1" if from_logits else "0",
             "label_smoothing": repr(eps), "ignore": "1" if ignore else "0",
             "ignore_index": repr(float(ignore_index)),
             "average_valid": "1" if average_valid else "0",
             "batch_mean": "1" if batch_mean else "0", "gamma": "0",
             "has_sample_weight": "1" if sw is not None else "0",
             "has_valid_length": "1" if vl is not None else "0",
             "has_class_weight": "1" if cw is not None else "0"}
    out, grads = _run_op("gluonx_softmax_ce_loss", arrays, attrs, dtype, head)
    want = per_sample()
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(out, want, rtol=tol, atol=tol)
    assert np.abs(want).max() > 0.1   # the case is not trivially zero
    if dtype != "float64":
        return
    checked = [0] + ([] if sparse else [1]) + ([2] if sw is not None else [])
    for k in checked:
        num = _numeric_grad(lambda: float((per_sample() * head).sum()), arrays[k])
        np.testing.assert_allclose(grads[k], num, rtol=1e-5, atol=1e-6)
    if sparse:
        assert not grads[1].any()
    for k in range(3 if sw is not None else 2, len(arrays)):   # lengths, class weights
        assert not grads[k].any()


@pytest.mark.parametrize("gamma", [0.5, 2.0, 3.5])
@pytest.mark.parametrize("option", ["plain", "cw", "ignore-sw", "cw-ignore-sw"])
@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
def test_softmax_focal_op(gamma, option, dtype):
    """The softmax CE operator with gamma > 0: -w_y (1 - p_y)^gamma log p_y."""
    rng = np.random.RandomState(zlib.crc32(("%s/%s" % (gamma, option)).encode()))
    B, T, C, ignore_index = 4, 3, 5, 1
    p = rng.randn(B, T, C) * 2
    l = rng.randint(0, C, (B, T)) * 1.0
    cw = rng.uniform(0.2, 2.0, C) if "cw" in option else None
    sw = rng.uniform(0.5, 1.5, (B, 1, 1)) if "sw" in option else None
    ignore = "ignore" in option
    if ignore:
        l[:, 0] = ignore_index
    if dtype == "float16":
        p = p.astype(np.float16).astype(np.float64)
        cw = None if cw is None else cw.astype(np.float16).astype(np.float64)
        sw = None if sw is None else sw.astype(np.float16).astype(np.float64)
    head = rng.rand(B)

    def per_sample():
        y = l.astype(int)
        lp = np.take_along_axis(_log_softmax(p), y[..., None], -1)[..., 0]
        f = -(1 - np.exp(lp)) ** gamma * lp * (1.0 if cw is None else cw[y])
        if ignore:
            f = np.where(l != ignore_index, f, 0.0)   # 0, and still in the mean
        return (f * (1.0 if sw is None else sw[..., 0])).mean(1)

    arrays = [p, l] + [a for a in (sw, cw) if a is not None]
    attrs = dict(_CE_PLAIN, sparse_label="1", from_logits="0", gamma=repr(gamma),
                 ignore="1" if ignore else "0", ignore_index=repr(float(ignore_index)),
                 average_valid="0", has_sample_weight="1" if sw is not None else "0",
                 has_class_weight="1" if cw is not None else "0")
    out, grads = _run_op("gluonx_softmax_ce_loss", arrays, attrs, dtype, head)
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(out, per_sample(), rtol=tol, atol=tol)
    if dtype == "float64":
        for k in [0] + ([2] if sw is not None else []):
            num = _numeric_grad(lambda: float((per_sample() * head).sum()), arrays[k])
            np.testing.assert_allclose(grads[k], num, rtol=1e-5, atol=1e-6)
        assert not grads[1].any()


def test_softmax_focal_op_rejects_dense_or_smoothing():
    p, l = np.zeros((2, 3)), np.array([0., 1.])
    for extra in ({"label_smoothing": "0.1"}, {"sparse_label": "0"}, {"gamma": "-1"}):
        attrs = dict(_CE_PLAIN, sparse_label="1", from_logits="0", gamma="2",
                     has_sample_weight="0", **{})
        attrs.update(extra)
        arrays = [p, l if attrs["sparse_label"] == "1" else np.ones((2, 3)) / 3]
        with pytest.raises(mx.base.MXNetError, match="gamma"):
            _run_op("gluonx_softmax_ce_loss", arrays, attrs, "float32", np.ones(2))



@pytest.mark.parametrize("weight", ["none", "row", "full", "col"])
def test_kldiv_softmax_op(weight):
    rng = np.random.RandomState(4)
    shape = (4, 3, 6)
    p, l = rng.randn(*shape), rng.dirichlet(np.ones(6), shape[:2])
    sw = {"none": None, "row": rng.rand(4, 1, 1), "full": rng.rand(*shape),
          "col": rng.rand(3, 6)}[weight]
    head = rng.rand(4)

    def per_sample():
        f = l * (np.log(l + 1e-12) - _log_softmax(p))
        return (f if sw is None else f * sw).reshape(4, -1).sum(1)

    arrays = [p, l] + ([sw] if sw is not None else [])
    out, grads = _run_op("gluonx_kldiv_softmax_loss", arrays,
                         {"has_sample_weight": "1" if sw is not None else "0"}, "float64", head)
    np.testing.assert_allclose(out, per_sample(), rtol=1e-9)
    for k, arr in enumerate(arrays):
        want = _numeric_grad(lambda: float((per_sample() * head).sum()), arr)
        np.testing.assert_allclose(grads[k], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("weight", [None, "row", "scalar"])
def test_triplet_op(weight):
    rng = np.random.RandomState(5)
    a, pos, neg = rng.randn(6, 4), rng.randn(6, 4), rng.randn(6, 4)
    sw = {None: None, "row": rng.rand(6), "scalar": rng.rand(1)}[weight]
    head = rng.rand(6)

    def per_sample():
        f = np.maximum(((pos - a) ** 2 - (neg - a) ** 2).sum(1) + 0.5, 0)
        return f if sw is None else f * sw

    arrays = [a, pos, neg] + ([sw] if sw is not None else [])
    out, grads = _run_op("gluonx_triplet_loss", arrays,
                         {"has_sample_weight": "1" if sw is not None else "0", "margin": "0.5"},
                         "float64", head)
    np.testing.assert_allclose(out, per_sample(), rtol=1e-9)
    for k, arr in enumerate(arrays):
        want = _numeric_grad(lambda: float((per_sample() * head).sum()), arr)
        np.testing.assert_allclose(grads[k], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(6, 5), (4, 3, 5)])
def test_cosine_op(shape):
    rng = np.random.RandomState(6)
    x, y = rng.randn(*shape), rng.randn(*shape)
    label = np.sign(rng.randn(*shape[:-1]))
    sw = rng.rand(*shape[:-1], 1)
    head = rng.rand(shape[0])

    def per_sample():
        c = (x * y).sum(-1) / np.maximum(np.linalg.norm(x, axis=-1) * np.linalg.norm(y, axis=-1),
                                         1e-12)
        f = np.where(label == 1, 1 - c, np.maximum(c - 0.1, 0)) * sw[..., 0]
        return f.reshape(shape[0], -1).mean(1)

    arrays = [x, y, label, sw]
    out, grads = _run_op("gluonx_cosine_loss", arrays, {"has_sample_weight": "1", "margin": "0.1"},
                         "float64", head)
    np.testing.assert_allclose(out, per_sample(), rtol=1e-9)
    assert not grads[2].any()
    for k in (0, 1, 3):
        want = _numeric_grad(lambda: float((per_sample() * head).sum()), arrays[k])
        np.testing.assert_allclose(grads[k], want, rtol=1e-5, atol=1e-6)


# ------------------------------------------ per-row and per-sample reductions --

def _rounded(arrays, dtype):
    """Inputs representable in `dtype` (float16 rounds them), as float64."""
    return [a if a is None or dtype != "float16" else a.astype(np.float16).astype(np.float64)
            for a in arrays]


def _check_op(op, arrays, attrs, dtype, head, per_sample, grad_of=None):
    out, grads = _run_op(op, arrays, attrs, dtype, head)
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(out, per_sample(), rtol=tol, atol=tol)
    if dtype != "float64":
        return grads
    for k in (range(len(arrays)) if grad_of is None else grad_of):
        want = _numeric_grad(lambda: float((per_sample() * head).sum()), arrays[k])
        np.testing.assert_allclose(grads[k], want, rtol=1e-5, atol=1e-6,
                                   err_msg="gradient of input %d" % k)
    return grads


@pytest.mark.parametrize("shape,weight", [((6, 5), None), ((6, 5), (6, 1)), ((4, 3, 5), (4, 3, 1)),
                                          ((4, 3, 5), (3, 1)), ((4, 3, 5), (1,))])
@pytest.mark.parametrize("labels", ["onehot", "soft"])
@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
def test_categorical_hinge_op(shape, weight, labels, dtype):
    rng = np.random.RandomState(zlib.crc32(("%s/%s/%s" % (shape, weight, labels)).encode()))
    # positive scores: the largest non-target score is unique and away from 0
    x = rng.uniform(0.1, 2.0, shape)
    if labels == "onehot":
        y = np.eye(shape[-1])[rng.randint(0, shape[-1], shape[:-1])]
    else:
        y = rng.uniform(0, 1, shape)
    sw = None if weight is None else rng.uniform(0.5, 1.5, weight)
    x, y, sw = _rounded([x, y, sw], dtype)
    head = rng.rand(shape[0])

    def per_sample():
        f = np.maximum(((1 - y) * x).max(-1) - (y * x).sum(-1) + 0.7, 0)
        f = f if sw is None else f * sw[..., 0] if sw.ndim > 1 else f * sw
        return np.broadcast_to(f, shape[:-1]).reshape(shape[0], -1).mean(1)

    arrays = [x, y] + ([sw] if sw is not None else [])
    _check_op("gluonx_categorical_hinge_loss", arrays,
              {"has_sample_weight": "0" if sw is None else "1", "margin": "0.7"},
              dtype, head, per_sample)


def test_categorical_hinge_op_ties_get_the_full_gradient():
    """As MXNet's max: every class at the maximum gets the whole gradient."""
    x = np.array([[0.5, 0.5, 0.2]])
    y = np.array([[0.0, 0.0, 1.0]])
    _, grads = _run_op("gluonx_categorical_hinge_loss", [x, y],
                       {"has_sample_weight": "0", "margin": "1"}, "float64", np.ones(1))
    np.testing.assert_allclose(grads[0], [[1.0, 1.0, -1.0]])
    np.testing.assert_allclose(grads[1], [[-1.0, -1.0, -0.2]])


_OVERLAP_COEFS = {"dice": ("2.0", "0.0", "1.0", "1.0"), "tversky": ("1.0", "0.0", "0.3", "0.7")}


def _overlap_ref(p, y, coefs, smooth, multiclass, axis=-1):
    a, b, c, d = (float(v) for v in coefs)
    if multiclass:
        p, y = np.moveaxis(p, axis, -1), np.moveaxis(y, axis, -1)
        axes = tuple(range(1, p.ndim - 1))
        inter, ps, ys = ((z.sum(axis=axes) if axes else z) for z in (p * y, p, y))
    else:
        inter, ps, ys = (z.reshape(len(z), -1).sum(1) for z in (p * y, p, y))
    ratio = (a * inter + smooth) / (b * inter + c * ps + d * ys + smooth + 1e-7)
    return 1 - (ratio.mean(-1) if multiclass else ratio)


# multiclass: classes along the last axis; channel: along axis 1 (NCHW);
# middle: along axis 2 of 4, with axes on both sides
@pytest.mark.parametrize("layout", ["binary", "multiclass", "sparse", "channel",
                                    "channel-sparse", "middle-sparse", "middle"])
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("coefs", list(_OVERLAP_COEFS))
@pytest.mark.parametrize("weight", [None, "row", "scalar"])
@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
def test_overlap_op(layout, from_logits, coefs, weight, dtype):
    rng = np.random.RandomState(zlib.crc32(("%s/%s/%s/%s" % (layout, from_logits, coefs,
                                                             weight)).encode()))
    shape = (4, 3, 5) if layout == "binary" else (4, 2, 3, 5)
    multiclass = layout != "binary"
    axis = {"channel": 1, "channel-sparse": 1, "middle": 2, "middle-sparse": 2}.get(layout, -1)
    sparse = layout.endswith("sparse")
    x = rng.randn(*shape) if from_logits else rng.uniform(0.05, 0.95, shape)
    classes = shape[axis]
    rest = tuple(d for k, d in enumerate(shape) if k != axis % len(shape))
    if sparse:
        idx = rng.randint(0, classes, rest).astype(np.float64)
        idx[0, 0, 0] = -1  # an index outside the classes marks no class
        y = np.eye(classes)[np.clip(idx, 0, None).astype(int)] * (idx >= 0)[..., None]
        y = np.moveaxis(y, -1, axis)
        label = idx
    else:
        y = (rng.rand(*shape) > 0.5) * 1.0 if layout == "binary" else \
            np.ascontiguousarray(np.moveaxis(np.eye(classes)[rng.randint(0, classes, rest)],
                                             -1, axis))
        label = y
    sw = {None: None, "row": rng.uniform(0.5, 1.5, shape[0]), "scalar": rng.rand(1)}[weight]
    x, label, sw = _rounded([x, label, sw], dtype)
    if not sparse:
        y = label
    head = rng.rand(shape[0])
    smooth = 0.5

    def per_sample():
        if not from_logits:
            p = x
        elif multiclass:
            p = np.moveaxis(np.exp(_log_softmax(np.moveaxis(x, axis, -1))), -1, axis)
        else:
            p = 1 / (1 + np.exp(-x))
        f = _overlap_ref(p, y, _OVERLAP_COEFS[coefs], smooth, multiclass, axis)
        return f if sw is None else f * sw

    a, b, c, d = _OVERLAP_COEFS[coefs]
    attrs = {"inter_num": a, "inter_den": b, "pred_den": c, "label_den": d, "smooth": "0.5",
             "epsilon": "1e-07", "from_logits": "1" if from_logits else "0",
             "multiclass": "1" if multiclass else "0", "axis": str(axis),
             "sparse_label": "1" if sparse else "0",
             "has_sample_weight": "0" if sw is None else "1"}
    arrays = [x, label] + ([sw] if sw is not None else [])
    grads = _check_op("gluonx_overlap_loss", arrays, attrs, dtype, head, per_sample,
                      grad_of=[k for k in range(len(arrays)) if not (sparse and k == 1)])
    if sparse:
        assert not grads[1].any()


def _p_distance(u, v, q, eps):
    return (np.abs(u - v + eps) ** q).sum(-1) ** (1.0 / q)


@pytest.mark.parametrize("q", [2.0, 1.0, 3.0, 1.5])
@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("shape,weight", [((6, 5), None), ((6, 5), (6, 1)), ((4, 2, 5), (4, 2, 1)),
                                          ((4, 2, 5), (2, 1))])
@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
def test_triplet_margin_op(q, swap, shape, weight, dtype):
    rng = np.random.RandomState(zlib.crc32(("%s/%s/%s/%s" % (q, swap, shape, weight)).encode()))
    a, p, n = rng.randn(*shape), rng.randn(*shape), rng.randn(*shape)
    sw = None if weight is None else rng.uniform(0.5, 1.5, weight)
    a, p, n, sw = _rounded([a, p, n, sw], dtype)
    head = rng.rand(shape[0])

    def per_sample():
        dneg = _p_distance(a, n, q, 0.1)
        if swap:
            dneg = np.minimum(dneg, _p_distance(p, n, q, 0.1))
        f = np.maximum(_p_distance(a, p, q, 0.1) - dneg + 1.0, 0)
        f = f if sw is None else f * sw[..., 0]
        return np.broadcast_to(f, shape[:-1]).reshape(shape[0], -1).mean(1)

    arrays = [a, p, n] + ([sw] if sw is not None else [])
    attrs = {"margin": "1.0", "p": repr(q), "eps": "0.1", "swap": "1" if swap else "0",
             "has_sample_weight": "0" if sw is None else "1"}
    _check_op("gluonx_triplet_margin_loss", arrays, attrs, dtype, head, per_sample)


def _circle_cosines(g, normalize):
    if not normalize:
        return g
    r = 1 / np.sqrt(np.maximum(np.diag(g), 1e-24))
    return g * r[:, None] * r[None, :]


def _circle_rows(g, fixed, label, m, gamma, sw, normalize=False):
    """Circle loss per anchor row of a Gram matrix ``g`` (cosines from its
    diagonal with ``normalize``), the relu weights read from the
    similarities of ``fixed`` (numpy; rows without a positive or a
    negative: 0)."""
    s, f = _circle_cosines(g, normalize), _circle_cosines(fixed, normalize)
    n = len(label)
    same = label[:, None] == label[None, :]
    pos, neg = same & ~np.eye(n, dtype=bool), ~same
    lp = np.maximum(1 + m - f, 0) * (1 - m - s) * gamma
    ln = np.maximum(f + m, 0) * (s - m) * gamma
    out = np.zeros(n)
    for i in range(n):
        if pos[i].any() and neg[i].any():
            a, b = lp[i][pos[i]], ln[i][neg[i]]
            z = a.max() + np.log(np.exp(a - a.max()).sum()) + \
                b.max() + np.log(np.exp(b - b.max()).sum())
            out[i] = _softplus(z)
    return out * (1.0 if sw is None else sw.reshape(-1))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("labels", ["float", "int32", "int64"])
@pytest.mark.parametrize("weight", [None, "row", "scalar"])
@pytest.mark.parametrize("detach", [False, True])
@pytest.mark.parametrize("normalize", [False, True])
def test_circle_op(normalize, detach, weight, labels, dtype):
    """gluonx_circle_loss on a (non-symmetric) matrix: values and the gradients
    of g (finite differences; with detach the relu weights held at their
    values) and of sample_weight, against numpy."""
    rng = np.random.RandomState(12)
    n, m, gamma = 7, 0.3, 16.0
    if normalize:   # a Gram matrix, made non-symmetric
        x = rng.randn(n, 4) * rng.uniform(0.3, 3, (n, 1))
        g = x @ x.T + rng.uniform(-0.3, 0.3, (n, n)) * (1 - np.eye(n))
    else:
        g = rng.uniform(-1, 1, (n, n))
    label = np.array([4, 4, 1, 1, 1, 9, 2])  # 9 and 2: no positive, loss 0
    if labels == "float":
        label = label * 0.5
    sw = {None: None, "row": rng.uniform(0.5, 2, n), "scalar": np.array([1.7])}[weight]
    head = rng.uniform(0.5, 1.5, n)
    arrays = [mx.nd.array(g, dtype=dtype), mx.nd.array(label, dtype=labels)]
    if sw is not None:
        arrays.append(mx.nd.array(sw, dtype=dtype))
    for a in arrays:
        a.attach_grad()
    attrs = {"margin": repr(m), "gamma": repr(gamma), "detach_weights": "1" if detach else "0",
             "normalize": "1" if normalize else "0",
             "has_sample_weight": "0" if sw is None else "1"}
    with mx.autograd.record():
        out = mx.nd.gluonx_circle_loss(*arrays, **attrs)
    out.backward(mx.nd.array(head, dtype=dtype))
    g = arrays[0].asnumpy().astype(np.float64)   # as the operator saw it
    lab = label.astype(np.float64)
    want = _circle_rows(g, g, lab, m, gamma, sw, normalize)
    tol = TOLERANCE[dtype]
    assert want[5] == 0 and want[6] == 0 and want[0] > 0
    np.testing.assert_allclose(out.asnumpy(), want, rtol=tol * 10, atol=tol)
    v = g.copy()
    fixed = g if detach else v
    dg = _numeric_grad(lambda: (_circle_rows(v, fixed, lab, m, gamma, sw, normalize)
                                * head).sum(), v)
    scale = np.abs(dg).max()
    got = arrays[0].grad.asnumpy()
    np.testing.assert_allclose(got, dg, rtol=1e-4,
                               atol=scale * (1e-6 if dtype == "float64" else 1e-4))
    assert np.all(got[5:][~np.eye(n, dtype=bool)[5:]] == 0)   # dead rows
    assert np.all(arrays[1].grad.asnumpy() == 0)
    if sw is not None:
        per_row = _circle_rows(g, g, lab, m, gamma, None, normalize) * head
        dsw = per_row if weight == "row" else per_row.sum(keepdims=True)
        np.testing.assert_allclose(arrays[2].grad.asnumpy(), dsw, rtol=tol * 10, atol=tol)


@pytest.mark.parametrize("n", [1200, 2500])
def test_circle_op_large_rows(n):
    """Threaded rows over a large matrix (a miscompiled masked maximum read
    past a thread's stack from N ~ 1200 on): values against numpy, and a
    backward that completes with finite gradients."""
    rng = np.random.RandomState(n)
    g = rng.uniform(-1, 1, (n, n)).astype(np.float32)
    label = rng.randint(0, n // 4, n).astype(np.float32)
    arrays = [mx.nd.array(g), mx.nd.array(label)]
    arrays[0].attach_grad()
    with mx.autograd.record():
        out = mx.nd.gluonx_circle_loss(*arrays, margin="0.25", gamma="32", detach_weights="0",
                                       normalize="0", has_sample_weight="0")
    out.backward()
    want = _circle_rows(g.astype(np.float64), g.astype(np.float64), label.astype(np.float64),
                        0.25, 32.0, None)
    np.testing.assert_allclose(out.asnumpy(), want, rtol=1e-4, atol=1e-4)
    assert np.all(np.isfinite(arrays[0].grad.asnumpy()))


def test_circle_op_nan_label_is_everyones_negative():
    """A NaN label equals nothing (as broadcast_equal): its own row has no
    positive (loss 0), and it is a negative of every other anchor."""
    rng = np.random.RandomState(13)
    s = rng.uniform(-1, 1, (5, 5))
    label = np.array([0.0, 0.0, 1.0, 1.0, np.nan])
    out = mx.nd.gluonx_circle_loss(mx.nd.array(s, dtype="float64"),
                                   mx.nd.array(label, dtype="float64"), margin="0.25",
                                   gamma="8", detach_weights="0", normalize="0",
                                   has_sample_weight="0")
    nan_as_class = np.array([0.0, 0.0, 1.0, 1.0, 7.0])   # a class of its own
    want = _circle_rows(s, s, nan_as_class, 0.25, 8.0, None)
    want[4] = 0.0
    np.testing.assert_allclose(out.asnumpy(), want, rtol=1e-9)


def test_circle_op_rejects_inputs_that_do_not_fit():
    attrs = {"margin": "0.25", "gamma": "8", "detach_weights": "0", "normalize": "1"}
    s = mx.nd.ones((4, 4))
    with pytest.raises(mx.base.MXNetError, match="does not fit"):
        mx.nd.gluonx_circle_loss(mx.nd.ones((4, 5)), mx.nd.ones((4,)), has_sample_weight="0",
                                 **attrs).wait_to_read()
    with pytest.raises(mx.base.MXNetError, match="does not fit"):
        mx.nd.gluonx_circle_loss(s, mx.nd.ones((5,)), has_sample_weight="0",
                                 **attrs).wait_to_read()
    with pytest.raises(mx.base.MXNetError, match="does not fit"):
        mx.nd.gluonx_circle_loss(s, mx.nd.ones((4,)), mx.nd.ones((3,)), has_sample_weight="1",
                                 **attrs).wait_to_read()
    with pytest.raises(mx.base.MXNetError, match="gamma"):
        mx.nd.gluonx_circle_loss(s, mx.nd.ones((4,)), has_sample_weight="0",
                                 **dict(attrs, gamma="0")).wait_to_read()


def test_circle_loss_large_batch_matches_the_stock_path():
    """N = 2049: threaded rows and streaming stores for the (N, N) gradient."""
    gluonx.config.check_values = False
    rng = np.random.RandomState(14)
    x = rng.randn(2049, 8).astype(np.float32)
    label = rng.randint(0, 500, 2049).astype(np.float32)
    sw = rng.uniform(0.5, 2, 2049).astype(np.float32)
    results = []
    for use in (False, True):
        gluonx.config.use_kernels = use
        kernels.reset_calls()
        args = [mx.nd.array(a) for a in (x, label, sw)]
        for a in args:
            a.attach_grad()
        with mx.autograd.record():
            out = gluonx.loss.CircleLoss(gamma=64)(*args)
        out.backward()
        assert bool(kernels.calls()) == use
        results.append([out.asnumpy(), args[0].grad.asnumpy(), args[2].grad.asnumpy()])
    for k, (a, b) in enumerate(zip(*results)):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(a).max()),
                                   err_msg="output/grad %d" % k)


def test_row_ops_reject_inputs_that_do_not_fit():
    x = mx.nd.ones((4, 5))
    with pytest.raises(mx.base.MXNetError, match="does not fit"):
        mx.nd.gluonx_categorical_hinge_loss(x, mx.nd.ones((4, 4)), has_sample_weight="0",
                                            margin="1").wait_to_read()
    with pytest.raises(mx.base.MXNetError, match="does not fit"):
        mx.nd.gluonx_overlap_loss(x, mx.nd.ones((4, 4)), inter_num="2", inter_den="0",
                                  pred_den="1", label_den="1", smooth="1", epsilon="1e-7",
                                  from_logits="0", multiclass="1", axis="-1", sparse_label="1",
                                  has_sample_weight="0").wait_to_read()
    with pytest.raises(mx.base.MXNetError, match="does not fit"):
        mx.nd.gluonx_triplet_margin_loss(x, x, mx.nd.ones((4, 4)), margin="1", p="2",
                                         eps="0", swap="0", has_sample_weight="0").wait_to_read()
    with pytest.raises(mx.base.MXNetError, match="p must be"):
        mx.nd.gluonx_triplet_margin_loss(x, x, x, margin="1", p="inf", eps="0", swap="0",
                                         has_sample_weight="0").wait_to_read()
    for label, teacher in [(mx.nd.ones((3,)), x), (mx.nd.ones((4,)), mx.nd.ones((4, 4)))]:
        with pytest.raises(mx.base.MXNetError, match="does not fit"):
            mx.nd.gluonx_distillation_loss(x, label, teacher, **_DISTILLATION_ATTRS,
                                           has_sample_weight="0").wait_to_read()
    with pytest.raises(mx.base.MXNetError, match="does not fit"):  # a dense label
        mx.nd.gluonx_distillation_loss(x, mx.nd.ones((4, 4)), x, **dict(
            _DISTILLATION_ATTRS, sparse_label="0"), has_sample_weight="0").wait_to_read()
    with pytest.raises(mx.base.MXNetError, match="does not fit"):
        mx.nd.gluonx_generalized_ce_loss(x, mx.nd.ones((5,)), q="0.5", from_softmax="0",
                                         has_sample_weight="0").wait_to_read()
    with pytest.raises(mx.base.MXNetError, match="q is not"):
        mx.nd.gluonx_generalized_ce_loss(x, mx.nd.ones((4,)), q="0", from_softmax="0",
                                         has_sample_weight="0").wait_to_read()


_DISTILLATION_ATTRS = {"temperature": "2.0", "hard_weight": "0.5", "soft_weight": "1.0",
                       "sparse_label": "1", "teacher_probabilities": "0",
                       "teacher_entropy": "1"}


_SOFTMAX_CE_ATTRS = {"sparse_label": "1", "from_logits": "0", "label_smoothing": "0",
                     "ignore": "0", "ignore_index": "0", "average_valid": "0",
                     "batch_mean": "0", "gamma": "0", "has_valid_length": "0",
                     "has_class_weight": "0"}


@pytest.mark.parametrize("op", ["hinge", "overlap", "triplet", "softmax_ce", "kldiv_softmax",
                                "mx_triplet", "cosine", "l2", "vae", "wgan_gp",
                                "distillation", "generalized_ce", "circle"])
def test_backward_after_a_failed_forward_fails_cleanly(op):
    """MXNet runs the backward of a recorded call whose forward failed (an
    option changed on the instance can do that): every operator's backward
    checks the inputs again instead of reading past them."""
    x, bad = mx.nd.ones((4, 5)), mx.nd.ones((4, 3))
    args, attrs = {
        "softmax_ce": ([x, bad], _SOFTMAX_CE_ATTRS),
        "kldiv_softmax": ([x, bad], {}),
        "mx_triplet": ([x, x, bad], {"margin": "1"}),
        "cosine": ([x, x, mx.nd.ones((3,))], {"margin": "0"}),
        "l2": ([x, bad], {}),
        "hinge": ([x, bad], {"margin": "1"}),
        "overlap": ([x, bad], {"inter_num": "2", "inter_den": "0", "pred_den": "1",
                               "label_den": "1", "smooth": "1", "epsilon": "1e-7",
                               "from_logits": "0", "multiclass": "0", "axis": "-1",
                               "sparse_label": "0"}),
        "triplet": ([x, x, bad], {"margin": "1", "p": "2", "eps": "0", "swap": "0"}),
        "vae": ([x, x, bad[:3], bad[:3]], {"from_sigmoid": "0", "eps": "1e-7"}),
        "wgan_gp": ([x[:, 0], bad[:3, 0], x[:, 0]], {"has_real": "1", "has_grad_interp": "1",
                                                   "lambda_": "10", "separate": "0"}),
        "distillation": ([x, mx.nd.ones((4,)), bad], _DISTILLATION_ATTRS),
        "generalized_ce": ([x, mx.nd.ones((3,))], {"q": "0.5", "from_softmax": "0"}),
        "circle": ([mx.nd.ones((4, 4)), mx.nd.ones((3,))],
                   {"margin": "0.25", "gamma": "8", "detach_weights": "0", "normalize": "1"}),
    }[op]
    name = {"hinge": "gluonx_categorical_hinge_loss", "overlap": "gluonx_overlap_loss",
            "triplet": "gluonx_triplet_margin_loss", "softmax_ce": "gluonx_softmax_ce_loss",
            "kldiv_softmax": "gluonx_kldiv_softmax_loss", "mx_triplet": "gluonx_triplet_loss",
            "cosine": "gluonx_cosine_loss", "l2": "gluonx_l2_loss", "vae": "gluonx_vae_loss",
            "wgan_gp": "gluonx_wgan_gp_loss", "distillation": "gluonx_distillation_loss",
            "generalized_ce": "gluonx_generalized_ce_loss", "circle": "gluonx_circle_loss"}[op]
    for a in args:
        a.attach_grad()
    with pytest.raises(mx.base.MXNetError, match="does not fit|must share"):
        with mx.autograd.record():
            out = getattr(mx.nd, name)(*args, has_sample_weight="0", **attrs)
        out.backward()
        mx.nd.waitall()
    try:
        mx.nd.waitall()
    except mx.base.MXNetError:
        pass


def _ctc_reference(x, labels, frames):
    """-log p(label | x) by brute-force path enumeration (tiny sizes only)."""
    import itertools
    C = x.shape[-1]
    probs = np.exp(_log_softmax(x[:frames]))
    total = 0.0
    for path in itertools.product(range(C), repeat=frames):
        collapsed = [k for i, k in enumerate(path) if i == 0 or k != path[i - 1]]
        if [k for k in collapsed if k != C - 1] == list(labels):
            total += np.prod([probs[t, k] for t, k in enumerate(path)])
    return -np.log(total) if total > 0 else np.inf


def test_ctc_op_against_path_enumeration():
    rng = np.random.RandomState(7)
    N, T, C = 4, 5, 3
    x = rng.randn(N, T, C)
    label = np.array([[0, 1, -1], [1, 1, -1], [0, -1, -1], [0, 0, 0]], dtype=np.float64)
    labels = [[int(v) for v in row if v >= 0] for row in label]
    head = rng.rand(N)
    out, grads = _run_op("gluonx_ctc_loss", [x, label],
                         {"has_sample_weight": "0", "has_pred_lengths": "0", "has_label_lengths": "0",
                          "layout_ntc": "1", "label_nt": "1"},
                         "float64", head)
    want = [_ctc_reference(x[n], labels[n], T) for n in range(N)]
    np.testing.assert_allclose(out, want, rtol=1e-9)  # [0, 0, 0] just fits: 0 _ 0 _ 0

    def total():
        return float(np.dot([_ctc_reference(x[n], labels[n], T) for n in range(N)], head))

    np.testing.assert_allclose(grads[0], _numeric_grad(total, x), rtol=1e-5, atol=1e-7)


def test_ctc_infeasible_and_lengths():
    rng = np.random.RandomState(8)
    N, T, C = 3, 6, 4
    x = rng.randn(N, T, C)
    label = np.array([[0, 0, 0, 0], [1, 2, 0, 0], [2, 1, 0, 1]], dtype=np.float64)
    label_lengths = np.array([4., 2., 3.])  # row 0: 4 + 3 repeats > 6 frames
    pred_lengths = np.array([6., 4., 2.])   # row 2: 3 labels in 2 frames
    head = np.ones(N)
    out, grads = _run_op("gluonx_ctc_loss", [x, label, pred_lengths, label_lengths],
                         {"has_sample_weight": "0", "has_pred_lengths": "1", "has_label_lengths": "1",
                          "layout_ntc": "1", "label_nt": "1"},
                         "float64", head)
    assert np.isinf(out[0]) and np.isinf(out[2])
    assert not grads[0][0].any() and not grads[0][2].any()
    np.testing.assert_allclose(out[1], _ctc_reference(x[1], [1, 2], 4), rtol=1e-9)
    assert not grads[0][1, 4:].any()  # frames past pred_lengths
    assert not any(g.any() for g in grads[1:])


def test_symbol_composition_and_bind():
    a, b = mx.sym.var("a"), mx.sym.var("b")
    out = mx.sym.gluonx_huber_loss(a, b, has_sample_weight="0", rho="1.0")
    ex = out.bind(mx.cpu(), {"a": mx.nd.array([[0., 3.]]), "b": mx.nd.zeros((1, 2))})
    np.testing.assert_allclose(ex.forward()[0].asnumpy(), [(0 + 2.5) / 2])


# -------------------------------------------------- through the loss classes --

# every row of the case table meant to run fused, kernels on against off
FUSED_CASES = [c for c in CASES if c.runs_fused()]


@pytest.mark.parametrize("hybridize", [False, True])
@pytest.mark.parametrize("case", FUSED_CASES, ids=[c.id for c in FUSED_CASES])
def test_loss_classes_use_the_kernels(case, hybridize):
    gluonx.config.check_values = False
    inputs = as_dtype(case.inputs(), "float64")
    mode = "static" if hybridize else "imperative"
    results, ran = _both_paths(case.factory(), inputs, case.grad, mode=mode)
    assert ran, "the kernel was not used"
    assert sum(kernels.calls().values()) == 0  # the last run had kernels off
    _assert_same(results, case.id)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_large_gradients_use_streaming_stores(dtype):
    """Above 4M elements the backward writes rows through streaming stores."""
    rng = np.random.RandomState(10)
    shape = (2049, 2051)  # odd sizes: unaligned row starts, scalar heads and tails
    p, l, head = rng.randn(*shape), rng.randn(*shape), rng.rand(shape[0])
    out, grads = _run_op("gluonx_l2_loss", [p, l], {"has_sample_weight": "0"}, dtype, head)
    want = (p - l) * (head[:, None] / shape[1])
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(out, 0.5 * ((p - l) ** 2).mean(1), rtol=tol, atol=tol)
    np.testing.assert_allclose(grads[0], want, rtol=tol * 10, atol=tol)
    np.testing.assert_allclose(grads[1], -want, rtol=tol * 10, atol=tol)


@pytest.mark.parametrize("name,options", [("TripletLoss", {}), ("CosineEmbeddingLoss", {}),
                                          ("SoftmaxCELoss", {}),
                                          ("SoftmaxCELoss", {"sparse_label": False}),
                                          ("KLDivLoss", {"from_logits": False}),
                                          ("LogisticLoss", {}),
                                          ("CategoricalHingeLoss", {}),
                                          ("DiceLoss", {"from_logits": True}),
                                          ("TverskyLoss", {"axis": -1, "from_logits": True,
                                                           "alpha": 0.3, "beta": 0.6}),
                                          ("TripletMarginLoss", {"swap": True}),
                                          ("GeneralizedCELoss", {"q": 0.7}),
                                          ("DistillationLoss", {"temperature": 2.0,
                                                                "hard_weight": 0.5}),
                                          ("DistillationLoss", {"temperature": 3.0,
                                                                "hard_weight": 0.3,
                                                                "teacher_probabilities": True,
                                                                "soft_loss": "cross_entropy",
                                                                "mix": "convex"}),
                                          ("DistillationLoss", {"sparse_label": False,
                                                                "hard_weight": 1.0,
                                                                "teacher_probabilities": True})])
def test_large_gradients_match_the_stock_path(name, options):
    gluonx.config.check_values = False
    rng = np.random.RandomState(11)
    shape = (2049, 2051)
    p = rng.randn(*shape).astype(np.float32)
    others = {"TripletLoss": lambda: [rng.randn(*shape), rng.randn(*shape)],
              "CosineEmbeddingLoss": lambda: [rng.randn(*shape), np.sign(rng.randn(shape[0]))],
              "SoftmaxCELoss": lambda: [rng.randint(0, shape[1], shape[0]) * 1.0
                                        if options.get("sparse_label", True)
                                        else rng.dirichlet(np.ones(shape[1]), shape[0])],
              "KLDivLoss": lambda: [rng.dirichlet(np.ones(shape[1]), shape[0])],
              "LogisticLoss": lambda: [np.sign(rng.randn(*shape))],
              "CategoricalHingeLoss": lambda: [np.eye(shape[1])[rng.randint(0, shape[1],
                                                                            shape[0])]],
              "DiceLoss": lambda: [(rng.rand(*shape) > 0.5) * 1.0],
              "TverskyLoss": lambda: [np.eye(shape[1])[rng.randint(0, shape[1], shape[0])]],
              "TripletMarginLoss": lambda: [rng.randn(*shape), rng.randn(*shape)],
              "GeneralizedCELoss": lambda: [rng.randint(0, shape[1], shape[0]) * 1.0],
              "DistillationLoss": lambda: [
                  rng.randint(0, shape[1], shape[0]) * 1.0 if options.get("sparse_label", True)
                  else rng.dirichlet(np.ones(shape[1]), shape[0]),
                  rng.dirichlet(np.ones(shape[1]), shape[0])
                  if options.get("teacher_probabilities") else rng.randn(*shape)]}[name]()
    results = []
    for use in (False, True):
        gluonx.config.use_kernels = use
        args = [mx.nd.array(a) for a in [p] + others]
        for a in args:
            a.attach_grad()
        with mx.autograd.record():
            out = getattr(gluonx.loss, name)(**options)(*args)
        out.backward()
        results.append([out.asnumpy()] + [a.grad.asnumpy() for a in args])
    for k, (a, b) in enumerate(zip(*results)):
        # float32 sums of 2051 terms in another order: outputs near 0 differ by ~1e-4
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-3 if k == 0 else 1e-5,
                                   err_msg="output/grad %d" % k)


# ------------------------------------------- float32 math: range and specials --

def _wide_logits():
    """float32 logits over the whole range, the polynomial reduction boundaries
    (|x| near log(1 + sqrt(2)) and multiples of ln 2), and inf/nan."""
    grid = np.concatenate([np.linspace(-30, 30, 6001), np.linspace(-0.9, -0.85, 101),
                           np.linspace(0.85, 0.9, 101), np.array([-1e4, -200, -89, -88, -87.5,
                                                                  87.5, 88, 89, 200, 1e4])])
    return grid.astype(np.float32).astype(np.float64)


@pytest.mark.parametrize("name,attrs,labels", [
    ("gluonx_logistic_loss", {"signed": "1"}, (-1.0, 1.0)),
    ("gluonx_sigmoid_bce_loss", {"from_sigmoid": "0", "has_pos_weight": "0"}, (0.0, 1.0)),
])
def test_float32_softplus_accuracy(name, attrs, labels):
    x = _wide_logits()
    for label in labels:
        p, l = x[:, None], np.full((x.size, 1), label)
        out, grads = _run_op(name, [p, l], dict(attrs, has_sample_weight="0"), "float32", np.ones(x.size))
        t = 0.5 * label + 0.5 if attrs.get("signed") == "1" else label
        want = np.logaddexp(0, x) - x * t
        # max(x, 0) - x t cancels: an ulp of x is the float32 limit there
        err = np.abs(out - want)
        assert np.all(err <= 2e-6 * np.abs(want) + 1.2e-7 * np.abs(x)), x[np.argmax(
            err - 2e-6 * np.abs(want) - 1.2e-7 * np.abs(x))]
        sig = np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))),
                       np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))))
        np.testing.assert_allclose(grads[0][:, 0], sig - t, rtol=2e-6, atol=1e-7)
    specials = np.array([[np.inf], [-np.inf], [np.nan]])
    out, grads = _run_op(name, [specials, np.full((3, 1), labels[1])], dict(attrs, has_sample_weight="0"),
                         "float32", np.ones(3))
    # as the stock path: inf - inf is nan at +inf, nan propagates, exact gradients
    assert np.isnan(out[0]) and out[1] == np.inf and np.isnan(out[2])
    assert grads[0][0, 0] == 0 and grads[0][1, 0] == -1 and np.isnan(grads[0][2, 0])


def test_float32_kldiv_log_accuracy():
    rng = np.random.RandomState(12)
    l = np.concatenate([10.0 ** rng.uniform(-38, 0, 3000), [0.0, 1.0, 0.5, 1e-45]])
    l = l.astype(np.float32).astype(np.float64)[:, None]
    p = rng.randn(l.size, 1).astype(np.float32).astype(np.float64)
    out, grads = _run_op("gluonx_kldiv_loss", [p, l], {"has_sample_weight": "0"}, "float32", np.ones(l.size))
    want = l[:, 0] * (np.log(l[:, 0] + 1e-12) - p[:, 0])
    np.testing.assert_allclose(out, want, rtol=2e-6, atol=1e-37)
    np.testing.assert_allclose(grads[1][:, 0], np.log(l[:, 0] + 1e-12) - p[:, 0]
                               + l[:, 0] / (l[:, 0] + 1e-12), rtol=2e-6, atol=1e-6)
    specials = np.array([[np.inf], [np.nan], [-1.0]])
    out, _ = _run_op("gluonx_kldiv_loss", [np.zeros((3, 1)), specials], {"has_sample_weight": "0"},
                     "float32", np.ones(3))
    assert np.isinf(out[0]) and np.isnan(out[1]) and np.isnan(out[2])


# ------------------------------------------------------------------ SDML --

def _sdml_ref(x1, x2, s, sw=None):
    n = x1.shape[0]
    d = ((x1[:, None, :] - x2[None, :, :]) ** 2).sum(2)
    z = -d
    m = z.max(1, keepdims=True)
    lp = z - (m + np.log(np.exp(z - m).sum(1, keepdims=True)))
    q = np.full((n, n), s / (n - 1))
    np.fill_diagonal(q, 1 - s)
    f = (q * (np.log(q + 1e-12) - lp)).sum(1)
    return f if sw is None else f * sw


@pytest.mark.parametrize("smoothing", [0.3, 0.0])
@pytest.mark.parametrize("weight", [None, "row", "scalar"])
def test_sdml_op(weight, smoothing):
    rng = np.random.RandomState(13)
    x1, x2 = rng.randn(5, 3) * 0.7, rng.randn(5, 3) * 0.7
    sw = {None: None, "row": rng.rand(5), "scalar": rng.rand(1)}[weight]
    head = rng.rand(5)
    arrays = [x1, x2] + ([sw] if sw is not None else [])
    attrs = {"has_sample_weight": "1" if sw is not None else "0", "smoothing_parameter": repr(smoothing)}
    out, grads = _run_op("gluonx_sdml_loss", arrays, attrs, "float64", head)
    np.testing.assert_allclose(out, _sdml_ref(x1, x2, smoothing, sw), rtol=1e-9)
    for k, arr in enumerate(arrays):
        want = _numeric_grad(lambda: float((_sdml_ref(x1, x2, smoothing, sw) * head).sum()), arr)
        np.testing.assert_allclose(grads[k], want, rtol=1e-5, atol=1e-6, err_msg="input %d" % k)


@pytest.mark.parametrize("shape", [(6, 4), (96, 40)])  # (96, 40): the multi-threaded path
def test_sdml_op_float32(shape):
    rng = np.random.RandomState(14)
    x1 = rng.randn(*shape).astype(np.float32).astype(np.float64) * 0.3
    x2 = (x1 + 0.2 * rng.randn(*shape)).astype(np.float32).astype(np.float64)
    sw, head = rng.rand(shape[0]), rng.rand(shape[0])
    out, grads = _run_op("gluonx_sdml_loss", [x1, x2, sw],
                         {"has_sample_weight": "1", "smoothing_parameter": "0.2"}, "float32", head)
    out64, grads64 = _run_op("gluonx_sdml_loss", [x1, x2, sw],
                             {"has_sample_weight": "1", "smoothing_parameter": "0.2"}, "float64", head)
    np.testing.assert_allclose(out64, _sdml_ref(x1, x2, 0.2, sw), rtol=1e-9)
    np.testing.assert_allclose(out, out64, rtol=2e-4, atol=1e-5)
    for k in range(3):
        scale = np.abs(grads64[k]).max()
        np.testing.assert_allclose(grads[k], grads64[k], rtol=2e-4, atol=2e-5 * scale,
                                   err_msg="input %d" % k)


@pytest.mark.parametrize("hybridize", [False, True])
@pytest.mark.parametrize("with_weight", [False, True])
def test_sdml_loss_class_uses_the_kernel(hybridize, with_weight):
    gluonx.config.check_values = False
    rng = np.random.RandomState(15)
    x1, x2, sw = rng.randn(8, 6), rng.randn(8, 6), rng.rand(8)
    kernels.reset_calls()
    results = []
    for use in (False, True):
        gluonx.config.use_kernels = use
        loss = gluonx.loss.SDMLLoss(smoothing_parameter=0.1, weight=2.0)
        if hybridize:
            loss.hybridize(static_alloc=True, static_shape=True)
        args = [mx.nd.array(a) for a in ((x1, x2, sw) if with_weight else (x1, x2))]
        for a in args:
            a.attach_grad()
        with mx.autograd.record():
            out = loss(*args)
        out.backward()
        results.append([out.asnumpy()] + [a.grad.asnumpy() for a in args])
    assert kernels.calls() == {"gluonx_sdml_loss": 1}, "the kernel was not used"
    want = 2.0 * _sdml_ref(x1, x2, 0.1, sw if with_weight else None)
    np.testing.assert_allclose(results[1][0], want, rtol=1e-5, atol=1e-6)
    for k, (a, b) in enumerate(zip(*results)):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5, err_msg="output/grad %d" % k)


# ------------------------------------------------------------ declarations --
# The kernel a loss runs is declared beside its math (``_kernel``); these
# tests re-run the bugs that a second, name-keyed description used to cause.



def _kernel_classes():
    """Every public loss class that declares a kernel (derived, not listed)."""
    out = []
    for name in gluonx.loss.__all__:
        cls = getattr(gluonx.loss, name)
        if isinstance(cls, type) and kernels.kernel_of(cls) is not None and cls not in out:
            out.append(cls)
    return out


def _both_paths(factory, inputs, grad, mode="imperative", mutate=None):
    """(kernels on, kernels off) results of one loss, and whether a kernel ran."""
    results, ran = [], None
    for use in (True, False):
        gluonx.config.use_kernels = use
        kernels.reset_calls()

        def make():
            loss = factory()
            if mutate is not None:
                mutate(loss)
            return loss
        results.append(run_mode(mode, make, inputs, grad))
        if use:
            ran = bool(kernels.calls())
    return results, ran


def _assert_same(results, what):
    (a, ga), (b, gb) = results
    np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5, err_msg=what)
    for k in ga:
        np.testing.assert_allclose(ga[k], gb[k], rtol=2e-4, atol=2e-5,
                                   err_msg="%s grad[%d]" % (what, k))


def test_every_kernel_class_is_in_the_table():
    tabled = {getattr(gluonx.loss, c.cls) for c in CASES}
    assert set(_kernel_classes()) <= tabled
    assert len(_kernel_classes()) >= 14


def test_stale_option_after_construction_sdml():
    """Issue bug 1: an option changed after construction is honoured by the kernel."""
    gluonx.config.check_values = False
    rng = np.random.RandomState(0)
    x1, x2 = rng.randn(4, 5), rng.randn(4, 5)

    def zero(loss):
        loss.smoothing_parameter = 0.0
    results, ran = _both_paths(gluonx.loss.SDMLLoss, [x1, x2], (0, 1), mutate=zero)
    assert ran
    _assert_same(results, "SDML smoothing_parameter=0 set after construction")
    np.testing.assert_allclose(results[0][0], _sdml_ref(x1, x2, 0.0), rtol=1e-5)


@pytest.mark.parametrize("static", [False, True])
def test_hybridized_weight_broadcast_kind_is_part_of_the_graph_key(static):
    """Issue bug 2: sample_weight (4, 1, 1) then (4, 1, 3) after hybridize."""
    rng = np.random.RandomState(1)
    p, l = rng.randn(4, 5, 3), rng.randn(4, 5, 3)
    loss = gluonx.loss.L2Loss()
    loss.hybridize(static_alloc=static, static_shape=static)
    for shape in ((4, 1, 1), (4, 1, 3), (4, 1, 1), (1, 5, 3), (4, 5, 3)):
        sw = rng.rand(*shape)
        out = loss(mx.nd.array(p), mx.nd.array(l), mx.nd.array(sw)).asnumpy()
        want = (0.5 * (p - l) ** 2 * sw).reshape(4, -1).mean(1)
        np.testing.assert_allclose(out, want, rtol=1e-5, err_msg=str(shape))


def _toggles(value, name, kernel):
    """Other values to try for option ``name`` (invalid ones are skipped)."""
    allowed = kernel.options.get(name)
    if isinstance(allowed, tuple):
        return [v for v in allowed if v != value]
    if isinstance(value, (bool, np.bool_)):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value - 1, 0, 1]
    if isinstance(value, float):
        return [value * 0.5 + 0.1, value + 0.5]
    if value is None:   # (a function: for an option that takes one, such as a distance)
        return [0, 1, 0.5, "per-class", "function"]
    return []


def _euclidean_distance(F, a, b):
    """A user's distance function (PyTorch's default distance, written on F)."""
    return F.sqrt(F.sum(F.square(a - b + 1e-6), axis=-1))


def _options(cls):
    import inspect
    sig = inspect.signature(cls.__init__)
    return {n: p.default for n, p in sig.parameters.items()
            if n not in ("self", "weight", "batch_axis", "reduction")
            and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def _drain_async_errors():
    """An invalid value can fail inside MXNet's engine after the Python call
    returned (in an output nobody reads); MXNet holds such an error until the
    next synchronisation, and an unrelated allocation may then abort the
    process. Sync it out after every toggle."""
    try:
        mx.nd.waitall()
    except mx.base.MXNetError:
        pass


@pytest.mark.parametrize("how", ["constructor", "attribute"])
def test_every_option_toggled_agrees_with_the_stock_path(how):
    """For every loss with a kernel and every constructor option: toggled (in
    the constructor, or on the instance after construction), the kernel path
    gives the stock path's value and gradient, so no option is ignored."""
    gluonx.config.check_values = False
    exercised = set()
    for case in CASES:
        cls = getattr(gluonx.loss, case.cls)
        kernel = kernels.kernel_of(cls)
        if kernel is None or case.kwargs.get("batch_axis", 0) != 0:
            continue
        inputs = as_dtype(case.inputs(), "float64")
        for name, default in _options(cls).items():
            current = case.kwargs.get(name, default)
            for value in _toggles(current, name, kernel):
                if value == "per-class":
                    value = list(np.linspace(0.5, 2.0, np.shape(inputs[0])[-1]))
                elif value == "function":
                    value = _euclidean_distance
                if how == "constructor":
                    factory, mutate = case.factory(**{name: value}), None
                else:
                    factory = case.factory()

                    def mutate(loss, name=name, value=value):
                        attr = "_" + name if hasattr(loss, "_" + name) else name
                        if name == "class_weight" or not hasattr(loss, attr):
                            raise gluonx.loss.LossInputError("not an attribute")
                        setattr(loss, attr, value)
                try:
                    results, _ = _both_paths(factory, inputs, case.grad, mutate=mutate)
                except (ValueError, mx.base.MXNetError, TypeError, ZeroDivisionError):
                    continue  # not a valid value for these inputs
                finally:
                    _drain_async_errors()
                _assert_same(results, "%s %s=%r (%s)" % (case.id, name, value, how))
                exercised.add((cls.__name__, name))
    wanted = {(cls.__name__, n) for cls in _kernel_classes() for n in _options(cls)}
    # options that only make sense with other inputs (a layout) are covered by
    # the table's rows in both settings
    tabled = {(c.cls if not hasattr(gluonx.loss, c.cls) else getattr(gluonx.loss, c.cls).__name__,
               k) for c in CASES for k in c.kwargs}
    missing = wanted - exercised - tabled
    if how == "constructor":
        assert not missing, "options never toggled: %s" % sorted(missing)


def test_an_unlisted_option_falls_back_to_stock():
    """A subclass with a constructor option the declaration does not list
    never runs the kernel (the option might change the math)."""
    class Scaled(gluonx.loss.L2Loss):
        def __init__(self, scale=2.0, **kwargs):
            super().__init__(**kwargs)
            self._scale = scale

    assert kernels.kernel_of(Scaled) is None
    rng = np.random.RandomState(2)
    _, ran = _both_paths(Scaled, [rng.randn(3, 4), rng.randn(3, 4)], (0,))
    assert not ran


def test_an_unlisted_call_option_falls_back_to_stock():
    """PoissonNLLLoss's call-time epsilon is a declared attribute; a number is
    fused, an array (not an attribute value) runs the stock path."""
    rng = np.random.RandomState(3)
    p = mx.nd.array(rng.uniform(0.1, 2, (3, 4)))
    t = mx.nd.array(rng.poisson(2, (3, 4)))
    loss = gluonx.loss.PoissonNLLLoss(from_logits=False)
    kernels.reset_calls()
    fused = loss(p, t, epsilon=0.5).asnumpy()
    assert kernels.calls() == {"gluonx_poisson_nll_loss": 1}
    kernels.reset_calls()
    stock = loss(p, t, epsilon=mx.nd.array([0.5])).asnumpy()
    assert not kernels.calls()
    np.testing.assert_allclose(fused, stock, rtol=1e-5)
    want = (p.asnumpy() - t.asnumpy() * np.log(p.asnumpy() + 0.5)).mean(1)
    np.testing.assert_allclose(fused, want, rtol=1e-5)


@pytest.mark.parametrize("method", ["_loss", "_per_sample", "hybrid_forward"])
def test_subclass_overriding_the_math_never_runs_the_parent_kernel(method):
    base = gluonx.loss.L2Loss
    body = {
        "_loss": lambda self, F, pred, label: F.abs(pred - label),
        "_per_sample": lambda self, F, loss, norm=None:   # sqrt(2 * L2) = |pred - label|
            F.mean(F.sqrt(2 * loss), axis=self._batch_axis, exclude=True),
        # its own math, never reaching super(): the kernel is kept but not called
        "hybrid_forward": lambda self, F, pred, label, sample_weight=None:
            F.mean(F.abs(pred - label), axis=0, exclude=True),
    }[method]
    cls = type("My" + method, (base,), {method: body})
    assert (kernels.kernel_of(cls) is None) == (method != "hybrid_forward")
    rng = np.random.RandomState(4)
    p, l = mx.nd.array(rng.randn(3, 4)), mx.nd.array(rng.randn(3, 4))
    kernels.reset_calls()
    out = cls()(p, l).asnumpy()
    assert not kernels.calls()
    np.testing.assert_allclose(out, np.abs(p.asnumpy() - l.asnumpy()).mean(1), rtol=1e-5)


@pytest.mark.parametrize("hybridize", [False, True])
def test_forward_override_calling_super_runs_the_kernel(hybridize):
    """Dive into Deep Learning's masked softmax CE: forward builds a weight
    from valid lengths and hands it to super().forward, the parent's math,
    which runs its kernel (it ran the stock operators until session 17, at
    7x the kernel's time)."""
    class Masked(gluonx.loss.SoftmaxCELoss):
        def forward(self, pred, label, valid_len):
            weights = mx.nd.SequenceMask(mx.nd.ones_like(label).expand_dims(axis=-1),
                                         valid_len, True, axis=1)
            return super().forward(pred, label, weights)

    assert kernels.kernel_of(Masked) is kernels.kernel_of(gluonx.loss.SoftmaxCELoss)
    rng = np.random.RandomState(7)
    x, y = rng.randn(3, 5, 6), rng.randint(0, 6, (3, 5)).astype(np.float64)
    lengths = np.array([5, 2, 3], dtype=np.float64)
    loss = Masked()
    if hybridize:
        loss.hybridize(static_alloc=True, static_shape=True)
    pred = mx.nd.array(x, dtype="float64")
    pred.attach_grad()
    kernels.reset_calls()
    with mx.autograd.record():
        out = loss(pred, mx.nd.array(y, dtype="float64"), mx.nd.array(lengths, dtype="float64"))
    out.backward()
    assert kernels.calls() == {"gluonx_softmax_ce_loss": 1}
    logp = x - x.max(-1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
    mask = np.arange(5)[None, :] < lengths[:, None]
    picked = np.take_along_axis(logp, y.astype(int)[..., None], -1)[..., 0]
    np.testing.assert_allclose(out.asnumpy(), (-picked * mask).mean(1), rtol=1e-10)
    soft = np.exp(logp)
    onehot = np.eye(6)[y.astype(int)]
    want = (soft - onehot) * mask[..., None] / 5
    np.testing.assert_allclose(pred.grad.asnumpy(), want, rtol=1e-9, atol=1e-12)


def test_subclass_with_only_declared_options_keeps_the_kernel():
    class MyHuber(gluonx.loss.HuberLoss):
        def __init__(self, rho=0.5, weight=None, **kwargs):
            super().__init__(rho=rho, weight=weight, **kwargs)

    assert kernels.kernel_of(MyHuber) is kernels.kernel_of(gluonx.loss.HuberLoss)
    rng = np.random.RandomState(5)
    results, ran = _both_paths(MyHuber, [rng.randn(3, 4) * 2, rng.randn(3, 4)], (0, 1))
    assert ran
    _assert_same(results, "MyHuber")


def test_a_subclass_may_declare_its_own_kernel_or_none():
    class Plain(gluonx.loss.L2Loss):
        _kernel = None

    class Own(gluonx.loss.L2Loss):
        _kernel = kernels.Kernel("gluonx_l1_loss")

        def _loss(self, F, pred, label):
            return F.abs(pred - label)

    assert kernels.kernel_of(Plain) is None
    assert kernels.kernel_of(Own) is Own._kernel
    rng = np.random.RandomState(6)
    results, ran = _both_paths(Own, [rng.randn(3, 4), rng.randn(3, 4)], (0,))
    assert ran
    _assert_same(results, "Own")


# ----------------------------------------------------------------- loading --

_NO_PROCESS = """
    import sys
    import mxnet  # mxnet itself runs `uname -p` at import; gluonx must run nothing
    events = []
    sys.addaudithook(lambda event, args: events.append(event) if event in (
        "subprocess.Popen", "os.posix_spawn", "os.system", "os.exec", "os.fork",
        "os.spawn") else None)
    import gluonx
    gluonx.kernels.status()
    print(events)
"""


@pytest.mark.skipif(np.lib.NumpyVersion(np.__version__) >= "1.24.0",
                    reason="numpy >= 1.24 prints MXNet 1.9.1's np.bool FutureWarning in the child process (checked on numpy 1.23.5)")
@pytest.mark.parametrize("built", [True, False], ids=["built", "empty-cache"])
def test_import_gluonx_starts_no_process(built, tmp_path):
    env = {} if built else {"GLUONX_CACHE_DIR": str(tmp_path)}
    out = _run_python(_NO_PROCESS, env_extra=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


_FAILING_CALLS = """
    import warnings
    import gluonx, mxnet as mx
    gluonx.config.check_values = False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            gluonx.loss.L2Loss()(mx.nd.ones((4, 5)), mx.nd.zeros((4, 5))).asnumpy()
    import json
    print(json.dumps([" ".join(str(w.message) for w in caught
                               if "kernels unavailable" in str(w.message)),
                      gluonx.kernels.status()["reason"]]))
"""


def test_failed_build_is_remembered_across_processes(tmp_path):
    log = tmp_path / "invocations"
    fake = tmp_path / "fake-cxx"
    fake.write_text("#!/bin/sh\necho run >> %s\necho 'fake compiler error' >&2\nexit 1\n" % log)
    fake.chmod(0o755)
    env = {"GLUONX_CACHE_DIR": str(tmp_path / "cache"), "CXX": str(fake), "GLUONX_KERNELS": "1"}

    def invocations():
        return len(log.read_text().splitlines()) if log.exists() else 0

    first = _run_python(_FAILING_CALLS, env_extra=env)
    assert first.returncode == 0, first.stderr
    assert invocations() >= 1
    warned, reason = json.loads(first.stdout.strip().splitlines()[-1])
    assert "fake compiler error" in warned and "fake compiler error" in reason
    tried = invocations()
    second = _run_python(_FAILING_CALLS, env_extra=env)
    assert second.returncode == 0, second.stderr
    assert invocations() == tried, "a later process ran the compiler again"
    warned, reason = json.loads(second.stdout.strip().splitlines()[-1])
    assert "earlier build failed" in warned and "fake compiler error" in reason
    retry = _run_python("from gluonx.kernels.__main__ import main; main(['build'])",
                        env_extra=env)
    assert retry.returncode != 0 and invocations() > tried  # an explicit build retries


def test_status_says_why_kernels_are_off(tmp_path, monkeypatch):
    assert kernels.status()["enabled"] and kernels.status()["reason"] is None
    monkeypatch.setattr(gluonx.config, "use_kernels", False)
    assert "use_kernels" in kernels.status()["reason"]
    out = _run_python("import gluonx; print(gluonx.kernels.status()['reason'])",
                      env_extra={"GLUONX_CACHE_DIR": str(tmp_path), "PATH": ""},
                      env_drop=("CXX",))
    assert out.returncode == 0, out.stderr
    assert "no C++ compiler" in out.stdout


_COST = """
    import time, warnings
    import numpy as np
    import gluonx, mxnet as mx
    warnings.simplefilter("ignore")
    gluonx.config.check_values = False
    p, l = mx.nd.array(np.random.rand(4, 5)), mx.nd.array(np.random.rand(4, 5))
    loss = gluonx.loss.L2Loss()
    loss(p, l).asnumpy()

    def per_call(use):
        gluonx.config.use_kernels = use
        t = time.perf_counter()
        for _ in range(200):
            loss(p, l)
        mx.nd.waitall()
        return (time.perf_counter() - t) / 200

    times = {True: [], False: []}
    for _ in range(5):
        for use in (True, False):
            times[use].append(per_call(use))
    print(min(times[True]) / min(times[False]))
"""


def test_fallback_without_compiler_costs_what_use_kernels_false_costs(tmp_path):
    out = _run_python(_COST, env_extra={"GLUONX_CACHE_DIR": str(tmp_path), "PATH": "",
                                        "CXX": "/nonexistent"})
    assert out.returncode == 0, out.stderr
    ratio = float(out.stdout.strip().splitlines()[-1])
    assert ratio < 1.5, "fallback path %.2fx the cost of use_kernels=False" % ratio


@pytest.mark.parametrize("dtype,ignore_index,fused", [
    ("int32", -100, True), ("float32", 3, True), ("uint8", -100, False), ("int8", 200, False),
    ("int32", 0.5, False)])
def test_softmax_ce_ignore_index_compares_as_the_stock_path(dtype, ignore_index, fused):
    """The kernel takes an integer ignore_index in the labels' range; otherwise
    (where the stock comparison casts it to the label dtype) the stock path runs."""
    gluonx.config.check_values = False
    rng = np.random.RandomState(12)
    p = rng.randn(6, 5)
    l = np.array([1, 3, 0, 4, 3, 2]).astype(dtype)
    results = []
    for on in (True, False):
        gluonx.config.use_kernels = on
        kernels.reset_calls()
        x = mx.nd.array(p)
        x.attach_grad()
        with mx.autograd.record():
            out = gluonx.loss.SoftmaxCELoss(ignore_index=ignore_index, reduction="mean")(
                x, mx.nd.array(l, dtype=dtype))
        out.backward()
        results.append((out.asnumpy(), x.grad.asnumpy()))
        if on:
            assert bool(kernels.calls()) == fused
    gluonx.config.use_kernels = True
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
