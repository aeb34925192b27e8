"""Equivalence fuzz: the fused kernels against the stock operators.

For every loss class that declares a kernel, Hypothesis draws a row of the
case table, then random batch and feature sizes, a dtype, options toggled
from the row's, a sample_weight (absent, per sample, or any broadcast
pattern), and a mode; the kernel path and the stock path must give the same
value and gradients. Random invalid inputs must raise LossInputError in every
mode that knows shapes, and leave the block working for the next call.

Fixed seed (``derandomize``) and a bounded number of examples, so CI time
stays flat; no example database is written.
"""
import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import gluonx  # noqa: E402
import gluonx.loss as L  # noqa: E402
import mxnet as mx  # noqa: E402
from gluonx import kernels  # noqa: E402

import cases  # noqa: E402
from cases import CASES, as_dtype, input_names, loss_class, n_required  # noqa: E402
from conftest import run_mode  # noqa: E402

pytestmark = pytest.mark.skipif(kernels._build.compiler() is None,
                                reason="no C++ compiler: nothing to compare the stock path with")

SETTINGS = dict(deadline=None, derandomize=True, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

#: every row of the table whose loss declares a kernel (fused or falling back)
ROWS = [c for c in CASES if kernels.kernel_of(loss_class(c)) is not None]
MODES = ("imperative", "hybrid", "static", "symbol", "export")


@pytest.fixture(scope="module", autouse=True)
def _built():
    kernels.build()


def _inputs(case, rng, batch, features):
    """The row's inputs at another batch/feature size (the generators read
    cases.B and cases.D when called)."""
    old = cases.B, cases.D
    cases.B, cases.D = batch, features
    try:
        return case.make(rng)
    finally:
        cases.B, cases.D = old


def _weight_shape(draw, loss, shape):
    """A sample_weight shape the loss accepts: per sample, or a broadcast pattern."""
    if loss._kind == "sample":
        return draw(st.sampled_from([(shape[0],), (shape[0], 1), (1,)]))
    target = list(loss_shape(loss, shape))
    if loss._batch_axis is not None and draw(st.booleans()):
        return (target[loss._batch_axis],)
    keep = draw(st.lists(st.booleans(), min_size=len(target), max_size=len(target)))
    out = tuple(t if k else 1 for t, k in zip(target, keep))
    drop = draw(st.integers(0, len(out)))  # leading axes may be left out
    return out[drop:] or (1,)


def loss_shape(loss, shape):
    shape = list(shape)
    if loss._kind == "contract":
        shape[loss._contract_axis % len(shape)] = 1
    return tuple(shape)


def _toggled(draw, case):
    """The row's options, each kept or toggled to another valid value."""
    kw = dict(case.kwargs)
    kernel = kernels.kernel_of(loss_class(case))
    for name, allowed in kernel.options.items():
        if isinstance(allowed, tuple) and name not in ("layout", "label_layout") \
                and draw(st.booleans()):
            kw[name] = draw(st.sampled_from(allowed))
    for _, source in kernel.attrs:
        if not isinstance(source, str):
            continue
        value = kw.get(source, _default(case, source))
        if isinstance(value, bool) and draw(st.booleans()):
            kw[source] = not value
        elif isinstance(value, (int, float)) and not isinstance(value, bool) \
                and draw(st.booleans()):
            kw[source] = draw(st.sampled_from([0.1, 0.5, 2.0])) if source != "smoothing_parameter" \
                else draw(st.sampled_from([0.0, 0.1, 0.5]))
    if draw(st.booleans()):
        kw["weight"] = draw(st.sampled_from([None, 0.5, 2.0]))
    return kw


def _broadcast_by_shape(loss, names, inputs):
    """Whether an input aligned to pred differs from it in size: called
    imperatively it broadcasts, in mx.sym (shapes unknown) MXNet's reshape
    rule applies and fails loudly (test_modes checks that)."""
    size = np.size(inputs[0])
    return any(name in loss._like_pred and x is not None and np.size(x) != size
               for name, x in zip(names, inputs))


def _default(case, name):
    import inspect
    return inspect.signature(loss_class(case).__init__).parameters[name].default


def _valid_for(loss_factory, inputs):
    """Whether the stock path accepts these inputs (else the draw is discarded)."""
    gluonx.config.use_kernels = False
    try:
        loss = loss_factory()
        nds = [mx.nd.array(a, dtype=a.dtype) if a is not None else None for a in inputs]
        while nds and nds[-1] is None:
            nds.pop()
        loss(*nds).asnumpy()
        return True
    except (L.LossInputError, TypeError):
        return False
    except mx.base.MXNetError:
        # a toggled option can make an input legal by the checks yet not by
        # MXNet (e.g. a dense label of shape (N,) for pred (N, C): broadcast_like
        # needs equal ranks); the stock path is the definition, so skip the draw
        return False


@settings(max_examples=250, **SETTINGS)
@given(data=st.data())
def test_kernel_and_stock_paths_agree(data, tmp_path_factory):
    draw = data.draw
    gluonx.config.check_values = True
    case = draw(st.sampled_from(ROWS), label="case")
    seed = draw(st.integers(0, 2 ** 16), label="seed")
    batch = draw(st.integers(2, 6), label="batch")
    features = draw(st.integers(1, 7), label="features")
    dtype = draw(st.sampled_from(["float32", "float64", "float16"]), label="dtype")
    mode = draw(st.sampled_from(MODES), label="mode")
    kw = _toggled(draw, case)
    try:  # some rows' generators need a minimum size (a few classes, say)
        inputs = _inputs(case, np.random.RandomState(seed), batch, features)
    except (IndexError, ValueError):
        hypothesis.assume(False)
    names = input_names(case)
    factory = lambda: loss_class(case)(**kw)  # noqa: E731
    try:
        probe = factory()
    except L.LossInputError:
        hypothesis.assume(False)
    # (AR/TAR take every positional array as an RNN state, sample_weight only
    # by keyword; run_mode passes inputs by position)
    if "sample_weight" in names and probe._inputs != ("states",) and \
            draw(st.booleans(), label="new sample_weight"):
        k = names.index("sample_weight")
        inputs = list(inputs) + [None] * (len(names) - len(inputs))
        if draw(st.booleans()):
            inputs[k] = None
        else:
            shape = _weight_shape(draw, probe, np.shape(inputs[0]))
            inputs[k] = np.random.RandomState(seed + 1).uniform(0.5, 2.0, shape)
    inputs = as_dtype(inputs, dtype)
    hypothesis.assume(_valid_for(factory, inputs))
    if mode == "symbol" and "sample_weight" in names and len(inputs) > names.index(
            "sample_weight") and inputs[names.index("sample_weight")] is not None:
        mode = "hybrid"  # mx.sym broadcasts a weight by mxnet's rule (see Case.symbol_differs)
    if mode == "symbol" and _broadcast_by_shape(probe, names, inputs):
        mode = "hybrid"  # mx.sym reshapes a label as mxnet does: it cannot broadcast unknown shapes
    grad = tuple(k for k in case.grad if k < len(inputs) and inputs[k] is not None
                 and np.asarray(inputs[k]).dtype.kind == "f")
    results = []
    for use in (True, False):
        gluonx.config.use_kernels = use
        results.append(run_mode(mode, factory, inputs, grad,
                                tmpdir=tmp_path_factory.mktemp("fuzz")))
    (a, ga), (b, gb) = results
    tol = 2e-2 if dtype == "float16" else 2e-4
    what = "%s %s %s %s %s" % (case.id, kw, mode, dtype, [np.shape(x) for x in inputs])
    cases.assert_close(a, b, (tol, tol / 10), what)
    for k in grad:
        cases.assert_close(ga[k], gb[k], (tol, tol / 10), "%s grad[%d]" % (what, k))


def _corrupt(draw, case, inputs):
    """(inputs, argument name) with one input made invalid: a batch size that
    disagrees (losses of two or more inputs), a sample_weight that does not
    broadcast, or an integer pred."""
    names = input_names(case)
    loss = case.factory()()
    inputs = list(inputs)
    batch_axis = 0 if loss._kind == "sample" or loss._batch_axis is None else loss._batch_axis
    batch = np.shape(inputs[0])[batch_axis]
    # the second input's batch axis: its one axis of the batch's size (a
    # label of shape (length, batch) has it last), if there is exactly one
    matching = [a for a, n in enumerate(np.shape(inputs[1])) if n == batch] \
        if len(loss._inputs) > 1 else []
    ways = ["dtype"] + (["batch"] if len(matching) == 1 else []) \
        + (["weight"] if "sample_weight" in names else [])
    how = draw(st.sampled_from(ways), label="corruption")
    if how == "weight":
        k = names.index("sample_weight")
        inputs += [None] * (k + 1 - len(inputs))
        inputs[k] = np.ones((batch + 3, 2, 2))
        return inputs, "sample_weight"
    if how == "dtype":
        inputs[0] = np.asarray(inputs[0]).astype(np.int32)
        return inputs, names[0]
    k = 1
    shape = list(np.shape(inputs[k]))
    shape[matching[0]] += 1
    inputs[k] = np.resize(np.asarray(inputs[k]), shape)
    return inputs, names[k]


@settings(max_examples=60, **SETTINGS)
@given(data=st.data())
def test_invalid_inputs_raise_and_do_not_poison(data):
    draw = data.draw
    case = draw(st.sampled_from(ROWS), label="case")
    hybrid = draw(st.sampled_from(["imperative", "hybrid", "static"]), label="mode")
    gluonx.config.use_kernels = draw(st.booleans(), label="kernels")
    good = as_dtype(case.inputs(), "float32")
    bad, argument = _corrupt(draw, case, good)
    loss = case.factory()()
    if hybrid != "imperative":
        loss.hybridize(**({"static_alloc": True, "static_shape": True}
                          if hybrid == "static" else {}))

    names = input_names(case)

    def call(inputs):
        nds = [mx.nd.array(a, dtype=np.asarray(a).dtype) if a is not None else None
               for a in inputs]
        while nds and nds[-1] is None:
            nds.pop()
        # optional inputs by keyword (AR/TAR take any positional arrays as states)
        required = len(loss._inputs)
        optional = {name: x for name, x in zip(names[required:], nds[required:])
                    if x is not None}
        return loss(*nds[:required], **optional).asnumpy()

    first = call(good)
    with pytest.raises(L.LossInputError) as err:
        call(bad)
    assert type(loss).__name__ in str(err.value) and repr(argument)[1:-1] in str(err.value)
    np.testing.assert_allclose(call(good), first, rtol=1e-6, atol=1e-7)
    cases.assert_close(first, case.reference(good), case.tol["float32"], case.id)
    mx.nd.waitall()
