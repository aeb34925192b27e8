"""Classification losses: sigmoid and softmax cross-entropy, negative log-likelihood,
multi-label soft margin, hinge, logistic, categorical hinge, generalized cross-entropy, and
the chunked linear + softmax CE."""
import mxnet as mx
import numpy as np

from mxnet.gluon import loss as mx_loss

from ..kernels import ANY, Kernel
from ._base import Loss, _broadcasts_onto, _fail, _squeezed
from . import _linear_ce  # noqa: F401  (registers the chunked linear + softmax CE operator)

__all__ = ["SigmoidBinaryCrossEntropyLoss", "SigmoidBCELoss", "SoftmaxCrossEntropyLoss",
           "SoftmaxCELoss", "HingeLoss", "SquaredHingeLoss", "LogisticLoss",
           "CategoricalHingeLoss", "GeneralizedCELoss", "LinearSoftmaxCELoss", "NLLLoss",
           "MultiLabelSoftMarginLoss"]

#: added to probabilities before their log when the input is already a probability
PROBABILITY_EPSILON = 1e-12


class SigmoidBinaryCrossEntropyLoss(Loss, mx_loss.SigmoidBinaryCrossEntropyLoss):
    r"""Binary cross-entropy of a sigmoid output against 0/1 labels.

    .. math::
        p = \sigma(\text{pred}),\qquad
        L = -\big(w_+ \, z \log p + (1 - z) \log(1 - p)\big)

    where :math:`z` is the label, or with ``label_smoothing`` :math:`\varepsilon`
    the smoothed label :math:`z (1 - \varepsilon) + \varepsilon / 2` (the two-class
    case of PyTorch's cross-entropy smoothing: a 1 becomes
    :math:`1 - \varepsilon/2`, a 0 becomes :math:`\varepsilon/2`).
    With logits (the default) it is evaluated stably as
    :math:`(1 - z) x + (1 + (w_+ - 1) z)\,\mathrm{softplus}(-x)`, whose
    gradient is :math:`\sigma(x)(1 + (w_+ - 1) z) - w_+ z` everywhere, also
    at :math:`x = 0`.

    Parameters
    ----------
    from_sigmoid : bool, default False
        Whether ``pred`` is already a probability (in [0, 1]).
    weight : float or None
    batch_axis : int, default 0
    reduction : {'sample', 'mean', 'sum', 'none'}, default 'sample'
    pos_weight : float, array-like or None
        The default :math:`w_+` (broadcastable to pred, for example one per
        class, as PyTorch's ``BCEWithLogitsLoss(pos_weight=...)``); a
        ``pos_weight`` call input replaces it.
    label_smoothing : float, default 0.
        :math:`\varepsilon` in [0, 1].

    Inputs:
        - **pred**: logits (or probabilities), any shape.
        - **label**: targets in [0, 1], pred's shape.
        - **sample_weight**: optional, broadcastable to pred, or shape (batch_size,).
        - **pos_weight**: optional weight :math:`w_+` of the positive term,
          broadcastable to pred (for example one per class).

    Outputs:
        - **loss**: shape (batch_size,).

    Example::

        >>> loss = gluonx.loss.SigmoidBCELoss()
        >>> loss(mx.nd.zeros((1, 2)), mx.nd.array([[0, 1]]))  # [0.6931]
    """

    _optional = ("sample_weight", "pos_weight")
    _kernel = Kernel("gluonx_sigmoid_bce_loss", attrs=("from_sigmoid",),
                     weights={"pos_weight": "pred"},
                     options={"label_smoothing": 0, "pos_weight": None})

    def __init__(self, from_sigmoid=False, weight=None, batch_axis=0, reduction="sample",
                 pos_weight=None, label_smoothing=0., **kwargs):
        super(SigmoidBinaryCrossEntropyLoss, self).__init__(weight, batch_axis, reduction,
                                                            **kwargs)
        if not 0 <= label_smoothing <= 1:
            _fail(self, "label_smoothing", "must be in [0, 1], got %r" % (label_smoothing,))
        self._from_sigmoid = from_sigmoid
        self._label_smoothing = float(label_smoothing)
        self._pos_weight_shape = None
        if pos_weight is not None:
            values = np.asarray(pos_weight, dtype=np.float32)
            if values.size == 0 or not np.isfinite(values).all():
                _fail(self, "pos_weight", "must hold finite numbers, got %r" % (pos_weight,))
            values = values.reshape(values.shape or (1,))
            self._pos_weight_shape = values.shape
            self._config["pos_weight"] = values.tolist() if values.size > 1 else \
                float(values.ravel()[0])
            self._constant("default_pos_weight", values)

    def _check_shapes(self, plan):
        if "pos_weight" in plan.shapes:
            plan.align["pos_weight"] = self._align_like(
                "pos_weight", plan.shapes["pos_weight"], plan.shapes["pred"])
        elif self._pos_weight_shape is not None and \
                not _broadcasts_onto(self._pos_weight_shape, plan.shapes["pred"]):
            _fail(self, "pos_weight", "(the constructor's) has shape %s, which does not "
                  "broadcast to pred's shape %s" % (self._pos_weight_shape, plan.shapes["pred"]))

    def _check_values(self, tensors, plan):
        if self._from_sigmoid:
            pred = tensors["pred"].asnumpy()
            if not ((pred >= 0) & (pred <= 1)).all():
                _fail(self, "pred", "must hold probabilities in [0, 1] when from_sigmoid=True")

    def _loss(self, F, pred, label, pos_weight=None, default_pos_weight=None):
        if pos_weight is None:
            pos_weight = default_pos_weight
        eps = self._label_smoothing
        if eps > 0:
            label = label * (1 - eps) + eps / 2
        if self._from_sigmoid:
            positive = label * F.log(pred + PROBABILITY_EPSILON)
            if pos_weight is not None:
                positive = F.broadcast_mul(positive, pos_weight)
            return -(positive + (1 - label) * F.log(1 - pred + PROBABILITY_EPSILON))
        if pos_weight is None:
            return F.Activation(pred, act_type="softrelu") - pred * label
        log_weight = 1 + F.broadcast_mul(label, pos_weight - 1)
        return (1 - label) * pred + log_weight * F.Activation(-pred, act_type="softrelu")


SigmoidBCELoss = SigmoidBinaryCrossEntropyLoss


def _kernel_ignore_index(loss):
    """``ignore_index`` as softmax CE's operator attribute: 0 when unset; an
    integer below 2**24 (which labels of every dtype compare with exactly, as
    the stock operators do); None otherwise, which keeps the stock path (they
    compare integer labels with the value cast to the label's dtype)."""
    value = loss._ignore_index
    if value is None:
        return 0
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if value == np.floor(value) and abs(value) < 2 ** 24 else None


def _kernel_ignore_fits(loss, call):
    """Integer labels: an ``ignore_index`` outside their dtype's range would wrap
    in the stock comparison; such calls keep the stock path."""
    dtype = np.dtype(call.dtypes["label"])
    if loss._ignore_index is None or dtype.kind not in "iu":
        return True
    info = np.iinfo(dtype)
    return info.min <= loss._ignore_index <= info.max


class SoftmaxCrossEntropyLoss(Loss, mx_loss.SoftmaxCrossEntropyLoss):
    r"""Cross-entropy between a softmax over ``axis`` and the labels.

    .. math::
        \log p = \mathrm{log\_softmax}(\text{pred}),\qquad
        L = -\sum_c q_c \, w_c \log p_c

    where :math:`q` is the one-hot label (``sparse_label=True``) or the
    given distribution, optionally smoothed as in PyTorch,
    :math:`q \leftarrow (1 - \varepsilon) q + \varepsilon / C`, and
    :math:`w` the optional class weights (1 by default).

    Positions whose sparse label is ``ignore_index``, and positions
    :math:`t \ge` ``valid_length[n]``, are *masked*: they contribute 0 and get
    gradient 0, and are left out of every mean. With masking, a sample's value
    is the mean over its unmasked positions (0 for a sample with none), and
    ``reduction='mean'`` is :math:`\sum L / \sum m` over the whole batch,
    where :math:`m` is 1 at an unmasked position (0 if there is none). With
    ``class_weight`` and sparse labels, ``reduction='mean'`` is PyTorch's
    weighted mean :math:`\sum L / \sum m \, w_y`. Without these options every
    output is exactly ``mxnet.gluon.loss``'s.

    Parameters
    ----------
    axis : int, default -1
        The class axis.
    sparse_label : bool, default True
        Whether ``label`` holds class indices (else a distribution over classes).
    from_logits : bool, default False
        Whether ``pred`` already holds log-probabilities.
    weight : float or None
    batch_axis : int, default 0
    label_smoothing : float, default 0.
        :math:`\varepsilon` in [0, 1].
    class_weight : sequence of float or None
        One weight per class (length C), any ``axis``.
    ignore_index : int or None
        Sparse labels equal to it are masked (as PyTorch's ``ignore_index``).
        With ``sparse_label=False`` it has no effect (as in PyTorch).
    reduction : {'sample', 'mean', 'sum', 'none'}, default 'sample'
        ``'none'`` gives pred's shape without the class axis (masked
        positions 0).

    Inputs:
        - **pred**: scores, shape (..., C, ...) with C along ``axis``.
        - **label**: class indices, pred's shape without ``axis`` (or with it
          of size 1); or a distribution with pred's shape.
        - **sample_weight**: optional, broadcastable to pred's shape with
          ``axis`` of size 1, or shape (batch_size,). It scales the loss, not
          the denominators of the means.
        - **valid_length**: optional, shape (batch_size,), for 3-axis ``pred``
          (batch, time and class axes in any order): the number of valid time
          steps of each sample, integers in [0, T]; labels at the masked steps
          are not checked.

    Outputs:
        - **loss**: shape (batch_size,).

    Example::

        >>> loss = gluonx.loss.SoftmaxCELoss()
        >>> loss(mx.nd.array([[2., 0., 0.]]), mx.nd.array([0]))  # [0.2395]
    """

    _kind = "contract"
    _optional = ("sample_weight", "valid_length")
    # The kernel forms the masked-mean denominators itself: 'average_valid'
    # divides a sample by its unmasked positions, 'batch_mean' (reduction
    # 'mean') scales the samples so that their mean is sum(L) / sum(m w_y).
    _kernel = Kernel("gluonx_softmax_ce_loss",
                     attrs={"sparse_label": "sparse_label", "from_logits": "from_logits",
                            "label_smoothing": "label_smoothing",
                            "ignore": lambda self: bool(self._sparse_label and
                                                        self._ignore_index is not None),
                            "ignore_index": _kernel_ignore_index,
                            "average_valid": lambda self: True,
                            "batch_mean": lambda self: self._reduction == "mean",
                            "gamma": lambda self: 0},
                     inputs=("pred", "label", "sample_weight", "valid_length", "class_weight"),
                     options={"axis": ANY, "class_weight": ANY, "ignore_index": ANY},
                     any_dtype=("label", "valid_length"),  # a dense label is checked below
                     when=lambda self, call: call.ndim >= 2 and call.last_axis(self._axis) and (
                         self._sample_reduce == "mean") and _kernel_ignore_fits(self, call) and (
                         self._sparse_label or call.dtypes["label"] == call.dtypes["pred"]))

    @property
    def _like_pred(self):
        """A dense label has pred's shape; sparse class indices do not (derived
        from ``_sparse_label`` on every call, so the two never disagree, unless
        a subclass sets its own)."""
        own = self.__dict__.get("_own_like_pred")
        if own is not None:
            return own
        return () if self._sparse_label else ("label",)

    @_like_pred.setter
    def _like_pred(self, value):
        self.__dict__["_own_like_pred"] = tuple(value)

    def __init__(self, axis=-1, sparse_label=True, from_logits=False, weight=None,
                 batch_axis=0, label_smoothing=0., class_weight=None, ignore_index=None,
                 reduction="sample", **kwargs):
        super(SoftmaxCrossEntropyLoss, self).__init__(weight, batch_axis, reduction, **kwargs)
        if not 0 <= label_smoothing <= 1:
            _fail(self, "label_smoothing", "must be in [0, 1], got %r" % (label_smoothing,))
        self._axis = axis
        self._contract_axis = axis
        self._sparse_label = sparse_label
        self._from_logits = from_logits
        self._label_smoothing = float(label_smoothing)
        self._ignore_index = ignore_index
        self._hold_class_weight(class_weight, shape=(1, -1))

    def _classes(self, plan):
        shape = plan.shapes["pred"]
        return shape[self._axis % len(shape)]

    def _casts(self, name):
        return name != "valid_length"

    def _time_axis(self, ndim=3):
        """The axis of a 3-axis pred that is neither the batch nor the class axis."""
        used = {self._batch_axis % ndim, self._axis % ndim}
        return [a for a in range(ndim) if a not in used][0]

    def _check_shapes(self, plan):
        pred = plan.shapes["pred"]
        classes = self._classes(plan)
        self._check_class_weight(classes)
        if "valid_length" in plan.shapes:
            if len(pred) != 3 or self._batch_axis % 3 == self._axis % 3:
                _fail(self, "valid_length", "needs pred with 3 axes (batch, time, class), "
                      "got pred of shape %s" % (pred,))
            batch = pred[self._batch_axis % 3]
            if int(np.prod(plan.shapes["valid_length"])) != batch or \
                    len(_squeezed(plan.shapes["valid_length"])) > 1:
                _fail(self, "valid_length", "has shape %s, expected (%d,): one length per "
                      "sample" % (plan.shapes["valid_length"], batch))
        if self._sparse_label:
            axis = self._axis % len(pred)
            expected = pred[:axis] + pred[axis + 1:]
            label = plan.shapes["label"]
            if _squeezed_equal(label, expected) or label == pred[:axis] + (1,) + pred[axis + 1:]:
                return
            _fail(self, "label", "has shape %s, expected class indices of shape %s "
                  "(pred's shape %s without axis %d)" % (label, expected, pred, self._axis))

    def _length_mask(self, tensors, plan):
        """numpy (pred's shape without the class axis): False at steps >= valid_length."""
        pred = plan.shapes["pred"]
        lengths = tensors["valid_length"].asnumpy().astype(np.float64).ravel()
        frames = pred[self._time_axis()]
        if not (np.isfinite(lengths).all() and (lengths == np.floor(lengths)).all()
                and (lengths >= 0).all() and (lengths <= frames).all()):
            _fail(self, "valid_length", "must hold integers in [0, %d], got %s"
                  % (frames, lengths.tolist()))
        shape = [1, 1, 1]
        shape[self._time_axis()] = frames
        steps = np.arange(frames).reshape(shape)
        shape = [1, 1, 1]
        shape[self._batch_axis % 3] = -1
        keep = np.broadcast_to(steps < lengths.reshape(shape),
                               pred[:self._axis % 3] + (1,) + pred[self._axis % 3 + 1:])
        return np.squeeze(keep, axis=self._axis % 3)

    def _check_values(self, tensors, plan):
        if not self._sparse_label:
            if "valid_length" in tensors:
                self._length_mask(tensors, plan)
            return
        label = tensors["label"].asnumpy()
        classes = self._classes(plan)
        valid = (label >= 0) & (label < classes) & (label == np.floor(label))
        if self._ignore_index is not None:
            valid |= label == self._ignore_index
        masked = self._masked_out(tensors, plan)
        if masked is not None:  # e.g. label -1 with sample_weight (label >= 0), as GluonCV does
            valid |= masked.reshape(label.shape)
        if "valid_length" in tensors:   # labels of the masked steps are not used
            valid |= ~self._length_mask(tensors, plan).reshape(label.shape)
        if not valid.all():
            bad = label[~valid].ravel()[0]
            _fail(self, "label", "holds %r; class indices must be integers in [0, %d)"
                  % (bad, classes))

    def _along_axis(self, F, values, like):
        """Class weights (1, C) shaped to broadcast along ``axis`` of ``like``."""
        if self._axis < 0:
            return F.reshape(values, shape=(-1,) + (1,) * (-self._axis - 1))
        # a non-negative axis of an input of unknown rank: take the shape from it
        return F.reshape_like(values, F.sum(like, axis=self._axis, exclude=True, keepdims=True))

    def _loss(self, F, pred, label, valid_length=None, class_weight=None):
        axis = self._axis
        eps = self._label_smoothing
        logp = pred if self._from_logits else F.log_softmax(pred, axis=axis)
        weighted = logp
        if class_weight is not None and (eps > 0 or not self._sparse_label):
            weighted = F.broadcast_mul(logp, self._along_axis(F, class_weight, logp))
        if self._sparse_label:
            loss = -F.pick(logp, label, axis=axis, keepdims=True)
            if class_weight is not None:   # w_y by a gather, not a pass over the classes
                w_y = F.take(F.reshape(class_weight, shape=(-1,)), label)
                loss = loss * F.reshape_like(w_y, loss)
        else:
            loss = -F.sum(weighted * label, axis=axis, keepdims=True)
        if eps > 0:
            loss = loss * (1 - eps) - F.mean(weighted, axis=axis, keepdims=True) * eps
        masked = self._sparse_label and self._ignore_index is not None
        weighted_mean = class_weight is not None and self._sparse_label and \
            self._reduction == "mean"
        if not (masked or valid_length is not None or weighted_mean):
            return loss
        count = F.ones_like(loss)
        if masked:
            count = F.where(F.reshape_like(label, loss) != self._ignore_index, count,
                            F.zeros_like(loss))
        if valid_length is not None:
            count = F.broadcast_mul(count, self._steps(F, count, valid_length))
        if masked or valid_length is not None:
            loss = F.where(count, loss, F.zeros_like(loss))
        total = count
        if weighted_mean:
            picked = F.take(F.reshape(class_weight, shape=(-1,)), label)
            total = count * F.reshape_like(picked, count)
        return loss, (count, total)

    def _steps(self, F, like, valid_length):
        """1 where a step of ``like`` (3 axes, class axis 1) is < valid_length, else 0."""
        batch, time = self._batch_axis % 3, self._time_axis()
        grid = F.squeeze(like, axis=self._axis % 3)          # (batch, time) in their order
        keep = F.SequenceMask(grid, F.reshape(valid_length, shape=(-1,)),
                              use_sequence_length=True, value=0, axis=0 if time < batch else 1)
        return F.reshape_like(keep, like)


def _squeezed_equal(a, b):
    return _squeezed(a) == _squeezed(b) and int(np.prod(a)) == int(np.prod(b))


SoftmaxCELoss = SoftmaxCrossEntropyLoss


class HingeLoss(Loss, mx_loss.HingeLoss):
    r"""Hinge loss for labels in {-1, 1}.

    .. math:: L = \max(0, \text{margin} - \text{pred} \cdot \text{label})

    Parameters
    ----------
    margin : float, default 1
    weight, batch_axis, reduction : as in :class:`L2Loss` (weight defaults to None).

    Inputs: **pred**, **label** (pred's shape, values -1 or 1), optional **sample_weight**.
    Outputs: **loss**, shape (batch_size,).

    Example::

        >>> gluonx.loss.HingeLoss()(mx.nd.array([[0.5, 2.]]), mx.nd.array([[1, 1]]))  # [0.25]
    """

    _kernel = Kernel("gluonx_hinge_loss", attrs=("margin",))

    def __init__(self, margin=1, weight=None, batch_axis=0, reduction="sample", **kwargs):
        super(HingeLoss, self).__init__(weight, batch_axis, reduction, **kwargs)
        self._margin = margin

    def _loss(self, F, pred, label):
        return F.relu(self._margin - pred * label)


class SquaredHingeLoss(Loss, mx_loss.SquaredHingeLoss):
    r"""Squared hinge loss for labels in {-1, 1}.

    .. math:: L = \max(0, \text{margin} - \text{pred} \cdot \text{label})^2

    Parameters, inputs and outputs as in :class:`HingeLoss`.

    Example::

        >>> gluonx.loss.SquaredHingeLoss()(mx.nd.array([[0.5]]), mx.nd.array([[1]]))  # [0.25]
    """

    _kernel = Kernel("gluonx_squared_hinge_loss", attrs=("margin",))

    def __init__(self, margin=1, weight=None, batch_axis=0, reduction="sample", **kwargs):
        super(SquaredHingeLoss, self).__init__(weight, batch_axis, reduction, **kwargs)
        self._margin = margin

    def _loss(self, F, pred, label):
        return F.square(F.relu(self._margin - pred * label))


class LogisticLoss(Loss, mx_loss.LogisticLoss):
    r"""Logistic loss of logits against binary labels.

    .. math:: L = \log(1 + e^{\text{pred}}) - \text{pred} \cdot z

    with :math:`z = (\text{label} + 1) / 2` for ``label_format='signed'``
    (labels in {-1, 1}) and :math:`z = \text{label}` for ``'binary'``
    (labels in {0, 1}). The gradient is :math:`\sigma(\text{pred}) - z`, also
    at pred = 0.

    Parameters
    ----------
    weight : float or None
    batch_axis : int, default 0
    label_format : {'signed', 'binary'}, default 'signed'
    reduction : {'sample', 'mean', 'sum', 'none'}, default 'sample'

    Inputs: **pred**, **label** (pred's shape), optional **sample_weight**.
    Outputs: **loss**, shape (batch_size,).

    Example::

        >>> gluonx.loss.LogisticLoss()(mx.nd.zeros((1, 1)), mx.nd.array([[1]]))  # [0.6931]
    """

    _kernel = Kernel("gluonx_logistic_loss",
                     attrs={"signed": lambda self: self._label_format == "signed"},
                     options={"label_format": ("signed", "binary")})

    def __init__(self, weight=None, batch_axis=0, label_format="signed", reduction="sample",
                 **kwargs):
        super(LogisticLoss, self).__init__(weight, batch_axis, reduction, **kwargs)
        if label_format not in ("signed", "binary"):
            _fail(self, "label_format", "must be 'signed' or 'binary', got %r" % (label_format,))
        self._label_format = label_format

    def _loss(self, F, pred, label):
        if self._label_format == "signed":
            label = (label + 1) * 0.5
        return F.Activation(pred, act_type="softrelu") - pred * label


def _check_class_index_shape(loss, plan, axis, name="label"):
    """``name`` holds class indices: pred's shape without ``axis`` (or with it of size 1)."""
    pred = plan.shapes["pred"]
    axis = axis % len(pred)
    expected = pred[:axis] + pred[axis + 1:]
    label = plan.shapes[name]
    if not (_squeezed_equal(label, expected) or label == pred[:axis] + (1,) + pred[axis + 1:]):
        _fail(loss, name, "has shape %s, expected class indices of shape %s "
              "(pred's shape %s without axis %d)" % (label, expected, pred, axis))


def _check_class_index_values(loss, label, classes, ignore_index=None, name="label"):
    """``label`` (an NDArray) holds integers in [0, classes) or ``ignore_index``."""
    label = label.asnumpy()
    valid = (label >= 0) & (label < classes) & (label == np.floor(label))
    if ignore_index is not None:
        valid |= label == ignore_index
    if not valid.all():
        bad = label[~valid].ravel()[0]
        _fail(loss, name, "holds %r; class indices must be integers in [0, %d)%s"
              % (bad, classes, "" if ignore_index is None else
                 " (or ignore_index=%r)" % (ignore_index,)))


def _check_probabilities(loss, tensor, name, option):
    values = tensor.asnumpy()
    if not ((values >= 0) & (values <= 1)).all():
        _fail(loss, name, "must hold probabilities in [0, 1] when %s" % option)


class CategoricalHingeLoss(Loss):
    r"""Multi-class hinge loss of scores against one-hot labels (Keras' ``CategoricalHinge``).

    .. math::
        L = \max\Big(0,\; \text{margin} + \max_c \big((1 - y_c)\, \text{pred}_c\big)
                     - \sum_c y_c\, \text{pred}_c\Big)

    over the class axis ``axis``. As in Keras the maximum runs over every
    class, the target's slot contributing 0.

    Parameters
    ----------
    margin : float, default 1
        Keras uses 1.
    axis : int, default -1
        The class axis.
    weight : float or None
    batch_axis : int, default 0
    reduction : {'sample', 'mean', 'sum', 'none'}, default 'sample'
        ``'none'`` gives pred's shape without the class axis.

    Inputs:
        - **pred**: scores, shape (..., C, ...) with C along ``axis``.
        - **label**: one-hot (or {0, 1}) labels, pred's shape.
        - **sample_weight**: optional, broadcastable to pred's shape with
          ``axis`` of size 1, or shape (batch_size,).

    Outputs:
        - **loss**: shape (batch_size,).

    Example::

        >>> loss = gluonx.loss.CategoricalHingeLoss()
        >>> loss(mx.nd.array([[0.3, 0.9, -0.2]]), mx.nd.array([[0, 1, 0]]))  # [0.4]
    """

    _kind = "contract"
    _kernel = Kernel("gluonx_categorical_hinge_loss", attrs=("margin",), options={"axis": ANY},
                     when=lambda self, call: call.ndim >= 2 and call.last_axis(self._axis))

    def __init__(self, margin=1, axis=-1, weight=None, batch_axis=0, reduction="sample",
                 **kwargs):
        super(CategoricalHingeLoss, self).__init__(weight, batch_axis, reduction, **kwargs)
        self._margin = margin
        self._axis = axis
        self._contract_axis = axis

    def _loss(self, F, pred, label):
        axis = self._axis
        positive = F.sum(label * pred, axis=axis, keepdims=True)
        negative = F.max((1 - label) * pred, axis=axis, keepdims=True)
        return F.relu(negative - positive + self._margin)


class GeneralizedCELoss(Loss):
    r"""Generalized cross-entropy (Zhang and Sabuncu, 2018), robust to noisy labels.

    .. math::
        L = \frac{1 - p_y^{\,q}}{q},\qquad p = \mathrm{softmax}(\text{pred})

    over the class axis, with :math:`y` the label's class. :math:`q \to 0`
    gives the cross-entropy, :math:`q = 1` the mean absolute error of the
    probabilities. From scores it is evaluated as
    :math:`-\mathrm{expm1}(q \log p_y) / q` on ``log_softmax`` (finite for
    any score). Keras' ``CategoricalGeneralizedCrossEntropy`` takes
    probabilities: ``from_softmax=True``.

    Parameters
    ----------
    q : float, default 0.5
        In (0, 1].
    axis : int, default -1
        The class axis.
    from_softmax : bool, default False
        Whether ``pred`` already holds probabilities (else scores).
    weight : float or None
    batch_axis : int, default 0
    reduction : {'sample', 'mean', 'sum', 'none'}, default 'sample'
        ``'none'`` gives pred's shape without the class axis.

    Inputs:
        - **pred**: scores (or probabilities), shape (..., C, ...) with C along ``axis``.
        - **label**: class indices, pred's shape without ``axis`` (or with it of size 1).
        - **sample_weight**: optional, broadcastable to pred's shape with
          ``axis`` of size 1, or shape (batch_size,).

    Outputs:
        - **loss**: shape (batch_size,).

    Example::

        >>> loss = gluonx.loss.GeneralizedCELoss(q=0.7)
        >>> loss(mx.nd.array([[2., 0., 0.]]), mx.nd.array([0]))
    """

    _kind = "contract"
    _like_pred = ()
    # a row operator (gluonx/kernels/distillation.cc) for classes on the last axis
    _kernel = Kernel("gluonx_generalized_ce_loss", attrs=("q", "from_softmax"),
                     options={"axis": ANY}, any_dtype=("label",),
                     when=lambda self, call: call.ndim >= 2 and call.last_axis(self._axis))

    def __init__(self, q=0.5, axis=-1, from_softmax=False, weight=None, batch_axis=0,
                 reduction="sample", **kwargs):
        super(GeneralizedCELoss, self).__init__(weight, batch_axis, reduction, **kwargs)
        if not 0 < q <= 1:
            _fail(self, "q", "must be in (0, 1], got %r" % (q,))
        self._q = float(q)
        self._axis = axis
        self._contract_axis = axis
        self._from_softmax = from_softmax

    def _check_shapes(self, plan):
        _check_class_index_shape(self, plan, self._axis)

    def _check_values(self, tensors, plan):
        shape = plan.shapes["pred"]
        _check_class_index_values(self, tensors["label"], shape[self._axis % len(shape)])
        if self._from_softmax:
            _check_probabilities(self, tensors["pred"], "pred", "from_softmax=True")

    def _loss(self, F, pred, label):
        q, axis = self._q, self._axis
        if self._from_softmax:
            return (1 - F.power(F.pick(pred, label, axis=axis, keepdims=True), q)) / q
        log_p = F.pick(F.log_softmax(pred, axis=axis), label, axis=axis, keepdims=True)
        return -F.expm1(log_p * q) / q


class LinearSoftmaxCELoss(Loss):
    r"""An output projection and softmax cross-entropy in one block, computed
    chunk by chunk, forward and backward, so that the ``(N, num_classes)``
    logits are never materialised (for language models and other
    large-vocabulary classifiers).

    .. math::
        z = x W^\top + b,\qquad
        L = (1 - \varepsilon)\, w_y (\mathrm{lse}(z) - z_y)
          + \frac{\varepsilon}{C} \sum_c w_c (\mathrm{lse}(z) - z_c)

    the same loss as ``Dense(num_classes, use_bias, flatten=False)`` followed
    by ``SoftmaxCELoss(class_weight=..., ignore_index=..., label_smoothing=...)``,
    with its masking and means (rows whose label is ``ignore_index``
    contribute 0, get gradient 0 and are left out of every mean;
    ``reduction='mean'`` with ``class_weight`` is PyTorch's weighted mean).

    How: the rows are taken ``chunk_size`` at a time (as PyTorch's chunked
    ``linear_cross_entropy``); a chunk's logits (chunk_size x num_classes)
    are computed, turned into its losses and its gradients of x, W and b, and
    dropped before the next chunk. A training forward computes the gradients
    in the same pass, for an output gradient of 1 per row; the backward scales
    them (exact for x always, and for W and b when the output gradient is the
    same for every row, as with ``reduction='mean'``/``'sum'`` or
    ``loss.backward()``; otherwise it recomputes the chunks). Peak extra
    memory: one chunk's logits and a few of their size, plus a ``weight``-sized
    gradient. It runs as a custom operator (``mx.operator.CustomOp``), so it
    works imperatively, hybridized, in ``mx.sym`` graphs and exported (an
    exported graph loads where ``gluonx`` is imported).

    Parameters
    ----------
    in_units : int
        Size of the last axis of the input.
    num_classes : int
        C, the number of classes.
    use_bias : bool, default False
        Whether the projection has a bias ``b`` (parameter ``bias``, (C,)).
    chunk_size : int or None, default None
        Rows per chunk; None: as many as keep one chunk's logits within 128 MiB.
    class_weight : sequence of float or None
        One weight :math:`w_c` per class.
    ignore_index : int or None
        Labels equal to it are masked.
    label_smoothing : float, default 0.
        :math:`\varepsilon` in [0, 1].
    weight : float or None
        The global scalar weight of the loss (the projection matrix is the
        parameter ``weight``, shape (num_classes, in_units)).
    batch_axis : int, default 0
    reduction : {'sample', 'mean', 'sum', 'none'}, default 'sample'
    dtype : str, default 'float32'
        The parameters' dtype.
    weight_initializer, bias_initializer : Initializer
        As in ``gluon.nn.Dense``.

    Inputs:
        - **pred**: the features x, shape (..., in_units).
        - **label**: class indices, pred's shape without the last axis.
        - **sample_weight**: optional, broadcastable to pred's shape with the
          last axis of size 1, or shape (batch_size,).

    Outputs:
        - **loss**: shape (batch_size,).

    Example::

        >>> loss = gluonx.loss.LinearSoftmaxCELoss(512, 50000)
        >>> loss.initialize()
        >>> loss(mx.nd.ones((8, 512)), mx.nd.arange(8))  # (8,)
    """

    _like_pred = ()
    _kind = "contract"
    _contract_axis = -1

    def __init__(self, in_units, num_classes, use_bias=False, chunk_size=None,
                 class_weight=None, ignore_index=None, label_smoothing=0., weight=None,
                 batch_axis=0, reduction="sample", dtype="float32", weight_initializer=None,
                 bias_initializer="zeros", **kwargs):
        super(LinearSoftmaxCELoss, self).__init__(weight, batch_axis, reduction, **kwargs)
        for name, value in (("in_units", in_units), ("num_classes", num_classes),
                            ("chunk_size", 1 if chunk_size is None else chunk_size)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                _fail(self, name, "must be a positive int, got %r" % (value,))
        if not 0 <= label_smoothing <= 1:
            _fail(self, "label_smoothing", "must be in [0, 1], got %r" % (label_smoothing,))
        self._in_units = int(in_units)
        self._num_classes = int(num_classes)
        self._chunk = 0 if chunk_size is None else int(chunk_size)   # 0: automatic
        self._ignore_index = ignore_index
        self._label_smoothing = float(label_smoothing)
        with self.name_scope():
            self.weight = self.params.get("weight", shape=(num_classes, in_units),
                                          init=weight_initializer, dtype=dtype)
            self.bias = self.params.get("bias", shape=(num_classes,), init=bias_initializer,
                                        dtype=dtype) if use_bias else None
        self._hold_class_weight(class_weight, shape=(1, -1), dtype=dtype)
        self._check_class_weight(self._num_classes)

    def _check_shapes(self, plan):
        pred, label = plan.shapes["pred"], plan.shapes["label"]
        if len(pred) < 2 or pred[-1] != self._in_units:
            _fail(self, "pred", "has shape %s, expected (..., %d): in_units features last"
                  % (pred, self._in_units))
        if not (_squeezed_equal(label, pred[:-1]) or label == pred[:-1] + (1,)):
            _fail(self, "label", "has shape %s, expected class indices of shape %s"
                  % (label, pred[:-1]))

    def _check_values(self, tensors, plan):
        label = tensors["label"].asnumpy()
        valid = (label >= 0) & (label < self._num_classes) & (label == np.floor(label))
        if self._ignore_index is not None:
            valid |= label == self._ignore_index
        if not valid.all():
            _fail(self, "label", "holds %r; class indices must be integers in [0, %d)"
                  % (label[~valid].ravel()[0], self._num_classes))

    def _loss(self, F, pred, label, weight, bias=None, class_weight=None):
        from ._linear_ce import OP_NAME
        rows = F.reshape(pred, shape=(-1, self._in_units))
        flat = F.reshape(label, shape=(-1,))
        args = [rows, flat, weight] + ([bias] if bias is not None else []) + \
            ([class_weight] if class_weight is not None else [])
        out = F.Custom(*args, op_type=OP_NAME, num_classes=self._num_classes,
                       chunk=self._chunk, smoothing=self._label_smoothing,
                       ignore_index=self._ignore_index, has_bias=bias is not None,
                       has_cw=class_weight is not None)
        # pred's shape with the feature axis of size 1
        loss = F.reshape_like(out[0], F.slice_axis(pred, axis=-1, begin=0, end=1))
        masked = self._ignore_index is not None
        if not masked and not (class_weight is not None and self._reduction == "mean"):
            return loss
        count = F.ones_like(loss)
        if masked:
            count = F.where(F.reshape_like(label, loss) != self._ignore_index, count,
                            F.zeros_like(loss))
        total = count
        if class_weight is not None:
            total = count * F.reshape_like(F.take(F.reshape(class_weight, shape=(-1,)), label),
                                           count)
        return loss, (count, total)


class NLLLoss(SoftmaxCrossEntropyLoss):
    r"""Negative log-likelihood of class indices under given log-probabilities.

    .. math:: L = -w_y \, \text{pred}_y

    where :math:`y` is the label and :math:`w` the optional class weights.
    This is :class:`SoftmaxCrossEntropyLoss` with ``from_logits=True``
    (``pred`` holds log-probabilities, e.g. a ``log_softmax`` output), and
    it shares that loss's ``class_weight`` and ``ignore_index`` semantics,
    including how they enter ``reduction='mean'``.

    Parameters
    ----------
    axis : int, default -1
        The class axis.
    class_weight : sequence of float or None
        One weight per class (length C).
    ignore_index : int or None
        Labels equal to it contribute 0 (and get no gradient).
    weight, batch_axis, reduction : as in :class:`SoftmaxCrossEntropyLoss`.

    Inputs:
        - **pred**: log-probabilities, shape (..., C, ...) with C along ``axis``.
        - **label**: class indices, pred's shape without ``axis``.
        - **sample_weight**: optional, as in :class:`SoftmaxCrossEntropyLoss`.

    Outputs:
        - **loss**: shape (batch_size,).

    Example::

        >>> loss = gluonx.loss.NLLLoss()
        >>> loss(mx.nd.log(mx.nd.array([[0.5, 0.25, 0.25]])), mx.nd.array([0]))  # [0.6931]
    """

    # softmax CE's operator: with log-probabilities and sparse labels it reads
    # only the picked entries forward, and writes the gradient in one pass

    def __init__(self, axis=-1, class_weight=None, ignore_index=None, weight=None,
                 batch_axis=0, reduction="sample", **kwargs):
        super(NLLLoss, self).__init__(axis=axis, sparse_label=True, from_logits=True,
                                      weight=weight, batch_axis=batch_axis,
                                      class_weight=class_weight, ignore_index=ignore_index,
                                      reduction=reduction, **kwargs)


class MultiLabelSoftMarginLoss(Loss):
    r"""Multi-label logistic loss: one binary cross-entropy per class on logits,
    averaged over the classes.

    .. math::
        L_c = w_c \big(\log(1 + e^{x_c}) - x_c \, y_c\big)
            = -w_c \big(y_c \log \sigma(x_c) + (1 - y_c) \log \sigma(-x_c)\big)

    with :math:`x` = ``pred``, :math:`y` = ``label`` in [0, 1] and the classes
    along the last axis; a sample's value is the mean over its classes.

    Parameters
    ----------
    class_weight : sequence of float or None
        One weight per class (length C, the last axis).
    weight, batch_axis, reduction : as in :class:`L2Loss` (weight defaults to None).

    Inputs:
        - **pred**: logits, shape (batch_size, C) (or any shape with C last).
        - **label**: targets in [0, 1], pred's shape.
        - **sample_weight**: optional, broadcastable to pred, or shape (batch_size,).

    Outputs:
        - **loss**: shape (batch_size,).

    Example::

        >>> loss = gluonx.loss.MultiLabelSoftMarginLoss()
        >>> loss(mx.nd.zeros((1, 2)), mx.nd.array([[0, 1]]))  # [0.6931]
    """

    # without class weights: sigmoid BCE on logits, without pos_weight
    _kernel = Kernel("gluonx_sigmoid_bce_loss", attrs={"from_sigmoid": lambda self: False},
                     options={"class_weight": None},
                     inputs=("pred", "label", "sample_weight", "pos_weight"))

    def __init__(self, class_weight=None, weight=None, batch_axis=0, reduction="sample",
                 **kwargs):
        super(MultiLabelSoftMarginLoss, self).__init__(weight, batch_axis, reduction, **kwargs)
        self._hold_class_weight(class_weight)

    def _check_shapes(self, plan):
        self._check_class_weight(plan.shapes["pred"][-1] if plan.shapes["pred"] else 0)

    def _loss(self, F, pred, label, class_weight=None):
        loss = F.Activation(pred, act_type="softrelu") - pred * label
        if class_weight is not None:
            loss = F.broadcast_mul(loss, class_weight)
        return loss
