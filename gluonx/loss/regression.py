"""Regression losses: L2, L1, Huber, Poisson and Gaussian negative log-likelihood,
mean squared error, smooth L1, log-cosh, MAPE, MSLE."""
import math

import numpy as np
from mxnet.gluon import loss as mx_loss

from ..kernels import Kernel
from ._base import Loss, _broadcasts_onto, _fail

__all__ = ["L2Loss", "L1Loss", "HuberLoss", "PoissonNLLLoss", "LogCoshLoss", "MAPELoss",
           "MSLELoss", "MSELoss", "SmoothL1Loss", "GaussianNLLLoss"]


class L2Loss(Loss, mx_loss.L2Loss):
    r"""Half the squared error between ``pred`` and ``label``.

    .. math:: L = \frac{1}{2} (\text{pred} - \text{label})^2

    Parameters
    ----------
    weight : float or None, default 1.
        Global scalar weight (None means 1).
    batch_axis : int, default 0
        The axis that indexes samples.
    reduction : {'sample', 'mean', 'sum', 'none'}, default 'sample'

    Inputs:
        - **pred**: any shape.
        - **label**: pred's shape (or the same size, or broadcastable to it).
        - **sample_weight**: optional, broadcastable to pred, or shape (batch_size,).

    Outputs:
        - **loss**: shape (batch_size,): the mean over non-batch axes.

    Example::

        >>> loss = gluonx.loss.L2Loss()
        >>> loss(mx.nd.array([[1., 2.]]), mx.nd.array([[1., 0.]]))  # [1.]
    """

    _kernel = Kernel("gluonx_l2_loss")

    def __init__(self, weight=1., batch_axis=0, reduction="sample", **kwargs):
        super(L2Loss, self).__init__(weight, batch_axis, reduction, **kwargs)

    def _loss(self, F, pred, label):
        return F.square(pred - label) * 0.5


class L1Loss(Loss, mx_loss.L1Loss):
    r"""Absolute error between ``pred`` and ``label``.

    .. math:: L = |\text{pred} - \text{label}|

    Parameters, inputs and outputs are those of :class:`L2Loss` (``weight``
    defaults to None).

    Example::

        >>> gluonx.loss.L1Loss()(mx.nd.array([[1., 3.]]), mx.nd.array([[0., 0.]]))  # [2.]
    """

    _kernel = Kernel("gluonx_l1_loss")

    def __init__(self, weight=None, batch_axis=0, reduction="sample", **kwargs):
        super(L1Loss, self).__init__(weight, batch_axis, reduction, **kwargs)

    def _loss(self, F, pred, label):
        return F.abs(pred - label)


class HuberLoss(Loss, mx_loss.HuberLoss):
    r"""Smoothed L1 loss: quadratic for errors below ``rho``, linear above.

    .. math::
        L = \begin{cases} \frac{1}{2\rho} (\text{pred} - \text{label})^2
              & |\text{pred} - \text{label}| \le \rho \\
            |\text{pred} - \text{label}| - \frac{\rho}{2} & \text{otherwise}
            \end{cases}

    Parameters
    ----------
    rho : float, default 1
        Threshold between the quadratic and the linear part (> 0).
    weight, batch_axis, reduction : as in :class:`L2Loss` (weight defaults to None).

    Inputs and outputs are those of :class:`L2Loss`.

    Example::

        >>> gluonx.loss.HuberLoss(rho=1)(mx.nd.array([[0., 3.]]), mx.nd.zeros((1, 2)))  # [1.25]
    """

    _kernel = Kernel("gluonx_huber_loss", attrs=("rho",))

    def __init__(self, rho=1, weight=None, batch_axis=0, reduction="sample", **kwargs):
        super(HuberLoss, self).__init__(weight, batch_axis, reduction, **kwargs)
        if not rho > 0:
            _fail(self, "rho", "must be > 0, got %r" % (rho,))
        self._rho = rho

    def _loss(self, F, pred, label):
        error = F.abs(pred - label)
        return F.where(error > self._rho, error - 0.5 * self._rho,
                       F.square(error) * (0.5 / self._rho))


class PoissonNLLLoss(Loss, mx_loss.PoissonNLLLoss):
    r"""Negative log-likelihood of ``target`` counts under a Poisson rate.

    .. math::
        L = \begin{cases} e^{\text{pred}} - \text{target} \cdot \text{pred}
              & \text{from\_logits (pred is the log-rate)} \\
            \text{pred} - \text{target} \cdot \log(\text{pred} + \epsilon)
              & \text{otherwise (pred is the rate)} \end{cases}
        \; + \; [\text{target} > 1] \, \big(t \log t - t + \tfrac12 \log(2 \pi t)\big)_{t=\text{target}}

    The last (Stirling) term approximates :math:`\log(\text{target}!)` and is
    added only with ``compute_full=True``; it is 0 where target <= 1.

    Parameters
    ----------
    weight : float or None
        Global scalar weight.
    from_logits : bool, default True
        Whether ``pred`` is the log of the rate.
    batch_axis : int, default 0
    compute_full : bool, default False
        Add the Stirling term (does not change the gradient).
    epsilon : float, default 1e-08
        Added to the rate before its log when ``from_logits=False``.
    reduction : {'sample', 'mean', 'sum', 'none'}, default 'sample'

    Inputs:
        - **pred**: log-rate (or rate >= 0), any shape.
        - **target**: counts, pred's shape.
        - **sample_weight**: optional, broadcastable to pred, or shape (batch_size,).

    Outputs:
        - **loss**: shape (batch_size,).

    Example::

        >>> loss = gluonx.loss.PoissonNLLLoss(compute_full=True)
        >>> loss(mx.nd.zeros((2, 3)), mx.nd.array([[0, 1, 2], [3, 0, 0]]))
    """

    _inputs = ("pred", "target")
    _like_pred = ("target",)
    _call_options = {"epsilon": None}
    _kernel = Kernel("gluonx_poisson_nll_loss", attrs=("from_logits", "compute_full", "epsilon"))

    def __init__(self, weight=None, from_logits=True, batch_axis=0, compute_full=False,
                 epsilon=1e-08, reduction="sample", **kwargs):
        super(PoissonNLLLoss, self).__init__(weight, batch_axis, reduction, **kwargs)
        self._from_logits = from_logits
        self._compute_full = compute_full
        self._epsilon = epsilon

    def _check_values(self, tensors, plan):
        if not self._from_logits and float(tensors["pred"].min().asscalar()) < 0:
            _fail(self, "pred", "must be a non-negative rate when from_logits=False")

    def _loss(self, F, pred, target, epsilon=None):
        epsilon = self._epsilon if epsilon is None else epsilon
        if self._from_logits:
            loss = F.exp(pred) - target * pred
        else:
            loss = pred - target * F.log(pred + epsilon)
        if self._compute_full:
            above_one = target > 1
            t = F.where(above_one, target, F.ones_like(target))
            stirling = t * F.log(t) - t + 0.5 * F.log(t * (2 * math.pi))
            loss = loss + stirling * above_one
        return loss


#: Keras' ``backend.epsilon()``: the floor of MAPE's denominator and of MSLE's inputs
KERAS_EPSILON = 1e-7


class LogCoshLoss(Loss):
    r"""Logarithm of the hyperbolic cosine of the error (Keras' ``LogCosh``).

    .. math::
        L = \log\cosh(\text{pred} - \text{label})
          = d + \mathrm{softplus}(-2 d) - \log 2,\quad d = \text{pred} - \text{label}

    The right-hand form is finite for any error (``cosh`` itself overflows
    beyond about 89 in float32); its gradient is :math:`\tanh(d)`. About
    :math:`d^2 / 2` for small errors and :math:`|d| - \log 2` for large ones.

    Parameters
    ----------
    weight : float or None
        Global scalar weight.
    batch_axis : int, default 0
    reduction : {'sample', 'mean', 'sum', 'none'}, default 'sample'

    Inputs:
        - **pred**: any shape.
        - **label**: pred's shape (or the same size, or broadcastable to it).
        - **sample_weight**: optional, broadcastable to pred, or shape (batch_size,).

    Outputs:
        - **loss**: shape (batch_size,): the mean over non-batch axes (Keras'
          per-sample value for 2-D inputs).

    Example::

        >>> loss = gluonx.loss.LogCoshLoss()
        >>> loss(mx.nd.array([[1., 1.]]), mx.nd.array([[0., 1.]]))  # [0.2169]
    """

    _kernel = Kernel("gluonx_log_cosh_loss")

    def __init__(self, weight=None, batch_axis=0, reduction="sample", **kwargs):
        super(LogCoshLoss, self).__init__(weight, batch_axis, reduction, **kwargs)

    def _loss(self, F, pred, label):
        error = pred - label
        return error + F.Activation(-2 * error, act_type="softrelu") - math.log(2.0)


class MAPELoss(Loss):
    r"""Mean absolute percentage error (Keras' ``MeanAbsolutePercentageError``).

    .. math::
        L = 100 \cdot \frac{|\text{label} - \text{pred}|}{\max(|\text{label}|, \epsilon)}

    Parameters
    ----------
    epsilon : float, default 1e-7
        Floor of the denominator (Keras' ``backend.epsilon()``), > 0.
    weight : float or None
    batch_axis : int, default 0
    reduction : {'sample', 'mean', 'sum', 'none'}, default 'sample'

    Inputs and outputs are those of :class:`LogCoshLoss`.

    Example::

        >>> loss = gluonx.loss.MAPELoss()
        >>> loss(mx.nd.array([[1.5, 1.]]), mx.nd.array([[1., 2.]]))  # [50.]
    """

    _kernel = Kernel("gluonx_mape_loss", attrs=("epsilon",))

    def __init__(self, epsilon=KERAS_EPSILON, weight=None, batch_axis=0, reduction="sample",
                 **kwargs):
        super(MAPELoss, self).__init__(weight, batch_axis, reduction, **kwargs)
        if not epsilon > 0:
            _fail(self, "epsilon", "must be > 0, got %r" % (epsilon,))
        self._epsilon = epsilon

    def _loss(self, F, pred, label):
        scale = 100.0 / F.maximum(F.abs(label), self._epsilon)
        return F.abs(label - pred) * scale


class MSLELoss(Loss):
    r"""Mean squared logarithmic error (Keras' ``MeanSquaredLogarithmicError``).

    .. math::
        L = \big(\log(1 + \max(\text{pred}, \epsilon))
                 - \log(1 + \max(\text{label}, \epsilon))\big)^2

    Values below :math:`\epsilon` (zero and negative ones included) count as
    :math:`\epsilon`, as in Keras; the gradient there is 0.

    Parameters
    ----------
    epsilon : float, default 1e-7
        Floor of pred and label (Keras' ``backend.epsilon()``), >= 0.
    weight : float or None
    batch_axis : int, default 0
    reduction : {'sample', 'mean', 'sum', 'none'}, default 'sample'

    Inputs and outputs are those of :class:`LogCoshLoss`.

    Example::

        >>> loss = gluonx.loss.MSLELoss()
        >>> loss(mx.nd.array([[math.e - 1]]), mx.nd.array([[0.]]))  # [1.]
    """

    _kernel = Kernel("gluonx_msle_loss", attrs=("epsilon",))

    def __init__(self, epsilon=KERAS_EPSILON, weight=None, batch_axis=0, reduction="sample",
                 **kwargs):
        super(MSLELoss, self).__init__(weight, batch_axis, reduction, **kwargs)
        if not epsilon >= 0:
            _fail(self, "epsilon", "must be >= 0, got %r" % (epsilon,))
        self._epsilon = epsilon

    def _loss(self, F, pred, label):
        eps = self._epsilon
        return F.square(F.log1p(F.maximum(pred, eps)) - F.log1p(F.maximum(label, eps)))


class MSELoss(Loss):
    r"""Squared error between ``pred`` and ``label`` (without :class:`L2Loss`'s \tfrac12).

    .. math:: L = (\text{pred} - \text{label})^2

    Parameters, inputs and outputs are those of :class:`L2Loss` (``weight``
    defaults to None).

    Example::

        >>> gluonx.loss.MSELoss()(mx.nd.array([[1., 3.]]), mx.nd.zeros((1, 2)))  # [5.]
    """

    _kernel = Kernel("gluonx_mse_loss")

    def __init__(self, weight=None, batch_axis=0, reduction="sample", **kwargs):
        super(MSELoss, self).__init__(weight, batch_axis, reduction, **kwargs)

    def _loss(self, F, pred, label):
        return F.square(pred - label)


class SmoothL1Loss(Loss):
    r"""Smooth L1 loss: quadratic for errors below ``beta``, linear above.

    .. math::
        L = \begin{cases} \frac{1}{2\beta} (\text{pred} - \text{label})^2
              & |\text{pred} - \text{label}| < \beta \\
            |\text{pred} - \text{label}| - \frac{\beta}{2} & \text{otherwise}
            \end{cases}

    The same function as :class:`HuberLoss` with ``rho=beta`` (which keeps
    MXNet's name and meaning); ``beta=0`` is the L1 loss.

    Parameters
    ----------
    beta : float, default 1.0
        Threshold between the quadratic and the linear part (>= 0).
    weight, batch_axis, reduction : as in :class:`L2Loss` (weight defaults to None).

    Inputs and outputs are those of :class:`L2Loss`.

    Example::

        >>> gluonx.loss.SmoothL1Loss(beta=1.)(mx.nd.array([[0.5, 3.]]), mx.nd.zeros((1, 2)))
    """

    # HuberLoss's operator is this function for beta > 0 (beta = 0 is the L1 loss)
    _kernel = Kernel("gluonx_huber_loss", attrs={"rho": "beta"},
                     when=lambda self, call: self._beta > 0)

    def __init__(self, beta=1.0, weight=None, batch_axis=0, reduction="sample", **kwargs):
        super(SmoothL1Loss, self).__init__(weight, batch_axis, reduction, **kwargs)
        if not (isinstance(beta, (int, float, np.number)) and beta >= 0):
            _fail(self, "beta", "must be a number >= 0, got %r" % (beta,))
        self._beta = float(beta)

    def _loss(self, F, pred, label):
        error = F.abs(pred - label)
        if self._beta == 0:
            return error
        return F.where(error < self._beta, F.square(error) * (0.5 / self._beta),
                       error - 0.5 * self._beta)


class GaussianNLLLoss(Loss):
    r"""Negative log-likelihood of ``label`` under a Gaussian with mean ``pred``
    and variance ``var``.

    .. math::
        v = \max(\text{var}, \epsilon),\qquad
        L = \tfrac12 \Big(\log v + \frac{(\text{pred} - \text{label})^2}{v}\Big)
            \; \big[+ \tfrac12 \log 2\pi \big]_{\text{full}}

    As in PyTorch, the clamp at :math:`\epsilon` does not block the gradient:
    ``var`` gets the gradient of the loss at :math:`v`.

    Parameters
    ----------
    full : bool, default False
        Add the constant :math:`\tfrac12 \log 2\pi`.
    eps : float, default 1e-6
        Smallest variance used (> 0).
    weight, batch_axis, reduction : as in :class:`L2Loss` (weight defaults to None).

    Inputs:
        - **pred**: the means, any shape.
        - **label**: the observations, pred's shape.
        - **var**: the variances (>= 0): pred's shape, or broadcastable to it
          (one variance per sample: ``(batch_size, 1)``), or pred's shape
          without the last axis.
        - **sample_weight**: optional, broadcastable to pred, or shape (batch_size,).

    Outputs:
        - **loss**: shape (batch_size,).

    Example::

        >>> loss = gluonx.loss.GaussianNLLLoss()
        >>> loss(mx.nd.zeros((2, 3)), mx.nd.ones((2, 3)), mx.nd.ones((2, 1)))  # [0.5, 0.5]
    """

    _inputs = ("pred", "label", "var")
    # var as the kernel gets it: full, per row, per column or a scalar
    _kernel = Kernel("gluonx_gaussian_nll_loss", attrs=("full", "eps"), weights={"var": "pred"})

    def __init__(self, full=False, eps=1e-6, weight=None, batch_axis=0, reduction="sample",
                 **kwargs):
        super(GaussianNLLLoss, self).__init__(weight, batch_axis, reduction, **kwargs)
        if not (isinstance(eps, (int, float, np.number)) and eps > 0):
            _fail(self, "eps", "must be a number > 0, got %r" % (eps,))
        self._full = bool(full)
        self._eps = float(eps)

    def _check_shapes(self, plan):
        var, pred = plan.shapes["var"], plan.shapes["pred"]
        if var == pred or _broadcasts_onto(var, pred):
            plan.align["var"] = ("broadcast", None)
        elif pred and var == pred[:-1]:
            plan.align["var"] = ("expand", None)   # one variance per row of the last axis
        elif int(np.prod(var)) == int(np.prod(pred)):
            plan.align["var"] = ("reshape", None)
        else:
            _fail(self, "var", "has shape %s, expected pred's shape %s, one that broadcasts "
                  "to it, or pred's shape without the last axis %s" % (var, pred, pred[:-1]))

    def _check_values(self, tensors, plan):
        if float(tensors["var"].min().asscalar()) < 0:
            _fail(self, "var", "must hold variances >= 0")

    def _compute(self, F, tensors, plan, params):
        mode = plan.align.get("var", ("broadcast", None))[0]
        if mode != "broadcast":
            var = tensors["var"]
            var = F.expand_dims(var, axis=-1) if mode == "expand" else \
                F.reshape_like(var, tensors["pred"])
            tensors = dict(tensors, var=var)
        return super(GaussianNLLLoss, self)._compute(F, tensors, plan, params)

    def _loss(self, F, pred, label, var):
        var = var + F.BlockGrad(F.maximum(var, self._eps) - var)
        loss = F.broadcast_add(F.log(var), F.broadcast_div(F.square(pred - label), var)) * 0.5
        if self._full:
            loss = loss + 0.5 * math.log(2 * math.pi)
        return loss
