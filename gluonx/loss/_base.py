"""The ``Loss`` base class: everything the losses share.

A loss subclass declares its inputs and writes its math once, on ``F``
(``mx.nd`` or ``mx.sym``), in :meth:`Loss._loss`. This module owns the rest:

* binding positional/keyword call arguments, with optional inputs that may be
  ``None`` on one call and an array on the next, also after ``hybridize()``
  (one cached graph per input structure);
* input checks (shapes, dtypes, contexts, and values unless
  ``gluonx.config.check_values`` is off) raising :class:`LossInputError`;
* aligning labels to ``pred`` and ``sample_weight`` to the loss, float16
  inputs computed in float32;
* ``sample_weight``, the global ``weight``, the mean over non-batch axes and
  the ``reduction`` choice;
* the per-call choice of a fused kernel (``gluonx.kernels``), which never
  changes the semantics defined by ``_loss``;
* ``export`` (optionally as a portable, stock-operator graph) and
  ``get_config``/``from_config``.
"""
import copy
import ctypes
import functools
import inspect

import numpy as np
import mxnet as mx
from mxnet.gluon import HybridBlock
from mxnet.gluon import loss as mx_loss

from .. import config, kernels

__all__ = ["Loss", "LossInputError", "_apply_weighting", "_reshape_like"]

REDUCTIONS = ("sample", "mean", "sum", "none")
FLOAT_DTYPES = (np.float16, np.float32, np.float64)


class LossInputError(ValueError, TypeError, IndexError):
    """Bad input to a loss: a shape, dtype, context or value that the loss
    cannot use. Subclasses ``ValueError`` (and ``TypeError``/``IndexError``,
    so code written against other libraries' conventions catches it too)."""


def _fail(loss, argument, message):
    name = loss if isinstance(loss, str) else type(loss).__name__
    raise LossInputError("%s: argument '%s' %s" % (name, argument, message))


def _broadcasts_onto(shape, target):
    """True when ``shape`` broadcasts to ``target`` without enlarging it."""
    if len(shape) > len(target):
        return False
    return all(s in (1, t) for s, t in zip(shape[::-1], target[::-1]))


def _squeezed(shape):
    return tuple(s for s in shape if s != 1)


def _enlarged_axes(shape, target):
    """The axes along which broadcasting ``shape`` against ``target`` makes
    the result larger than ``target`` (None when they do not broadcast)."""
    if len(shape) > len(target):
        return None
    padded = (1,) * (len(target) - len(shape)) + tuple(shape)
    if any(s not in (1, t) and t != 1 for s, t in zip(padded, target)):
        return None
    return tuple(i for i, (s, t) in enumerate(zip(padded, target)) if t == 1 and s != 1)


#: numpy-mode array and symbol types (``mx.npx.set_np()``)
_NP_TYPES = (mx.np.ndarray, mx.sym.np._Symbol)


def _apply_weighting(F, loss, weight=None, sample_weight=None):
    """MXNet 1.9.1's helper of the same name, for code that imports it from the
    loss module (GluonCV does): ``loss * sample_weight`` with broadcasting
    (``sample_weight`` may be None), then times the scalar ``weight`` (None
    means 1). Works on ``mx.nd``/``mx.sym`` and on numpy-mode arrays."""
    if sample_weight is not None:
        numpy_mode = isinstance(loss, _NP_TYPES) or isinstance(sample_weight, _NP_TYPES)
        loss = loss * sample_weight if numpy_mode else F.broadcast_mul(loss, sample_weight)
    if weight is not None:
        if not isinstance(weight, (int, float, np.number)):
            raise LossInputError("_apply_weighting: argument 'weight' must be a number, "
                                 "got %r" % (weight,))
        loss = loss * weight
    return loss


def _reshape_like(F, x, y):
    """MXNet 1.9.1's helper of the same name: ``x`` reshaped to ``y``'s shape
    (``x.reshape(y.shape)`` for arrays, ``reshape_like`` for symbols)."""
    if isinstance(x, mx.nd.NDArray):
        return x.reshape(y.shape)
    if isinstance(x, mx.sym.np._Symbol):
        return F.npx.reshape_like(x, y)
    return F.reshape_like(x, y)


def _ratio(F, num, den):
    """num / den, and 0 where den is 0."""
    nonzero = den != 0
    return F.where(nonzero, num / F.where(nonzero, den, F.ones_like(den)), F.zeros_like(num))


def _array_reader():
    """A function returning, for a tuple of arrays all legacy NDArrays or all
    ``mx.np`` arrays (or None, after the first), a hashable record of what a
    cached graph depends on: the kind, and each array's shape, dtype and
    device; None for anything else.
    It reads them with one C call each, without the NDArray properties'
    per-read ctypes set-up, which is a large share of a small loss's call."""
    lib = mx.base._LIB
    from mxnet.ndarray.ndarray import _int64_enabled
    int64 = _int64_enabled()
    get_shape = lib.MXNDArrayGetShapeEx64 if int64 else lib.MXNDArrayGetShapeEx
    dim_pointer = ctypes.POINTER(ctypes.c_int64 if int64 else ctypes.c_int)
    get_dtype, get_context = lib.MXNDArrayGetDType, lib.MXNDArrayGetContext
    c_int, byref = ctypes.c_int, ctypes.byref
    legacy, numpy_array = mx.nd.NDArray, mx.np.ndarray

    def read(arrays):
        kind = type(arrays[0]) if arrays else None
        if kind is not legacy and kind is not numpy_array:
            return None
        ndim, dims, dtype, dev_type, dev_id = c_int(), dim_pointer(), c_int(), c_int(), c_int()
        refs = byref(ndim), byref(dims), byref(dtype), byref(dev_type), byref(dev_id)
        record = [kind is numpy_array]
        for array in arrays:
            if array is None:
                record.append(None)
                continue
            if type(array) is not kind:
                return None
            handle = array.handle
            if get_shape(handle, refs[0], refs[1]) or get_dtype(handle, refs[2]) or \
                    get_context(handle, refs[3], refs[4]):
                return None
            record.append((tuple(dims[:ndim.value]), dtype.value, dev_type.value, dev_id.value))
        return tuple(record)
    return read


_read_arrays = _array_reader()


def _invoke(cached_op, order, arrays, ctx):
    """Call a cached graph on ``arrays``: ``order`` lists, per graph input, the
    position of its array or the Parameter it reads (None: the arrays in order)."""
    if order is None:
        return cached_op(*arrays)
    return cached_op(*[arrays[k] if k.__class__ is int else k.data(ctx) for k in order])


class Plan(object):
    """What one call looks like: which inputs are present, their shapes and
    dtypes, the context, and how each input is aligned inside the graph.

    A hybridized loss keeps one cached graph per ``Plan.key`` (shapes are not
    part of the key, only ranks, so one graph serves every batch size).
    ``Plan.symbolic()`` is the plan of pure ``mx.sym`` composition, where
    nothing is known and alignment follows mxnet's rules.
    """

    def __init__(self, names, shapes=None, dtypes=None, ctx=None):
        self.names = tuple(names)
        self.shapes = shapes
        self.dtypes = dtypes
        self.ctx = ctx
        self.align = {}          # input name -> (mode, argument) for the graph
        self.use_kernels = False
        self.fused = None        # the kernel's view of the call (gluonx.kernels.Call)
        self.options = ()        # call-time static options, (name, value)
        self.graph = None        # the cached graph of a hybridized loss
        self.invoke = None       # its CachedOp, called directly once built ...
        self.order = None        # ... on these inputs (see _invoke)

    @classmethod
    def symbolic(cls, names, symbols):
        """The plan of mx.sym composition: shapes unknown; a dtype known where
        the input declares one (``mx.sym.var(..., dtype=...)``). Without a
        declared dtype for the first input, nothing is cast (MXNet's rules)."""
        dtypes = {}
        for name, sym in zip(names, symbols):
            try:
                dtype = sym.infer_type_partial()[1][0]
            except Exception:  # pylint: disable=broad-except
                dtype = None
            if dtype is not None:
                dtypes[name] = np.dtype(dtype).type
        return cls(names, dtypes=dtypes if names[0] in dtypes else None)

    @property
    def known(self):
        return self.shapes is not None

    @property
    def dtype(self):
        """The dtype of ``pred`` (the first input); None when unknown."""
        return self.dtypes.get(self.names[0]) if self.dtypes else None

    @property
    def compute_dtype(self):
        """float16 inputs are computed in float32."""
        dtype = self.dtype
        return np.float32 if dtype == np.float16 else dtype

    def key(self):
        ranks = tuple(len(self.shapes[n]) for n in self.names) if self.known else None
        dtypes = tuple(np.dtype(self.dtypes[n]).name for n in self.names) if self.known else None
        device = self.ctx.device_type if self.ctx is not None else None
        fused = self.fused.key if self.fused is not None else None
        return (self.names, ranks, dtypes, device, self.use_kernels, fused,
                tuple(sorted(self.align.items())), self.options)


class LossConstant(mx.gluon.Constant):
    """A constant tensor of a loss (for example class weights).

    It needs no ``initialize()`` call and is ready on whatever context it is
    read on, also when the loss sits inside a user's hybridized network.
    """

    def _ensure(self, ctx):
        ctx = ctx if ctx is not None else mx.context.current_context()
        # a legacy array also in numpy mode (a loss computes on legacy views)
        with mx.util.np_array(False):
            if self._data is None:
                super(LossConstant, self).initialize(ctx=ctx)
            elif ctx not in self.list_ctx():
                self.reset_ctx(self.list_ctx() + [ctx])

    def data(self, ctx=None):
        self._ensure(ctx)
        return super(LossConstant, self).data(ctx)

    def initialize(self, init=None, ctx=None, default_init=None, force_reinit=False):
        if self._data is not None and not force_reinit:
            for c in (ctx if isinstance(ctx, (list, tuple)) else [ctx]):
                self._ensure(c)
            return
        with mx.util.np_array(False):
            super(LossConstant, self).initialize(ctx=ctx, force_reinit=force_reinit)


class _Graph(HybridBlock):
    """One cached graph of a hybridized loss, for one ``Plan.key``."""

    def __init__(self, loss, plan):
        super(_Graph, self).__init__(prefix=loss.prefix + "graph%d_" % len(loss._graphs))
        self._run = loss._compute
        self._plan = plan
        self.params.update(loss.params)
        for name, param in loss._reg_params.items():
            setattr(self, name, param)

    def hybrid_forward(self, F, *tensors, **params):
        return self._run(F, dict(zip(self._plan.names, tensors)), self._plan, params)


def _call_path(cls):
    """How calls of ``cls`` run, decided once per class: ``'forward'`` when it
    (or a user class between it and :class:`Loss`) overrides ``forward``,
    ``'hybrid_forward'`` when it overrides ``hybrid_forward`` (a loss written
    the MXNet way), else ``'gluonx'`` (the declared inputs and ``_loss``)."""
    if cls.forward is not Loss.forward:
        return "forward"
    if cls.hybrid_forward is not Loss.hybrid_forward:
        return "hybrid_forward"
    return "gluonx"


class Loss(mx_loss.Loss):
    """Base class of all gluonx losses (a subclass of ``mxnet.gluon.loss.Loss``).

    Parameters
    ----------
    weight : float or None
        Global scalar weight of the loss (None means 1).
    batch_axis : int or None, default 0
        The axis of the inputs that indexes the samples of the mini-batch.
        None (as in MXNet) averages over every axis: the loss is one value,
        shape (1,).
    reduction : {'sample', 'mean', 'sum', 'none'}, default 'sample'
        ``'sample'``: one value per sample, shape ``(batch_size,)`` (the mean
        over the other axes, as in ``mxnet.gluon.loss``); ``'mean'``/``'sum'``:
        the mean/sum of those per-sample values, shape ``(1,)``; ``'none'``:
        the weighted elementwise loss before any averaging.

    Subclasses set the class attributes below and implement ``_loss``.
    Every loss accepts ``sample_weight`` by position or keyword: it must
    broadcast against the elementwise loss (a weight that enlarges it gives
    MXNet's number, the mean over the broadcast product), or be a vector with
    one weight per sample.

    Subclasses written the MXNet way work too: one that overrides ``forward``
    runs its ``forward`` (``super().forward(...)`` is the parent loss, checked,
    hybridizable; it runs the stock operators, never the parent's fused kernel,
    since the subclass may change the math); one that overrides ``hybrid_forward``
    runs as a plain ``HybridBlock`` (``super().hybrid_forward(F, ...)`` is the
    parent loss on ``F``).
    """

    #: required inputs, in call order
    _inputs = ("pred", "label")
    #: optional inputs, in call order after the required ones
    _optional = ("sample_weight",)
    #: inputs that have pred's shape (same shape, same size, or broadcastable)
    _like_pred = ("label",)
    #: call-time options that are not tensors (name -> default)
    _call_options = {}
    #: 'elementwise': _loss returns pred's shape; 'contract': pred's shape with
    #: ``_contract_axis`` of size 1; 'sample': shape (batch_size,)
    _kind = "elementwise"
    #: how a sample's value is formed from its elements: 'mean' or 'sum'
    _sample_reduce = "mean"
    #: 'gluonx', 'forward' or 'hybrid_forward' (see :func:`_call_path`)
    _call_path = "gluonx"
    #: the signature of an overriding hybrid_forward (binds keyword arguments)
    _legacy_signature = None
    #: whether the class checks values (``_check_values``) when config.check_values is on
    _checks_values = False
    #: whether a hybridized call seen before invokes its graph directly (see __call__)
    _direct_calls = False
    _direct = None

    def __init_subclass__(cls, **kwargs):
        """Decide the call path, and record every loss's constructor arguments
        for get_config()."""
        super().__init_subclass__(**kwargs)
        cls._call_path = _call_path(cls)
        cls._legacy_signature = inspect.signature(cls.hybrid_forward) \
            if cls._call_path == "hybrid_forward" else None
        cls._fused_kernel = kernels.kernel_of(cls)
        cls._checks_values = cls._check_values is not Loss._check_values
        # A class that adds per-call work to the call path (its own __call__,
        # _bind, _dispatch or _run) always takes it, unless that class says
        # (``_direct_ok = True``) its additions are for inputs other than arrays.
        def definer(name):
            return next(k for k in cls.__mro__ if name in k.__dict__)
        cls._direct_calls = cls._call_path == "gluonx" and all(
            definer(name) is Loss or definer(name).__dict__.get("_direct_ok")
            for name in ("__call__", "_bind", "_dispatch", "_dispatch_legacy", "_run"))
        init = cls.__dict__.get("__init__")
        if init is None:
            return
        signature = inspect.signature(init)

        @functools.wraps(init)
        def recording_init(self, *args, **kw):
            if self.__dict__.get("_config") is None:
                bound = signature.bind(self, *args, **kw)
                bound.apply_defaults()
                cfg = {k: v for k, v in bound.arguments.items()
                       if k != "self" and signature.parameters[k].kind
                       not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)}
                object.__setattr__(self, "_config", cfg)
            init(self, *args, **kw)

        cls.__init__ = recording_init

    def __init__(self, weight, batch_axis, reduction="sample", **kwargs):
        # mxnet's Loss.__init__ directly: a gluonx loss that also subclasses
        # its mxnet namesake must not run that class's constructor
        mx_loss.Loss.__init__(self, weight, batch_axis, **kwargs)
        if weight is not None and not isinstance(weight, (int, float, np.number)):
            _fail(self, "weight", "must be a number or None, got %r" % (weight,))
        if batch_axis is not None and not isinstance(batch_axis, (int, np.integer)):
            _fail(self, "batch_axis", "must be an int or None, got %r" % (batch_axis,))
        if reduction not in REDUCTIONS:
            _fail(self, "reduction", "must be one of %s, got %r" % (REDUCTIONS, reduction))
        self._weight = weight
        self._batch_axis = None if batch_axis is None else int(batch_axis)
        self._last_call = None
        self._reduction = reduction
        self._clear_graphs()
        self._last_plan = None
        if "_config" not in self.__dict__:
            object.__setattr__(self, "_config", {})

    # ------------------------------------------------------------------ config
    def get_config(self):
        """The constructor arguments of this loss, as a dict."""
        return dict(self._config)

    @classmethod
    def from_config(cls, cfg):
        """Build a loss from the dict returned by :meth:`get_config`."""
        return cls(**cfg)

    def __repr__(self):
        args = ", ".join("%s=%r" % kv for kv in self._config.items())
        return "%s(%s)" % (type(self).__name__, args)

    # -------------------------------------------------------------- hybridize
    def hybridize(self, active=True, **kwargs):
        super(Loss, self).hybridize(active, **kwargs)
        self._clear_graphs()

    def _clear_cached_op(self):
        super(Loss, self)._clear_cached_op()
        self._clear_graphs()

    def _clear_graphs(self):
        self._graphs = {}
        self._plans = {}
        # hybridized: array record (see _array_reader) -> (CachedOp, plan) of
        # a positional call of arrays alone, which is then invoked directly
        self.__dict__["_direct"] = {} if self._active and self._direct_calls else None

    # ------------------------------------------------------------------- call
    def __call__(self, *args, **kwargs):
        direct = self._direct
        if direct is not None and not kwargs and not self._forward_pre_hooks \
                and not self._forward_hooks:
            # a hybridized call seen before: its CachedOp, without the checks it passed
            key = _read_arrays(args)
            if key is not None:
                key = (config.use_kernels, config.check_values and self._checks_values) + key
                entry = direct.get(key)
                if entry is not None:
                    plan, order = entry
                    self.__dict__["_last_plan"] = plan
                    try:
                        out = _invoke(plan.invoke, order, args, plan.ctx)
                    except mx.base.MXNetError:
                        pass         # the checked call below explains it
                    else:
                        return self._numpy_result(out) if key[2] else out
                elif key[1] is False and len(args) <= len(self._tensor_names()):
                    out = self._dispatch(self._bind(args, kwargs))
                    self._remember_direct(key, args)
                    return out
        for hook in self._forward_pre_hooks.values():
            hook(self, args)
        if self._call_path == "gluonx":
            out = self._dispatch(self._bind(args, kwargs))
        else:
            self._last_call = tuple((a is None, isinstance(a, _NP_TYPES)) for a in
                                    self._legacy_args(args, kwargs))
            out = self.forward(*args, **kwargs)
        for hook in self._forward_hooks.values():
            hook(self, args, out)
        return out

    def _remember_direct(self, key, args):
        """After a checked call of ``args`` alone: invoke its graph directly
        the next time ``args`` have the record ``key``."""
        plan = self._last_plan
        if plan is None or plan.invoke is None or plan.options:
            return
        present = [k for k, a in enumerate(args) if a is not None]
        order = tuple(present[k] if k.__class__ is int else k
                      for k in (plan.order or range(len(present))))
        if len(self._direct) > 64:
            self._direct.clear()
        self._direct[key] = (plan, None if order == tuple(range(len(args))) else order)

    def _legacy_args(self, args, kwargs):
        """A hybrid_forward-overriding subclass's call as positional arguments."""
        if not kwargs or self._legacy_signature is None:
            return args
        bound = self._legacy_signature.bind(self, None, *args, **kwargs)
        bound.apply_defaults()
        if any(p.kind == inspect.Parameter.VAR_KEYWORD
               for p in self._legacy_signature.parameters.values()):
            raise TypeError("%s: keyword arguments reach a hybrid_forward(**kwargs) only "
                            "positionally; pass them by position" % type(self).__name__)
        return tuple(bound.args[2:])

    def forward(self, *args, **kwargs):
        """The loss of the parent class on NDArrays or Symbols (what a
        subclass's ``super().forward(...)`` reaches)."""
        if self._call_path == "hybrid_forward":
            return HybridBlock.forward(self, *self._legacy_args(args, kwargs))
        return self._dispatch(self._bind(args, kwargs))

    def hybrid_forward(self, F, *args, **kwargs):
        """The loss on ``F`` (what a subclass's ``super().hybrid_forward(F, ...)``
        reaches): the same checks and semantics as a call, where shapes are
        known (``F`` is ``mx.nd``); MXNet's broadcasting rules in a graph."""
        for name in list(kwargs):
            if name in self._reg_params:  # gluon hands loss constants over by name
                kwargs.pop(name)
        return self._dispatch(self._bind(args, kwargs), graph=False)

    def _tensor_names(self):
        return self._inputs + self._optional

    def _bind(self, args, kwargs):
        names = self._tensor_names() + tuple(self._call_options)
        cls = type(self).__name__
        if len(args) > len(names):
            raise TypeError("%s takes at most %d inputs (%s), got %d"
                            % (cls, len(names), ", ".join(names), len(args)))
        values = dict(zip(names, args))
        for key, value in kwargs.items():
            if key not in names:
                raise TypeError("%s got an unexpected argument '%s'; it takes %s"
                                % (cls, key, ", ".join(names)))
            if key in values:
                raise TypeError("%s got two values for argument '%s'" % (cls, key))
            values[key] = value
        for name in self._inputs:
            if values.get(name) is None:
                raise TypeError("%s: missing required input '%s'" % (cls, name))
        return values

    def _dispatch(self, values, graph=True):
        """Check and run one call; ``graph=False`` computes on the inputs'
        own F (inside a user's hybrid_forward) instead of a cached graph."""
        names = tuple(n for n in self._tensor_names() if values.get(n) is not None)
        arrays = [values[n] for n in names]
        numpy_mode = [isinstance(a, _NP_TYPES) for a in arrays]
        if not any(numpy_mode):
            return self._dispatch_legacy(names, arrays, values, graph)
        if not all(numpy_mode):
            legacy = names[numpy_mode.index(False)]
            _fail(self, legacy, "is a legacy %s while '%s' is a numpy-mode (mx.np) array; "
                  "pass all inputs as mx.np arrays or all as legacy ones"
                  % (type(arrays[numpy_mode.index(False)]).__name__,
                     names[numpy_mode.index(True)]))
        # numpy mode: the same computation on zero-copy legacy views
        arrays = [a.as_nd_ndarray() for a in arrays]
        with mx.util.np_array(False):
            out = self._dispatch_legacy(names, arrays, values, graph)
        return self._numpy_result(out)

    def _numpy_result(self, out):
        """The result of a numpy-mode call, computed as a legacy array."""
        return out.as_np_ndarray()

    def _dispatch_legacy(self, names, arrays, values, graph):
        options = tuple((k, values[k]) for k in self._call_options if values.get(k) is not None)
        if all(isinstance(a, mx.sym.Symbol) for a in arrays):
            plan = Plan.symbolic(names, arrays)
            plan.options = options
            return self._compute(mx.sym, dict(zip(names, arrays)), plan, self._param_vars())
        for name, value in zip(names, arrays):
            if not isinstance(value, mx.nd.NDArray):
                _fail(self, name, "must be an mxnet NDArray (or all inputs Symbols), got %s"
                      % type(value).__name__)
        tensors = dict(zip(names, arrays))
        active = self._active and graph
        # The plan of a signature is checked once. A hybridized call keys on
        # the first input's context only (cheaper): a later mix of contexts
        # fails in the CachedOp call, and is re-checked below to raise the
        # usual LossInputError.
        contexts = arrays[0].context if active else tuple(a.context for a in arrays)
        signature = (names, options, config.use_kernels, contexts) + tuple(
            (a.shape, a.dtype) for a in arrays)
        plan = self._plans.get(signature)
        if plan is None:
            plan = self._plan(names, tensors)
            plan.options = options
            if len(self._plans) > 64:
                self._plans.clear()
            self._plans[signature] = plan
        if config.check_values:
            self._check_values(tensors, plan)
        self.__dict__["_last_plan"] = plan
        try:
            return self._run(plan, tensors, arrays, active)
        except mx.base.MXNetError:
            self._plan(names, tensors)  # raises LossInputError if the inputs explain it
            raise

    def _run(self, plan, tensors, arrays, active):
        """Run one checked call, imperatively or through its cached graph."""
        if not active:
            with plan.ctx:
                return self._compute(mx.nd, tensors, plan, self._param_data(plan.ctx))
        if plan.invoke is not None:
            return _invoke(plan.invoke, plan.order, arrays, plan.ctx)
        if self._reg_params:
            self._param_data(plan.ctx)
        graph = plan.graph
        if graph is None:
            key = plan.key()
            graph = self._graphs.get(key)
            if graph is None:
                graph = _Graph(self, plan)
                graph.hybridize(True, **dict(self._flags))
                self._graphs[key] = graph
            plan.graph = graph
        out = graph(*arrays)
        # Once built, the graph is invoked directly: the same CachedOp call on
        # the same inputs, without gluon's per-call argument flattening (a
        # noticeable share of a small loss's time).
        if graph._cached_op is not None and graph._callback is None:
            order = tuple(k for _, k in graph._cached_op_args)   # positions or Parameters
            plan.order = None if order == tuple(range(len(arrays))) else order
            plan.invoke = graph._cached_op
        return out

    # ------------------------------------------------------------- parameters
    def _param_vars(self):
        return {name: p.var() for name, p in self._reg_params.items()}

    def _param_data(self, ctx):
        data = {name: p.data(ctx) for name, p in self._reg_params.items()}
        # initialised in numpy mode, a constant is an mx.np array: use its legacy view
        return {k: v.as_nd_ndarray() if isinstance(v, mx.np.ndarray) else v
                for k, v in data.items()}

    def _constant(self, name, value):
        """Register a :class:`LossConstant` ``name`` holding ``value``."""
        with mx.util.np_array(False):  # legacy, also when built in numpy mode
            param = LossConstant(self.prefix + name, value)
        self.params.update({param.name: param})
        setattr(self, name, param)
        return param

    def _hold_class_weight(self, class_weight, shape=(-1,), dtype=np.float32):
        """Hold ``class_weight`` (one weight per class: a sequence, numpy array,
        NDArray or tensor; None for none) as the constant ``class_weight`` of
        ``shape`` (the loss's ``_loss`` gets it as an input), recorded in
        get_config as a list; ``_check_class_weight`` checks its length."""
        self._num_weights = None
        if class_weight is None:
            return
        if hasattr(class_weight, "asnumpy"):
            class_weight = class_weight.asnumpy()
        elif hasattr(class_weight, "detach"):   # a torch tensor
            class_weight = class_weight.detach().cpu().numpy()
        try:
            values = np.asarray(class_weight, dtype=np.float64)
        except (TypeError, ValueError):
            values = None
        if values is None or values.ndim != 1 or values.size == 0:
            _fail(self, "class_weight", "must be a non-empty vector of numbers, one per class, "
                  "got %r" % (class_weight,))
        self._num_weights = values.size
        self._config["class_weight"] = values.tolist()   # as given (from_config rebuilds it)
        self._constant("class_weight", mx.nd.array(values.reshape(shape), dtype=dtype))

    def _check_class_weight(self, classes):
        """The held ``class_weight`` has one entry per class (``classes`` of them)."""
        if self._num_weights is not None and self._num_weights != classes:
            _fail(self, "class_weight", "has %d entries, expected one per class (%d)"
                  % (self._num_weights, classes))

    # ----------------------------------------------------------------- checks
    def _plan(self, names, tensors):
        """Check shapes, dtypes and contexts; decide how to align inputs."""
        shapes = {n: tuple(tensors[n].shape) for n in names}
        dtypes = {n: np.dtype(tensors[n].dtype).type for n in names}
        ctx = tensors[names[0]].context
        for name in names:
            if tensors[name].context != ctx:
                _fail(self, name, "is on %s, expected the context of '%s' (%s)"
                      % (tensors[name].context, names[0], ctx))
        if dtypes[names[0]] not in FLOAT_DTYPES:
            _fail(self, names[0], "must be float16, float32 or float64, got %s"
                  % np.dtype(dtypes[names[0]]).name)
        plan = Plan(names, shapes, dtypes, ctx)
        ndim = len(shapes[names[0]])
        if self._batch_axis is not None and not -ndim <= self._batch_axis < max(ndim, 1):
            _fail(self, "batch_axis", "is %d but '%s' has only %d axes"
                  % (self._batch_axis, names[0], ndim))
        for name in self._like_pred:
            if name in shapes:
                plan.align[name] = self._align_like(name, shapes[name], shapes[names[0]])
        self._check_shapes(plan)
        for name in ("sample_weight",):
            if name in shapes:
                plan.align[name] = self._align_weight(name, shapes[name], self._loss_shape(plan))
        # a fused kernel, where the loss declares one that fits this call
        plan.use_kernels = (config.use_kernels and self._reduction != "none"
                            and plan.align.get("sample_weight", ("same",))[0] != "enlarge")
        plan.fused = kernels.prepare(self, plan) if plan.use_kernels else None
        return plan

    def _align_like(self, name, shape, target, what=None):
        """How a tensor of ``shape`` is aligned to ``target`` ('pred' shape)."""
        if shape == target:
            return ("same", None)
        size = int(np.prod(shape)) if shape else 1
        if size == int(np.prod(target)) and _squeezed(shape) == _squeezed(target):
            return ("reshape", None)
        if _broadcasts_onto(shape, target):
            # a lower rank is padded with leading 1s first (broadcast_like needs equal ranks)
            return ("broadcast", None if len(shape) == len(target) else
                    (1,) * (len(target) - len(shape)) + tuple(shape))
        _fail(self, name, "has shape %s, expected %s's shape %s (or one that broadcasts to it)"
              % (shape, what or self._inputs[0], target))

    def _align_weight(self, name, shape, loss_shape):
        """How a weight is aligned to the elementwise loss of ``loss_shape``:
        'flat' (per-sample losses), 'same' (broadcasts onto it), 'reshape'
        (one weight per sample), or 'enlarge' (broadcasting enlarges the
        loss: MXNet's number is the mean over the broadcast product; the
        argument says which axes of the loss the weight is reduced over first,
        or None to form the product, when the batch axis or rank grows)."""
        batch_axis = 0 if self._kind == "sample" else self._batch_axis
        batch = loss_shape[batch_axis] if loss_shape and batch_axis is not None else 1
        if self._kind == "sample":
            if int(np.prod(shape)) in (batch, 1) and len(_squeezed(shape)) <= 1:
                return ("flat", None)
        elif _broadcasts_onto(shape, loss_shape):
            return ("same", None)
        elif len(shape) == 1 and shape[0] == batch and batch_axis is not None:
            per_sample = [1] * len(loss_shape)
            per_sample[batch_axis] = -1
            return ("reshape", tuple(per_sample))
        else:
            try:
                np.broadcast_shapes(tuple(shape), tuple(loss_shape))
            except ValueError:
                _fail(self, name, "has shape %s, which does not broadcast against the loss "
                      "shape %s (give one weight per sample, shape (%d,), or a broadcastable "
                      "array)" % (shape, loss_shape, batch))
            axes = _enlarged_axes(shape, loss_shape)
            if axes is not None:
                if batch_axis is not None and batch_axis % len(loss_shape) in axes:
                    axes = None
                elif len(shape) < len(loss_shape):
                    axes = ((1,) * (len(loss_shape) - len(shape)) + tuple(shape), axes)
                else:
                    axes = (None, axes)
                return ("enlarge", axes)
            return ("enlarge", None)
        _fail(self, name, "has shape %s, which does not broadcast against the loss shape %s "
              "(give one weight per sample, shape (%d,), or a broadcastable array)"
              % (shape, loss_shape, batch))

    def _loss_shape(self, plan):
        """The shape of the elementwise loss ``_loss`` returns for ``plan``."""
        shape = list(plan.shapes[plan.names[0]])
        if self._kind == "contract":
            shape[self._contract_axis % len(shape)] = 1
        elif self._kind == "sample":
            shape = [shape[self._batch_axis]]
        return tuple(shape)

    def _check_shapes(self, plan):
        """Loss-specific shape checks (hook); may add entries to plan.align."""

    def _check_values(self, tensors, plan):
        """Loss-specific value checks (hook); runs only with check_values on."""

    def _masked_out(self, tensors, plan):
        """Where ``sample_weight`` is exactly 0, as a boolean numpy array of the
        elementwise loss's shape (None without a sample_weight): positions the
        caller masks out, whose inputs need not be valid."""
        if "sample_weight" not in tensors:
            return None
        weight = tensors["sample_weight"].asnumpy() == 0
        loss_shape = self._loss_shape(plan)
        mode, arg = plan.align.get("sample_weight", ("same", None))
        if mode == "reshape":
            weight = weight.reshape(arg)
        elif mode == "enlarge":
            if arg is None:
                return None
            padded, axes = arg
            weight = weight.reshape(padded) if padded is not None else weight
            weight = weight.all(axis=axes, keepdims=True)
        elif mode == "flat":
            weight = weight.reshape(-1)
        return np.broadcast_to(weight, loss_shape)

    # ---------------------------------------------------------------- compute
    def _compute(self, F, tensors, plan, params):
        """The whole loss on F: alignment, the math, weighting, reductions."""
        x = dict(tensors)
        pred_name = plan.names[0]
        compute_dtype = self._compute_dtype(plan)
        for name in plan.names:
            if not self._casts(name) or compute_dtype is None:
                continue
            dt = plan.dtypes.get(name) if plan.dtypes else None
            if dt is None or (dt in FLOAT_DTYPES and dt != compute_dtype):
                x[name] = F.cast(x[name], dtype=np.dtype(compute_dtype).name)
        pred = x[pred_name]
        for name in self._like_pred:
            if name in x:
                mode = plan.align.get(name, ("reshape", None))[0]
                if mode == "reshape":
                    x[name] = F.reshape_like(x[name], pred)
                elif mode == "broadcast":
                    padded = plan.align[name][1]
                    value = x[name] if padded is None else F.reshape(x[name], shape=padded)
                    x[name] = F.broadcast_like(value, pred)
        if compute_dtype is not None and compute_dtype != np.float32:
            params = {k: F.cast(v, dtype=np.dtype(compute_dtype).name) for k, v in params.items()}
        x.update(params)
        x.update({k: v for k, v in plan.options})
        sample_weight = x.pop("sample_weight", None)

        per_sample = None
        if plan.use_kernels and plan.fused is not None:
            fused_inputs = dict(x)
            if sample_weight is not None:
                fused_inputs["sample_weight"] = self._aligned_weight(F, sample_weight, plan)
            per_sample = kernels.run(self, F, fused_inputs, plan)
        if per_sample is None:
            loss, norm = self._loss(F, **x), None
            if isinstance(loss, tuple):   # (loss, normaliser): see _per_sample
                loss, norm = loss
            if sample_weight is not None:
                # (shapes unknown, in mx.sym, MXNet's broadcasting applies as given)
                loss = F.broadcast_mul(loss, self._aligned_weight(F, sample_weight, plan))
            if self._reduction == "none":
                return self._finish(F, self._unreduced(F, loss, plan), plan)
            if norm is not None and self._reduction == "mean":
                return self._finish(F, self._reduce(F, None, (loss, norm[1])), plan)
            per_sample = self._per_sample(F, loss, norm)
        return self._finish(F, self._reduce(F, per_sample), plan)

    def _compute_dtype(self, plan):
        """The dtype the math runs in: pred's, but float32 for float16."""
        return plan.compute_dtype

    def _casts(self, name):
        """Whether float input ``name`` is cast to the compute dtype."""
        return True

    def _aligned_weight(self, F, weight, plan):
        mode, arg = plan.align.get("sample_weight", ("same", None))
        if mode == "flat":
            return F.reshape(weight, shape=(-1,))
        if mode == "reshape":
            return F.reshape(weight, shape=arg)
        if mode == "enlarge" and arg is not None and self._reduction != "none":
            # the mean (sum) over the enlarged product equals the loss times
            # the weight's mean (sum) over the axes it enlarges: never form it
            padded, axes = arg
            if padded is not None:
                weight = F.reshape(weight, shape=padded)
            reduce_over = F.sum if self._sample_reduce == "sum" else F.mean
            return reduce_over(weight, axis=axes, keepdims=True)
        return weight

    def _per_sample(self, F, loss, norm=None):
        """A sample's value: the mean (or sum) over its non-batch axes. A loss
        whose ``_loss`` returns ``(loss, (count, total))`` (each broadcastable
        to ``loss``) is instead normalised by its own denominators: a sample's
        value is sum(loss) / sum(count) over its non-batch axes, and
        ``reduction='mean'`` is sum(loss) / sum(total) over everything; a zero
        denominator gives 0."""
        if norm is not None and self._sample_reduce == "sum":
            norm = None  # a sum over the elements needs no denominator (masked ones are 0)
        if norm is not None:
            axis = 0 if self._kind == "sample" else self._batch_axis
            count = F.broadcast_like(norm[0], loss)
            return _ratio(F, F.sum(loss, axis=axis, exclude=True),
                          F.sum(count, axis=axis, exclude=True))
        if self._kind == "sample":
            return loss
        if self._batch_axis is None:  # one value for the whole batch, as in MXNet
            return F.sum(loss) if self._sample_reduce == "sum" else F.mean(loss)
        if self._sample_reduce == "sum":
            return F.sum(loss, axis=self._batch_axis, exclude=True)
        return F.mean(loss, axis=self._batch_axis, exclude=True)

    def _unreduced(self, F, loss, plan):
        enlarged = plan.align.get("sample_weight", ("same",))[0] == "enlarge"
        if self._kind == "contract" and not enlarged:
            loss = F.squeeze(loss, axis=self._contract_axis)
        return loss * self._weight if self._weight not in (None, 1) else loss

    def _reduce(self, F, per_sample, total=None):
        if total is not None:   # (loss, its 'mean' denominators): see _per_sample
            loss, den = total
            per_sample = _ratio(F, F.sum(loss), F.sum(F.broadcast_like(den, loss)))
        if self._weight not in (None, 1):
            per_sample = per_sample * self._weight
        if total is not None:
            return per_sample
        if self._reduction == "mean":
            return F.mean(per_sample)
        if self._reduction == "sum":
            return F.sum(per_sample)
        return per_sample

    def _finish(self, F, out, plan):
        """float16 inputs give a float32 loss (like torch autocast); a loss
        computed in float32 for float64 inputs is returned as float64."""
        if plan.dtype == np.float64 and self._compute_dtype(plan) != np.float64:
            out = F.cast(out, dtype="float64")
        return out

    def _loss(self, F, **inputs):
        """The elementwise loss, on F. Implemented by every loss."""
        raise NotImplementedError

    # ----------------------------------------------------------------- export
    def export(self, path, epoch=0, portable=False, remove_amp_cast=True):
        """Save the graph of the last call as ``path-symbol.json`` and
        ``path-%04d.params``, loadable with ``gluon.SymbolBlock.imports``.

        Inputs are named ``data0, data1, ...`` in call order, counting only
        the inputs that were passed. ``portable=True`` writes a graph of
        stock MXNet operators only (no gluonx kernels), which loads in any
        MXNet 1.9 process, even without gluonx.
        """
        if self._call_path == "hybrid_forward":
            out = self._legacy_graph()
        else:
            plan = self._last_plan
            if plan is None:
                raise RuntimeError("%s.export: call the loss on NDArrays at least once first, "
                                   "so that its input structure is known" % type(self).__name__)
            if portable and plan.use_kernels:
                plan = copy.copy(plan)
                plan.use_kernels = False
            inputs = [mx.sym.var("data%d" % i) for i in range(len(plan.names))]
            out = self._compute(mx.sym, dict(zip(plan.names, inputs)), plan, self._param_vars())
        out.save("%s-symbol.json" % path, remove_amp_cast=remove_amp_cast)
        arg_names = set(out.list_arguments())
        params = {"arg:%s" % p.name: p._reduce() for p in self._reg_params.values()
                  if p.name in arg_names}
        mx.nd.save("%s-%04d.params" % (path, epoch),
                   {k: v.as_nd_ndarray() if isinstance(v, mx.np.ndarray) else v
                    for k, v in params.items()})

    def _legacy_graph(self):
        """The graph of an overriding ``hybrid_forward`` for the last call's
        inputs (named data0, data1, ... as in :meth:`export`)."""
        if self._last_call is None:
            raise RuntimeError("%s.export: call the loss at least once first, so that its "
                               "input structure is known" % type(self).__name__)
        inputs, count = [], 0
        for missing, numpy_mode in self._last_call:
            var = None
            if not missing:
                var = mx.sym.var("data%d" % count)
                var = var.as_np_ndarray() if numpy_mode else var
                count += 1
            inputs.append(var)
        while inputs and inputs[-1] is None:
            inputs.pop()
        with self.name_scope():
            out = self.hybrid_forward(mx.sym, *inputs, **self._param_vars())
        if isinstance(out, (list, tuple)):
            out = mx.sym.Group(list(out))
        return out.as_nd_ndarray() if isinstance(out, mx.sym.np._Symbol) else out
