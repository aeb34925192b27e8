"""Per-pixel classification losses for semantic segmentation, as in GluonCV."""
import numpy as np
import mxnet as mx

from ._base import Loss, _fail
from ._labels import check_index_shape, check_index_values

__all__ = ["MixSoftmaxCrossEntropyLoss", "MixSoftmaxCELoss"]


class MixSoftmaxCrossEntropyLoss(Loss):
    r"""Per-pixel softmax cross-entropy of a segmentation head plus, optionally,
    an auxiliary head (GluonCV's ``MixSoftmaxCrossEntropyLoss``), hybridizable.

    .. math::
        \ell(x)_{p} = -[\text{label}_p \ne \text{ignore}] \,
                       \log \mathrm{softmax}(x_{\cdot p})_{\text{label}_p},\qquad
        L = \overline{\ell(\text{pred}) + a \,\ell(\text{aux\_pred})}

    where the mean runs over a sample's pixels :math:`p` (ignored pixels count
    as 0, as in GluonCV) and :math:`a` is ``aux_weight`` (no auxiliary term
    with ``aux=False``). The gradient is the gradient of this value (GluonCV's
    backward, through ``SoftmaxOutput``, is not: it ignores ``aux_weight`` and
    the output gradient, and divides by the batch's number of valid pixels).

    With ``mixup=True`` (mixup training: each image a blend of two, Zhang et
    al., 2018) the loss mixes the cross-entropies of the two label maps with
    the blend's weight :math:`\lambda` (per batch or per sample),

    .. math::
        L = \overline{\lambda\,\big(\ell_1(\text{pred}) + a\,\ell_1(\text{aux\_pred})\big)
            + (1 - \lambda)\big(\ell_2(\text{pred}) + a\,\ell_2(\text{aux\_pred})\big)}

    with :math:`\ell_k` the loss above against ``label`` (k = 1) or ``label2``
    (k = 2), each 0 where its own label is ``ignore_index``. That is what
    GluonCV 0.10.5's ``mixup=True`` path is written to compute (it fails with
    AttributeError before computing anything).

    Parameters
    ----------
    aux : bool, default True
        Whether an auxiliary prediction is given (and added).
    aux_weight : float, default 0.2
        :math:`a`.
    ignore_index : int or None, default -1
        Label of pixels that contribute 0 (None: every label is a class).
        GluonCV's name ``ignore_label`` is accepted too.
    axis : int, default 1
        The class axis (1 for NCHW).
    weight : float or None
    batch_axis : int, default 0
    reduction : {'sample', 'mean', 'sum', 'none'}, default 'sample'
        ``'none'`` gives the per-pixel loss, pred's shape without the class axis.
    mixup : bool, default False
        Whether two label maps and :math:`\lambda` are given (GluonCV's inputs
        ``label1, label2, lam``).

    Inputs:
        - **pred**: scores, shape (N, C, H, W) (any shape with C along ``axis``).
        - **aux_pred**: with ``aux=True``, the auxiliary scores, pred's shape.
        - **label**: class indices, shape (N, H, W), or ``ignore_index``.
        - **label2**: with ``mixup=True``, the second image's class indices,
          label's shape.
        - **lam**: with ``mixup=True``, :math:`\lambda` in [0, 1]: a number,
          or an array of shape (1,) (one for the batch) or (N,) (one per sample).
        - **sample_weight**: optional, shape (N,), or broadcastable to (N, 1, H, W).

    Outputs:
        - **loss**: shape (N,).

    Example::

        >>> loss = gluonx.loss.MixSoftmaxCELoss(aux_weight=0.4)
        >>> pred, aux = mx.nd.zeros((1, 3, 2, 2)), mx.nd.zeros((1, 3, 2, 2))
        >>> loss(pred, aux, mx.nd.array([[[0, 1], [2, -1]]]))  # [1.1535]
    """

    _kind = "contract"

    def __init__(self, aux=True, aux_weight=0.2, ignore_index=-1, axis=1,
                 weight=None, batch_axis=0, reduction="sample", mixup=False, **kwargs):
        if "ignore_label" in kwargs:   # GluonCV's name
            ignore_index = kwargs.pop("ignore_label")
            self._config["ignore_index"] = ignore_index
        super(MixSoftmaxCrossEntropyLoss, self).__init__(weight, batch_axis, reduction,
                                                         **kwargs)
        self._aux = aux
        self._aux_weight = float(aux_weight)
        self._ignore_index = ignore_index
        self._axis = axis
        self._contract_axis = axis
        self._mixup = bool(mixup)
        heads = ("pred", "aux_pred") if aux else ("pred",)
        self._inputs = heads + (("label", "label2", "lam") if self._mixup else ("label",))
        self._like_pred = heads[1:]

    _direct_ok = True    # _dispatch only turns a number lam (never a direct call) into an array

    def _dispatch(self, values, *args, **kwargs):
        lam, pred = values.get("lam"), values.get("pred")
        if self._mixup and isinstance(lam, (int, float, np.number)) and \
                isinstance(pred, mx.nd.NDArray):     # a number: one lambda for the batch
            array = mx.np.array if isinstance(pred, mx.np.ndarray) else mx.nd.array
            values = dict(values, lam=array([float(lam)], ctx=pred.context, dtype=pred.dtype))
        return super(MixSoftmaxCrossEntropyLoss, self)._dispatch(values, *args, **kwargs)

    def _check_shapes(self, plan):
        for name in ("label", "label2") if self._mixup else ("label",):
            check_index_shape(self, name, plan.shapes[name], plan.shapes["pred"], self._axis)
        if self._mixup:
            lam, pred = plan.shapes["lam"], plan.shapes["pred"]
            n = pred[self._batch_axis]
            if int(np.prod(lam)) not in (1, n) or len([s for s in lam if s != 1]) > 1:
                _fail(self, "lam", "has shape %s, expected one lambda for the batch, shape "
                      "(1,), or one per sample, shape (%d,)" % (lam, n))

    def _check_values(self, tensors, plan):
        pred = plan.shapes["pred"]
        for name in ("label", "label2") if self._mixup else ("label",):
            check_index_values(self, name, tensors[name].asnumpy(),
                               pred[self._axis % len(pred)], self._ignore_index)
        if self._mixup:
            lam = tensors["lam"].asnumpy()
            if not ((lam >= 0) & (lam <= 1)).all():
                _fail(self, "lam", "must lie in [0, 1], got %r" % (lam.ravel().tolist(),))

    def _loss(self, F, pred, label, aux_pred=None, label2=None, lam=None):
        loss = self._against(F, pred, aux_pred, label)
        if not self._mixup:
            return loss
        other = self._against(F, pred, aux_pred, label2)
        # lambda per sample, shaped like the loss's batch axis: (N, 1, 1, ...)
        axis = self._batch_axis
        per_sample = F.broadcast_like(F.reshape(lam, shape=(-1,)),
                                      F.sum(loss, axis=axis, exclude=True))
        lam = F.reshape_like(per_sample, F.sum(loss, axis=axis, exclude=True, keepdims=True))
        return other + F.broadcast_mul(lam, loss - other)

    def _against(self, F, pred, aux_pred, label):
        """Per-pixel loss of the heads against one label map (0 where ignored)."""
        loss = self._head(F, pred, label)
        if self._aux:
            loss = loss + self._head(F, aux_pred, label) * self._aux_weight
        if self._ignore_index is not None:
            loss = loss * (F.reshape_like(label, loss) != self._ignore_index)
        return loss

    def _head(self, F, scores, label):
        if self._axis != 1:
            return -F.pick(F.log_softmax(scores, axis=self._axis), label, axis=self._axis,
                           keepdims=True)
        # NCHW: a softmax over a strided axis is slow in MXNet; over the last
        # axis of the (N, H*W, C) transpose it is 2-5x faster, backward too
        rows = F.transpose(F.reshape(scores, shape=(0, 0, -1)), axes=(0, 2, 1))
        flat = F.pick(F.log_softmax(rows, axis=-1), F.reshape(label, shape=(0, -1)), axis=-1)
        # (N, H*W) -> (N, 1, H, W): pred's spatial axes, whatever label's shape
        return -F.reshape_like(F.reshape(flat, shape=(0, 1, -1)), scores, lhs_begin=2,
                               rhs_begin=2)


MixSoftmaxCELoss = MixSoftmaxCrossEntropyLoss
