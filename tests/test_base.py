"""The Loss base class: names, signatures, weight/batch_axis/sample_weight,
optional inputs, reductions and config round trips, for every loss."""
import contextlib
import inspect
import json

import numpy as np
import pytest

import gluonx.loss as L
import mxnet as mx

import reference as R
from cases import CASES, as_dtype, assert_close, check_imperative, ids, input_names, n_required
from conftest import _trim, numpy_mode, to_nd

# every loss name of mxnet.gluon.loss 1.9.1 (aliases included): gluonx has them all
NAMES = sorted(n for n in dir(mx.gluon.loss) if isinstance(getattr(mx.gluon.loss, n), type)
               and issubclass(getattr(mx.gluon.loss, n), mx.gluon.loss.Loss))
LOSSES = [n for n in NAMES if n != "Loss"]


def _canonical(name):
    return getattr(L, name).__name__


def _same(out, case, inputs, reduction="sample", tol=None):
    assert_close(out.asnumpy(), case.reference(inputs, reduction), tol or case.tol["float32"],
                 case.id)


# ---------------------------------------------------------------- names and signatures
def test_public_names():
    for name in NAMES:
        assert hasattr(L, name), name
        assert name in L.__all__, name
    assert "LossInputError" in L.__all__
    for base in (ValueError, TypeError, IndexError):
        assert issubclass(L.LossInputError, base)
    for name in LOSSES:
        assert issubclass(getattr(L, name), L.Loss)
        assert issubclass(getattr(L, name), mx.gluon.HybridBlock)


@pytest.mark.parametrize("name", LOSSES)
def test_constructor_matches_mxnet(name):
    """mxnet's constructor parameters come first, in order, with the same defaults."""
    ours = [p for p in inspect.signature(getattr(L, name).__init__).parameters.values()
            if p.name != "self" and p.kind != p.VAR_KEYWORD]
    theirs = [p for p in inspect.signature(getattr(mx.gluon.loss, name).__init__)
              .parameters.values() if p.name != "self" and p.kind != p.VAR_KEYWORD]
    assert [(p.name, p.default) for p in ours[:len(theirs)]] == \
        [(p.name, p.default) for p in theirs]
    assert "reduction" in [p.name for p in ours]
    assert dict((p.name, p.default) for p in ours)["reduction"] == "sample"


@pytest.mark.parametrize("name", LOSSES)
def test_call_signature_extends_mxnet(name):
    """mxnet's input names, in order, come first (TripletLoss and SDMLLoss add
    sample_weight; PoissonNLLLoss's epsilon is a call-time option)."""
    cls = getattr(L, name)
    ours = tuple(cls._inputs) + tuple(cls._optional) + tuple(cls._call_options)
    theirs = tuple(inspect.signature(getattr(mx.gluon.loss, name).hybrid_forward)
                   .parameters)[2:]
    assert ours[:len(theirs)] == theirs
    assert len(NAMES) >= 17


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
@pytest.mark.parametrize("hybridize", [False, True], ids=["imperative", "hybrid"])
def test_every_input_by_keyword(case, hybridize):
    """Inputs passed by keyword (mxnet's names) give what positional inputs give."""
    inputs = as_dtype(case.inputs(), "float32")
    names = input_names(case)
    kw = {n: a for n, a in zip(names, to_nd(inputs, mx.cpu())) if a is not None}
    loss = case.factory()()
    if hybridize:
        loss.hybridize()
    _same(loss(**kw), case, inputs)
    # required inputs by position, optional ones by keyword
    nreq = n_required(case)
    args = [kw[n] for n in names[:nreq]]
    _same(loss(*args, **{n: kw[n] for n in names[nreq:] if n in kw}), case, inputs)


def test_positional_constructor_arguments():
    x, y = mx.nd.array(np.arange(6.0).reshape(2, 3)), mx.nd.zeros((2, 3))
    np.testing.assert_allclose(L.L2Loss(0.5, 1)(x, y).asnumpy(),
                               L.L2Loss(weight=0.5, batch_axis=1)(x, y).asnumpy())
    np.testing.assert_allclose(L.HuberLoss(0.5, 2.0, 1)(x, y).asnumpy(),
                               R.ref_huber(x.asnumpy(), y.asnumpy(), rho=0.5, weight=2.0,
                                           batch_axis=1)[1], rtol=1e-6)


def test_default_weights():
    """L2Loss and SDMLLoss default to weight 1, the others to None, as in mxnet."""
    for name in LOSSES:
        default = inspect.signature(getattr(L, name).__init__).parameters["weight"].default
        assert default == inspect.signature(
            getattr(mx.gluon.loss, name).__init__).parameters["weight"].default


# ---------------------------------------------------------------- optional inputs
OPTIONAL = [c for c in CASES if any(a is None for a in c.inputs()[2:]) or len(c.inputs()) > 2
            and c.inputs()[-1] is not None]


def _variants(case):
    """The case's inputs with each present optional input dropped, and as given."""
    inputs = as_dtype(case.inputs(), "float32")
    nreq = n_required(case)
    full = list(inputs)
    bare = full[:nreq] + [None] * (len(full) - nreq)
    return full, bare


SWITCH = [c for c in CASES if any(a is not None for a in c.inputs()[n_required(c):])]


@pytest.mark.parametrize("case", SWITCH, ids=ids(SWITCH))
@pytest.mark.parametrize("flags", [{}, {"static_alloc": True, "static_shape": True}],
                         ids=["hybrid", "static"])
@pytest.mark.parametrize("order", ["array-first", "none-first"])
def test_optional_inputs_switch_between_none_and_array(case, flags, order):
    """After hybridize(), optional inputs may be None on one call and arrays on
    the next, in either order (mxnet raises 'argument structure ... does not match')."""
    full, bare = _variants(case)
    seq = [full, bare, full, bare] if order == "array-first" else [bare, full, bare, full]
    loss = case.factory()()
    loss.hybridize(**flags)
    names = input_names(case)
    for k, inputs in enumerate(seq):
        nds = to_nd(inputs, mx.cpu())
        if k % 2:   # alternate positional Nones and keywords
            out = loss(*[a for a in nds])
        else:
            out = loss(**{n: a for n, a in zip(names, nds) if a is not None})
        _same(out, case, inputs)


@pytest.mark.parametrize("name", LOSSES)
def test_explicit_none_optional_inputs(name):
    """Optional inputs given as explicit None (by position or keyword) are ignored."""
    case = next(c for c in CASES if _canonical(c.cls) == _canonical(name))
    _, bare = _variants(case)
    names = input_names(case)
    nreq = sum(a is not None for a in bare)
    nds = to_nd(bare, mx.cpu())
    loss = case.factory()()
    loss.hybridize()
    _same(loss(*nds[:nreq], *([None] * (len(names) - nreq))), case, bare)
    _same(loss(*nds[:nreq], **{n: None for n in names[nreq:]}), case, bare)


# ---------------------------------------------------------------- reductions
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_reduction(case, reduction, dtype, ctx):
    """'none' is the weighted elementwise loss (contracted axis removed), 'mean'/'sum'
    the mean/sum of the per-sample values with shape (1,): values and gradients."""
    check_imperative(case, dtype, ctx, reduction)


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_reduction_shapes(case):
    inputs = as_dtype(case.inputs(), "float32")
    nds = to_nd(inputs, mx.cpu())
    args = list(nds)
    while args and args[-1] is None:
        args.pop()
    batch = case.reference(inputs).shape
    assert case.factory()()(*args).shape == batch
    assert case.factory(reduction="mean")()(*args).shape == (1,)
    assert case.factory(reduction="sum")()(*args).shape == (1,)
    assert case.factory(reduction="none")()(*args).shape == case.reference(inputs, "none").shape


def test_reduction_none_shapes_spelled_out():
    rng = np.random.RandomState(0)
    pred = mx.nd.array(rng.standard_normal((4, 3, 5)))
    assert L.L1Loss(reduction="none")(pred, pred).shape == (4, 3, 5)
    assert L.KLDivLoss(reduction="none")(pred, pred).shape == (4, 3, 5)
    label = mx.nd.array(rng.randint(0, 5, size=(4, 3)))
    assert L.SoftmaxCELoss(reduction="none")(pred, label).shape == (4, 3)
    assert L.SoftmaxCELoss(axis=1, reduction="none")(pred, mx.nd.zeros((4, 5))).shape == (4, 5)
    x = mx.nd.array(rng.standard_normal((4, 6)))
    assert L.CosineEmbeddingLoss(reduction="none")(x, x, mx.nd.ones((4,))).shape == (4,)
    assert L.TripletLoss(reduction="none")(x, x, x).shape == (4,)
    assert L.SDMLLoss(reduction="none")(x, x).shape == (4,)
    ctc = L.CTCLoss(reduction="none")(mx.nd.zeros((4, 6, 3)), mx.nd.zeros((4, 2)))
    assert ctc.shape == (4,)


# ---------------------------------------------------------------- config
@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_config_round_trip(case):
    loss = case.factory(reduction="mean")()
    cfg = loss.get_config()
    for key, value in case.kwargs.items():
        assert key in cfg, key
        assert np.all(np.asarray(cfg[key]) == np.asarray(value)) or cfg[key] == value, key
    assert cfg["reduction"] == "mean"
    json.loads(json.dumps(cfg))   # a config is plain data
    again = type(loss).from_config(cfg)
    assert type(again) is type(loss)
    assert again.get_config() == cfg
    inputs = as_dtype(case.inputs(), "float32")
    args = to_nd(inputs, mx.cpu())
    while args and args[-1] is None:
        args.pop()
    np.testing.assert_allclose(again(*args).asnumpy(), loss(*args).asnumpy(), rtol=1e-6)


@pytest.mark.parametrize("name", LOSSES)
def test_default_config_has_every_constructor_argument(name):
    cls = getattr(L, name)
    cfg = cls().get_config()
    params = [p.name for p in inspect.signature(cls.__init__).parameters.values()
              if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    assert sorted(cfg) == sorted(params)
    assert cls.from_config(cfg).get_config() == cfg


# ---------------------------------------------------------------- subclassing
class _MyLoss(L.Loss):
    """A user loss written the mxnet way: hybrid_forward on F."""

    def __init__(self, weight=None, batch_axis=0, **kwargs):
        super(_MyLoss, self).__init__(weight, batch_axis, **kwargs)

    def hybrid_forward(self, F, pred, label):
        return F.mean(F.abs(pred - label) ** 3, axis=self._batch_axis, exclude=True)


@pytest.mark.parametrize("hybridize", [False, True])
def test_user_subclass_with_hybrid_forward(hybridize):
    """Code that subclasses mxnet.gluon.loss.Loss with hybrid_forward keeps working."""
    loss = _MyLoss()
    if hybridize:
        loss.hybridize()
    x = mx.nd.array([[1.0, -1.0], [2.0, 0.0]])
    np.testing.assert_allclose(loss(x, mx.nd.zeros((2, 2))).asnumpy(), [1.0, 4.0])


# ---------------------------------------------------------------- option coverage
OPTIONS = {"margin", "rho", "from_sigmoid", "axis", "sparse_label", "from_logits",
           "compute_full", "epsilon", "label_format", "layout", "label_layout",
           "smoothing_parameter", "label_smoothing", "class_weight", "ignore_index",
           "batch_axis", "weight", "alpha", "beta", "gamma", "q", "smooth", "normalize",
           "from_softmax",
           "batch_axis", "weight", "temperature", "hard_weight", "teacher_probabilities",
           "soft_loss", "mix", "average", "alpha", "beta", "time_axis", "aux", "aux_weight",
           "mixup",
           "batch_axis", "weight", "pos_weight", "log_target", "blank_label", "zero_infinity"}


def test_every_option_has_a_case():
    """Each constructor option appears in the case table with a non-default value
    (and test_<family>.py::test_every_option_changes_the_answer shows it matters)."""
    used = set()
    for case in CASES:
        used |= set(case.kwargs)
    assert OPTIONS - used == set()
    # pos_weight is an input, not an option
    assert any(c.cls.startswith("SigmoidB") and len(c.inputs()) > 3 for c in CASES)


# ---------------------------------------------------------------- repeated hybridized calls
def _train_steps(case, mode, steps=3):
    """``steps`` forward+backward calls of one hybridized loss (``mode``: 'hybrid',
    'static', or 'numpy-' + either), each on fresh arrays holding the case's
    inputs, as a training loop makes them. Returns (value, grads) per step."""
    inputs = as_dtype(case.inputs(), "float32")
    numpy = mode.startswith("numpy-")
    loss = case.factory()()
    loss.hybridize(**({"static_alloc": True, "static_shape": True} if "static" in mode else {}))
    results = []
    with numpy_mode() if numpy else contextlib.nullcontext():
        for _ in range(steps):
            nds = _trim(to_nd(inputs, mx.cpu()))
            if numpy:
                nds = [None if a is None else a.as_np_ndarray() for a in nds]
            for k in case.grad:
                nds[k].attach_grad()
            with mx.autograd.record():
                out = loss(*nds)
            assert isinstance(out, mx.np.ndarray if numpy else mx.nd.NDArray), type(out)
            out.backward()
            results.append((out.asnumpy(), {k: nds[k].grad.asnumpy() for k in case.grad}))
    return loss, results


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
@pytest.mark.parametrize("mode", ["hybrid", "static", "numpy-static"])
def test_repeated_hybridized_calls_match_the_first(case, mode, monkeypatch):
    """A hybridized loss called again on arrays like the last call's runs that
    call's cached graph directly, without re-checking them (value checks off,
    as they would make a value-checking loss check every call): every later
    step's value and gradients equal the first (checked) step's, and the value
    is the reference's."""
    import gluonx
    monkeypatch.setattr(gluonx.config, "check_values", False)
    loss, results = _train_steps(case, mode)
    assert loss._direct, "%s: the repeated calls did not run the graph directly" % case.id
    first_value, first_grads = results[0]
    assert_close(first_value, case.reference(as_dtype(case.inputs(), "float32")),
                 case.tol["float32"], case.id)
    for step, (value, grads) in enumerate(results[1:], 2):
        np.testing.assert_array_equal(value, first_value, err_msg="%s step %d" % (case.id, step))
        for k, g in grads.items():
            np.testing.assert_array_equal(g, first_grads[k],
                                          err_msg="%s step %d grad[%d]" % (case.id, step, k))


def _count_dispatches(loss):
    """Count the calls of ``loss`` that run the checked path (bind, checks, plan)."""
    counter = []
    dispatch = loss._dispatch

    def counting(*args, **kwargs):
        counter.append(1)
        return dispatch(*args, **kwargs)
    loss._dispatch = counting
    return counter


@pytest.mark.parametrize("name", ["L2Loss", "SoftmaxCELoss", "SigmoidBCELoss", "HuberLoss"])
def test_a_repeated_call_skips_the_checks_it_passed(name):
    """The second call of the same input structure invokes the CachedOp directly
    (in numpy mode too); value-checking losses still check values every call
    while ``config.check_values`` is on."""
    import gluonx
    case = next(c for c in CASES if c.cls == name)
    loss, _ = _train_steps(case, "static", steps=2)
    counter = _count_dispatches(loss)
    inputs = [a for a in _trim(to_nd(as_dtype(case.inputs(), "float32"), mx.cpu()))]
    loss(*inputs).wait_to_read()
    checks = gluonx.config.check_values and type(loss)._checks_values
    assert len(counter) == (1 if checks else 0), name
    old = gluonx.config.check_values
    gluonx.config.check_values = False
    try:
        loss(*inputs).wait_to_read()       # the first unchecked call of this structure
        loss(*inputs).wait_to_read()
    finally:
        gluonx.config.check_values = old
    assert len(counter) == (2 if checks else 0), name


def test_a_repeated_call_still_checks_what_changed():
    """A different shape, dtype, context or kind of array, keyword arguments, a
    call-time option or a changed config takes the checked path again."""
    import gluonx
    loss = L.SoftmaxCELoss()
    loss.hybridize(static_alloc=True, static_shape=True)
    pred, label = mx.nd.ones((4, 5)), mx.nd.array([0, 1, 2, 3])
    for _ in range(2):
        loss(pred, label).wait_to_read()
    counter = _count_dispatches(loss)
    old = gluonx.config.check_values
    gluonx.config.check_values = False
    try:
        loss(pred, label).wait_to_read()
        assert len(counter) == 1              # the config is part of the key
        loss(pred, label).wait_to_read()
        assert len(counter) == 1
        with pytest.raises(L.LossInputError, match="SoftmaxCrossEntropyLoss(?s:.*)label"):
            loss(pred, mx.nd.array([0, 1, 2]))
        with pytest.raises(L.LossInputError, match="label(?s:.*)context"):
            loss(pred, mx.nd.array([0, 1, 2, 3], ctx=mx.cpu(1)))
        out = loss(pred.astype("float64"), label)
        assert out.dtype == np.float64
        loss(pred, label=label).wait_to_read()
        assert len(counter) == 5
    finally:
        gluonx.config.check_values = old
    # value checks still run on a repeated call while check_values is on
    with pytest.raises(L.LossInputError, match="label"):
        loss(pred, mx.nd.array([0, 1, 2, 7])).wait_to_read()
    loss(pred, label).wait_to_read()
    use = gluonx.config.use_kernels
    gluonx.config.use_kernels = False
    try:
        loss(pred, label).wait_to_read()
        assert loss._last_plan.use_kernels is False
    finally:
        gluonx.config.use_kernels = use


def test_hooks_registered_after_repeated_calls_run():
    loss = L.L2Loss()
    loss.hybridize(static_alloc=True)
    x, y = mx.nd.ones((2, 3)), mx.nd.zeros((2, 3))
    for _ in range(3):
        loss(x, y).wait_to_read()
    seen = []
    loss.register_forward_pre_hook(lambda block, args: seen.append("pre"))
    loss.register_forward_hook(lambda block, args, out: seen.append("post"))
    np.testing.assert_allclose(loss(x, y).asnumpy(), [0.5, 0.5])
    assert seen == ["pre", "post"]


# ---------------------------------------------------------------- contexts
@pytest.mark.parametrize("hybridize", [False, True])
def test_runs_on_the_inputs_context(hybridize):
    """A loss runs where its inputs are (here a second CPU context)."""
    ctx = mx.cpu(1)
    loss = L.SoftmaxCELoss()
    if hybridize:
        loss.hybridize()
    pred = mx.nd.array(np.random.RandomState(0).standard_normal((3, 4)), ctx=ctx)
    out = loss(pred, mx.nd.array([0, 3, 1], ctx=ctx), mx.nd.ones((3, 1), ctx=ctx))
    assert out.context == ctx
    np.testing.assert_allclose(out.asnumpy(), R.ref_softmax_ce(pred.asnumpy(), [0, 3, 1])[1],
                               rtol=1e-5)


def test_inputs_on_different_contexts_are_an_error():
    with pytest.raises(L.LossInputError, match="L2Loss(?s:.*)label"):
        L.L2Loss()(mx.nd.ones((2, 3), ctx=mx.cpu(0)), mx.nd.ones((2, 3), ctx=mx.cpu(1)))


def _switch(loss_module):
    loss = loss_module.L2Loss()
    loss.hybridize()
    x, y = mx.nd.ones((2, 3)), mx.nd.zeros((2, 3))
    a = loss(x, y).asnumpy()
    b = loss(x, y, mx.nd.ones((2, 1)) * 2).asnumpy()
    np.testing.assert_allclose(b, 2 * a)


def test_switching_optional_inputs_works_here_and_fails_on_mxnet_1_9_1():
    _switch(L)
    with pytest.raises(Exception):
        _switch(mx.gluon.loss)
