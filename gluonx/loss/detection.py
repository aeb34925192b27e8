"""Dense-detection losses: sigmoid and softmax focal loss (Lin et al., 2017)."""
import numpy as np

from ..kernels import ANY, Kernel
from ._base import Loss, _fail
from .classification import _check_class_index_shape, _check_class_index_values, \
    _check_probabilities, _kernel_ignore_fits, _kernel_ignore_index

__all__ = ["SigmoidFocalLoss", "SoftmaxFocalLoss"]

#: probabilities are clipped to [eps, 1 - eps] before their log when pred is
#: already a probability (Keras' backend.epsilon())
PROBABILITY_CLIP = 1e-7
#: floor of the focal factor's base when gamma < 1, where the derivative of
#: base ** gamma is infinite at 0 (the loss's own gradient there is 0)
FOCAL_BASE_FLOOR = 1e-30


def _focal_factor(F, base, gamma):
    """base ** gamma (base in [0, 1]) with a finite gradient everywhere."""
    if gamma < 1:
        base = F.maximum(base, FOCAL_BASE_FLOOR)
    return F.square(base) if gamma == 2 else F.power(base, gamma)


def _check_common(loss, gamma, label_smoothing):
    if not gamma >= 0:
        _fail(loss, "gamma", "must be >= 0, got %r" % (gamma,))
    if not 0 <= label_smoothing <= 1:
        _fail(loss, "label_smoothing", "must be in [0, 1], got %r" % (label_smoothing,))


class SigmoidFocalLoss(Loss):
    r"""Sigmoid focal loss of RetinaNet (Lin et al., 2017), one binary task per element.

    .. math::
        p = \sigma(\text{pred}),\quad
        1 - p_t = z (1 - p) + (1 - z) p,\quad
        \alpha_t = \alpha z + (1 - \alpha)(1 - z),

        L = -\alpha_t \, (1 - p_t)^\gamma \big(z \log p + (1 - z) \log(1 - p)\big)

    where :math:`z` is the label, smoothed as
    :math:`z \leftarrow (1 - \varepsilon) z + \varepsilon / 2` (Keras'
    convention). From logits the cross-entropy is evaluated as
    :math:`\mathrm{softplus}(x) - x z` and :math:`1 - p` as
    :math:`\sigma(-x)` (finite for any logit). Elements whose label equals
    ``ignore_index`` contribute 0 (they still count in the per-sample mean).
    Keras' ``BinaryFocalCrossentropy(apply_class_balancing=True)`` is the
    same loss with its mean over the last axis.

    Parameters
    ----------
    alpha : float in [0, 1] or None, default 0.25
        Weight of the positive term; None disables the balancing (:math:`\alpha_t = 1`).
    gamma : float, default 2
        Focusing exponent, >= 0 (0 gives the cross-entropy).
    from_logits : bool, default True
        Whether ``pred`` holds logits (else probabilities, clipped to
        :math:`[10^{-7}, 1 - 10^{-7}]` as in Keras).
    ignore_index : float or None
        Label value whose elements are ignored.
    label_smoothing : float, default 0
        :math:`\varepsilon` in [0, 1].
    weight : float or None
    batch_axis : int, default 0
    reduction : {'sample', 'mean', 'sum', 'none'}, default 'sample'

    Inputs:
        - **pred**: logits (or probabilities), any shape, e.g. (batch_size, anchors, classes).
        - **label**: targets in [0, 1] (or ``ignore_index``), pred's shape.
        - **sample_weight**: optional, broadcastable to pred, or shape (batch_size,).

    Outputs:
        - **loss**: shape (batch_size,): the mean over non-batch axes (RetinaNet
          normalises the sum by the number of positive anchors: use
          ``reduction='sum'`` and divide).

    Example::

        >>> loss = gluonx.loss.SigmoidFocalLoss()
        >>> loss(mx.nd.array([[2., -1.]]), mx.nd.array([[1., 0.]]))
    """

    _kernel = Kernel(
        "gluonx_sigmoid_focal_loss",
        attrs={"alpha": lambda self: 0.0 if self._alpha is None else float(self._alpha),
               "has_alpha": lambda self: self._alpha is not None,
               "gamma": "gamma", "from_logits": "from_logits",
               "label_smoothing": "label_smoothing",
               "ignore_index": lambda self: 0.0 if self._ignore_index is None
               else float(self._ignore_index),
               "has_ignore_index": lambda self: self._ignore_index is not None},
        options={"alpha": ANY, "ignore_index": ANY})

    def __init__(self, alpha=0.25, gamma=2.0, from_logits=True, ignore_index=None,
                 label_smoothing=0.0, weight=None, batch_axis=0, reduction="sample", **kwargs):
        super(SigmoidFocalLoss, self).__init__(weight, batch_axis, reduction, **kwargs)
        if alpha is not None and not 0 <= alpha <= 1:
            _fail(self, "alpha", "must be in [0, 1] or None, got %r" % (alpha,))
        _check_common(self, gamma, label_smoothing)
        self._alpha = alpha
        self._gamma = float(gamma)
        self._from_logits = from_logits
        self._ignore_index = ignore_index
        self._label_smoothing = float(label_smoothing)

    def _check_values(self, tensors, plan):
        label = tensors["label"].asnumpy()
        valid = (label >= 0) & (label <= 1)
        if self._ignore_index is not None:
            valid |= label == self._ignore_index
        if not valid.all():
            _fail(self, "label", "holds %r; targets must be in [0, 1]%s"
                  % (label[~valid].ravel()[0], "" if self._ignore_index is None
                     else " (or ignore_index=%r)" % (self._ignore_index,)))
        if not self._from_logits:
            _check_probabilities(self, tensors["pred"], "pred", "from_logits=False")

    def _loss(self, F, pred, label):
        keep = None
        if self._ignore_index is not None:
            keep = label != self._ignore_index
            label = label * keep            # ignored elements: a harmless target 0
        eps = self._label_smoothing
        z = label * (1 - eps) + 0.5 * eps if eps > 0 else label
        if self._from_logits:
            p, q = F.sigmoid(pred), F.sigmoid(-pred)     # q = 1 - p, accurate for p near 1
            loss = F.Activation(pred, act_type="softrelu") - pred * z
        else:
            # (not F.clip: its bounds are float32, 1 - 1e-7 would round)
            p = F.minimum(F.maximum(pred, PROBABILITY_CLIP), 1 - PROBABILITY_CLIP)
            q = 1 - p
            loss = -(z * F.log(p) + (1 - z) * F.log(q))
        if self._gamma != 0:
            loss = loss * _focal_factor(F, z * q + (1 - z) * p, self._gamma)
        if self._alpha is not None:
            loss = loss * (z * (2 * self._alpha - 1) + (1 - self._alpha))
        return loss if keep is None else loss * keep


class SoftmaxFocalLoss(Loss):
    r"""Softmax focal loss: the multi-class focal loss over a class axis.

    .. math::
        \log p = \mathrm{log\_softmax}(\text{pred}),\qquad
        L = -\sum_c q_c \, w_c \, (1 - p_c)^\gamma \log p_c

    where :math:`q` is the one-hot label (``sparse_label=True``) or the
    given distribution, smoothed as
    :math:`q \leftarrow (1 - \varepsilon) q + \varepsilon / C`, and :math:`w`
    the optional class weights (1 by default). :math:`1 - p_c` is evaluated
    as :math:`-\mathrm{expm1}(\log p_c)`. Sparse labels equal to
    ``ignore_index`` contribute 0. Keras' ``CategoricalFocalCrossentropy(
    alpha=w, from_logits=True)`` is the same loss on one-hot labels.

    Parameters
    ----------
    gamma : float, default 2
        Focusing exponent, >= 0 (0 gives the softmax cross-entropy).
    class_weight : sequence of float or None
        One weight per class (length C; the class axis must be last).
    axis : int, default -1
        The class axis.
    sparse_label : bool, default True
        Whether ``label`` holds class indices (else a distribution over classes).
    ignore_index : int or None
        Sparse labels equal to it contribute 0.
    label_smoothing : float, default 0
        :math:`\varepsilon` in [0, 1].
    weight : float or None
    batch_axis : int, default 0
    reduction : {'sample', 'mean', 'sum', 'none'}, default 'sample'
        ``'none'`` gives pred's shape without the class axis.

    Inputs:
        - **pred**: scores, shape (..., C, ...) with C along ``axis``.
        - **label**: class indices, pred's shape without ``axis`` (or with it
          of size 1); or a distribution with pred's shape.
        - **sample_weight**: optional, broadcastable to pred's shape with
          ``axis`` of size 1, or shape (batch_size,).

    Outputs:
        - **loss**: shape (batch_size,).

    Example::

        >>> loss = gluonx.loss.SoftmaxFocalLoss(gamma=2)
        >>> loss(mx.nd.array([[2., 0., 0.]]), mx.nd.array([0]))
    """

    _kind = "contract"
    # softmax CE's operator with its focal exponent: sparse labels without
    # smoothing; an ignored position is 0 and stays in its sample's mean
    _kernel = Kernel("gluonx_softmax_ce_loss",
                     attrs={"gamma": "gamma", "sparse_label": lambda self: True,
                            "from_logits": lambda self: False,
                            "label_smoothing": lambda self: 0,
                            "ignore": lambda self: self._ignore_index is not None,
                            "ignore_index": _kernel_ignore_index,
                            "average_valid": lambda self: False,
                            "batch_mean": lambda self: False},
                     inputs=("pred", "label", "sample_weight", "valid_length", "class_weight"),
                     options={"axis": ANY, "class_weight": ANY, "ignore_index": ANY,
                              "sparse_label": True, "label_smoothing": 0},
                     any_dtype=("label",),
                     when=lambda self, call: call.ndim >= 2 and call.last_axis(self._axis)
                     and _kernel_ignore_fits(self, call))

    def __init__(self, gamma=2.0, class_weight=None, axis=-1, sparse_label=True,
                 ignore_index=None, label_smoothing=0.0, weight=None, batch_axis=0,
                 reduction="sample", **kwargs):
        super(SoftmaxFocalLoss, self).__init__(weight, batch_axis, reduction, **kwargs)
        _check_common(self, gamma, label_smoothing)
        self._gamma = float(gamma)
        self._axis = axis
        self._contract_axis = axis
        self._sparse_label = sparse_label
        self._ignore_index = ignore_index
        self._label_smoothing = float(label_smoothing)
        self._like_pred = () if sparse_label else ("label",)
        self._hold_class_weight(class_weight, shape=(1, -1))

    def _classes(self, plan):
        shape = plan.shapes["pred"]
        return shape[self._axis % len(shape)]

    def _check_shapes(self, plan):
        pred = plan.shapes["pred"]
        self._check_class_weight(self._classes(plan))
        if self._num_weights is not None:
            if self._axis % len(pred) != len(pred) - 1:
                _fail(self, "class_weight", "needs the class axis last (axis=-1), got axis=%d"
                      % self._axis)
        if self._sparse_label:
            _check_class_index_shape(self, plan, self._axis)

    def _check_values(self, tensors, plan):
        if self._sparse_label:
            _check_class_index_values(self, tensors["label"], self._classes(plan),
                                      self._ignore_index)

    def _loss(self, F, pred, label, class_weight=None):
        axis = self._axis
        log_p = F.log_softmax(pred, axis=axis)
        focal = -log_p
        if self._gamma != 0:
            focal = focal * _focal_factor(F, -F.expm1(log_p), self._gamma)
        if class_weight is not None:
            focal = F.broadcast_mul(focal, F.reshape(class_weight, shape=(-1,)))
        if self._sparse_label:
            loss = F.pick(focal, label, axis=axis, keepdims=True)
        else:
            loss = F.sum(focal * label, axis=axis, keepdims=True)
        eps = self._label_smoothing
        if eps > 0:
            loss = loss * (1 - eps) + F.mean(focal, axis=axis, keepdims=True) * eps
        if self._sparse_label and self._ignore_index is not None:
            loss = loss * (F.reshape_like(label, loss) != self._ignore_index)
        return loss
