"""Margin classification losses: multi-class and multi-label hinge, soft margin."""
import numpy as np

from ..kernels import ANY, Kernel
from ._base import Loss, _fail

__all__ = ["MultiMarginLoss", "MultiLabelMarginLoss", "SoftMarginLoss"]

#: stands in for "no padding before the end" when finding a label row's first -1
_NO_PADDING = 1e9


def _integer_labels(loss, label, low, high, what):
    """Fail unless every entry of ``label`` is an integer in [low, high)."""
    label = label.asnumpy()
    valid = (label >= low) & (label < high) & (label == np.floor(label))
    if not valid.all():
        _fail(loss, "label", "holds %r; %s must be integers in [%d, %d)"
              % (label[~valid].ravel()[0], what, low, high))


class MultiMarginLoss(Loss):
    r"""Multi-class hinge loss (Weston and Watkins): every wrong class should
    score at least ``margin`` below the labelled one.

    .. math::
        L = \frac{1}{C} \sum_{c \ne y} w_y \max(0, \text{margin} - x_y + x_c)^p

    with :math:`x` = ``pred`` (C classes along the last axis), :math:`y` the
    label and :math:`w` the optional class weights.

    Parameters
    ----------
    p : {1, 2}, default 1
        Power of each hinge term.
    margin : float, default 1.0
    class_weight : sequence of float or None
        One weight per class (length C); a sample is weighted by its label's.
    weight, batch_axis, reduction : as in :class:`L2Loss` (weight defaults to None).

    Inputs:
        - **pred**: scores, shape (batch_size, C).
        - **label**: class indices, shape (batch_size,).
        - **sample_weight**: optional, shape (batch_size,) or (batch_size, 1).

    Outputs:
        - **loss**: shape (batch_size,).

    Example::

        >>> loss = gluonx.loss.MultiMarginLoss()
        >>> loss(mx.nd.array([[0.1, 0.2, 0.4, 0.8]]), mx.nd.array([3]))  # [0.325]
    """

    _kind = "contract"
    _contract_axis = -1
    _like_pred = ()
    _kernel = Kernel("gluonx_multi_margin_loss", attrs=("p", "margin"),
                     options={"class_weight": ANY},
                     inputs=("pred", "label", "sample_weight", "class_weight"),
                     any_dtype=("label",))

    def __init__(self, p=1, margin=1.0, class_weight=None, weight=None, batch_axis=0,
                 reduction="sample", **kwargs):
        super(MultiMarginLoss, self).__init__(weight, batch_axis, reduction, **kwargs)
        if p not in (1, 2):
            _fail(self, "p", "must be 1 or 2, got %r" % (p,))
        self._p = int(p)
        self._margin = float(margin)
        self._hold_class_weight(class_weight)

    def _check_shapes(self, plan):
        pred, label = plan.shapes["pred"], plan.shapes["label"]
        if len(pred) != 2:
            _fail(self, "pred", "has shape %s, expected (batch_size, C)" % (pred,))
        if int(np.prod(label)) != pred[0] or len([s for s in label if s != 1]) > 1:
            _fail(self, "label", "has shape %s, expected one class index per sample, (%d,)"
                  % (label, pred[0]))
        self._check_class_weight(pred[1])

    def _check_values(self, tensors, plan):
        _integer_labels(self, tensors["label"], 0, plan.shapes["pred"][1], "class indices")

    def _loss(self, F, pred, label, class_weight=None):
        label = F.reshape(label, shape=(-1, 1))
        classes = F.reshape(F.contrib.arange_like(pred, axis=-1), shape=(1, -1))
        # the label as a number of pred's dtype (labels may be integers)
        label_value = F.pick(F.broadcast_like(classes, pred), label, axis=-1, keepdims=True)
        picked = F.pick(pred, label, axis=-1, keepdims=True)
        hinge = F.relu(F.broadcast_sub(pred, picked) + self._margin)
        if self._p == 2:
            hinge = F.square(hinge)
        hinge = hinge * F.broadcast_not_equal(classes, label_value)
        loss = F.mean(hinge, axis=-1, keepdims=True)
        if class_weight is not None:
            loss = loss * F.reshape(F.take(class_weight, F.reshape(label, shape=(-1,))),
                                    shape=(-1, 1))
        return loss


class MultiLabelMarginLoss(Loss):
    r"""Multi-label hinge loss: every labelled class should score at least 1
    above every class that is not labelled.

    .. math::
        L = \frac{1}{C} \sum_{j \in Y} \sum_{i \notin Y} \max(0, 1 - (x_j - x_i))

    where :math:`Y` is the set of a sample's labelled classes: the entries of
    its label row before the first -1.

    Parameters
    ----------
    weight, batch_axis, reduction : as in :class:`L2Loss` (weight defaults to None).

    Inputs:
        - **pred**: scores, shape (batch_size, C).
        - **label**: class indices, shape (batch_size, C): each row lists the
          sample's classes, then -1 (entries after the first -1 are ignored).
        - **sample_weight**: optional, shape (batch_size,) or (batch_size, 1).

    Outputs:
        - **loss**: shape (batch_size,).

    Memory: the fused kernel (CPU) works row by row on the listed classes,
    O(C) memory and O(C T) work per sample (T listed targets); the stock
    operators (on GPU, with ``reduction='none'`` or kernels switched off) form the pairs
    explicitly, (batch_size, C, C) elements.

    Example::

        >>> loss = gluonx.loss.MultiLabelMarginLoss()
        >>> loss(mx.nd.array([[0.1, 0.2, 0.4, 0.8]]), mx.nd.array([[3, 0, -1, 1]]))  # [0.85]
    """

    _kind = "contract"
    _contract_axis = -1
    _like_pred = ()
    _kernel = Kernel("gluonx_multilabel_margin_loss", any_dtype=("label",))

    def __init__(self, weight=None, batch_axis=0, reduction="sample", **kwargs):
        super(MultiLabelMarginLoss, self).__init__(weight, batch_axis, reduction, **kwargs)

    def _check_shapes(self, plan):
        pred, label = plan.shapes["pred"], plan.shapes["label"]
        if len(pred) != 2:
            _fail(self, "pred", "has shape %s, expected (batch_size, C)" % (pred,))
        if label != pred:
            _fail(self, "label", "has shape %s, expected pred's shape %s (class indices, "
                  "padded with -1)" % (label, pred))

    def _check_values(self, tensors, plan):
        _integer_labels(self, tensors["label"], -1, plan.shapes["pred"][1],
                        "class indices (or -1)")

    def _loss(self, F, pred, label):
        # masks are computed in label's dtype (labels may be integers) and
        # applied with where(), which takes a condition of any dtype
        positions = F.broadcast_like(
            F.reshape(F.contrib.arange_like(label, axis=1), shape=(1, -1)), label)
        first_pad = F.min(F.where(label < 0, positions, F.ones_like(label) * _NO_PADDING),
                          axis=1, keepdims=True)
        listed = F.broadcast_lesser(positions, first_pad)                      # (N, J)
        # match[n, j, i]: entry j of sample n's list is class i
        classes = F.reshape(F.contrib.arange_like(label, axis=1), shape=(1, 1, -1))
        match = F.broadcast_mul(F.broadcast_equal(F.expand_dims(label, axis=2), classes),
                                F.expand_dims(listed, axis=2))                 # (N, J, C)
        labelled = F.max(match, axis=1)                                        # (N, C)
        rows = F.broadcast_like(F.expand_dims(pred, axis=1), match)
        score = F.sum(F.where(match, rows, F.zeros_like(rows)), axis=2)       # (N, J)
        hinge = F.relu(1 - F.broadcast_sub(F.expand_dims(score, axis=2), rows))
        pairs = F.broadcast_mul(F.expand_dims(listed, axis=2),
                                F.expand_dims(1 - labelled, axis=1))           # (N, J, C)
        hinge = F.where(pairs, hinge, F.zeros_like(hinge))
        return F.mean(F.sum(hinge, axis=1), axis=1, keepdims=True)


class SoftMarginLoss(Loss):
    r"""Two-class logistic loss for labels in {-1, 1}.

    .. math:: L = \log(1 + e^{-\text{label} \cdot \text{pred}})

    (the same function as :class:`LogisticLoss` with ``label_format='signed'``).

    Parameters, inputs and outputs are those of :class:`L2Loss` (``weight``
    defaults to None; label values -1 or 1).

    Example::

        >>> gluonx.loss.SoftMarginLoss()(mx.nd.zeros((1, 1)), mx.nd.array([[1]]))  # [0.6931]
    """

    _kernel = Kernel("gluonx_soft_margin_loss")

    def __init__(self, weight=None, batch_axis=0, reduction="sample", **kwargs):
        super(SoftMarginLoss, self).__init__(weight, batch_axis, reduction, **kwargs)

    def _loss(self, F, pred, label):
        return F.Activation(-pred * label, act_type="softrelu")
