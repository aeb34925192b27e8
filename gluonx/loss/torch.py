"""PyTorch's 22 ``torch.nn`` loss classes on MXNet, as ``gluonx.loss.torch``.

Each class has PyTorch's name, constructor arguments (names, order and
defaults: ``reduction='mean'``, ``ignore_index=-100``, ``blank=0``, ...),
input layout (the class axis is axis 1; CTC takes ``(T, N, C)``
log-probabilities) and output, so that a loss line ported from PyTorch keeps
its meaning. Each is a thin layer over the Gluon-style loss of
:mod:`gluonx.loss` named in its docstring: one implementation of each loss's
math, with that loss's checks (bad input raises :class:`~gluonx.loss.LossInputError`)
and modes (imperative, ``hybridize()``, ``mx.sym``, ``export``).

Reductions follow PyTorch: ``'mean'`` (the default) and ``'sum'`` reduce over
every element, ``'none'`` gives PyTorch's unreduced shape. A reduced loss is a
scalar: shape ``(1,)`` for legacy NDArrays (MXNet 1.x has no 0-d NDArray) and
``()`` in numpy mode (``mx.npx.set_np()``). The legacy ``size_average`` and
``reduce`` arguments are accepted with PyTorch's meaning (they override
``reduction``, with a deprecation warning).

Inputs are passed positionally in PyTorch's order (``loss(input, target)``,
``loss(log_probs, targets, input_lengths, target_lengths)``, ...). There is no
``sample_weight`` input: weights are the constructor's, as in PyTorch.

This module is ``gluonx.loss.torch``; it never shadows the ``torch`` package
(gluonx uses absolute imports) and does not import PyTorch.
"""
import copy
import warnings

import numpy as np
import mxnet as mx

import gluonx.loss as _package
from gluonx.loss import classification, divergence, embedding, margin, regression, sequence
from gluonx.kernels import ANY
from gluonx.loss._base import Loss, _NP_TYPES, _fail

__all__ = ["L1Loss", "MSELoss", "CrossEntropyLoss", "CTCLoss", "NLLLoss", "PoissonNLLLoss",
           "GaussianNLLLoss", "KLDivLoss", "BCELoss", "BCEWithLogitsLoss", "MarginRankingLoss",
           "HingeEmbeddingLoss", "MultiLabelMarginLoss", "HuberLoss", "SmoothL1Loss",
           "SoftMarginLoss", "MultiLabelSoftMarginLoss", "CosineEmbeddingLoss",
           "MultiMarginLoss", "TripletMarginLoss", "TripletMarginWithDistanceLoss",
           "LinearCrossEntropyLoss"]

REDUCTIONS = ("none", "mean", "sum")
#: PyTorch's bound on the logs of BCELoss
BCE_LOG_CLAMP = -100.0
#: PyTorch's bound on the denominator of BCELoss's gradient, p (1 - p)
BCE_GRAD_EPSILON = 1e-12


def legacy_reduction(size_average, reduce, reduction):
    """PyTorch's meaning of the deprecated ``size_average``/``reduce``: when
    either is given they decide the reduction (each None meaning True), with a
    warning; otherwise ``reduction`` stands."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    reduction = "mean" if size_average and reduce else ("sum" if reduce else "none")
    warnings.warn("size_average and reduce args will be deprecated, please use "
                  "reduction='%s' instead." % reduction, UserWarning, stacklevel=3)
    return reduction


class _TorchLoss(object):
    """What every class here adds to its Gluon-style loss: PyTorch's reductions
    and arguments. ``_torch_none`` is what PyTorch's ``'none'`` gives:
    ``'elementwise'`` (gluonx's ``'none'``) or ``'sample'`` (one value per
    sample, gluonx's ``'sample'``)."""

    _optional = ()
    _torch_none = "elementwise"
    _torch_reductions = REDUCTIONS
    #: PyTorch's names of the call's inputs where they do not follow from ours
    _torch_call = None

    #: the call path adds only PyTorch's argument names (keywords) and numpy
    #: mode's 0-d result (_numpy_result) to Loss's: repeated calls invoke
    #: their graph directly (a subclass with a _dispatch of its own does not)
    _direct_ok = True

    def __init_subclass__(cls, **kwargs):
        if "_kernel" not in cls.__dict__:
            cls._kernel = _wrapped_kernel(cls)
        super().__init_subclass__(**kwargs)

    def _torch_init(self, reduction, size_average=None, reduce=None, **gluon_kwargs):
        reduction = legacy_reduction(size_average, reduce, reduction)
        if reduction not in self._torch_reductions:
            _fail(self, "reduction", "must be one of %s, got %r"
                  % (self._torch_reductions, reduction))
        gluon = {"none": "none" if self._torch_none == "elementwise" else "sample",
                 "mean": "mean", "sum": "sum", "batchmean": "mean"}[reduction]
        config = dict(self.__dict__.get("_config") or {})
        super(_TorchLoss, self).__init__(reduction=gluon, **gluon_kwargs)
        # get_config() gives this class's (PyTorch's) arguments, tensors as lists
        object.__setattr__(self, "_config", {
            k: (_vector(v).tolist() if hasattr(v, "shape") and not callable(v) else v)
            for k, v in config.items()})
        self._torch_reduction = reduction
        # 'mean'/'sum' over every element: the mean/sum over a sample's elements,
        # then over the samples (PyTorch's 'batchmean' keeps KLDivLoss's sum)
        if reduction == "mean":
            self._sample_reduce = "mean"
        elif reduction == "sum" and self._torch_none == "elementwise":
            self._sample_reduce = "sum"

    def _torch_args(self):
        """PyTorch's names of the call's inputs, in order (``forward``'s arguments)."""
        if self._torch_call is not None:
            return self._torch_call
        names = self._tensor_names()
        if names[:2] == ("input1", "input2"):
            return ("input1", "input2", "target")
        if names[1:3] == ("positive", "negative"):
            return ("anchor", "positive", "negative")
        if len(names) == 4:
            return ("log_probs", "targets", "input_lengths", "target_lengths")
        return ("input", "target", "var")[:len(names)]

    def _bind(self, args, kwargs):
        """Inputs by position or by PyTorch's names (``loss(input=x, target=y)``)."""
        if kwargs:
            ours = dict(zip(self._torch_args(), self._tensor_names()))
            for key in kwargs:
                if key not in ours and key not in self._tensor_names():
                    raise TypeError("%s got an unexpected argument '%s'; it takes %s"
                                    % (type(self).__name__, key, ", ".join(ours)))
            kwargs = {ours.get(key, key): value for key, value in kwargs.items()}
        return super(_TorchLoss, self)._bind(args, kwargs)

    def _numpy_result(self, out):
        out = super(_TorchLoss, self)._numpy_result(out)
        if self._torch_reduction != "none":
            out = out.reshape(())   # numpy mode has 0-d arrays: PyTorch's scalar
        return out


def _wrapped_kernel(cls):
    """The fused kernel of the Gluon-style loss that PyTorch wrapper ``cls``
    maps onto, or None. The operator computes that loss's per-sample values,
    which PyTorch's 'mean' and 'sum' then reduce in the base class. A
    wrapper's constructor names (``delta``, ``log_input``, ``size_average``,
    ...) only set the Gluon-style options, which the declaration still checks;
    PyTorch's 'sum' of an elementwise loss sums a sample's elements where a
    Gluon-style loss averages them: the operator's means are then scaled by
    the elements per sample."""
    from gluonx.kernels import kernel_of, _constructor_options, _MATH_METHODS
    parent = next(k for k in cls.__mro__[1:] if issubclass(k, Loss) and
                  not issubclass(k, _TorchLoss))
    kernel = kernel_of(parent)
    below = cls.__mro__[:cls.__mro__.index(parent)]
    if kernel is None or any(name in k.__dict__ and name not in k.__dict__.get("_same_math", ())
                             for k in below for name in _MATH_METHODS):
        return None   # a wrapper with math of its own (BCELoss's clamped logs)
    reduce_like = parent._sample_reduce
    when = kernel.when
    wrapped = copy.copy(kernel)
    wrapped.options = dict(kernel.options, **{name: ANY for name in
                                              (_constructor_options(cls) or ())
                                              if name not in kernel.covers})
    wrapped.covers = frozenset(wrapped.options) | kernel.covers
    # the operator's inputs as the Gluon-style loss names them: those a
    # wrapper lacks (sample_weight) are passed as absent
    wrapped.inputs = kernel.inputs or parent._inputs + parent._optional
    summed = reduce_like == "mean" and parent._kind == "elementwise"

    def fits(loss, call):
        return (loss._sample_reduce == reduce_like or (summed and loss._sample_reduce == "sum")) \
            and (when is None or when(loss, call))

    def per_sample(loss, F, out, call, inputs):
        if loss._sample_reduce == reduce_like:
            return out
        return out * float(int(np.prod(call.shape)) // call.shape[loss._batch_axis])
    wrapped.when, wrapped.after = fits, per_sample
    return wrapped


def _vector(value):
    """A constructor tensor (numpy, NDArray, torch tensor, sequence) as numpy."""
    if value is None:
        return None
    if hasattr(value, "asnumpy"):
        return value.asnumpy()
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float32)


def _as_array(value, like, shape=None):
    """A Python number or sequence as an array of ``like``'s kind (legacy or
    numpy-mode), context and dtype; ``shape``: a number filled to that shape."""
    if value is None or isinstance(value, (mx.nd.NDArray, mx.sym.Symbol)):
        return value
    if not isinstance(like, mx.nd.NDArray):
        return value
    value = np.full(shape, value) if shape is not None else np.asarray(value)
    array = mx.nd.array(value, ctx=like.context, dtype=like.dtype)
    return array.as_np_ndarray() if isinstance(like, _NP_TYPES) else array


# ---------------------------------------------------------------- regression
class L1Loss(_TorchLoss, regression.L1Loss):
    """``torch.nn.L1Loss``: :math:`|x - y|`. Maps onto :class:`gluonx.loss.L1Loss`.

    Shape: input and target any shape (the same); output a scalar, or the
    input's shape with ``reduction='none'``.
    """

    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        self._torch_init(reduction, size_average, reduce)


class MSELoss(_TorchLoss, regression.MSELoss):
    """``torch.nn.MSELoss``: :math:`(x - y)^2`. Maps onto :class:`gluonx.loss.MSELoss`
    (:class:`gluonx.loss.L2Loss` is half of it).

    Shape: as :class:`L1Loss`.
    """

    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        self._torch_init(reduction, size_average, reduce)


class HuberLoss(_TorchLoss, regression.HuberLoss):
    """``torch.nn.HuberLoss``: ``delta`` times the smooth L1 loss of ``beta=delta``.
    Maps onto :class:`gluonx.loss.HuberLoss` with ``rho=delta, weight=delta``.

    Shape: as :class:`L1Loss`.
    """

    def __init__(self, reduction="mean", delta=1.0):
        self._torch_init(reduction, rho=delta, weight=delta)


class SmoothL1Loss(_TorchLoss, regression.SmoothL1Loss):
    """``torch.nn.SmoothL1Loss``. Maps onto :class:`gluonx.loss.SmoothL1Loss`.

    Shape: as :class:`L1Loss`.
    """

    def __init__(self, size_average=None, reduce=None, reduction="mean", beta=1.0):
        self._torch_init(reduction, size_average, reduce, beta=beta)


class PoissonNLLLoss(_TorchLoss, regression.PoissonNLLLoss):
    """``torch.nn.PoissonNLLLoss``. Maps onto :class:`gluonx.loss.PoissonNLLLoss`
    with ``from_logits=log_input, compute_full=full, epsilon=eps``.

    Shape: as :class:`L1Loss`.
    """

    _torch_call = ("log_input", "target")

    _call_options = {}

    def __init__(self, log_input=True, full=False, size_average=None, eps=1e-08, reduce=None,
                 reduction="mean"):
        self._torch_init(reduction, size_average, reduce, from_logits=log_input,
                         compute_full=full, epsilon=eps)


class GaussianNLLLoss(_TorchLoss, regression.GaussianNLLLoss):
    """``torch.nn.GaussianNLLLoss``. Maps onto :class:`gluonx.loss.GaussianNLLLoss`.

    Called as ``loss(input, target, var)``; ``var`` may also be a Python number
    (imperatively). Shape: ``var`` of the input's shape, with one axis of size
    1, or without the last axis; output a scalar, or the input's shape with
    ``reduction='none'``.
    """

    def __init__(self, full=False, eps=1e-06, reduction="mean"):
        self._torch_init(reduction, full=full, eps=eps)

    def _dispatch(self, values, graph=True):
        pred = values.get("pred")
        if isinstance(values.get("var"), (int, float)) and isinstance(pred, mx.nd.NDArray):
            values = dict(values, var=_as_array(values["var"], pred, pred.shape))
        return super(GaussianNLLLoss, self)._dispatch(values, graph)


# ------------------------------------------------------------ classification
class _ClassAxis1(object):
    """PyTorch's class axis: 1 for (N, C, d1, ..., dk) inputs."""

    @staticmethod
    def _torch_class_weight(weight):
        values = _vector(weight)
        return None if values is None else values.astype(np.float32).ravel().tolist()


class CrossEntropyLoss(_TorchLoss, _ClassAxis1, classification.SoftmaxCrossEntropyLoss):
    """``torch.nn.CrossEntropyLoss``: softmax cross-entropy over axis 1.

    Maps onto :class:`gluonx.loss.SoftmaxCrossEntropyLoss` with ``axis=1,
    class_weight=weight, ignore_index=ignore_index, label_smoothing=label_smoothing``.
    The target holds class indices, shape (N,) or (N, d1, ..., dk), or
    probabilities of the input's shape (decided per call by the target's
    shape, as PyTorch; in ``mx.sym`` composition, as inside a user's
    hybridized model, shapes are unknown and the target holds class indices). ``reduction='mean'`` with class weights or ignored
    targets is PyTorch's weighted mean, :math:`\\sum w_y l / \\sum w_y` over the
    targets not ignored.

    Shape: input (N, C) or (N, C, d1, ..., dk); output a scalar, or (N, d1, ..., dk)
    with ``reduction='none'``.
    """

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean", label_smoothing=0.0):
        options = {"axis": 1, "class_weight": self._torch_class_weight(weight),
                   "ignore_index": ignore_index}
        if label_smoothing:
            options["label_smoothing"] = label_smoothing
        self._torch_init(reduction, size_average, reduce, **options)

    def _targets(self, pred, label):
        """Probabilities when the target has the input's shape (PyTorch's rule)."""
        dense = isinstance(pred, mx.nd.NDArray) and isinstance(label, mx.nd.NDArray) and \
            label.shape == pred.shape
        self._sparse_label = not dense
        self._like_pred = ("label",) if dense else ()

    def _dispatch(self, values, graph=True):
        self._targets(values.get("pred"), values.get("label"))
        return super(CrossEntropyLoss, self)._dispatch(values, graph)

    # _dispatch decides sparse or dense targets from the shapes alone, and a
    # direct call has the shapes of the checked call whose graph it reuses
    _direct_ok = True

    #: its _compute only decides sparse or dense targets, then runs the parent's
    _same_math = ("_compute",)

    def _compute(self, F, tensors, plan, params):
        # a cached graph is built later, from its plan; a call inside a user's
        # hybrid_forward on NDArrays comes here directly
        if plan.known:
            dense = plan.shapes["label"] == plan.shapes["pred"]
            self._sparse_label, self._like_pred = not dense, ("label",) if dense else ()
        elif F is mx.nd:
            self._targets(tensors.get("pred"), tensors.get("label"))
        return super(CrossEntropyLoss, self)._compute(F, tensors, plan, params)


class NLLLoss(_TorchLoss, _ClassAxis1, classification.NLLLoss):
    """``torch.nn.NLLLoss``: the negative log-likelihood of class indices
    under log-probabilities on axis 1. Maps onto :class:`gluonx.loss.NLLLoss`
    with ``axis=1, class_weight=weight, ignore_index=ignore_index``; ``'mean'``
    is PyTorch's weighted mean (see :class:`CrossEntropyLoss`).

    Shape: input (N, C) or (N, C, d1, ..., dk), target (N,) or (N, d1, ..., dk);
    output a scalar, or the target's shape with ``reduction='none'``.
    """

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean"):
        self._torch_init(reduction, size_average, reduce, axis=1,
                         class_weight=self._torch_class_weight(weight), ignore_index=ignore_index)


class _ElementWeight(object):
    """PyTorch's ``weight`` of the BCE losses: a constant broadcast to the input."""

    def _element_weight(self, weight):
        values = _vector(weight)
        if values is not None:
            self._constant("element_weight", np.asarray(values, dtype=np.float32))

    @staticmethod
    def _weighted(F, loss, element_weight):
        return loss if element_weight is None else F.broadcast_mul(loss, element_weight)


class BCELoss(_TorchLoss, _ElementWeight, classification.SigmoidBinaryCrossEntropyLoss):
    """``torch.nn.BCELoss``: binary cross-entropy of probabilities.

    Maps onto :class:`gluonx.loss.SigmoidBinaryCrossEntropyLoss` with
    ``from_sigmoid=True``, with PyTorch's numerics: each log is clamped at -100
    (so a probability of exactly 0 or 1 gives a finite loss) and the gradient
    is :math:`(p - y) / \\max(p (1 - p), 10^{-12})` (gluonx's class adds
    :math:`10^{-12}` inside the logs instead).

    Shape: as :class:`L1Loss`; ``weight`` broadcasts to the input.
    """

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean"):
        self._torch_init(reduction, size_average, reduce, from_sigmoid=True)
        self._element_weight(weight)

    def _loss(self, F, pred, label, element_weight=None):
        log_p = F.BlockGrad(F.maximum(F.log(pred), BCE_LOG_CLAMP))
        log_1mp = F.BlockGrad(F.maximum(F.log(1 - pred), BCE_LOG_CLAMP))
        # the value (and the label's gradient) from the clamped logs; pred's
        # gradient is PyTorch's closed form, through an exact zero (pred - pred)
        grad = F.BlockGrad((pred - label) / F.maximum(pred * (1 - pred), BCE_GRAD_EPSILON))
        loss = -(label * log_p + (1 - label) * log_1mp) + (pred - F.BlockGrad(pred)) * grad
        return self._weighted(F, loss, element_weight)


class BCEWithLogitsLoss(_TorchLoss, _ElementWeight, classification.SigmoidBinaryCrossEntropyLoss):
    """``torch.nn.BCEWithLogitsLoss``: binary cross-entropy of logits.

    Maps onto :class:`gluonx.loss.SigmoidBinaryCrossEntropyLoss` (``pos_weight``
    passed to its constructor). Shape: as :class:`L1Loss`; ``weight`` and
    ``pos_weight`` broadcast to the input (``pos_weight`` typically (C,)).
    """

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean",
                 pos_weight=None):
        options = {}
        if pos_weight is not None:
            options["pos_weight"] = _vector(pos_weight)
        self._torch_init(reduction, size_average, reduce, **options)
        self._element_weight(weight)

    #: its _loss only multiplies by the element weight, a constant the fused
    #: operator does not take (so with a weight the stock operators run)
    _same_math = ("_loss",)

    def _loss(self, F, pred, label, element_weight=None, **constants):
        loss = super(BCEWithLogitsLoss, self)._loss(F, pred, label, **constants)
        return self._weighted(F, loss, element_weight)


class MultiLabelSoftMarginLoss(_TorchLoss, _ClassAxis1, classification.MultiLabelSoftMarginLoss):
    """``torch.nn.MultiLabelSoftMarginLoss``. Maps onto
    :class:`gluonx.loss.MultiLabelSoftMarginLoss` with ``class_weight=weight``.

    Shape: input and target (N, C); output a scalar, or (N,) with ``reduction='none'``.
    """

    _torch_none = "sample"

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean"):
        self._torch_init(reduction, size_average, reduce,
                         class_weight=self._torch_class_weight(weight))


class MultiMarginLoss(_TorchLoss, _ClassAxis1, margin.MultiMarginLoss):
    """``torch.nn.MultiMarginLoss``. Maps onto :class:`gluonx.loss.MultiMarginLoss`
    with ``class_weight=weight``.

    Shape: input (N, C), target (N,); output a scalar, or (N,) with ``reduction='none'``.
    """

    _torch_none = "sample"

    def __init__(self, p=1, margin=1.0, weight=None, size_average=None, reduce=None,
                 reduction="mean"):
        self._torch_init(reduction, size_average, reduce, p=p, margin=margin,
                         class_weight=self._torch_class_weight(weight))


class MultiLabelMarginLoss(_TorchLoss, margin.MultiLabelMarginLoss):
    """``torch.nn.MultiLabelMarginLoss``. Maps onto :class:`gluonx.loss.MultiLabelMarginLoss`.

    Shape: input (N, C), target (N, C) class indices padded with -1; output a
    scalar, or (N,) with ``reduction='none'``.
    """

    _torch_none = "sample"

    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        self._torch_init(reduction, size_average, reduce)


class SoftMarginLoss(_TorchLoss, margin.SoftMarginLoss):
    """``torch.nn.SoftMarginLoss``. Maps onto :class:`gluonx.loss.SoftMarginLoss`.

    Shape: as :class:`L1Loss` (targets 1 or -1).
    """

    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        self._torch_init(reduction, size_average, reduce)


# ---------------------------------------------------------------- divergence
class KLDivLoss(_TorchLoss, divergence.KLDivLoss):
    """``torch.nn.KLDivLoss``: :math:`y (\\log y - x)` for log-probabilities
    :math:`x` (targets :math:`y` probabilities, or log-probabilities with
    ``log_target=True``). Maps onto :class:`gluonx.loss.KLDivLoss` with
    ``from_logits=True``.

    ``reduction='batchmean'`` is the sum divided by the batch size (the KL
    divergence); ``'mean'`` divides by the number of elements and, as in
    PyTorch, warns that it is not the KL divergence.

    Shape: as :class:`L1Loss`.
    """

    _torch_reductions = REDUCTIONS + ("batchmean",)

    def __init__(self, size_average=None, reduce=None, reduction="mean", log_target=False):
        options = {"from_logits": True}
        if log_target:
            options["log_target"] = True
        self._torch_init(reduction, size_average, reduce, **options)
        if self._torch_reduction == "mean":
            warnings.warn("reduction: 'mean' divides the total loss by both the batch size "
                          "and the support size. 'batchmean' divides only by the batch size, "
                          "and aligns with the KL div math definition.", UserWarning,
                          stacklevel=2)


# ----------------------------------------------------------------- embedding
class MarginRankingLoss(_TorchLoss, embedding.MarginRankingLoss):
    """``torch.nn.MarginRankingLoss``. Maps onto :class:`gluonx.loss.MarginRankingLoss`.

    Shape: input1, input2 and target (N,) (or any one shape); output a scalar,
    or (N,) with ``reduction='none'``.
    """

    def __init__(self, margin=0.0, size_average=None, reduce=None, reduction="mean"):
        self._torch_init(reduction, size_average, reduce, margin=margin)


class HingeEmbeddingLoss(_TorchLoss, embedding.HingeEmbeddingLoss):
    """``torch.nn.HingeEmbeddingLoss``. Maps onto :class:`gluonx.loss.HingeEmbeddingLoss`.

    Shape: as :class:`L1Loss` (targets 1 or -1).
    """

    def __init__(self, margin=1.0, size_average=None, reduce=None, reduction="mean"):
        self._torch_init(reduction, size_average, reduce, margin=margin)


class CosineEmbeddingLoss(_TorchLoss, embedding.CosineEmbeddingLoss):
    """``torch.nn.CosineEmbeddingLoss``. Maps onto :class:`gluonx.loss.CosineEmbeddingLoss`.

    Shape: input1 and input2 (N, D), target (N,) of 1 or -1; output a scalar,
    or (N,) with ``reduction='none'``.
    """

    def __init__(self, margin=0.0, size_average=None, reduce=None, reduction="mean"):
        self._torch_init(reduction, size_average, reduce, margin=margin)


class TripletMarginLoss(_TorchLoss, embedding.TripletMarginLoss):
    """``torch.nn.TripletMarginLoss``. Maps onto :class:`gluonx.loss.TripletMarginLoss`.

    Shape: anchor, positive and negative (N, D); output a scalar, or (N,) with
    ``reduction='none'``.
    """

    def __init__(self, margin=1.0, p=2.0, eps=1e-06, swap=False, size_average=None,
                 reduce=None, reduction="mean"):
        self._torch_init(reduction, size_average, reduce, margin=margin, p=p, eps=eps,
                         swap=swap)


class TripletMarginWithDistanceLoss(_TorchLoss, embedding.TripletMarginWithDistanceLoss):
    """``torch.nn.TripletMarginWithDistanceLoss``. Maps onto
    :class:`gluonx.loss.TripletMarginWithDistanceLoss`; ``distance_function(x1, x2)``
    written with operators and methods common to NDArray and Symbol, a
    function ``f(F, x1, x2)``, or a HybridBlock.

    Shape: as :class:`TripletMarginLoss`.
    """

    def __init__(self, distance_function=None, margin=1.0, swap=False, reduction="mean"):
        self._torch_init(reduction, distance_function=distance_function, margin=margin,
                         swap=swap)


# ------------------------------------------------------------------ sequence
class CTCLoss(_TorchLoss, sequence.CTCLoss):
    """``torch.nn.CTCLoss``: connectionist temporal classification of
    log-probabilities ``(T, N, C)``.

    Maps onto :class:`gluonx.loss.CTCLoss` with ``layout='TNC'`` and the blank
    first (``blank=0``, ``blank_label='first'``) or last (any other ``blank``:
    a blank inside the alphabet is moved to the end of the class axis, and the
    targets above it renumbered, so every class index is allowed), and
    ``zero_infinity``. Called as
    ``loss(log_probs, targets, input_lengths, target_lengths)``: targets padded
    ``(N, S)`` or concatenated ``(sum(target_lengths),)``; the lengths ``(N,)``
    (NDArrays, or Python sequences imperatively). ``'mean'`` divides each
    sample's loss by its target length, then averages (PyTorch's 'mean').

    gluonx's CTC normalises its input itself; for log-probabilities (a
    ``log_softmax`` output, as PyTorch requires) that changes nothing, and the
    gradient is PyTorch's.

    Shape: output a scalar, or (N,) with ``reduction='none'``.
    """

    _inputs = ("pred", "label", "pred_lengths", "label_lengths")
    _optional = ()

    def __init__(self, blank=0, reduction="mean", zero_infinity=False):
        if not isinstance(blank, (int, np.integer)) or blank < 0:
            _fail(self, "blank", "must be a class index >= 0, got %r" % (blank,))
        options = {"layout": "TNC", "label_layout": "NT"}
        if blank == 0:
            options["blank_label"] = "first"
        if zero_infinity:
            options["zero_infinity"] = True
        self._torch_init(reduction, **options)
        self._blank = int(blank)

    def _dispatch(self, values, graph=True):
        pred = values.get("pred")
        values = dict(values, **{k: _as_array(values.get(k), pred)
                                 for k in ("pred_lengths", "label_lengths")})
        return super(CTCLoss, self)._dispatch(values, graph)

    @staticmethod
    def _concatenated(plan):
        return plan.known and len(plan.shapes["label"]) == 1

    @staticmethod
    def _width(plan):
        """The padded width of concatenated targets: their count, at most T
        (MXNet's CTC takes no more labels than frames; a longer target is
        infeasible anyway)."""
        return min(plan.shapes["label"][0], plan.shapes["pred"][0])

    def _padded_plan(self, plan):
        """The plan as seen by gluonx's CTC: a concatenated target is (N, width)."""
        if not self._concatenated(plan) or len(plan.shapes["pred"]) != 3:
            return plan
        padded = copy.copy(plan)
        padded.shapes = dict(plan.shapes)
        padded.shapes["label"] = (plan.shapes["pred"][1], self._width(plan))
        return padded

    def _check_shapes(self, plan):
        pred = plan.shapes["pred"]
        if len(pred) == 3 and self._blank >= pred[2]:
            _fail(self, "blank", "is %d, not a class of the %d in log_probs %s"
                  % (self._blank, pred[2], pred))
        if self._concatenated(plan) and len(pred) == 3 and plan.shapes["label"][0] == 0:
            _fail(self, "label", "is empty; concatenated targets need at least one symbol")
        super(CTCLoss, self)._check_shapes(self._padded_plan(plan))

    def _check_values(self, tensors, plan):
        if self._concatenated(plan):
            lengths = tensors["label_lengths"].asnumpy().astype(np.int64).ravel()
            flat = tensors["label"].asnumpy()
            if lengths.sum() > flat.shape[0] or (lengths < 0).any():
                _fail(self, "label_lengths", "sums to %d, more than the %d concatenated "
                      "targets" % (lengths.sum(), flat.shape[0]))
            width = self._width(plan)
            if lengths.max(initial=0) > width:
                _fail(self, "label_lengths", "holds %d, more than the %d frames of the input"
                      % (lengths.max(), plan.shapes["pred"][0]))
            rows = np.zeros((lengths.shape[0], width), dtype=flat.dtype)
            offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
            for n, (start, size) in enumerate(zip(offsets, lengths)):
                rows[n, :size] = flat[start:start + size]
            tensors = dict(tensors, label=mx.nd.array(rows, dtype=flat.dtype))
        if self._inner_blank(plan):
            # a padded row may hold anything past its length: check the used part only
            rows = tensors["label"].asnumpy()
            lengths = tensors["label_lengths"].asnumpy().astype(np.int64).ravel()
            if any((rows[n, :max(0, size)] == self._blank).any() for n, size in enumerate(lengths)):
                _fail(self, "targets", "holds the blank (%d); targets must be other classes"
                      % self._blank)
            tensors = dict(tensors, label=self._renumbered(mx.nd, tensors["label"]))
        super(CTCLoss, self)._check_values(tensors, self._padded_plan(plan))

    def _inner_blank(self, plan):
        """The blank is neither the first nor the last class of this call."""
        pred = plan.shapes["pred"]
        return len(pred) == 3 and 0 < self._blank < pred[2] - 1

    def _renumbered(self, F, label):
        """Targets with the blank moved to the end: classes above it move down one."""
        return F.where(label > self._blank, label - 1, label)

    def _blank_last(self, F, pred):
        """log_probs with the blank's column moved to the end of the class axis."""
        b = self._blank
        return F.concat(F.slice_axis(pred, axis=2, begin=0, end=b),
                        F.slice_axis(pred, axis=2, begin=b + 1, end=None),
                        F.slice_axis(pred, axis=2, begin=b, end=b + 1), dim=2)

    def _compute(self, F, tensors, plan, params):
        if self._inner_blank(plan):
            tensors = dict(tensors, pred=self._blank_last(F, tensors["pred"]),
                           label=self._renumbered(F, tensors["label"]))
        if self._concatenated(plan):
            tensors = dict(tensors, label=_padded_targets(F, tensors["label"],
                                                          tensors["label_lengths"],
                                                          self._width(plan)))
            plan = self._padded_plan(plan)
        return super(CTCLoss, self)._compute(F, tensors, plan, params)

    def _loss(self, F, pred, label, pred_lengths=None, label_lengths=None):
        loss = super(CTCLoss, self)._loss(F, pred, label, pred_lengths, label_lengths)
        if self._torch_reduction == "mean":
            lengths = F.cast(F.reshape(label_lengths, shape=(-1,)), dtype="float32")
            loss = loss / F.maximum(lengths, 1)
        return loss


def _padded_targets(F, flat, lengths, width):
    """Concatenated targets (S,) -> (N, width), row n starting at its offset
    (the sum of the lengths before it); entries past a row's length are padding."""
    lengths = F.cast(F.reshape(lengths, shape=(-1,)), dtype="float32")
    samples = F.contrib.arange_like(lengths, axis=0)
    before = F.broadcast_lesser(F.reshape(samples, shape=(1, -1)),
                                F.reshape(samples, shape=(-1, 1)))
    offsets = F.sum(F.broadcast_mul(before, F.reshape(lengths, shape=(1, -1))), axis=1)
    columns = F.cast(F.slice_axis(F.contrib.arange_like(flat, axis=0), axis=0, begin=0,
                                  end=width), dtype="float32")
    index = F.broadcast_add(F.reshape(offsets, shape=(-1, 1)), F.reshape(columns, shape=(1, -1)))
    return F.take(flat, index, mode="clip")


# ------------------------------------------------------------- output layer
_LinearSoftmaxCE = getattr(_package, "LinearSoftmaxCELoss", None)

if _LinearSoftmaxCE is not None:
    class LinearCrossEntropyLoss(_TorchLoss, _ClassAxis1, _LinearSoftmaxCE):
        """``torch.nn.LinearCrossEntropyLoss``: a linear output layer and
        cross-entropy, computed chunk by chunk. Maps onto
        :class:`gluonx.loss.LinearSoftmaxCELoss` (``in_units=in_features``,
        ``use_bias=bias``, ``class_weight=weight``); ``ignore_index=None``
        means -100, as PyTorch. ``out_features`` other than ``()`` is not
        supported; ``device``, ``dtype`` and ``options`` are accepted and ignored.

        Shape: input (N, in_features), target (N,); output a scalar, or (N,)
        with ``reduction='none'``.
        """

        def __init__(self, in_features, num_classes, out_features=(), bias=False, device=None,
                     dtype=None, reduction="mean", weight=None, ignore_index=None,
                     label_smoothing=0.0, options=None):
            if tuple(out_features) != ():
                _fail(self, "out_features", "must be () (K-dimensional targets are not "
                      "supported), got %r" % (out_features,))
            kwargs = {"in_units": in_features, "num_classes": num_classes, "use_bias": bias,
                      "class_weight": self._torch_class_weight(weight),
                      "ignore_index": -100 if ignore_index is None else ignore_index}
            if label_smoothing:
                kwargs["label_smoothing"] = label_smoothing
            self._torch_init(reduction, **kwargs)
else:
    class LinearCrossEntropyLoss(object):
        """``torch.nn.LinearCrossEntropyLoss``: needs
        ``gluonx.loss.LinearSoftmaxCELoss``, which this gluonx does not have."""

        def __init__(self, *args, **kwargs):
            raise NotImplementedError("gluonx.loss.torch.LinearCrossEntropyLoss maps onto "
                                      "gluonx.loss.LinearSoftmaxCELoss, which this gluonx "
                                      "does not have")

