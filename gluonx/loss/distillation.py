"""Knowledge distillation: a student matches a teacher's softened distribution."""
from ..kernels import ANY, Kernel
from ._base import Loss, _fail
from ._labels import check_index_shape, check_index_values, check_probabilities
from ._reduce import last_axis_sum

__all__ = ["DistillationLoss"]

#: added to teacher probabilities before their log (``teacher_probabilities=True``)
LOG_EPSILON = 1e-12

SOFT_LOSSES = ("kl", "cross_entropy")
MIXES = ("add", "convex")


class DistillationLoss(Loss):
    r"""Distillation loss (Hinton et al., 2015): the student's softened softmax
    against the teacher's, plus an optional cross-entropy with the true labels.

    .. math::
        q = \mathrm{softmax}(\text{teacher} / T),\qquad
        \log p^T = \mathrm{log\_softmax}(\text{pred} / T),\qquad
        S = T^2 \sum_c q_c (\log q_c - \log p^T_c),

        L = S + w \, H, \qquad H = -\log \mathrm{softmax}(\text{pred})_{\text{label}}

    with :math:`w` = ``hard_weight`` and :math:`H` the ordinary (T = 1)
    cross-entropy with the label (one-hot, or a distribution with
    ``sparse_label=False``). ``soft_loss='cross_entropy'`` drops the teacher's
    entropy from :math:`S` (:math:`S = -T^2 \sum_c q_c \log p^T_c`, the same
    gradient), and ``mix='convex'`` gives :math:`L = (1 - w) S + w H`.
    GluonCV's ``DistillationSoftmaxCrossEntropyLoss(temperature=T, hard_weight=w)``
    called as ``(output, label, soft_target)`` equals
    ``DistillationLoss(T, w, teacher_probabilities=True, soft_loss='cross_entropy',
    mix='convex')`` called on the same three inputs.

    Parameters
    ----------
    temperature : float, default 1.0
        :math:`T > 0`.
    hard_weight : float, default 0.0
        :math:`w \ge 0` (at most 1 with ``mix='convex'``).
    sparse_label : bool, default True
        Whether ``label`` holds class indices (else a distribution over classes).
    axis : int, default -1
        The class axis.
    teacher_probabilities : bool, default False
        Whether ``teacher`` is already :math:`q = \mathrm{softmax}(\text{teacher}/T)`
        (GluonCV's ``soft_target``) instead of the teacher's logits.
    soft_loss : {'kl', 'cross_entropy'}, default 'kl'
    mix : {'add', 'convex'}, default 'add'
    weight : float or None
    batch_axis : int, default 0
    reduction : {'sample', 'mean', 'sum', 'none'}, default 'sample'
        ``'none'`` gives pred's shape without the class axis.

    Inputs:
        - **pred**: student logits, shape (..., C, ...) with C along ``axis``.
        - **label**: class indices, pred's shape without ``axis``; or a
          distribution with pred's shape.
        - **teacher**: teacher logits (or probabilities), pred's shape.
        - **sample_weight**: optional, broadcastable to pred's shape with
          ``axis`` of size 1, or shape (batch_size,).

    Outputs:
        - **loss**: shape (batch_size,): the mean over the non-class axes
          other than the batch axis.

    Example::

        >>> loss = gluonx.loss.DistillationLoss(temperature=2.0, hard_weight=0.5)
        >>> loss(mx.nd.array([[2., 0.]]), mx.nd.array([0]), mx.nd.array([[1., 1.]]))  # [0.5439]
    """

    _inputs = ("pred", "label", "teacher")
    _kind = "contract"
    # one row operator (gluonx/kernels/distillation.cc) for classes on the last
    # axis: both softmaxes, the soft and the hard term in one pass per row
    _kernel = Kernel("gluonx_distillation_loss",
                     attrs={"temperature": "temperature", "hard_weight": "hard_weight",
                            "soft_weight": lambda self: (1 - self._hard_weight
                                                         if self._mix == "convex" else 1.0),
                            "sparse_label": "sparse_label",
                            "teacher_probabilities": "teacher_probabilities",
                            "teacher_entropy": lambda self: self._soft_loss == "kl"},
                     options={"axis": ANY, "soft_loss": ANY, "mix": ANY},
                     any_dtype=("label",),  # a dense label is checked below
                     when=lambda self, call: call.ndim >= 2 and call.last_axis(self._axis) and (
                         self._sparse_label or call.dtypes["label"] == call.dtypes["pred"]))

    def __init__(self, temperature=1.0, hard_weight=0.0, sparse_label=True, axis=-1,
                 teacher_probabilities=False, soft_loss="kl", mix="add", weight=None,
                 batch_axis=0, reduction="sample", **kwargs):
        super(DistillationLoss, self).__init__(weight, batch_axis, reduction, **kwargs)
        if not temperature > 0:
            _fail(self, "temperature", "must be > 0, got %r" % (temperature,))
        if soft_loss not in SOFT_LOSSES:
            _fail(self, "soft_loss", "must be one of %s, got %r" % (SOFT_LOSSES, soft_loss))
        if mix not in MIXES:
            _fail(self, "mix", "must be one of %s, got %r" % (MIXES, mix))
        if not (hard_weight >= 0 and (mix == "add" or hard_weight <= 1)):
            _fail(self, "hard_weight", "must be >= 0%s, got %r"
                  % (" and <= 1 with mix='convex'" if mix == "convex" else "", hard_weight))
        self._temperature = float(temperature)
        self._hard_weight = float(hard_weight)
        self._sparse_label = sparse_label
        self._axis = axis
        self._contract_axis = axis
        self._teacher_probabilities = teacher_probabilities
        self._soft_loss = soft_loss
        self._mix = mix
        self._like_pred = ("teacher",) if sparse_label else ("label", "teacher")

    def _check_shapes(self, plan):
        if self._sparse_label:
            check_index_shape(self, "label", plan.shapes["label"], plan.shapes["pred"],
                              self._axis)

    def _check_values(self, tensors, plan):
        pred = plan.shapes["pred"]
        if self._sparse_label and self._hard_weight > 0:
            check_index_values(self, "label", tensors["label"].asnumpy(),
                               pred[self._axis % len(pred)])
        if self._teacher_probabilities:
            check_probabilities(self, "teacher", tensors["teacher"].asnumpy())

    def _loss(self, F, pred, label, teacher):
        axis, t = self._axis, self._temperature
        # (not log_softmax's own temperature argument: MXNet 1.9.1 then takes a
        # slow path, 3-10x slower than a division followed by the fast one)
        logp = F.log_softmax(pred if t == 1 else pred / t, axis=axis)
        kl = self._soft_loss == "kl"
        if self._teacher_probabilities:
            q = teacher
            logq = F.log(teacher + LOG_EPSILON) if kl else None
        else:
            logq = F.log_softmax(teacher if t == 1 else teacher / t, axis=axis)
            q = F.exp(logq)
        gap = logp - logq if kl else logp  # cross_entropy: no teacher entropy
        soft = self._class_sum(F, q * gap) * -(t * t)
        w = self._hard_weight
        if self._mix == "convex":
            soft = soft * (1 - w)
        if w == 0:
            return soft
        hard_logp = logp if t == 1 else F.log_softmax(pred, axis=axis)
        if self._sparse_label:
            hard = -F.pick(hard_logp, label, axis=axis, keepdims=True)
        else:
            hard = -self._class_sum(F, hard_logp * label)
        return soft + hard * w

    def _class_sum(self, F, x):
        if self._axis == -1:
            return last_axis_sum(F, x)
        return F.sum(x, axis=self._axis, keepdims=True)
