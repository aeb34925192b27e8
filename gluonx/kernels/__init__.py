"""Fused C++ loss kernels: build on first use, cache, load, fall back.

Each loss's math on ``F`` (``gluonx.loss``) is its definition; a kernel here is
an accelerator the loss base class asks for through :func:`fused_sample_loss`.
It returns the per-sample loss from one compiled operator (forward in one pass,
backward in one pass), or ``None`` whenever it cannot reproduce the stock path
(non-CPU context, unsupported dtype, layout or option, library unavailable), in
which case the caller uses the stock operators.

The operators are compiled from the ``*.cc`` files next to this module against
the installed mxnet's ``lib_api.h`` on first use (or ``python -m gluonx.kernels
build``), cached per mxnet version, compiler, machine and source hash (see
:mod:`gluonx.kernels._build`), and loaded with MXNet's extension-library
mechanism, so they work imperatively, under autograd, hybridized and in
exported graphs. :func:`load` loads an already-built library without compiling,
which is what ``import gluonx`` does so that exported graphs using these
operators import in any process that imported gluonx.

Switch off with ``gluonx.config.use_kernels = False`` (or ``GLUONX_KERNELS=0``).
"""
import ctypes
import os
import sys
import threading
import warnings

import numpy as np

from .. import _compat  # noqa: F401  (mxnet import shim)
import mxnet as mx

from . import _build
from ._build import BuildError

__all__ = ["fused_sample_loss", "load", "build", "available", "status", "BuildError",
           "OP_PREFIX"]

OP_PREFIX = "gluonx_"

_lock = threading.RLock()
_state = {"path": None, "error": None, "build_tried": False}
_warned = set()


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
    """Load the cached kernel library if it has been built; never compiles.

    Returns True when the kernel operators are available in this process.
    Cheap: a dictionary look-up once loaded, a file check otherwise.
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
    """Compile (unless cached, or `force`) and load the kernel library; return its path."""
    with _lock:
        path = _build.build(force=force, verbose=verbose)
        if _state["path"] is None:
            _register_library(path)
            _state["path"] = path
        return path


def available():
    """True when the kernels can be used in this process, building them on first use.

    A failed build is not retried in the same process; it warns once.
    """
    if _state["path"] is not None:
        return True
    with _lock:
        if load():
            return True
        if _state["build_tried"]:
            return False
        _state["build_tried"] = True
        try:
            build()
        except Exception as err:  # pylint: disable=broad-except
            _state["error"] = str(err)
            _warn_once("build", "gluonx: fused loss kernels unavailable, using stock MXNet "
                       "operators instead (same results, slower). Reason: %s. Set "
                       "gluonx.config.use_kernels = False to silence this." % err)
            return False
        return True


def status():
    """A dict describing the kernel library: path, error, compiler, cache directory."""
    try:
        expected = _build.library_path()
    except (BuildError, OSError) as err:
        expected = "unavailable (%s)" % err
    return {"loaded": _state["path"], "error": _state["error"], "library": expected,
            "compiler": _build.compiler(), "cache_dir": _build.cache_root()}


# ------------------------------------------------------------ dispatch ------

_FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def _bcast_kind(pred_shape, w_shape):
    """How `w` broadcasts against pred viewed as (batch, rest): 'scalar', 'row'
    (one value per sample), 'col' (one per position, shared by all samples),
    'full', or None for any other pattern (or one that changes the shape).
    Mirrors classify_bcast in common.h."""
    pred_shape, w_shape = tuple(pred_shape), tuple(w_shape)
    if len(w_shape) > len(pred_shape) or not pred_shape:
        return None
    aligned = (1,) * (len(pred_shape) - len(w_shape)) + w_shape
    if any(w not in (1, p) for w, p in zip(aligned, pred_shape)):
        return None
    row = aligned[0] == pred_shape[0] and pred_shape[0] != 1
    rest = aligned[1:]
    if all(d == 1 for d in rest):
        return "row" if row else "scalar"
    if rest == pred_shape[1:]:
        return "full" if row or pred_shape[0] == 1 else "col"
    return None


def _flag(value):
    return "1" if value else "0"


def _num(value):
    return repr(float(value))


class _Call:
    """One kernel call: the inputs as the loss base class hands them over, with
    the shapes and dtypes they have *at that point* (labels already aligned to
    pred, float inputs cast to the compute dtype, sample_weight aligned)."""

    def __init__(self, loss, inputs, info):
        self.inputs = {k: v for k, v in inputs.items() if v is not None}
        self.shapes, self.dtypes = _effective(loss, self.inputs, info)

    def has(self, name):
        return name in self.inputs

    def like(self, name, ref="pred"):
        """`name` is present with `ref`'s shape and dtype."""
        return (name in self.inputs and self.dtypes[name] == self.dtypes[ref]
                and self.shapes[name] == self.shapes[ref])

    def weight_ok(self, name, against, ref="pred"):
        """An optional weight is absent, or has ref's dtype and broadcasts onto
        the shape `against` in a pattern the kernels support."""
        if name not in self.inputs:
            return True
        return (self.dtypes[name] == self.dtypes[ref]
                and _bcast_kind(against, self.shapes[name]) is not None)


def _effective(loss, inputs, info):
    """Shapes and dtypes of `inputs` as the base class passes them to the kernel."""
    compute_dtype = None
    hook = getattr(loss, "_compute_dtype", None)
    if hook is not None:
        try:
            compute_dtype = hook(info)
        except Exception:  # pylint: disable=broad-except
            compute_dtype = None
    casts = getattr(loss, "_casts", lambda name: True)
    like_pred = tuple(getattr(loss, "_like_pred", ()))
    align = getattr(info, "align", {}) or {}
    names = list(info.shapes)
    pred_shape = tuple(info.shapes[names[0]]) if names else ()
    shapes, dtypes = {}, {}
    for name in inputs:
        if name not in info.shapes:  # a loss parameter or call option, not a tensor input
            shapes[name], dtypes[name] = None, None
            continue
        shape = tuple(int(d) for d in info.shapes[name])
        dtype = np.dtype(info.dtypes[name])
        if compute_dtype is not None and dtype in _FLOAT_DTYPES and casts(name):
            dtype = np.dtype(compute_dtype)
        if name in like_pred and align.get(name, ("same",))[0] in ("same", "reshape",
                                                                   "broadcast"):
            shape = pred_shape
        if name == "sample_weight":
            mode, arg = align.get(name, ("same", None))
            if mode == "flat":
                shape = (int(np.prod(shape)),)
            elif mode == "reshape":
                batch = int(np.prod(shape))
                shape = tuple(batch if d == -1 else int(d) for d in arg)
        shapes[name] = shape
        dtypes[name] = dtype
    return shapes, dtypes


def _elementwise(op, target, F, call, attrs, pos_weight=False):
    """Losses whose elementwise value is averaged (summed) over non-batch axes."""
    pred_shape = call.shapes["pred"]
    if not call.like(target) or not call.weight_ok("sample_weight", pred_shape):
        return None
    args = [call.inputs["pred"], call.inputs[target]]
    attrs = dict(attrs, has_sw=_flag(call.has("sample_weight")))
    if call.has("sample_weight"):
        args.append(call.inputs["sample_weight"])
    if pos_weight:
        if not call.weight_ok("pos_weight", pred_shape):
            return None
        attrs["has_pw"] = _flag(call.has("pos_weight"))
        if call.has("pos_weight"):
            args.append(call.inputs["pos_weight"])
    elif call.has("pos_weight"):
        return None
    return getattr(F, op)(*args, **attrs)


def _only(call, *names):
    """True when the call has no inputs other than `names` (e.g. loss parameters)."""
    return set(call.inputs) <= set(names)


def _l2(loss, F, call, cfg):
    if not _only(call, "pred", "label", "sample_weight"):
        return None
    return _elementwise("gluonx_l2_loss", "label", F, call, {})


def _l1(loss, F, call, cfg):
    if not _only(call, "pred", "label", "sample_weight"):
        return None
    return _elementwise("gluonx_l1_loss", "label", F, call, {})


def _huber(loss, F, call, cfg):
    if not _only(call, "pred", "label", "sample_weight"):
        return None
    return _elementwise("gluonx_huber_loss", "label", F, call, {"rho": _num(cfg["rho"])})


def _hinge(loss, F, call, cfg):
    if not _only(call, "pred", "label", "sample_weight"):
        return None
    return _elementwise("gluonx_hinge_loss", "label", F, call, {"margin": _num(cfg["margin"])})


def _squared_hinge(loss, F, call, cfg):
    if not _only(call, "pred", "label", "sample_weight"):
        return None
    return _elementwise("gluonx_squared_hinge_loss", "label", F, call,
                        {"margin": _num(cfg["margin"])})


def _logistic(loss, F, call, cfg):
    fmt = cfg.get("label_format", "signed")
    if fmt not in ("signed", "binary") or not _only(call, "pred", "label", "sample_weight"):
        return None
    return _elementwise("gluonx_logistic_loss", "label", F, call,
                        {"signed": _flag(fmt == "signed")})


def _sigmoid_bce(loss, F, call, cfg):
    if not _only(call, "pred", "label", "sample_weight", "pos_weight"):
        return None
    return _elementwise("gluonx_sigmoid_bce_loss", "label", F, call,
                        {"from_sigmoid": _flag(cfg.get("from_sigmoid", False))},
                        pos_weight=True)


def _poisson_nll(loss, F, call, cfg):
    epsilon = call.inputs.get("epsilon", cfg.get("epsilon", 1e-8))
    if not isinstance(epsilon, (int, float, np.number)):
        return None
    call.inputs.pop("epsilon", None)
    if not _only(call, "pred", "target", "sample_weight"):
        return None
    return _elementwise("gluonx_poisson_nll_loss", "target", F, call,
                        {"from_logits": _flag(cfg.get("from_logits", True)),
                         "compute_full": _flag(cfg.get("compute_full", False)),
                         "epsilon": _num(epsilon)})


def _last_axis(axis, ndim):
    return ndim >= 1 and int(axis) % ndim == ndim - 1


def _kldiv(loss, F, call, cfg):
    if not _only(call, "pred", "label", "sample_weight"):
        return None
    if cfg.get("from_logits", True):
        return _elementwise("gluonx_kldiv_loss", "label", F, call, {})
    pred_shape = call.shapes["pred"]
    if (len(pred_shape) < 2 or not _last_axis(cfg.get("axis", -1), len(pred_shape))
            or not call.like("label") or not call.weight_ok("sample_weight", pred_shape)):
        return None
    args = [call.inputs["pred"], call.inputs["label"]]
    if call.has("sample_weight"):
        args.append(call.inputs["sample_weight"])
    return F.gluonx_kldiv_softmax_loss(*args, has_sw=_flag(call.has("sample_weight")))


def _softmax_ce(loss, F, call, cfg):
    if not _only(call, "pred", "label", "sample_weight"):
        return None  # class_weight (a parameter input) is not fused
    if (cfg.get("label_smoothing", 0) or cfg.get("class_weight") is not None
            or cfg.get("ignore_index") is not None):
        return None
    pred_shape = call.shapes["pred"]
    if len(pred_shape) < 2 or not _last_axis(cfg.get("axis", -1), len(pred_shape)):
        return None
    sparse = bool(cfg.get("sparse_label", True))
    if sparse:
        positions = int(np.prod(pred_shape[:-1]))
        if int(np.prod(call.shapes["label"])) != positions:
            return None
    elif not call.like("label"):
        return None
    if not call.weight_ok("sample_weight", pred_shape[:-1] + (1,)):
        return None
    args = [call.inputs["pred"], call.inputs["label"]]
    if call.has("sample_weight"):
        args.append(call.inputs["sample_weight"])
    return F.gluonx_softmax_ce_loss(*args, has_sw=_flag(call.has("sample_weight")),
                                    sparse_label=_flag(sparse),
                                    from_logits=_flag(cfg.get("from_logits", False)))


def _triplet(loss, F, call, cfg):
    if not _only(call, "pred", "positive", "negative", "sample_weight"):
        return None
    if not (call.like("positive") and call.like("negative")):
        return None
    args = [call.inputs["pred"], call.inputs["positive"], call.inputs["negative"]]
    if call.has("sample_weight"):
        sw = call.shapes["sample_weight"]
        if call.dtypes["sample_weight"] != call.dtypes["pred"] or \
                int(np.prod(sw)) not in (1, call.shapes["pred"][0]):
            return None
        args.append(call.inputs["sample_weight"])
    return F.gluonx_triplet_loss(*args, has_sw=_flag(call.has("sample_weight")),
                                 margin=_num(cfg.get("margin", 1)))


def _cosine(loss, F, call, cfg):
    if not _only(call, "input1", "input2", "label", "sample_weight"):
        return None
    shape = call.shapes["input1"]
    if len(shape) < 2 or not call.like("input2", "input1"):
        return None
    if int(np.prod(call.shapes["label"])) != int(np.prod(shape[:-1])):
        return None
    if not call.weight_ok("sample_weight", shape[:-1] + (1,), "input1"):
        return None
    args = [call.inputs["input1"], call.inputs["input2"], call.inputs["label"]]
    if call.has("sample_weight"):
        args.append(call.inputs["sample_weight"])
    return F.gluonx_cosine_loss(*args, has_sw=_flag(call.has("sample_weight")),
                                margin=_num(cfg.get("margin", 0)))


def _ctc(loss, F, call, cfg):
    if not _only(call, "pred", "label", "pred_lengths", "label_lengths", "sample_weight"):
        return None
    layout, label_layout = cfg.get("layout", "NTC"), cfg.get("label_layout", "NT")
    pred, label = call.shapes["pred"], call.shapes["label"]
    if layout not in ("NTC", "TNC") or label_layout not in ("NT", "TN"):
        return None
    if len(pred) != 3 or len(label) != 2:
        return None
    batch = pred[0] if layout == "NTC" else pred[1]
    if label[label_layout.find("N")] != batch:
        return None
    args = [call.inputs["pred"], call.inputs["label"]]
    for name in ("pred_lengths", "label_lengths"):
        if call.has(name):
            if int(np.prod(call.shapes[name])) != batch:
                return None
            args.append(call.inputs[name])
    if call.has("sample_weight"):
        if call.dtypes["sample_weight"] != call.dtypes["pred"] or \
                int(np.prod(call.shapes["sample_weight"])) not in (1, batch):
            return None
        args.append(call.inputs["sample_weight"])
    return F.gluonx_ctc_loss(*args, layout_ntc=_flag(layout == "NTC"),
                             label_nt=_flag(label_layout == "NT"),
                             has_pred_lengths=_flag(call.has("pred_lengths")),
                             has_label_lengths=_flag(call.has("label_lengths")),
                             has_sw=_flag(call.has("sample_weight")))


def _sdml(loss, F, call, cfg):
    if not _only(call, "x1", "x2", "sample_weight"):
        return None
    shape = call.shapes["x1"]
    if len(shape) != 2 or shape[0] < 2 or not call.like("x2", "x1"):
        return None
    args = [call.inputs["x1"], call.inputs["x2"]]
    if call.has("sample_weight"):
        if call.dtypes["sample_weight"] != call.dtypes["x1"] or \
                int(np.prod(call.shapes["sample_weight"])) not in (1, shape[0]):
            return None
        args.append(call.inputs["sample_weight"])
    s = cfg.get("smoothing_parameter", getattr(loss, "smoothing_parameter", 0.3))
    return F.gluonx_sdml_loss(*args, has_sw=_flag(call.has("sample_weight")),
                              smoothing_parameter=_num(s))


_BUILDERS = {
    "L2Loss": _l2,
    "L1Loss": _l1,
    "HuberLoss": _huber,
    "HingeLoss": _hinge,
    "SquaredHingeLoss": _squared_hinge,
    "LogisticLoss": _logistic,
    "SigmoidBinaryCrossEntropyLoss": _sigmoid_bce,
    "PoissonNLLLoss": _poisson_nll,
    "KLDivLoss": _kldiv,
    "SoftmaxCrossEntropyLoss": _softmax_ce,
    "TripletLoss": _triplet,
    "CosineEmbeddingLoss": _cosine,
    "CTCLoss": _ctc,
    "SDMLLoss": _sdml,
}

#: losses whose batch axis the kernel handles itself (not required to be 0)
_OWN_BATCH_AXIS = ("CTCLoss",)


def fused_sample_loss(loss, F, inputs, info):
    """Return the per-sample loss (shape (batch,)) computed by a fused kernel, or
    None to let the caller use the stock path.

    `loss` is the Loss block (its constructor arguments in ``loss._config``),
    `F` is mx.nd or mx.sym, `inputs` maps call-signature names to the inputs
    as the base class passes them (labels aligned to pred, float inputs cast
    to the compute dtype, sample_weight aligned), `info` is the call's plan
    (``.shapes``, ``.dtypes`` of the inputs as given by the caller, ``.ctx``,
    ``.align``). The result is the mean (KLDivLoss: sum) over the non-batch
    axes of the weighted elementwise loss, before the global ``weight``.
    """
    name = type(loss).__name__
    builder = _BUILDERS.get(name)
    if builder is None or getattr(loss, "_legacy_signature", None) is not None:
        return None
    if type(loss).__module__.split(".")[0] != "gluonx":
        return None  # a user subclass may change the math: not ours to fuse
    if getattr(info, "shapes", None) is None:
        return None
    ctx = getattr(info, "ctx", None)
    if ctx is not None and getattr(ctx, "device_type", "cpu") != "cpu":
        _warn_once("gpu", "gluonx: fused loss kernels are CPU-only; on %s the stock "
                   "operators are used (MXNet fuses pointwise operators on GPU)." % ctx)
        return None
    cfg = getattr(loss, "_config", {}) or {}
    call = _Call(loss, inputs, info)
    first = next(iter(info.shapes))
    shape = call.shapes.get(first)
    if not shape or any(d == 0 for d in shape) or call.dtypes[first] not in _FLOAT_DTYPES:
        return None
    if name not in _OWN_BATCH_AXIS and int(getattr(loss, "_batch_axis", 0)) % len(shape) != 0:
        return None
    if not available():
        return None
    return builder(loss, F, call, cfg)
