"""Embedding, metric-learning and ranking losses: triplet (squared and p-norm
distances, or any distance), cosine embedding, hinge embedding, margin ranking, SDML, circle."""
import inspect
import math

import numpy as np
from mxnet.gluon import HybridBlock

from mxnet.gluon import loss as mx_loss

from ..kernels import Kernel
from ._base import Loss, _fail

__all__ = ["TripletLoss", "CosineEmbeddingLoss", "SDMLLoss", "CircleLoss", "MarginRankingLoss",
           "HingeEmbeddingLoss", "TripletMarginLoss", "TripletMarginWithDistanceLoss"]

#: smallest product of norms in the cosine similarity (as mxnet 1.9.1)
COSINE_EPSILON = 1e-12
#: added to the smoothed labels before their log in SDML's KL divergence
LOG_EPSILON = 1e-12


class TripletLoss(Loss, mx_loss.TripletLoss):
    r"""Triplet loss: the anchor should be nearer the positive than the negative.

    .. math::
        L = \max\big(0, \lVert \text{pred} - \text{positive} \rVert_2^2
                       - \lVert \text{pred} - \text{negative} \rVert_2^2 + \text{margin}\big)

    with the squared norms taken over all non-batch axes of a sample.

    Parameters
    ----------
    margin : float, default 1
    weight : float or None
    batch_axis : int, default 0
    reduction : {'sample', 'mean', 'sum', 'none'}, default 'sample'

    Inputs:
        - **pred**: anchors, any shape.
        - **positive**, **negative**: pred's shape.
        - **sample_weight**: optional, shape (batch_size,) or (batch_size, 1).

    Outputs:
        - **loss**: shape (batch_size,).

    Example::

        >>> loss = gluonx.loss.TripletLoss(margin=1)
        >>> loss(mx.nd.zeros((1, 2)), mx.nd.zeros((1, 2)), mx.nd.ones((1, 2)))  # [0.]
    """

    _inputs = ("pred", "positive", "negative")
    _like_pred = ("positive", "negative")
    _kind = "sample"
    _kernel = Kernel("gluonx_triplet_loss", attrs=("margin",))

    def __init__(self, margin=1, weight=None, batch_axis=0, reduction="sample", **kwargs):
        super(TripletLoss, self).__init__(weight, batch_axis, reduction, **kwargs)
        self._margin = margin

    def _loss(self, F, pred, positive, negative):
        gap = F.square(positive - pred) - F.square(negative - pred)
        return F.relu(F.sum(gap, axis=self._batch_axis, exclude=True) + self._margin)


class CosineEmbeddingLoss(Loss, mx_loss.CosineEmbeddingLoss):
    r"""Cosine embedding loss for pairs labelled similar (1) or dissimilar (-1).

    .. math::
        c = \frac{x_1 \cdot x_2}{\max(\lVert x_1 \rVert \lVert x_2 \rVert, 10^{-12})},\qquad
        L = \begin{cases} 1 - c & \text{label} = 1 \\
                          \max(0, c - \text{margin}) & \text{label} = -1 \end{cases}

    with the dot product and norms along the last axis.

    Parameters
    ----------
    weight : float or None
    batch_axis : int, default 0
    margin : float, default 0
    reduction : {'sample', 'mean', 'sum', 'none'}, default 'sample'
        ``'none'`` gives the inputs' shape without the last axis.

    Inputs:
        - **input1**, **input2**: shape (batch_size, ..., D).
        - **label**: 1 or -1 per pair, shape (batch_size, ...): the inputs'
          shape without the last axis.
        - **sample_weight**: optional, shape (batch_size,) or broadcastable
          to (batch_size, ..., 1).

    Outputs:
        - **loss**: shape (batch_size,) (1.9.1 returned (batch_size, 1)).

    Example::

        >>> loss = gluonx.loss.CosineEmbeddingLoss()
        >>> loss(mx.nd.array([[1., 0.]]), mx.nd.array([[0., 1.]]), mx.nd.array([1]))  # [1.]
    """

    _inputs = ("input1", "input2", "label")
    _like_pred = ("input2",)
    _kind = "contract"
    _contract_axis = -1
    _kernel = Kernel("gluonx_cosine_loss", attrs=("margin",), any_dtype=("label",),
                     when=lambda self, call: call.ndim >= 2)

    def __init__(self, weight=None, batch_axis=0, margin=0, reduction="sample", **kwargs):
        super(CosineEmbeddingLoss, self).__init__(weight, batch_axis, reduction, **kwargs)
        self._margin = margin

    def _check_shapes(self, plan):
        shape = plan.shapes["input1"]
        label = plan.shapes["label"]
        if int(np.prod(label)) != int(np.prod(shape[:-1])):
            _fail(self, "label", "has shape %s, expected one label per pair, shape %s"
                  % (label, shape[:-1]))

    def _check_values(self, tensors, plan):
        label = tensors["label"].asnumpy()
        if not np.isin(label, (-1, 1)).all():
            _fail(self, "label", "must hold 1 (similar) or -1 (dissimilar)")

    def _loss(self, F, input1, input2, label):
        dot = F.sum(input1 * input2, axis=-1, keepdims=True)
        norms = F.sum(F.square(input1), axis=-1, keepdims=True) * \
            F.sum(F.square(input2), axis=-1, keepdims=True)
        cosine = dot / F.sqrt(F.maximum(norms, COSINE_EPSILON ** 2))
        label = F.reshape_like(label, cosine)
        return (label == 1) * (1 - cosine) + (label == -1) * F.relu(cosine - self._margin)


class SDMLLoss(Loss, mx_loss.SDMLLoss):
    r"""Batch-wise Smoothed Deep Metric Learning loss (Bonadiman et al., 2019).

    Row i of ``x1`` is paired with row i of ``x2``; every other row of ``x2``
    is a negative. With squared distances :math:`d_{ij} = \lVert x_{1,i} - x_{2,j}\rVert^2`
    and smoothed targets :math:`q_{ij} = 1 - s` for :math:`i = j`,
    :math:`s / (N - 1)` otherwise,

    .. math::
        L_i = \sum_j q_{ij} \big(\log q_{ij} - \mathrm{log\_softmax}_j(-d_{i\cdot})\big)

    Parameters
    ----------
    smoothing_parameter : float, default 0.3
        Probability mass :math:`s` spread over the negatives (< 1).
    weight : float or None, default 1.
    batch_axis : int, default 0
    reduction : {'sample', 'mean', 'sum', 'none'}, default 'sample'

    Inputs:
        - **x1**, **x2**: shape (batch_size, D), batch_size >= 2.
        - **sample_weight**: optional, shape (batch_size,).

    Outputs:
        - **loss**: shape (batch_size,).

    Example::

        >>> loss = gluonx.loss.SDMLLoss()
        >>> loss(mx.nd.random.normal(shape=(4, 8)), mx.nd.random.normal(shape=(4, 8)))
    """

    _inputs = ("x1", "x2")
    _like_pred = ()
    _kind = "sample"
    _kernel = Kernel("gluonx_sdml_loss", attrs=("smoothing_parameter",))

    def __init__(self, smoothing_parameter=0.3, weight=1., batch_axis=0, reduction="sample",
                 **kwargs):
        super(SDMLLoss, self).__init__(weight, batch_axis, reduction, **kwargs)
        if not 0 <= smoothing_parameter < 1:
            _fail(self, "smoothing_parameter", "must be in [0, 1), got %r"
                  % (smoothing_parameter,))
        self.smoothing_parameter = smoothing_parameter

    def _check_shapes(self, plan):
        x1, x2 = plan.shapes["x1"], plan.shapes["x2"]
        if len(x1) != 2 or x1 != x2:
            _fail(self, "x2", "has shape %s, expected x1's shape %s, both (batch_size, D)"
                  % (x2, x1))
        if x1[0] < 2:
            _fail(self, "x1", "needs a batch of at least 2 pairs, got %d" % x1[0])

    def _loss(self, F, x1, x2):
        if self._batch_axis % 2 == 1:
            x1, x2 = F.transpose(x1), F.transpose(x2)
        differences = F.broadcast_sub(F.expand_dims(x1, axis=1), F.expand_dims(x2, axis=0))
        distances = F.sum(F.square(differences), axis=2)
        rows = F.contrib.arange_like(distances, axis=0)
        gold = F.broadcast_equal(F.reshape(rows, shape=(-1, 1)), F.reshape(rows, shape=(1, -1)))
        negatives = F.sum(1 - gold, axis=1, keepdims=True)
        s = self.smoothing_parameter
        target = gold * (1 - s) + F.broadcast_div((1 - gold) * s, negatives)
        log_probabilities = F.log_softmax(-distances, axis=1)
        return F.sum(target * (F.log(target + LOG_EPSILON) - log_probabilities), axis=1)


#: stands for -inf in the masked log-sum-exp of CircleLoss (finite, so that
#: masked entries get a zero gradient rather than NaN)
MASKED_LOGIT = 1e30


def _masked_logsumexp(F, logits, mask):
    """log sum_j mask_ij exp(logits_ij) per row, and whether a row has any entry
    (rows without one get 0 instead of -inf; the caller masks them out)."""
    masked = F.where(mask, logits, F.zeros_like(logits) - MASKED_LOGIT)
    present = F.sum(mask, axis=1, keepdims=True) > 0
    shift = F.BlockGrad(F.max(masked, axis=1, keepdims=True) * present)
    total = F.sum(F.exp(F.broadcast_sub(masked, shift)), axis=1, keepdims=True)
    return F.log(total + (1 - present)) + shift, present


class CircleLoss(Loss):
    r"""Circle loss (Sun et al., 2020) over the pairs of a batch with class labels.

    Each sample is an anchor; the other samples of its class are its
    positives :math:`P_i`, the samples of other classes its negatives
    :math:`N_i`. With cosine similarities :math:`s_{ij}`,

    .. math::
        L_i = \mathrm{softplus}\Big(
            \mathrm{logsumexp}_{j \in N_i}\, \gamma\, \alpha_{ij}^n (s_{ij} - m)
          + \mathrm{logsumexp}_{j \in P_i}\, -\gamma\, \alpha_{ij}^p (s_{ij} - 1 + m)\Big)

    with :math:`\alpha^p = [1 + m - s]_+` and :math:`\alpha^n = [s + m]_+`,
    evaluated with a stable, masked log-sum-exp. An anchor without a
    positive or without a negative has loss 0. Keras' ``Circle`` is the same
    loss on L2-normalised embeddings (``normalize=False``) and the same
    gradient with ``detach_weights=False``. With the fused kernels (CPU) the
    loss is one BLAS product (the embeddings' Gram matrix) and one operator
    that normalises it by its diagonal and does each anchor's row.

    Parameters
    ----------
    margin : float, default 0.25
        The relaxation :math:`m`.
    gamma : float, default 256
        The scale :math:`\gamma`.
    normalize : bool, default True
        L2-normalise the embeddings first (cosine similarity); else ``pred``
        must already be normalised (dot products are used as they are).
    detach_weights : bool, default False
        Treat :math:`\alpha^p, \alpha^n` as constants in the backward pass
        (the convention of the authors' and most PyTorch implementations);
        False differentiates through them, as Keras does. Values are the same.
    weight : float or None
    batch_axis : int, default 0
    reduction : {'sample', 'mean', 'sum', 'none'}, default 'sample'

    Inputs:
        - **pred**: embeddings, shape (batch_size, D).
        - **label**: class labels, shape (batch_size,) (any numbers; equal
          numbers mean the same class).
        - **sample_weight**: optional, shape (batch_size,) or (batch_size, 1).

    Outputs:
        - **loss**: shape (batch_size,): each anchor's loss.

    Example::

        >>> loss = gluonx.loss.CircleLoss(margin=0.25, gamma=64)
        >>> loss(mx.nd.random.normal(shape=(6, 8)), mx.nd.array([0, 0, 1, 1, 2, 2]))
    """

    _like_pred = ()
    _kind = "sample"
    # The Gram matrix of the embeddings stays a BLAS product (a stock operator
    # ahead of the kernel, see Kernel's `before`); the operator normalises it
    # with its diagonal (the squared norms) and does each anchor row's masked
    # log-sum-exps.
    _kernel = Kernel("gluonx_circle_loss",
                     attrs=("margin", "gamma", "detach_weights", "normalize"),
                     any_dtype=("label",), own_batch_axis=True,
                     when=lambda self, call: np.dtype(call.dtypes["label"]).kind in "fiu",
                     before=lambda self, F, x: dict(
                         x, pred=_gram(F, self._embeddings(F, x["pred"]))))

    def __init__(self, margin=0.25, gamma=256, normalize=True, detach_weights=False,
                 weight=None, batch_axis=0, reduction="sample", **kwargs):
        super(CircleLoss, self).__init__(weight, batch_axis, reduction, **kwargs)
        if not gamma > 0:
            _fail(self, "gamma", "must be > 0, got %r" % (gamma,))
        self._margin = float(margin)
        self._gamma = float(gamma)
        self._normalize = normalize
        self._detach_weights = detach_weights

    def _check_shapes(self, plan):
        pred, label = plan.shapes["pred"], plan.shapes["label"]
        if len(pred) != 2:
            _fail(self, "pred", "has shape %s, expected embeddings of shape (batch_size, D)"
                  % (pred,))
        batch = pred[self._batch_axis % 2]
        if int(np.prod(label)) != batch or len([s for s in label if s != 1]) > 1:
            _fail(self, "label", "has shape %s, expected one class label per sample, shape (%d,)"
                  % (label, batch))

    def _embeddings(self, F, pred):
        """The embeddings as (N, D) rows, on both paths."""
        return F.transpose(pred) if self._batch_axis % 2 == 1 else pred

    def _loss(self, F, pred, label):
        x = self._embeddings(F, pred)
        if self._normalize:
            norms = F.sum(F.square(x), axis=1, keepdims=True)
            x = F.broadcast_div(x, F.sqrt(F.maximum(norms, COSINE_EPSILON ** 2)))
        similarity = F.dot(x, x, transpose_b=True)
        label = F.reshape(label, shape=(-1,))
        same = F.broadcast_equal(F.reshape(label, shape=(-1, 1)), F.reshape(label, shape=(1, -1)))
        # masks in the similarity's dtype (labels may be integers)
        same = F.where(same, F.ones_like(similarity), F.zeros_like(similarity))
        rows = F.contrib.arange_like(similarity, axis=0)
        diagonal = F.broadcast_equal(F.reshape(rows, shape=(-1, 1)),
                                     F.reshape(rows, shape=(1, -1)))
        m, gamma = self._margin, self._gamma
        fixed = F.BlockGrad(similarity) if self._detach_weights else similarity
        positive_logits = F.relu(1 + m - fixed) * (1 - m - similarity) * gamma
        negative_logits = F.relu(fixed + m) * (similarity - m) * gamma
        positive, has_positive = _masked_logsumexp(F, positive_logits, same - diagonal)
        negative, has_negative = _masked_logsumexp(F, negative_logits, 1 - same)
        loss = F.Activation(positive + negative, act_type="softrelu") * has_positive * has_negative
        return F.reshape(loss, shape=(-1,))


def _gram(F, x):
    """The (N, N) dot products of the rows of ``x`` (CircleLoss's kernel input)."""
    return F.dot(x, x, transpose_b=True)


def _signs(loss, label):
    if not np.isin(label.asnumpy(), (-1, 1)).all():
        _fail(loss, "label", "must hold 1 or -1")


class MarginRankingLoss(Loss):
    r"""Margin ranking loss: ``input1`` should rank above ``input2`` where
    ``label`` is 1 and below it where ``label`` is -1, by at least ``margin``.

    .. math:: L = \max(0, -\text{label} \cdot (\text{input1} - \text{input2}) + \text{margin})

    Parameters
    ----------
    margin : float, default 0.
    weight, batch_axis, reduction : as in :class:`L2Loss` (weight defaults to None).

    Inputs:
        - **input1**, **input2**: scores, any shape (input2 of input1's shape).
        - **label**: 1 or -1, input1's shape.
        - **sample_weight**: optional, broadcastable to input1, or shape (batch_size,).

    Outputs:
        - **loss**: shape (batch_size,).

    Example::

        >>> loss = gluonx.loss.MarginRankingLoss(margin=0.5)
        >>> loss(mx.nd.array([1., 0.]), mx.nd.array([0., 0.]), mx.nd.array([1., -1.]))
    """

    _inputs = ("input1", "input2", "label")
    _like_pred = ("input2", "label")
    _kernel = Kernel("gluonx_margin_ranking_loss", attrs=("margin",))

    def __init__(self, margin=0.0, weight=None, batch_axis=0, reduction="sample", **kwargs):
        super(MarginRankingLoss, self).__init__(weight, batch_axis, reduction, **kwargs)
        self._margin = float(margin)

    def _check_values(self, tensors, plan):
        _signs(self, tensors["label"])

    def _loss(self, F, input1, input2, label):
        return F.relu(self._margin - label * (input1 - input2))


class HingeEmbeddingLoss(Loss):
    r"""Hinge embedding loss: ``pred`` (a distance) should be small for similar
    pairs (label 1) and at least ``margin`` for dissimilar ones (label -1).

    .. math::
        L = \begin{cases} \text{pred} & \text{label} = 1 \\
                          \max(0, \text{margin} - \text{pred}) & \text{label} = -1 \end{cases}

    Parameters
    ----------
    margin : float, default 1.0
    weight, batch_axis, reduction : as in :class:`L2Loss` (weight defaults to None).

    Inputs:
        - **pred**: distances, any shape.
        - **label**: 1 or -1, pred's shape.
        - **sample_weight**: optional, broadcastable to pred, or shape (batch_size,).

    Outputs:
        - **loss**: shape (batch_size,).

    Example::

        >>> loss = gluonx.loss.HingeEmbeddingLoss(margin=1.)
        >>> loss(mx.nd.array([[0.3, 0.4]]), mx.nd.array([[1., -1.]]))  # [0.45]
    """

    _kernel = Kernel("gluonx_hinge_embedding_loss", attrs=("margin",))

    def __init__(self, margin=1.0, weight=None, batch_axis=0, reduction="sample", **kwargs):
        super(HingeEmbeddingLoss, self).__init__(weight, batch_axis, reduction, **kwargs)
        self._margin = float(margin)

    def _check_values(self, tensors, plan):
        _signs(self, tensors["label"])

    def _loss(self, F, pred, label):
        return (label != -1) * pred + (label != 1) * F.relu(self._margin - pred)


#: PyTorch's pairwise_distance defaults: the default distance of TripletMarginWithDistanceLoss
PAIRWISE_P, PAIRWISE_EPS = 2.0, 1e-6


def pairwise_distance(F, x1, x2, p=PAIRWISE_P, eps=PAIRWISE_EPS):
    r""":math:`\lVert x_1 - x_2 + \epsilon \rVert_p` along the last axis, one value
    per row (PyTorch's ``pairwise_distance``, the default distance of
    :class:`TripletMarginWithDistanceLoss`)."""
    diff = x1 - x2 + eps
    if p == 2:
        return F.sqrt(F.sum(F.square(diff), axis=-1))
    if p == 1:
        return F.sum(F.abs(diff), axis=-1)
    if math.isinf(p):
        return F.max(F.abs(diff), axis=-1)
    return F.power(F.sum(F.power(F.abs(diff), p), axis=-1), 1.0 / p)


def _triplet(F, distance, anchor, positive, negative, margin, swap):
    to_positive = distance(anchor, positive)
    to_negative = distance(anchor, negative)
    if swap:
        to_negative = F.minimum(to_negative, distance(positive, negative))
    return F.relu(to_positive - to_negative + margin)


class TripletMarginLoss(Loss):
    r"""Triplet margin loss with PyTorch's p-norm distance (not squared):
    the anchor should be nearer the positive than the negative by ``margin``.

    .. math::
        d(a, b) = \lVert a - b + \epsilon \rVert_p,\qquad
        L = \max\big(0, d(\text{pred}, \text{positive})
                       - d(\text{pred}, \text{negative}) + \text{margin}\big)

    with the norm along the last axis. With ``swap=True`` the negative
    distance is :math:`\min(d(\text{pred}, \text{negative}), d(\text{positive},
    \text{negative}))` (Balntas et al., 2016). :class:`TripletLoss` keeps
    MXNet's squared Euclidean distance over all non-batch axes.

    Parameters
    ----------
    margin : float, default 1.0
    p : float, default 2
        The norm's degree (> 0; ``inf`` for the largest absolute difference).
    eps : float, default 1e-6
        Added to the differences before the norm.
    swap : bool, default False
    weight, batch_axis, reduction : as in :class:`L2Loss` (weight defaults to None).

    Inputs:
        - **pred**: anchors, shape (batch_size, D) (or (batch_size, ..., D)).
        - **positive**, **negative**: pred's shape.
        - **sample_weight**: optional, shape (batch_size,) or broadcastable
          to pred's shape with the last axis of size 1.

    Outputs:
        - **loss**: shape (batch_size,).

    Example::

        >>> loss = gluonx.loss.TripletMarginLoss(margin=1.)
        >>> loss(mx.nd.zeros((1, 2)), mx.nd.zeros((1, 2)), mx.nd.ones((1, 2)))  # [0.]
    """

    _inputs = ("pred", "positive", "negative")
    _like_pred = ("positive", "negative")
    _kind = "contract"
    _contract_axis = -1
    _kernel = Kernel("gluonx_triplet_margin_loss", attrs=("margin", "p", "eps", "swap"),
                     when=lambda self, call: call.ndim >= 2 and math.isfinite(self._p))

    def __init__(self, margin=1.0, p=2, eps=1e-6, swap=False, weight=None, batch_axis=0,
                 reduction="sample", **kwargs):
        super(TripletMarginLoss, self).__init__(weight, batch_axis, reduction, **kwargs)
        if not (isinstance(p, (int, float, np.number)) and p > 0):
            _fail(self, "p", "must be a number > 0, got %r" % (p,))
        self._margin, self._p, self._eps, self._swap = float(margin), float(p), float(eps), \
            bool(swap)

    def _distance(self, F, a, b):
        return F.expand_dims(pairwise_distance(F, a, b, self._p, self._eps), axis=-1)

    def _loss(self, F, pred, positive, negative):
        return _triplet(F, lambda a, b: self._distance(F, a, b), pred, positive, negative,
                        self._margin, self._swap)


class TripletMarginWithDistanceLoss(Loss):
    r"""Triplet margin loss with any distance function.

    .. math::
        L = \max\big(0, d(\text{pred}, \text{positive}) - d(\text{pred}, \text{negative})
                       + \text{margin}\big)

    (with ``swap=True`` as in :class:`TripletMarginLoss`).

    Parameters
    ----------
    distance_function : callable, HybridBlock or None
        The distance :math:`d`, returning one value per sample, shape
        (batch_size,): a function ``f(F, x1, x2)`` written on ``F`` (``mx.nd``
        or ``mx.sym``), a function ``f(x1, x2)`` using only operators and
        methods common to NDArray and Symbol (``(x1 - x2).square().sum(axis=-1)``),
        or a HybridBlock called as ``block(x1, x2)``. None: the Euclidean
        :func:`pairwise_distance` (p=2, eps=1e-6), as PyTorch.
    margin : float, default 1.0
    swap : bool, default False
    weight, batch_axis, reduction : as in :class:`L2Loss` (weight defaults to None).

    Inputs:
        - **pred**: anchors, shape (batch_size, ...).
        - **positive**, **negative**: pred's shape.
        - **sample_weight**: optional, shape (batch_size,).

    Outputs:
        - **loss**: shape (batch_size,).

    Example::

        >>> cosine = lambda F, a, b: 1 - F.sum(a * b, axis=-1) / (F.norm(a, axis=-1)
        ...                                                          * F.norm(b, axis=-1))
        >>> loss = gluonx.loss.TripletMarginWithDistanceLoss(distance_function=cosine)
        >>> loss(mx.nd.ones((2, 3)), mx.nd.ones((2, 3)), -mx.nd.ones((2, 3)))  # [0., 0.]
    """

    _inputs = ("pred", "positive", "negative")
    _like_pred = ("positive", "negative")
    _kind = "sample"
    # the default distance (pairwise_distance) is TripletMarginLoss's, and so is its kernel
    _kernel = Kernel("gluonx_triplet_margin_loss",
                     attrs={"margin": "margin", "swap": "swap", "p": lambda self: PAIRWISE_P,
                            "eps": lambda self: PAIRWISE_EPS},
                     options={"distance_function": None}, when=lambda self, call: call.ndim == 2)

    def __init__(self, distance_function=None, margin=1.0, swap=False, weight=None,
                 batch_axis=0, reduction="sample", **kwargs):
        super(TripletMarginWithDistanceLoss, self).__init__(weight, batch_axis, reduction,
                                                            **kwargs)
        if distance_function is not None and not callable(distance_function):
            _fail(self, "distance_function", "must be callable (a function or a HybridBlock), "
                  "got %r" % (distance_function,))
        self._margin, self._swap = float(margin), bool(swap)
        self._distance_block = None
        self._distance_takes_F = False
        if isinstance(distance_function, HybridBlock):
            self._distance_block = distance_function
            self.register_child(distance_function, "distance_function")
            # its parameters reach the loss's cached graphs
            self.params.update(distance_function.collect_params())
        elif distance_function is not None:
            self._distance_takes_F = _positional_count(distance_function) >= 3
        self._distance_function = distance_function

    def _distance(self, F, a, b):
        fn = self._distance_function
        if fn is None:
            return pairwise_distance(F, a, b)
        if self._distance_block is not None or not self._distance_takes_F:
            return fn(a, b)
        return fn(F, a, b)

    def _loss(self, F, pred, positive, negative):
        return _triplet(F, lambda a, b: self._distance(F, a, b), pred, positive, negative,
                        self._margin, self._swap)


def _positional_count(fn):
    """How many positional arguments ``fn`` takes (3 or more: it takes F first)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 2
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in params):
        return 2
    return sum(1 for p in params if p.kind in kinds)
