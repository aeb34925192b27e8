"""Every loss x five modes x fused kernels on/off: the same values and gradients
as the numpy reference (float32 and float64), on every context."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import gluonx.loss as L
import mxnet as mx
from mxnet import autograd, gluon

import reference as R
import gluonx
from cases import CASES, as_dtype, check_fused, check_result, expected, ids, one_per_class
from conftest import MODES, run_mode


def run_and_check_modes(case, dtype, ctx, tmp_path, modes=MODES, reduction="sample", **extra):
    """Run ``case`` in each mode; fail listing every mode that disagrees."""
    exp = expected(case.id, dtype, reduction)
    inputs, _, head, _ = exp
    factory = case.factory(**extra) if reduction == "sample" else \
        case.factory(reduction=reduction, **extra)
    failures = []
    if dtype in case.symbol_differs and "symbol" in modes:
        modes = tuple(m for m in modes if m != "symbol")
        _symbol_follows_mxnet(case, dtype, ctx, factory, exp, tmp_path, reduction)
    for mode in modes:
        try:
            gluonx.kernels.reset_calls()
            result = run_mode(mode, factory, as_dtype(inputs, dtype), case.grad, ctx, head,
                              tmp_path)
            check_result(case, dtype, result, exp, "%s/%s" % (mode, reduction))
            check_fused(case, mode, reduction, ctx)
        except Exception as err:  # collect, so one report names every broken mode
            failures.append("[%s] %s: %s" % (mode, type(err).__name__, str(err)[:600]))
    assert not failures, "\n".join(failures)


def _symbol_follows_mxnet(case, dtype, ctx, factory, exp, tmp_path, reduction="sample"):
    """Where mx.sym composition cannot know what the other modes know (see
    Case.symbol_differs: shapes are unknown when the graph is built), MXNet's
    broadcasting applies as given: the result is the other modes' answer, or
    mxnet.gluon.loss's own answer in mx.sym, or an error where MXNet raises."""
    inputs, _, head, _ = exp

    def attempt(make, dt=dtype):
        try:
            return run_mode("symbol", make, as_dtype(inputs, dt), (), ctx, head, tmp_path)[0]
        except mx.base.MXNetError:
            return None

    ours = attempt(factory)
    mx_kwargs = {k: v for k, v in case.kwargs.items() if k != "reduction"}
    mx_cls = getattr(gluon.loss, case.cls, None)   # None: a loss mxnet does not have
    theirs = attempt(lambda: mx_cls(**mx_kwargs)) if mx_cls is not None else None
    if theirs is None and ours is not None and dtype == "float64" and mx_cls is not None:
        # some mxnet 1.9.1 losses fail in float64 only: their float32 rule
        theirs = attempt(lambda: mx_cls(**mx_kwargs), "float32")
        dtype = "float32"
    if ours is None:
        # mxnet has no reduction='none' (its per-sample mean is what could enlarge)
        assert theirs is None or reduction == "none", \
            "mx.sym raised where mxnet.gluon.loss gives a number"
        return
    if theirs is not None and reduction != "none":
        if np.ndim(theirs) > 1:
            # mxnet 1.9.1's CosineEmbeddingLoss leaves the product unreduced
            theirs = theirs.reshape(len(theirs), -1).mean(axis=1)
        if reduction in ("mean", "sum"):
            theirs = getattr(np, reduction)(theirs, keepdims=True).reshape(np.shape(ours))
    matches = [np.allclose(ours, ref, *case.tol[dtype]) for ref in (exp[1], theirs)
               if ref is not None and np.shape(ref) == np.shape(ours)]
    assert any(matches), "mx.sym gives %s: neither the other modes' answer %s nor " \
        "mxnet's %s" % (ours, exp[1], theirs)


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_every_mode_matches_reference(case, dtype, kernels, ctx, tmp_path):
    run_and_check_modes(case, dtype, ctx, tmp_path)


# one row per loss class: its row with the most options and inputs
REDUCED = one_per_class()


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("case", REDUCED, ids=ids(REDUCED))
def test_reductions_in_every_mode(case, reduction, ctx, tmp_path):
    run_and_check_modes(case, "float32", ctx, tmp_path, reduction=reduction)


# ---------------------------------------------------------------- graphs in user code


class _Net(gluon.HybridBlock):
    """A user model whose hybrid_forward calls a gluonx loss on F (NDArray or Symbol)."""

    def __init__(self, loss, **kwargs):
        super(_Net, self).__init__(**kwargs)
        with self.name_scope():
            self.dense = gluon.nn.Dense(4, in_units=3)
        self.loss = loss

    def hybrid_forward(self, F, x, y):
        return self.loss(self.dense(x), y)


@pytest.mark.parametrize("loss", [lambda: L.SoftmaxCELoss(), lambda: L.L2Loss(),
                                  lambda: L.SigmoidBCELoss(), lambda: L.HuberLoss(rho=0.5)],
                         ids=["SoftmaxCE", "L2", "SigmoidBCE", "Huber"])
def test_loss_inside_a_hybridized_model_trains_and_exports(loss, tmp_path):
    rng = np.random.RandomState(0)
    x = mx.nd.array(rng.standard_normal((8, 3)))
    y = mx.nd.array(rng.randint(0, 4, size=8)) if isinstance(loss(), L.SoftmaxCELoss) else \
        mx.nd.array(rng.uniform(0, 1, size=(8, 4)))
    net = _Net(loss())
    net.initialize(mx.init.Xavier())
    imperative = net(x, y).asnumpy()
    net.hybridize()
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.5})
    np.testing.assert_allclose(net(x, y).asnumpy(), imperative, rtol=1e-5, atol=1e-6)
    first = None
    for _ in range(5):
        with autograd.record():
            out = net(x, y)
        out.backward()
        trainer.step(8)
        first = out.mean().asscalar() if first is None else first
    last = net(x, y).mean().asscalar()
    assert last < first
    path = str(tmp_path / "net")
    net.export(path)
    back = gluon.SymbolBlock.imports(path + "-symbol.json", ["data0", "data1"],
                                     path + "-0000.params")
    np.testing.assert_allclose(back(x, y).asnumpy(), net(x, y).asnumpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("static", [False, True])
def test_hybridized_loss_serves_changing_batch_sizes(static):
    loss = L.SoftmaxCELoss()
    loss.hybridize(static_alloc=static, static_shape=static)
    rng = np.random.RandomState(1)
    for n in (4, 7, 4, 2):
        pred, label = rng.standard_normal((n, 5)), rng.randint(0, 5, size=n)
        out = loss(mx.nd.array(pred), mx.nd.array(label)).asnumpy()
        np.testing.assert_allclose(out, R.ref_softmax_ce(pred, label)[1], rtol=1e-5)


PORTABLE_CHECK = r"""
import json, sys
import numpy as np
# what any mxnet 1.9 process needs on newer numpy/Python (gluonx is NOT imported)
for name, typ in (("bool", bool), ("int", int), ("float", float), ("complex", complex),
                  ("object", object), ("str", str)):
    if name not in np.__dict__:
        setattr(np, name, typ)
try:
    import setuptools  # noqa: F401  (provides distutils on Python >= 3.12)
except ImportError:
    pass
import mxnet as mx
assert "gluonx" not in sys.modules
path, n = sys.argv[1], int(sys.argv[2])
inputs = [mx.nd.array(np.load(path + "-in%d.npy" % i)) for i in range(n)]
blk = mx.gluon.SymbolBlock.imports(path + "-symbol.json", ["data%d" % i for i in range(n)],
                                   path + "-0000.params")
print(json.dumps(blk(*inputs).asnumpy().tolist()))
"""


@pytest.mark.parametrize("case_id", ["SoftmaxCE-sw-weight", "SigmoidBCE-from_sigmoid-pos_weight",
                                     "CTC-lengths",
                                     "CosineEmbedding", "PoissonNLL-full"])
def test_portable_export_loads_without_gluonx(case_id, tmp_path):
    """export(path, portable=True) is a stock-operator graph: a process that never
    imports gluonx loads it and gets the same numbers."""
    from cases import CASE_BY_ID
    case = CASE_BY_ID[case_id]
    inputs = [a for a in as_dtype(case.inputs(), "float32")]
    present = [a for a in inputs if a is not None]
    assert all(a is not None for a in inputs[:len(present)]), "case must pass inputs in order"
    loss = case.factory()()
    loss.hybridize()
    nds = [mx.nd.array(a) for a in present]
    expected_out = loss(*nds).asnumpy()
    path = str(tmp_path / "portable")
    loss.export(path, portable=True)
    for i, a in enumerate(present):
        np.save(path + "-in%d.npy" % i, a)
    env = dict(os.environ)
    env["PYTHONPATH"] = ""
    res = subprocess.run([sys.executable, "-c", PORTABLE_CHECK, path, str(len(present))],
                         capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    np.testing.assert_allclose(np.array(json.loads(res.stdout.strip().splitlines()[-1])),
                               expected_out, rtol=1e-5)


# one row per loss class among those whose samples are the leading axis of every input
BATCHED = [c.id for c in one_per_class(
    [c for c in CASES if not {"batch_axis", "layout", "label_layout"} & set(c.kwargs)])]


@pytest.mark.parametrize("case_id", BATCHED)
def test_exported_graph_serves_other_batch_sizes(case_id, tmp_path):
    """Export after a batch of n, then run the imported graph on a batch of 3."""
    from cases import CASE_BY_ID
    case = CASE_BY_ID[case_id]
    inputs = as_dtype(case.inputs(), "float32")
    n = inputs[0].shape[0]
    loss = case.factory()()
    loss.hybridize()
    present = [a for a in inputs if a is not None]
    # keep the positions of inputs left out (None), so later ones bind to their names
    loss(*[None if a is None else mx.nd.array(a) for a in inputs]).wait_to_read()
    path = str(tmp_path / "batch")
    loss.export(path)
    names = ["data%d" % i for i in range(len(present))]
    params = path + "-0000.params"
    blk = gluon.SymbolBlock.imports(path + "-symbol.json", names,
                                    params if os.path.exists(params) else None)
    small = [a if a is None or a.ndim == 0 or a.shape[0] != n else a[:3] for a in inputs]
    out = blk(*[mx.nd.array(a) for a in small if a is not None]).asnumpy()
    assert_close = __import__("cases").assert_close
    assert_close(out, case.reference(small), case.tol["float32"], case_id)
