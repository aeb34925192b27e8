"""Per-pixel classification losses for semantic segmentation, as in GluonCV."""
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

    Inputs:
        - **pred**: scores, shape (N, C, H, W) (any shape with C along ``axis``).
        - **aux_pred**: with ``aux=True``, the auxiliary scores, pred's shape.
        - **label**: class indices, shape (N, H, W), or ``ignore_index``.
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
                 weight=None, batch_axis=0, reduction="sample", **kwargs):
        if "ignore_label" in kwargs:   # GluonCV's name
            ignore_index = kwargs.pop("ignore_label")
            self._config["ignore_index"] = ignore_index
        if kwargs.pop("mixup", False):
            _fail(type(self).__name__, "mixup", "is not supported (GluonCV's mixup path "
                  "fails with AttributeError; mix the two losses yourself)")
        super(MixSoftmaxCrossEntropyLoss, self).__init__(weight, batch_axis, reduction,
                                                         **kwargs)
        self._aux = aux
        self._aux_weight = float(aux_weight)
        self._ignore_index = ignore_index
        self._axis = axis
        self._contract_axis = axis
        heads = ("pred", "aux_pred") if aux else ("pred",)
        self._inputs = heads + ("label",)
        self._like_pred = heads[1:]

    def _check_shapes(self, plan):
        check_index_shape(self, "label", plan.shapes["label"], plan.shapes["pred"], self._axis)

    def _check_values(self, tensors, plan):
        pred = plan.shapes["pred"]
        check_index_values(self, "label", tensors["label"].asnumpy(),
                           pred[self._axis % len(pred)], self._ignore_index)

    def _loss(self, F, pred, label, aux_pred=None):
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
