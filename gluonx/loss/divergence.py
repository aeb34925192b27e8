"""Divergences between distributions: Kullback-Leibler."""
from mxnet.gluon import loss as mx_loss

from ..kernels import ANY, Kernel
from ._base import Loss

__all__ = ["KLDivLoss"]

#: added to the label before its log, so that label 0 contributes 0
LOG_EPSILON = 1e-12


class KLDivLoss(Loss, mx_loss.KLDivLoss):
    r"""Kullback-Leibler divergence of the prediction from the label distribution.

    .. math:: L = \text{label} \cdot (\log(\text{label} + 10^{-12}) - \log p)

    where :math:`\log p` is ``pred`` (``from_logits=True``) or
    ``log_softmax(pred, axis)``. With ``log_target=True`` the label holds
    log-probabilities :math:`\log q` and
    :math:`L = e^{\log q} (\log q - \log p)` (PyTorch's ``log_target``). A
    sample's value is the *sum* over its non-batch axes, as in
    ``mxnet.gluon.loss`` 1.9.1.

    Parameters
    ----------
    from_logits : bool, default True
        Whether ``pred`` already holds log-probabilities.
    axis : int, default -1
        The class axis of the softmax (when ``from_logits=False``).
    log_target : bool, default False
        Whether ``label`` holds log-probabilities (else probabilities; a label
        of 0 contributes 0).
    weight : float or None
    batch_axis : int, default 0
    reduction : {'sample', 'mean', 'sum', 'none'}, default 'sample'
        ``'none'`` gives the elementwise terms, pred's shape.

    Inputs:
        - **pred**: log-probabilities (or scores), any shape.
        - **label**: a distribution (``log_target=True``: its log), pred's shape.
        - **sample_weight**: optional, broadcastable to pred, or shape (batch_size,).

    Outputs:
        - **loss**: shape (batch_size,).

    Example::

        >>> loss = gluonx.loss.KLDivLoss(from_logits=False)
        >>> loss(mx.nd.array([[0., 0.]]), mx.nd.array([[0.5, 0.5]]))  # [0.]
    """

    _sample_reduce = "sum"
    _kernel = Kernel(lambda self: "gluonx_kldiv_loss" if self._from_logits
                     else "gluonx_kldiv_softmax_loss",
                     options={"from_logits": ANY, "axis": ANY, "log_target": False},
                     when=lambda self, call: self._from_logits or (
                         call.ndim >= 2 and call.last_axis(self._axis)))

    def __init__(self, from_logits=True, axis=-1, weight=None, batch_axis=0,
                 reduction="sample", log_target=False, **kwargs):
        super(KLDivLoss, self).__init__(weight, batch_axis, reduction, **kwargs)
        self._from_logits = from_logits
        self._axis = axis
        self._log_target = bool(log_target)

    def _loss(self, F, pred, label):
        if not self._from_logits:
            pred = F.log_softmax(pred, axis=self._axis)
        if self._log_target:
            return F.exp(label) * (label - pred)
        return label * (F.log(label + LOG_EPSILON) - pred)
