"""Fused C++ loss kernels: declared next to each loss, built on first use, cached.

A loss's math on ``F`` (its ``_loss``) is its definition. A loss may add one
:class:`Kernel` declaration beside it, naming the compiled operator that
computes the same per-sample loss in one pass (and its gradient in one more)::

    class HuberLoss(Loss):
        _kernel = Kernel("gluonx_huber_loss", attrs=("rho",))

The base class (``gluonx.loss._base``) asks :func:`prepare` once per call
signature whether the kernel fits the call as the base class aligned it
(shapes, dtypes, the broadcast kind of each weight; that choice is part of
the cached-graph key), and :func:`run` on every call, which reads the
instance's options as they are *now*. Any input or option that the
declaration does not list sends the call to the stock operators, so a new
option can never be silently ignored.

The operators are compiled from the ``*.cc`` files next to this module against
the installed mxnet's ``lib_api.h`` on first use (or ``python -m gluonx.kernels
build``), cached per mxnet version, compiler, machine and source hash (see
:mod:`gluonx.kernels._build`), and loaded with MXNet's extension-library
mechanism, so they work imperatively, under autograd, hybridized and in
exported graphs. :func:`load` loads an already-built library without compiling
and without starting any process, which is what ``import gluonx`` does so that
exported graphs using these operators import in any process that imported
gluonx. A failed build is remembered (see :func:`available`).

Switch off with ``gluonx.config.use_kernels = False`` (or ``GLUONX_KERNELS=0``).
"""
import collections
import ctypes
import inspect
import os
import sys
import threading
import warnings

import numpy as np

from .. import _compat  # noqa: F401  (mxnet import shim)
from .. import config
import mxnet as mx

from . import _build
from ._build import BuildError

__all__ = ["Kernel", "ANY", "prepare", "run", "kernel_of", "load", "build", "available",
           "status", "calls", "reset_calls", "BuildError", "OP_PREFIX"]

OP_PREFIX = "gluonx_"

_lock = threading.RLock()
_state = {"path": None, "error": None, "build_tried": False}
_warned = set()
_calls = collections.Counter()


# --------------------------------------------------------- declarations ------

class _Any(object):
    def __repr__(self):
        return "ANY"


#: in :class:`Kernel` ``options``: the kernel handles every value of the option
ANY = _Any()

#: constructor arguments the base class handles around the kernel
_BASE_OPTIONS = frozenset(("weight", "batch_axis", "reduction", "prefix", "params"))
#: methods that define a loss's math: a subclass overriding one of them does
#: not run a kernel declared above it. ``forward`` and ``hybrid_forward`` are
#: not among them: an override reaches the loss only through ``super()``, with
#: the parent's math on the tensors it hands over (Dive into Deep Learning's
#: masked softmax CE computes a weight and calls super().forward)
_MATH_METHODS = ("_loss", "_compute", "_per_sample")
_MISSING = object()


class Kernel(object):
    """The fused operator of one loss, declared beside its ``_loss``.

    Parameters
    ----------
    op : str or callable(loss) -> str
        The operator's name (``gluonx_...``), or a function of the loss
        instance choosing it at call time.
    attrs : tuple of str, or dict
        The operator's attributes. A name in a tuple is a constructor option
        passed under its own name; a dict maps an attribute name to an option
        name, or to a function of the loss instance. Values are read from the
        instance at call time (option ``x`` lives in ``self._x``, else
        ``self.x``, else the recorded constructor argument); a call-time
        option of the same name (``_call_options``) overrides it. Booleans
        are passed as ``"1"``/``"0"``, numbers as their ``repr``.
    options : dict
        The other constructor options the kernel handles: name -> the value
        it supports, a tuple of values, or :data:`ANY`. Every constructor
        option of the loss (but ``weight``, ``batch_axis``, ``reduction``)
        must appear in ``attrs`` or ``options``; otherwise the loss never
        runs the kernel. A call where an option has an unsupported value
        runs the stock operators.
    inputs : tuple of str, optional
        The tensor inputs, in the operator's order; default the loss's
        ``_inputs`` then ``_optional``. Each optional input is passed only
        when present, with the attribute ``has_<name>`` saying whether it is.
    weights : dict, optional
        Weight inputs -> the shape they broadcast against: ``'loss'`` (the
        elementwise loss, default for ``sample_weight``) or ``'pred'``.
        A weight whose broadcast pattern is not scalar, per row, per column
        or full runs the stock operators.
    any_dtype : tuple of str
        Inputs the operator reads in any dtype (class indices, lengths);
        every other input must have pred's (compute) dtype.
    when : callable(loss, call) -> bool, optional
        Further conditions, checked on every call: ``call.shape``,
        ``call.ndim``, ``call.shapes``, ``call.dtypes`` (as the kernel gets
        them), ``call.last_axis(axis)``.
    own_batch_axis : bool
        The operator handles the loss's batch axis itself (else the batch
        axis must be 0).
    before : callable(loss, F, inputs) -> dict, optional
        Stock operators that run ahead of the operator, for a kernel that
        is only the tail of the loss's graph (CircleLoss: a BLAS product
        forms the embeddings' Gram matrix, the operator does the rest). It gets
        the inputs by name, as the operator would (sample_weight aligned),
        and returns them with some replaced, say pred by the similarities;
        autograd differentiates those operators as usual, so the operator's
        backward only gives the gradients of what it receives. It runs once
        every check above has passed (a call it sees runs the kernel), and
        the other conditions (``when``, dtypes, weights) still describe the
        inputs as the loss got them. A stock operator of its own also runs
        its backward only when its input needs a gradient, which the fused
        operator cannot tell (WGANGPLoss: the sum of squares of grad_interp).
    whole : bool
        The operator, with ``before`` and ``after``, also serves
        ``batch_axis=None`` (one value for the whole batch).
    after : callable(loss, F, per_sample, call, inputs) -> per_sample, optional
        Stock operators on the operator's per-sample output, given the inputs
        as ``before`` got them (a PyTorch wrapper's ``'sum'`` of an elementwise
        loss: the per-sample means the operator computes, times the elements
        per sample). A count that depends on the batch size must be read from
        the inputs (``F.size_array``), not from ``call``: an exported graph
        serves other batch sizes.
    """

    def __init__(self, op, attrs=(), options=None, inputs=None, weights=None, any_dtype=(),
                 when=None, own_batch_axis=False, before=None, after=None, whole=False):
        self.op = op
        if not isinstance(attrs, dict):
            attrs = {name: name for name in attrs}
        self.attrs = tuple(attrs.items())
        self.options = dict(options or {})
        self.inputs = None if inputs is None else tuple(inputs)
        self.weights = {"sample_weight": "loss"}
        self.weights.update(weights or {})
        self.any_dtype = frozenset(any_dtype)
        self.when = when
        self.own_batch_axis = bool(own_batch_axis)
        self.before = before
        self.after = after
        self.whole = bool(whole)
        self.covers = frozenset(self.options) | frozenset(
            source for _, source in self.attrs if isinstance(source, str))

    def __repr__(self):
        return "Kernel(%r)" % (self.op,)


def _constructor_options(cls):
    try:
        signature = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return None
    return {name for name, p in signature.parameters.items() if name != "self" and p.kind not in
            (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)} - _BASE_OPTIONS


def kernel_of(cls):
    """The :class:`Kernel` that instances of loss class ``cls`` may run, or None.

    Decided once per class (``Loss.__init_subclass__`` stores it): a class
    inherits its parent's kernel unless it overrides the math (``_loss``,
    ``_compute``, ``_per_sample``) below the declaration, or takes a
    constructor option the declaration does not list. An override of
    ``forward`` or ``hybrid_forward`` keeps it: what it computes itself runs
    as written, and what it hands to ``super()`` is the parent's math. A
    class may declare its own kernel, or ``_kernel = None`` for none.
    """
    kernel = getattr(cls, "_kernel", None)
    if not isinstance(kernel, Kernel):
        return None
    for klass in cls.__mro__:
        if "_kernel" in klass.__dict__:
            break
        if any(name in klass.__dict__ for name in _MATH_METHODS):
            return None
    options = _constructor_options(cls)
    if options is None or not options <= kernel.covers:
        return None
    return kernel


def _kernel_for(loss):
    cls = type(loss)
    if "_fused_kernel" not in cls.__dict__:  # a class made without __init_subclass__
        cls._fused_kernel = kernel_of(cls)
    return cls._fused_kernel


def _option(loss, name, call_options):
    """The current value of option ``name`` of ``loss``."""
    for key, value in call_options:
        if key == name:
            return value
    value = getattr(loss, "_" + name, _MISSING)
    if value is _MISSING:
        value = getattr(loss, name, _MISSING)
    if value is _MISSING:
        value = loss._config.get(name)
    return value


def _attr_text(value):
    """An operator attribute: '1'/'0' for booleans, repr of a number; None otherwise."""
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return repr(float(value))
    return None


def _allowed(allowed, value):
    if allowed is ANY:
        return True
    if isinstance(allowed, tuple):
        return any(_same(value, a) for a in allowed)
    return _same(value, allowed)


def _same(value, allowed):
    if allowed is None or value is None:
        return value is allowed
    if isinstance(allowed, str) or isinstance(value, str):
        return isinstance(value, str) and value == allowed
    try:
        return bool(value == allowed)
    except Exception:  # pylint: disable=broad-except  (an array, say)
        return False


# ---------------------------------------------------------- per signature ----

_FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
_BCAST_KINDS = ("scalar", "row", "col", "full")


def _bcast_kind(target, w_shape):
    """How `w` broadcasts against `target` viewed as (batch, rest): 'scalar', 'row'
    (one value per sample), 'col' (one per position, shared by all samples),
    'full', or None for any other pattern (or one that changes the shape).
    Mirrors classify_bcast in common.h."""
    target, w_shape = tuple(target), tuple(w_shape)
    if len(w_shape) > len(target) or not target:
        return None
    aligned = (1,) * (len(target) - len(w_shape)) + w_shape
    if any(w not in (1, p) for w, p in zip(aligned, target)):
        return None
    row = aligned[0] == target[0] and target[0] != 1
    rest = aligned[1:]
    if all(d == 1 for d in rest):
        return "row" if row else "scalar"
    if rest == target[1:]:
        return "full" if row or target[0] == 1 else "col"
    return None


class Call(object):
    """A call as the kernel receives it (from the base class's plan): the
    shapes and dtypes of the inputs after alignment and casting, and the
    broadcast kind of each weight. ``key`` enters the cached-graph key."""

    __slots__ = ("kernel", "shapes", "dtypes", "kinds", "shape", "ndim", "key")

    def __init__(self, kernel, shapes, dtypes, kinds, first):
        self.kernel = kernel
        self.shapes, self.dtypes, self.kinds = shapes, dtypes, kinds
        self.shape = shapes[first]
        self.ndim = len(self.shape)
        self.key = tuple(sorted(kinds.items()))

    def last_axis(self, axis):
        """``axis`` is the last axis of the first input."""
        return self.ndim >= 1 and int(axis) % self.ndim == self.ndim - 1


def _aligned_shapes(loss, plan):
    """Shapes and dtypes of the inputs as ``Loss._compute`` hands them over."""
    compute_dtype = loss._compute_dtype(plan)
    compute_dtype = None if compute_dtype is None else np.dtype(compute_dtype)
    first = plan.names[0]
    pred_shape = tuple(plan.shapes[first])
    shapes, dtypes = {}, {}
    for name in plan.names:
        shape = tuple(int(d) for d in plan.shapes[name])
        dtype = np.dtype(plan.dtypes[name])
        if compute_dtype is not None and dtype in _FLOAT_DTYPES and loss._casts(name):
            dtype = compute_dtype
        mode, arg = plan.align.get(name, ("same", None))
        if name in loss._like_pred and mode in ("reshape", "broadcast"):
            shape = pred_shape
        elif mode == "expand":   # one value per row of the last axis (GaussianNLLLoss's var)
            shape = shape + (1,)
        if name == "sample_weight":
            if mode == "flat":
                shape = (int(np.prod(shape)),)
            elif mode == "reshape":
                batch = int(np.prod(shape))
                shape = tuple(batch if d == -1 else int(d) for d in arg)
        shapes[name], dtypes[name] = shape, dtype
    return shapes, dtypes


def prepare(loss, plan):
    """The :class:`Call` of ``plan`` when ``loss``'s kernel fits it, else None.

    Called by the base class once per call signature, after its checks;
    shape-level only (option values are read by :func:`run` on every call).
    """
    kernel = _kernel_for(loss)
    if kernel is None or not plan.known or (loss._batch_axis is None and not kernel.whole):
        return None
    ctx = plan.ctx
    if ctx is not None and getattr(ctx, "device_type", "cpu") != "cpu":
        _warn_once("gpu", "gluonx: fused loss kernels are CPU-only; on %s the stock "
                   "operators are used (MXNet fuses pointwise operators on GPU)." % ctx)
        return None
    names = kernel.inputs if kernel.inputs is not None else loss._inputs + loss._optional
    tensors = set(plan.names) | set(getattr(loss, "_reg_params", {}))
    if not tensors <= set(names):
        return None  # an input (or constant) the operator does not take
    shapes, dtypes = _aligned_shapes(loss, plan)
    first = plan.names[0]
    shape, dtype = shapes[first], dtypes[first]
    if not shape or 0 in shape or dtype not in _FLOAT_DTYPES:
        return None
    if not kernel.own_batch_axis and loss._batch_axis is not None and \
            loss._batch_axis % len(shape) != 0:
        return None
    for name in plan.names:
        if name not in kernel.any_dtype and dtypes[name] != dtype:
            return None
    kinds = {}
    for name, against in kernel.weights.items():
        if name in shapes:
            target = loss._loss_shape(plan) if against == "loss" else shape
            kind = _bcast_kind(target, shapes[name])
            if kind is None:
                return None
            kinds[name] = kind
    if not available():
        return None
    return Call(kernel, shapes, dtypes, kinds, first)


# --------------------------------------------------------------- per call ----

def run(loss, F, inputs, plan):
    """The per-sample loss (shape (batch,)) from the fused operator, or None
    for the stock path.

    ``inputs`` maps names to the inputs as ``Loss._compute`` aligned and cast
    them (sample_weight aligned), plus constants and call-time options;
    ``plan.fused`` is the :class:`Call` from :func:`prepare`. The result is the
    mean (KLDivLoss: sum) over non-batch axes of the weighted elementwise
    loss, before the global ``weight``.
    """
    call = plan.fused
    kernel = call.kernel
    options = plan.options
    for name, allowed in kernel.options.items():
        if not _allowed(allowed, _option(loss, name, options)):
            return None
    for name, _ in options:
        if name not in kernel.covers:
            return None  # a call-time option the operator does not take
    if kernel.when is not None and not kernel.when(loss, call):
        return None
    attrs = {}
    for attr, source in kernel.attrs:
        value = source(loss) if callable(source) else _option(loss, source, options)
        text = _attr_text(value)
        if text is None:
            return None  # e.g. an NDArray epsilon
        attrs[attr] = text
    given = inputs
    if kernel.before is not None:
        inputs = kernel.before(loss, F, inputs)
    args = []
    required = loss._inputs if kernel.inputs is None else ()
    for name in (kernel.inputs if kernel.inputs is not None else loss._inputs + loss._optional):
        value = inputs.get(name)
        if name not in required:
            attrs["has_" + name] = "0" if value is None else "1"
        if value is not None:
            args.append(value)
    op = kernel.op(loss) if callable(kernel.op) else kernel.op
    _calls[op] += 1
    out = getattr(F, op)(*args, **attrs)
    return out if kernel.after is None else kernel.after(loss, F, out, call, given)


def calls():
    """How many times each fused operator was emitted since :func:`reset_calls`:
    once per imperative call, once per graph a hybridized loss builds."""
    return dict(_calls)


def reset_calls():
    _calls.clear()


# ------------------------------------------------------------- loading ------

def _warn_once(key, message):
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def _register_library(path):
    """Load the library into MXNet and expose its operators as mx.nd.* / mx.sym.*.

    mx.library.load would regenerate every operator wrapper of mxnet (~0.3 s);
    only ours are new, so only ours are created. Falls back to mx.library.load
    if mxnet's internals differ from 1.9's.
    """
    try:
        from mxnet.base import _LIB, check_call, c_str, OpHandle, py_str, mx_uint
        from mxnet.ndarray.register import _make_ndarray_function
        from mxnet.symbol.register import _make_symbol_function
    except ImportError:
        mx.library.load(path, verbose=False)
        return
    check_call(_LIB.MXLoadLib(c_str(path), mx_uint(0)))
    size = ctypes.c_uint()
    plist = ctypes.POINTER(ctypes.c_char_p)()
    check_call(_LIB.MXListAllOpNames(ctypes.byref(size), ctypes.byref(plist)))
    names = [py_str(plist[i]) for i in range(size.value)]
    for name in names:
        if not name.startswith(OP_PREFIX):
            continue
        for make, package in ((_make_ndarray_function, "mxnet.ndarray"),
                              (_make_symbol_function, "mxnet.symbol")):
            handle = OpHandle()
            check_call(_LIB.NNGetOpHandle(c_str(name), ctypes.byref(handle)))
            function = make(handle, name, name)
            function.__module__ = package
            for module in (sys.modules[package + ".op"], sys.modules[package]):
                setattr(module, name, function)


def load():
    """Load the cached kernel library if it has been built; never compiles and
    starts no process. Returns True when the kernel operators are available in
    this process. Cheap: a dictionary look-up once loaded, a file check otherwise.
    """
    with _lock:
        if _state["path"] is not None:
            return True
        try:
            path = _build.library_path()
        except (BuildError, OSError):
            return False
        if not os.path.isfile(path):
            return False
        try:
            _register_library(path)
        except Exception as err:  # pylint: disable=broad-except
            _state["error"] = "loading %s failed: %s" % (path, err)
            return False
        _state["path"] = path
        return True


def build(force=False, verbose=False):
    """Compile (unless cached, or `force`) and load the kernel library; return its path.

    Also clears the memory of an earlier failed build (in this process and in
    the cache directory); a failure is remembered again.
    """
    with _lock:
        _state["build_tried"] = True
        try:
            path = _build.build(force=force, verbose=verbose)
        except BuildError as err:
            _state["error"] = str(err)
            raise
        if _state["path"] is None:
            _register_library(path)
            _state["path"] = path
        _state["error"] = None
        return path


def available():
    """True when the kernels can be used in this process, building them on first use.

    A failed build is not retried: not in this process, and not in later ones
    (a marker in the cache directory, per cache key) until the sources, the
    compiler or mxnet change, or ``python -m gluonx.kernels build`` runs. It
    warns once per process.
    """
    if _state["path"] is not None:
        return True
    with _lock:
        if _state["build_tried"]:
            return False
        _state["build_tried"] = True
        if load():
            return True
        failed = _build.failure()
        if failed is not None:
            _state["error"] = "an earlier build failed (%s): %s" % (
                _build.failure_marker(), failed)
            _warn_unavailable(_state["error"])
            return False
        try:
            build()
        except Exception as err:  # pylint: disable=broad-except
            _state["error"] = str(err)
            _warn_unavailable(err)
            return False
        return True


def _warn_unavailable(reason):
    _warn_once("build", "gluonx: fused loss kernels unavailable, using stock MXNet "
               "operators instead (same results, slower). Reason: %s. Set "
               "gluonx.config.use_kernels = False to silence this, or run "
               "`python -m gluonx.kernels build` to retry." % reason)


def status():
    """A dict describing the kernel library: whether it is in use and, if not,
    why (``reason``), its path, the compiler and the cache directory."""
    try:
        expected = _build.library_path()
    except (BuildError, OSError) as err:
        expected = "unavailable (%s)" % err
    if not config.use_kernels:
        reason = "switched off (gluonx.config.use_kernels = False or GLUONX_KERNELS=0)"
    elif _state["path"] is not None:
        reason = None
    elif _state["error"] is not None:
        reason = _state["error"]
    elif _build.failure() is not None:
        reason = "an earlier build failed (%s): %s" % (_build.failure_marker(),
                                                         _build.failure())
    elif _build.compiler() is None:
        reason = "no C++ compiler found (set $CXX, or install g++)"
    else:
        reason = "not built yet (it builds on the first call that can use it, or run " \
                 "`python -m gluonx.kernels build`)"
    return {"enabled": reason is None, "reason": reason, "loaded": _state["path"],
            "error": _state["error"], "library": expected, "compiler": _build.compiler(),
            "cache_dir": _build.cache_root()}
