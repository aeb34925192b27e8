"""Shared fixtures: contexts, dtypes, the kernels switch, and the mode runner.

The mode runner (:func:`run_mode` / :func:`run_all_modes`) evaluates one loss
on one set of numpy inputs in each of the five ways a user can run it and
returns numpy ``(output, {input position: gradient})``; every value is
synchronised (``asnumpy``) inside, so asynchronous MXNet errors surface in the
test that caused them.
"""
import contextlib
import os
import zlib

import numpy as np
import pytest

import gluonx  # noqa: F401  (imports mxnet through gluonx._compat)
import mxnet as mx
from mxnet import autograd

MODES = ("imperative", "hybrid", "static", "symbol", "export")
#: the same ways of running a loss, with mx.np arrays after ``npx.set_np()``
NUMPY_MODES = ("numpy-imperative", "numpy-hybrid", "numpy-static", "numpy-export")

# The full option grid runs once, on CI's main environment; the others set
# GLUONX_FULL_GRID=0 and run a representative subset (see :func:`grid`).
FULL_GRID = os.environ.get("GLUONX_FULL_GRID", "1") != "0"


#: off the main environment, about one in SUBSET_EVERY of each test function's
#: parametrisations runs (chosen by a hash of the test id, so every option and
#: loss family is sampled, and at least the first of each function)
SUBSET_EVERY = 4


def pytest_collection_modifyitems(config, items):
    """Off the main environment (``GLUONX_FULL_GRID=0``) run a representative
    subset of the suite; the rest is reported as deselected, not as passed."""
    if FULL_GRID:
        return
    keep, drop, seen = [], [], set()
    for item in items:
        function = (item.nodeid.split("::")[0], getattr(item, "originalname", item.name))
        first = function not in seen
        seen.add(function)
        if first or zlib.crc32(item.nodeid.encode()) % SUBSET_EVERY == 0:
            keep.append(item)
        else:
            drop.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def grid(combinations, every=4):
    """All ``combinations`` on the main environment, else every ``every``-th
    one (always the first and the last)."""
    combinations = list(combinations)
    if FULL_GRID or len(combinations) <= 2:
        return combinations
    picked = combinations[::every]
    return picked if combinations[-1] in picked else picked + [combinations[-1]]

# mx.cpu() always, plus every GPU that is present; nothing extra (and nothing
# skipped) on a machine without GPUs.
CONTEXTS = [mx.cpu()] + [mx.gpu(i) for i in range(mx.context.num_gpus())]


@pytest.fixture(params=CONTEXTS, ids=[str(c) for c in CONTEXTS])
def ctx(request):
    return request.param


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.fixture(params=[True, False], ids=["kernels", "nokernels"])
def kernels(request):
    """Run the test with gluonx's fused kernels on, then off; restore after."""
    old = gluonx.config.use_kernels
    gluonx.config.use_kernels = request.param
    try:
        yield request.param
    finally:
        gluonx.config.use_kernels = old


@pytest.fixture
def check_values_off():
    old = gluonx.config.check_values
    gluonx.config.check_values = False
    try:
        yield
    finally:
        gluonx.config.check_values = old


@pytest.fixture(autouse=True)
def _restore_config():
    """No test leaks a changed global switch into the next one."""
    old = (gluonx.config.check_values, gluonx.config.use_kernels)
    yield
    gluonx.config.check_values, gluonx.config.use_kernels = old


# --------------------------------------------------------------------------
# the mode runner
def to_nd(inputs, ctx, dtype=None):
    """numpy arrays (or None) -> NDArrays on ctx; ``dtype`` overrides float inputs."""
    out = []
    for a in inputs:
        if a is None:
            out.append(None)
            continue
        a = np.asarray(a)
        dt = a.dtype
        if dtype is not None and a.dtype.kind == "f":
            dt = np.dtype(dtype)
        out.append(mx.nd.array(a, ctx=ctx, dtype=dt))
    return out


def _trim(args):
    """Drop trailing None arguments (they are the defaults)."""
    args = list(args)
    while args and args[-1] is None:
        args.pop()
    return args


def _head(out_shape, head, dtype, ctx):
    if head is None:
        out = mx.nd.ones(out_shape, ctx=ctx, dtype=dtype)
    else:
        out = mx.nd.array(np.asarray(head).reshape(out_shape), ctx=ctx, dtype=dtype)
    return out.as_np_ndarray() if mx.util.is_np_array() else out


@contextlib.contextmanager
def numpy_mode():
    """``with numpy_mode():`` runs its body as after ``mx.npx.set_np()`` and
    restores legacy mode after, also on error."""
    with mx.util.np_shape(True), mx.util.np_array(True):
        yield


def _output_type_ok(out):
    expected = mx.np.ndarray if mx.util.is_np_array() else mx.nd.NDArray
    assert isinstance(out, expected) and (expected is mx.np.ndarray or
                                          not isinstance(out, mx.np.ndarray)), \
        "the loss returned %s, expected %s" % (type(out).__name__, expected.__name__)
    return out


def _run_block(block, nds, grad, head, ctx):
    for k in grad:
        nds[k].attach_grad()
    if not grad:
        return _output_type_ok(block(*_trim(nds))).asnumpy(), {}
    with autograd.record():
        out = _output_type_ok(block(*_trim(nds)))
    out.backward(_head(out.shape, head, out.dtype, ctx))
    value = out.asnumpy()
    grads = {k: nds[k].grad.asnumpy() for k in grad}
    return value, grads


def run_mode(mode, factory, inputs, grad=(), ctx=None, head=None, tmpdir=None, numpy=False):
    """Evaluate ``factory()`` on ``inputs`` in ``mode``.

    ``inputs``: numpy arrays or None in call order (passed positionally,
    trailing Nones dropped). ``grad``: positions of the inputs to
    differentiate. ``head``: the output gradient (ones when None).
    Returns (output as numpy, {position: gradient as numpy}). A ``numpy-``
    mode (:data:`NUMPY_MODES`) runs the same with mx.np arrays in numpy mode
    and checks that the loss returns an mx.np array.
    """
    ctx = ctx or mx.cpu()
    if mode.startswith("numpy-"):
        with numpy_mode():
            value, grads = run_mode(mode[len("numpy-"):], factory, inputs, grad, ctx, head,
                                    tmpdir, numpy=True)
        return value, grads
    nds = to_nd(inputs, ctx)
    if numpy:
        nds = [None if a is None else a.as_np_ndarray() for a in nds]
    loss = factory()
    if mode == "imperative":
        return _run_block(loss, nds, grad, head, ctx)
    if mode == "hybrid":
        loss.hybridize()
        return _run_block(loss, nds, grad, head, ctx)
    if mode == "static":
        loss.hybridize(static_alloc=True, static_shape=True)
        return _run_block(loss, nds, grad, head, ctx)
    if mode == "symbol":
        return _run_symbol(loss, nds, grad, head, ctx)
    if mode == "export":
        assert tmpdir is not None, "export mode needs a tmpdir"
        loss.hybridize()
        loss(*_trim(nds)).wait_to_read()
        path = os.path.join(str(tmpdir), "exported_%s" % type(loss).__name__)
        loss.export(path)
        present = [k for k, a in enumerate(nds) if a is not None]
        names = ["data%d" % i for i in range(len(present))]
        params = path + "-0000.params"
        imported = mx.gluon.SymbolBlock.imports(
            path + "-symbol.json", names, params if os.path.exists(params) else None, ctx=ctx)
        sub = [nds[k] for k in present]
        value, g = _run_block(imported, sub, [present.index(k) for k in grad], head, ctx)
        return value, {k: g[present.index(k)] for k in grad}
    raise ValueError("unknown mode %r" % mode)


def _run_symbol(loss, nds, grad, head, ctx):
    present = [k for k, a in enumerate(nds) if a is not None]
    names = {k: "data%d" % i for i, k in enumerate(present)}
    # variables declare their dtype, as a user composing typed graphs does;
    # test_dtypes covers undeclared ones (MXNet's rules: nothing is cast)
    syms = [mx.sym.var(names[k], dtype=a.dtype) if a is not None else None
            for k, a in enumerate(nds)]
    out = loss(*_trim(syms))
    if isinstance(out, (list, tuple)):
        out = out[0]
    args = {names[k]: nds[k] for k in present}
    # constants a loss keeps as parameters (e.g. a class weight) bind by name
    params = {p.name: p for p in loss.collect_params().values()}
    for name in out.list_arguments():
        if name not in args:
            assert name in params, "symbol has an unexpected free input %r" % name
            if params[name]._data is None:
                params[name].initialize(ctx=ctx)
            args[name] = params[name].data(ctx)
    args_grad = {names[k]: mx.nd.zeros(nds[k].shape, ctx=ctx, dtype=nds[k].dtype) for k in grad}
    grad_req = {name: ("write" if name in args_grad else "null") for name in out.list_arguments()}
    exe = out.bind(ctx, args=args, args_grad=args_grad, grad_req=grad_req)
    res = exe.forward(is_train=bool(grad))[0]
    if grad:
        exe.backward([_head(res.shape, head, res.dtype, ctx)])
    value = res.asnumpy()
    return value, {k: exe.grad_dict[names[k]].asnumpy() for k in grad}


def run_all_modes(factory, inputs, grad=(), ctx=None, head=None, tmpdir=None, modes=MODES):
    """{mode: (output, grads)} for each mode."""
    return {m: run_mode(m, factory, inputs, grad, ctx, head, tmpdir) for m in modes}
