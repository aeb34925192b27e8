"""Segmentation overlap losses: Dice and Tversky, binary or multi-class."""
from ..kernels import ANY, Kernel
from ._base import Loss, _fail
from .classification import _check_class_index_shape, _check_class_index_values, \
    _check_probabilities

__all__ = ["DiceLoss", "TverskyLoss"]

#: added to the denominator of the overlap ratio (Keras' backend.epsilon()),
#: so that an empty prediction of an empty mask stays finite with smooth=0
OVERLAP_EPSILON = 1e-7


def _overlap_kernel(inter_num, inter_den, pred_den, label_den, **options):
    """The fused operator of a Dice-like loss: per class the ratio
    (inter_num I + s) / (inter_den I + pred_den P + label_den Y + s + eps),
    each coefficient a function of the loss; binary masks (axis=None) or
    classes along any non-batch axis."""
    def fits(self, call):
        if self._axis is not None and call.ndim < 2:
            return False
        return self._sparse_label or call.dtypes["label"] == call.dtypes["pred"]
    options.update(axis=ANY)
    return Kernel("gluonx_overlap_loss",
                  attrs={"inter_num": inter_num, "inter_den": inter_den, "pred_den": pred_den,
                         "label_den": label_den, "smooth": "smooth",
                         "epsilon": lambda self: OVERLAP_EPSILON, "from_logits": "from_logits",
                         "sparse_label": "sparse_label",
                         "multiclass": lambda self: self._axis is not None,
                         "axis": lambda self: -1 if self._axis is None else self._axis},
                  options=options, any_dtype=("label",), when=fits)


class _OverlapLoss(Loss):
    """What Dice and Tversky share: probabilities, one-hot masks and the sums
    per sample (and per class) that their ratio is made of."""

    _kind = "sample"

    def __init__(self, smooth, from_logits, axis, sparse_label, weight, batch_axis, reduction,
                 **kwargs):
        super(_OverlapLoss, self).__init__(weight, batch_axis, reduction, **kwargs)
        if not smooth >= 0:
            _fail(self, "smooth", "must be >= 0, got %r" % (smooth,))
        if sparse_label and axis is None:
            _fail(self, "sparse_label", "needs a class axis (axis=int), got axis=None")
        self._smooth = float(smooth)
        self._from_logits = from_logits
        self._axis = axis
        self._sparse_label = sparse_label
        self._like_pred = () if sparse_label else ("label",)

    def _check_shapes(self, plan):
        pred = plan.shapes["pred"]
        if self._axis is not None:
            if len(pred) < 2 or not -len(pred) <= self._axis < len(pred):
                _fail(self, "axis", "is %d but 'pred' has shape %s" % (self._axis, pred))
            if self._axis % len(pred) == self._batch_axis % len(pred):
                _fail(self, "axis", "is the batch axis (%d); the class axis must be another one"
                      % self._batch_axis)
        if self._sparse_label:
            _check_class_index_shape(self, plan, self._axis)

    def _check_values(self, tensors, plan):
        if self._sparse_label:
            shape = plan.shapes["pred"]
            _check_class_index_values(self, tensors["label"], shape[self._axis % len(shape)])
        else:
            _check_probabilities(self, tensors["label"], "label", "sparse_label=False")
        if not self._from_logits:
            _check_probabilities(self, tensors["pred"], "pred", "from_logits=False")

    def _overlap(self, F, pred, label):
        """(sum p*y, sum p, sum y) per sample, and per class when axis is set."""
        if self._from_logits:
            pred = F.sigmoid(pred) if self._axis is None else F.softmax(pred, axis=self._axis)
        if self._sparse_label:
            classes = F.reshape_like(F.contrib.index_array(pred, axes=(self._axis,)), pred)
            label = F.reshape_like(label, F.slice_axis(pred, axis=self._axis, begin=0, end=1))
            mask = F.broadcast_equal(F.cast(label, dtype="int64"), classes)
            zeros = F.zeros_like(pred)
            products, label = F.where(mask, pred, zeros), F.where(mask, F.ones_like(pred), zeros)
        else:
            products = pred * label
        if self._axis is None:
            sums = [F.sum(x, axis=self._batch_axis, exclude=True)
                    for x in (products, pred, label)]
        else:
            sums = [F.sum(x, axis=(self._batch_axis, self._axis), exclude=True, keepdims=True)
                    for x in (products, pred, label)]
        return sums

    def _one_minus_mean(self, F, ratio):
        if self._axis is not None:   # the mean over classes
            ratio = F.mean(ratio, axis=self._batch_axis, exclude=True)
        return 1 - ratio


class DiceLoss(_OverlapLoss):
    r"""Soft Dice loss, per sample, binary or averaged over classes.

    .. math::
        L = 1 - \frac{1}{C} \sum_c
            \frac{2 \sum_i p_{ic} y_{ic} + s}{\sum_i p_{ic} + \sum_i y_{ic} + s + \epsilon}

    with the sums over the sample's elements :math:`i` (every non-batch axis
    but the class axis), :math:`s` = ``smooth`` and :math:`\epsilon = 10^{-7}`.
    Binary (``axis=None``): one mask, :math:`C = 1`. With ``smooth=0`` and
    ``axis=None`` it is Keras' ``Dice(axis=<the non-batch axes>)``.

    Parameters
    ----------
    smooth : float, default 1
        Added to numerator and denominator, >= 0.
    from_logits : bool, default False
        Whether ``pred`` holds logits: a sigmoid (binary) or a softmax over
        ``axis`` (multi-class) turns them into probabilities first.
    axis : int or None, default None
        The class axis of a multi-class ``pred`` (e.g. 1 for NCHW, -1 for
        NHWC); None for one binary mask per sample.
    sparse_label : bool, default False
        Whether ``label`` holds class indices (needs ``axis``), else a mask
        (one-hot for multi-class) of pred's shape.
    weight : float or None
    batch_axis : int, default 0
    reduction : {'sample', 'mean', 'sum', 'none'}, default 'sample'
        ``'none'`` is the per-sample value, as ``'sample'``.

    Inputs:
        - **pred**: probabilities (or logits), shape (batch_size, ...), with C
          classes along ``axis`` if set.
        - **label**: pred's shape, values in [0, 1]; or, with
          ``sparse_label=True``, class indices of pred's shape without ``axis``.
        - **sample_weight**: optional, shape (batch_size,) or (batch_size, 1).

    Outputs:
        - **loss**: shape (batch_size,).

    Example::

        >>> loss = gluonx.loss.DiceLoss(smooth=0)
        >>> loss(mx.nd.array([[0.5, 1., 0.]]), mx.nd.array([[1., 1., 0.]]))  # [0.1429]
    """

    _kernel = _overlap_kernel(lambda self: 2.0, lambda self: 0.0, lambda self: 1.0,
                              lambda self: 1.0)

    def __init__(self, smooth=1.0, from_logits=False, axis=None, sparse_label=False, weight=None,
                 batch_axis=0, reduction="sample", **kwargs):
        super(DiceLoss, self).__init__(smooth, from_logits, axis, sparse_label, weight,
                                       batch_axis, reduction, **kwargs)

    def _loss(self, F, pred, label):
        intersection, pred_sum, label_sum = self._overlap(F, pred, label)
        s = self._smooth
        ratio = (2 * intersection + s) / (pred_sum + label_sum + (s + OVERLAP_EPSILON))
        return self._one_minus_mean(F, ratio)


class TverskyLoss(_OverlapLoss):
    r"""Tversky loss (Salehi et al., 2017): Dice with false positives and
    false negatives weighted apart.

    .. math::
        T_c = \frac{I_c + s}{I_c + \alpha\, \mathrm{FP}_c + \beta\, \mathrm{FN}_c + s + \epsilon},
        \qquad L = 1 - \frac{1}{C} \sum_c T_c

    with :math:`I_c = \sum_i p_{ic} y_{ic}`,
    :math:`\mathrm{FP}_c = \sum_i p_{ic} (1 - y_{ic})`,
    :math:`\mathrm{FN}_c = \sum_i (1 - p_{ic}) y_{ic}`, sums and
    :math:`\epsilon` as in :class:`DiceLoss`. :math:`\alpha = \beta = 1/2`
    gives Dice. As in the paper (and Keras' documentation) :math:`\alpha`
    weighs the false positives; Keras' code applies its ``alpha`` to the false
    negatives, so Keras' ``Tversky(alpha=a, beta=b)`` equals
    ``TverskyLoss(alpha=b, beta=a, smooth=0)``.

    Parameters
    ----------
    alpha : float, default 0.5
        Weight of the false positives, >= 0.
    beta : float, default 0.5
        Weight of the false negatives, >= 0.
    smooth, from_logits, axis, sparse_label, weight, batch_axis, reduction :
        as in :class:`DiceLoss`.

    Inputs and outputs are those of :class:`DiceLoss`.

    Example::

        >>> loss = gluonx.loss.TverskyLoss(alpha=0.3, beta=0.7)
        >>> loss(mx.nd.array([[0.5, 1., 0.]]), mx.nd.array([[1., 1., 0.]]))
    """

    _kernel = _overlap_kernel(lambda self: 1.0, lambda self: 1 - self._alpha - self._beta,
                              lambda self: self._alpha, lambda self: self._beta,
                              alpha=ANY, beta=ANY)

    def __init__(self, alpha=0.5, beta=0.5, smooth=1.0, from_logits=False, axis=None,
                 sparse_label=False, weight=None, batch_axis=0, reduction="sample", **kwargs):
        super(TverskyLoss, self).__init__(smooth, from_logits, axis, sparse_label, weight,
                                          batch_axis, reduction, **kwargs)
        for name, value in (("alpha", alpha), ("beta", beta)):
            if not value >= 0:
                _fail(self, name, "must be >= 0, got %r" % (value,))
        self._alpha = float(alpha)
        self._beta = float(beta)

    def _loss(self, F, pred, label):
        intersection, pred_sum, label_sum = self._overlap(F, pred, label)
        s, a, b = self._smooth, self._alpha, self._beta
        # I + a (sum p - I) + b (sum y - I)
        denominator = intersection * (1 - a - b) + pred_sum * a + label_sum * b
        ratio = (intersection + s) / (denominator + (s + OVERLAP_EPSILON))
        return self._one_minus_mean(F, ratio)
