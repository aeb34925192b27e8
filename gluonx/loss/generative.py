"""Losses of generative models: the Bernoulli VAE bound and WGAN-GP.

Also :func:`critic_input_gradient`, which writes the gradient of a Gluon
critic with respect to its input as a forward graph of ordinary operators,
so that the gradient penalty of :class:`WGANGPLoss` trains the critic with
plain first-order ``autograd`` (MXNet 1.9.1 cannot differentiate the backward
of ``Activation`` or ``FullyConnected`` again).
"""
import numpy as np
import mxnet as mx
from mxnet import autograd
from mxnet.gluon import HybridBlock, nn

from ..kernels import ANY, Kernel
from ._base import Loss, _fail
from ._reduce import last_axis_sum

__all__ = ["VAELoss", "WGANGPLoss", "critic_input_gradient", "CriticInputGradient"]

#: added to the squared gradient norm before its square root (keeps the
#: penalty's gradient finite where the critic's input gradient is 0)
NORM_EPSILON = 1e-30


class VAELoss(Loss):
    r"""Negative evidence lower bound of a VAE with Bernoulli outputs and a
    diagonal Gaussian posterior, per sample.

    .. math::
        L = -\sum_j \big(y_j \log p_j + (1 - y_j) \log(1 - p_j)\big)
            + \frac{1}{2} \sum_k \big(e^{v_k} + \mu_k^2 - 1 - v_k\big)

    with :math:`p` the reconstruction probabilities (``pred`` clipped to
    :math:`[\epsilon, 1 - \epsilon]``, or :math:`\sigma(\text{pred})` computed
    stably as :math:`\mathrm{softplus}(x) - x y` when ``from_sigmoid=False``),
    :math:`y` the data, :math:`\mu` and :math:`v` the posterior's mean and
    log-variance. The first sum runs over all non-batch axes of ``pred``, the
    second (the KL divergence to :math:`\mathcal{N}(0, I)`) over those of ``mean``.

    Parameters
    ----------
    from_sigmoid : bool, default True
        Whether ``pred`` holds probabilities (else logits).
    eps : float, default 1e-7
        Probabilities are clipped to ``[eps, 1 - eps]`` before their log
        (``from_sigmoid=True`` only). 1e-7 still differs from 1 in float32.
    weight : float or None
    batch_axis : int, default 0
    reduction : {'sample', 'mean', 'sum', 'none'}, default 'sample'

    Inputs:
        - **pred**: reconstruction, shape (batch_size, ...).
        - **label**: the data, values in [0, 1], pred's shape.
        - **mean**: posterior mean, shape (batch_size, latent...).
        - **log_var**: posterior log-variance, mean's shape.
        - **sample_weight**: optional, shape (batch_size,).

    Outputs:
        - **loss**: shape (batch_size,).

    Example::

        >>> loss = gluonx.loss.VAELoss()
        >>> loss(mx.nd.full((1, 2), 0.5), mx.nd.array([[0, 1]]), mx.nd.zeros((1, 3)),
        ...      mx.nd.zeros((1, 3)))  # [1.3863]  (2 log 2, KL 0)
    """

    _inputs = ("pred", "label", "mean", "log_var")
    _kind = "sample"
    # one pass per sample over pred/label and mean/log_var (batch axis 0;
    # another batch axis runs the stock operators)
    _kernel = Kernel("gluonx_vae_loss", attrs=("from_sigmoid", "eps"))

    def __init__(self, from_sigmoid=True, eps=1e-7, weight=None, batch_axis=0,
                 reduction="sample", **kwargs):
        super(VAELoss, self).__init__(weight, batch_axis, reduction, **kwargs)
        if not 0 <= eps < 0.5:
            _fail(self, "eps", "must be in [0, 0.5), got %r" % (eps,))
        self._from_sigmoid = from_sigmoid
        self._eps = float(eps)

    def _check_shapes(self, plan):
        pred, mean, log_var = (plan.shapes[n] for n in ("pred", "mean", "log_var"))
        if log_var != mean:
            _fail(self, "log_var", "has shape %s, expected mean's shape %s" % (log_var, mean))
        axis = self._batch_axis
        if len(mean) <= axis % len(pred) or mean[axis] != pred[axis]:
            _fail(self, "mean", "has shape %s, expected %d samples along axis %d (pred's "
                  "shape %s)" % (mean, pred[axis], axis, pred))

    def _check_values(self, tensors, plan):
        label = tensors["label"].asnumpy()
        if not ((label >= 0) & (label <= 1)).all():
            _fail(self, "label", "must hold data in [0, 1]")
        if self._from_sigmoid:
            pred = tensors["pred"].asnumpy()
            if not ((pred >= 0) & (pred <= 1)).all():
                _fail(self, "pred", "must hold probabilities in [0, 1] when from_sigmoid=True")

    def _loss(self, F, pred, label, mean, log_var):
        if self._from_sigmoid:
            # (not F.clip: its bounds are float32, and 1 - 2.2e-16 would round to 1)
            p = F.maximum(F.minimum(pred, 1 - self._eps), self._eps)
            reconstruction = -(label * F.log(p) + (1 - label) * F.log(1 - p))
        else:
            reconstruction = F.Activation(pred, act_type="softrelu") - pred * label
        kl = (F.exp(log_var) + F.square(mean) - 1 - log_var) * 0.5
        axis = self._batch_axis
        return F.sum(reconstruction, axis=axis, exclude=True) + \
            F.sum(kl, axis=axis, exclude=True)


class WGANGPLoss(Loss):
    r"""Wasserstein GAN losses with gradient penalty (Gulrajani et al., 2017).

    One block serves both players; the inputs passed select the loss:

    - critic loss, ``loss(fake, real, grad_interp)``:

      .. math::
          L_i = D(\tilde x_i) - D(x_i) + \lambda \big(\lVert g_i \rVert_2 - 1\big)^2

    - generator loss, ``loss(fake)``: :math:`L_i = -D(\tilde x_i)`,

    where :math:`D(\tilde x_i)` (``fake``) and :math:`D(x_i)` (``real``) are the
    critic's scores and :math:`g_i` (``grad_interp``) the gradient of the
    critic's output at :math:`\alpha_i x_i + (1 - \alpha_i) \tilde x_i`
    with respect to that point (its norm over all non-batch axes). With
    ``reduction='mean'`` the critic loss is
    :math:`\overline{D(\tilde x)} - \overline{D(x)} + \lambda\,\overline{(\lVert g\rVert - 1)^2}`,
    three separate means: ``fake``, ``real`` and ``grad_interp`` may then have
    different numbers of samples (as numpy-ml's ``WGAN_GPLoss`` allows).
    Per-sample losses (``'sample'``, ``'none'``), ``'sum'`` and a
    ``sample_weight`` pair the i-th scores and gradient, so they need one
    length (else :class:`LossInputError`).

    For the penalty to train the critic, ``grad_interp`` must be a
    differentiable function of the critic's parameters: build it with
    :func:`critic_input_gradient`.

    Parameters
    ----------
    lambda_ : float, default 10
        Weight :math:`\lambda` of the gradient penalty (>= 0).
    weight : float or None
    reduction : {'sample', 'mean', 'sum', 'none'}, default 'sample'

    Inputs:
        - **fake**: critic scores of generated samples, shape (batch_size,)
          or (batch_size, 1).
        - **real**: optional (critic loss), critic scores of real samples,
          shape (batch_size,) or (batch_size, 1) (any length with
          ``reduction='mean'``).
        - **grad_interp**: optional (critic loss), shape (batch_size, ...) (any
          length with ``reduction='mean'``).
        - **sample_weight**: optional, shape (batch_size,).

    Outputs:
        - **loss**: shape (batch_size,).

    Example::

        >>> loss = gluonx.loss.WGANGPLoss(lambda_=10)
        >>> loss(mx.nd.array([1.]), mx.nd.array([3.]), mx.nd.array([[0.6, 0.8]]))  # [-2.]
        >>> loss(mx.nd.array([1.]))  # generator: [-1.]
    """

    _inputs = ("fake",)
    _optional = ("real", "grad_interp", "sample_weight")
    _like_pred = ()   # real: its own length with reduction='mean' (checked below)
    _kind = "sample"
    # critic or generator by the inputs given; `separate`: the three means of
    # reduction='mean' (one value, any lengths). The operator takes each
    # sample's |g|^2 from an operator of its own, whose backward (a pass over
    # g) runs only when grad_interp needs a gradient.
    _kernel = Kernel("gluonx_wgan_gp_loss", options={"lambda_": ANY},
                     attrs={"lambda_": lambda self: self._lambda,
                            "separate": lambda self: self._separate},
                     before=lambda self, F, x: x if x.get("grad_interp") is None else dict(
                         x, grad_interp=F.gluonx_row_sum_squares(x["grad_interp"])))

    def __init__(self, lambda_=10, weight=None, reduction="sample", **kwargs):
        super(WGANGPLoss, self).__init__(weight, 0, reduction, **kwargs)
        if not lambda_ >= 0:
            _fail(self, "lambda_", "must be >= 0, got %r" % (lambda_,))
        self._lambda = float(lambda_)
        self._separate = False   # set per graph by _compute

    def _check_shapes(self, plan):
        for name in ("fake", "real"):
            shape = plan.shapes.get(name)
            if shape is not None and (len(shape) not in (1, 2) or
                                      (len(shape) == 2 and shape[1] != 1)):
                _fail(self, name, "has shape %s, expected one critic score per sample, shape "
                      "(batch_size,) or (batch_size, 1)" % (shape,))
        given = [n for n in ("real", "grad_interp") if n in plan.shapes]
        if len(given) == 1:
            missing = ({"real", "grad_interp"} - set(given)).pop()
            _fail(self, missing, "is missing: the critic loss needs both 'real' and "
                  "'grad_interp', the generator loss neither")
        if not given:
            return
        n = plan.shapes["fake"][0]
        grad = plan.shapes["grad_interp"]
        if not grad:
            _fail(self, "grad_interp", "has shape (), expected (batch_size, ...)")
        if self._reduction == "mean" and "sample_weight" not in plan.shapes:
            return   # three separate means: any lengths
        why = ("(different lengths need reduction='mean' and no sample_weight: the mean "
               "objective's three means are separate; a per-sample loss, a sum or a "
               "weight pairs the i-th scores and gradient)")
        real = plan.shapes["real"]
        if real[0] != n:
            _fail(self, "real", "has shape %s, expected fake's shape %s (%d samples) %s"
                  % (real, plan.shapes["fake"], n, why))
        if grad[0] != n:
            _fail(self, "grad_interp", "has shape %s, expected (batch_size=%d, ...) %s"
                  % (grad, n, why))

    def _compute(self, F, tensors, plan, params):
        # reduction='mean' without weights: three separate means (also in mx.sym)
        self._separate = self._reduction == "mean" and "sample_weight" not in tensors
        return super(WGANGPLoss, self)._compute(F, tensors, plan, params)

    def _loss(self, F, fake, real=None, grad_interp=None):
        fake = F.sum(F.reshape(fake, shape=(0, -1)), axis=1)
        if real is None:
            return -fake
        real = F.sum(F.reshape(real, shape=(0, -1)), axis=1)
        squared = F.reshape(last_axis_sum(F, F.square(F.reshape(grad_interp, shape=(0, -1)))),
                            shape=(-1,))
        penalty = F.square(F.sqrt(squared + NORM_EPSILON) - 1) * self._lambda
        if self._separate:   # one value, shape (1,): its 'mean' is itself
            return F.mean(fake) - F.mean(real) + F.mean(penalty)
        return fake - real + penalty


# ---------------------------------------------------------------------------
# the critic's input gradient as a forward graph

_ACTIVATIONS = ("relu", "sigmoid", "tanh", "softrelu")


def _layers(block):
    """The critic's layers in order (nested HybridSequential/Sequential flattened)."""
    if isinstance(block, (nn.HybridSequential, nn.Sequential)):
        out = []
        for child in block._children.values():
            out.extend(_layers(child))
        return out
    return [block]


def _activation(layer):
    """('relu'|'sigmoid'|'tanh'|'softrelu'|'leaky'|'elu', alpha) for an activation layer."""
    if isinstance(layer, nn.Activation):
        act = layer._act_type
        if act in _ACTIVATIONS:
            return act, None
        return None
    if isinstance(layer, nn.LeakyReLU):
        return "leaky", float(layer._alpha)
    if isinstance(layer, nn.ELU):
        return "elu", float(layer._alpha)
    return None


def _describe(layer):
    return "%s (%s)" % (layer.name, type(layer).__name__ if not isinstance(layer, nn.Activation)
                        else "Activation(%r)" % layer._act_type)


_SUPPORTED = ("Dense, Conv2D (NCHW), AvgPool2D (NCHW), GlobalAvgPool2D (NCHW), Flatten, "
              "Dropout, BatchNorm (running statistics), Activation(%s), LeakyReLU, ELU, in a "
              "(Hybrid)Sequential" % "|".join(_ACTIVATIONS))


def _unsupported(layer, why):
    _fail("critic_input_gradient", "critic", "has layer %s, %s; supported: %s"
          % (_describe(layer), why, _SUPPORTED))


def _layer_activation(steps, layer):
    """The ('act', ...) step of a Dense/Conv2D layer's ``activation=``, if any."""
    if layer.act is not None:
        act = _activation(layer.act)
        if act is None:
            _fail("critic_input_gradient", "critic", "has layer %s with activation "
                  "%r, which is not supported" % (layer.name, layer.act._act_type))
        steps.append(("act", act))


def _nchw(layer):
    layout = layer._kwargs.get("layout")
    if layout not in (None, "NCHW"):
        _unsupported(layer, "with layout %r, which is not supported (NCHW only)" % (layout,))


def _plan_critic(critic):
    """[(kind, item)] steps of the critic, or LossInputError naming the layer."""
    steps = []
    for layer in _layers(critic):
        if isinstance(layer, nn.Dense):
            steps.append(("dense", layer))
            _layer_activation(steps, layer)
        elif isinstance(layer, nn.Conv2D):
            _nchw(layer)
            steps.append(("conv", layer))
            _layer_activation(steps, layer)
        elif isinstance(layer, (nn.AvgPool2D, nn.GlobalAvgPool2D, nn.MaxPool2D,
                                nn.GlobalMaxPool2D)):
            if layer._kwargs["pool_type"] != "avg":
                _unsupported(layer, "max pooling, which is not supported (its input gradient "
                             "needs the argmax of each window)")
            _nchw(layer)
            steps.append(("gavgpool" if layer._kwargs["global_pool"] else "avgpool", layer))
        elif isinstance(layer, nn.Flatten):
            steps.append(("flatten", layer))
        elif isinstance(layer, nn.Dropout):
            if layer._rate > 0:
                steps.append(("dropout", layer))
        elif type(layer) is nn.BatchNorm:   # (not BatchNormReLU, SyncBatchNorm)
            steps.append(("batchnorm", layer))
        elif _activation(layer) is not None:
            steps.append(("act", _activation(layer)))
        else:
            _unsupported(layer, "which is not supported")
    if not any(kind in ("dense", "conv") for kind, _ in steps):
        _fail("critic_input_gradient", "critic", "has no Dense or Conv2D layer")
    return steps


def _check_mode(steps):
    """BatchNorm must use its running statistics (samples independent)."""
    if not autograd.is_training():
        return
    for kind, layer in steps:
        if kind == "batchnorm" and not layer._kwargs["use_global_stats"]:
            _fail("critic_input_gradient", "critic", "has layer %s, which normalises with "
                  "batch statistics in training mode (samples are not independent): "
                  "construct it with use_global_stats=True, or call in predict mode "
                  "(autograd.record(train_mode=False))" % _describe(layer))


def _act_forward(F, z, kind, alpha):
    if kind in _ACTIVATIONS:
        return F.Activation(z, act_type=kind)
    # written out: MXNet's float64 LeakyReLU/ELU are accurate to float32 only
    positive = z > 0
    if kind == "leaky":
        return z * (positive + (1 - positive) * alpha)
    return positive * z + (1 - positive) * alpha * (F.exp(F.minimum(z, 0)) - 1)


def _act_derivative(F, z, h, kind, alpha):
    """d act / d z as first-order-differentiable operators of z (and h = act(z))."""
    if kind == "relu":
        return z > 0
    if kind == "sigmoid":
        return h * (1 - h)
    if kind == "tanh":
        return 1 - F.square(h)
    if kind == "softrelu":
        return F.sigmoid(z)
    positive = z > 0
    if kind == "leaky":
        return positive + (1 - positive) * alpha
    return positive + (1 - positive) * (h + alpha)   # elu: alpha * e^z = h + alpha


def critic_input_gradient(critic, x, return_output=False):
    r"""The gradient of a critic's output with respect to its input, as an
    ordinary forward graph: :math:`g_i = \nabla_{x_i} \sum_o D(x)_{i,o}`.

    The forward pass and its backward (the chain rule, layer by layer) are
    written with first-order-differentiable operators (``FullyConnected``,
    ``Convolution``, also for the transposed convolution with the same weight,
    ``Pooling``, elementwise math), so ``autograd`` of anything computed from
    ``g`` -- the WGAN-GP penalty of :class:`WGANGPLoss` -- reaches the
    critic's parameters exactly, which ``autograd.grad(create_graph=True)``
    cannot do through MXNet 1.9.1's layers.

    The critic is a HybridSequential (or Sequential, nested) of these layers:

    - ``Dense`` and ``Conv2D`` (NCHW; any kernel, strides, padding, dilation,
      groups; with or without bias and ``activation=``);
    - ``AvgPool2D`` (NCHW; any padding, ``ceil_mode``, ``count_include_pad``)
      and ``GlobalAvgPool2D``;
    - ``Flatten``, ``Activation`` (relu, sigmoid, tanh, softrelu),
      ``LeakyReLU``, ``ELU``;
    - ``Dropout``: the identity in predict mode; in training mode one random
      mask serves the output and its gradient, so ``g`` is the gradient of
      the critic with that mask (not with the mask of another call of the
      critic);
    - ``BatchNorm`` on its running statistics: constructed with
      ``use_global_stats=True``, or any BatchNorm in predict mode
      (``autograd.record(train_mode=False)``). One normalising with batch
      statistics (training mode) raises, as samples must be independent for
      a per-sample gradient. (MXNet's own ``BatchNorm`` backward in predict
      mode differentiates the batch-statistics formula; ``g`` here is the
      gradient of the function the critic computes.)

    Any other layer -- ``MaxPool2D`` and ``GlobalMaxPool2D`` (their gradient
    needs each window's argmax), NHWC layouts, ``Conv1D``/``Conv3D``,
    transposed convolutions, ... -- raises :class:`LossInputError` naming it.

    Parameters
    ----------
    critic : HybridSequential or Sequential
        Of the layers above.
    x : NDArray, shape (batch_size, ...)
        The points, typically :math:`\alpha x_{real} + (1 - \alpha) x_{fake}`.
    return_output : bool, default False
        Also return the critic's output :math:`D(x)`.

    Returns
    -------
    NDArray of x's shape (and the output, when ``return_output``).

    Example::

        >>> with autograd.record():
        ...     grad = gluonx.loss.critic_input_gradient(critic, x_interp)
        ...     loss = wgan(critic(fake), critic(real), grad)
        >>> loss.backward()   # the penalty's gradient reaches every critic parameter
    """
    steps = _plan_critic(critic)
    _check_mode(steps)
    _finish_init(critic, x)
    g, output = _input_gradient(mx.nd, steps, x, lambda p: p.data(x.context))
    if return_output:
        return g, output
    return g


def _finish_init(critic, x):
    if any(p._data is None for p in critic.collect_params().values()):
        with autograd.pause():
            critic(x)   # finishes deferred initialisation (shapes)


def _input_gradient(F, steps, x, param):
    """(input gradient, output) of the critic's ``steps`` at x; ``param(p)``
    gives a parameter's tensor on F."""
    h = x
    tape = []
    for kind, item in steps:
        z = h
        if kind == "dense":
            layer = item
            w = param(layer.weight)
            b = param(layer.bias) if layer.bias is not None else None
            args = (h, w) if b is None else (h, w, b)
            tape.append(("dense", (w, layer.weight.shape[1]), h))
            h = F.FullyConnected(*args, num_hidden=layer._units, no_bias=b is None,
                                 flatten=layer._flatten)
        elif kind == "conv":
            layer = item
            w = param(layer.weight)
            b = param(layer.bias) if layer.bias is not None else None
            tape.append(("conv", (layer, w), h))
            h = F.Convolution(*((h, w) if b is None else (h, w, b)), **layer._kwargs)
        elif kind in ("avgpool", "gavgpool"):
            tape.append((kind, item, h))
            h = F.Pooling(h, **item._kwargs)
        elif kind == "flatten":
            tape.append(("flatten", None, h))
            h = F.flatten(h)
        elif kind == "dropout":
            # one mask for the output and its gradient: ones in predict mode
            mask = F.Dropout(F.ones_like(h), p=item._rate, axes=item._axes)
            tape.append(("scale", mask, None))
            h = h * mask
        elif kind == "batchnorm":
            layer = item
            tensors = [param(p) for p in (layer.gamma, layer.beta, layer.running_mean,
                                          layer.running_var)]
            bn = dict(layer._kwargs, use_global_stats=True)
            bn.pop("momentum", None)
            tape.append(("batchnorm", (tensors, bn), None))
            h = F.BatchNorm(h, *tensors, **bn)
        else:
            act, alpha = item
            h = _act_forward(F, z, act, alpha)
            tape.append(("act", (act, alpha), (z, h)))
    output = h
    g = F.ones_like(output)
    for kind, item, saved in reversed(tape):
        if kind == "dense":
            w, in_units = item                  # (..., units) x (units, in) -> (..., in)
            # (FullyConnected, not dot: MKL-DNN makes it several times faster on CPU)
            g = F.FullyConnected(g, F.transpose(w), num_hidden=in_units, no_bias=True,
                                 flatten=False)
            g = F.reshape_like(g, saved)        # undo Dense's flatten
        elif kind == "conv":
            g = _conv_input_gradient(F, g, saved, *item)
        elif kind == "avgpool":
            g = _avgpool_input_gradient(F, g, saved, item._kwargs)
        elif kind == "gavgpool":
            # every input of a channel gets its output's gradient / (H W)
            area = F.sum(F.ones_like(saved), axis=(2, 3), keepdims=True)
            g = F.broadcast_like(F.broadcast_div(g, area), saved)
        elif kind == "flatten":
            g = F.reshape_like(g, saved)
        elif kind == "scale":
            g = g * item
        elif kind == "batchnorm":
            # its per-channel scale gamma / sqrt(var + eps), shaped (1, C, 1, ...)
            (gamma, _, _, var), bn = item
            scale = 1 / F.sqrt(var + bn["eps"])
            if not bn["fix_gamma"]:
                scale = scale * gamma
            shape = F.sum(g, axis=bn["axis"], exclude=True, keepdims=True)
            g = F.broadcast_mul(g, F.reshape_like(scale, shape))
        else:
            z, h_act = saved
            g = g * _act_derivative(F, z, h_act, *item)
    return g, output


def _transposed(F, g, w, w_shape, x, stride, dilate, pad, groups):
    """The adjoint of a convolution of x (NCHW) applied to g: a transposed
    convolution with the convolution's weight ``w`` (shape ``w_shape``:
    filters, channels / groups, kh, kw), written as a stride-1 convolution
    of g, with the stride's zeros put in, by the flipped and transposed
    weight. (Not ``Deconvolution``: with MKL-DNN, MXNet 1.9.1 fails to add a
    Deconvolution's weight gradient to another gradient, "could not execute
    a primitive", and its float64 Deconvolution is wrong with both stride and
    dilation.) The output covers x and more (the last stride - 1 rows and
    columns saw no window); the rest is cut off."""
    filters, per_group, kh, kw = w_shape
    kernel = (kh, kw)
    w = F.reshape(w, shape=(groups, filters // groups, per_group, kh, kw))
    w = F.reshape(F.transpose(w, axes=(0, 2, 1, 3, 4)),
                  shape=(groups * per_group, filters // groups, kh, kw))
    w = F.reverse(w, axis=(2, 3))
    if any(s > 1 for s in stride):
        g = _spread(F, g, stride)
    # a transposed convolution with padding p is the full one (padding
    # d (k - 1)) less p rows and columns on each side
    full = [d * (k - 1) - p for d, k, p in zip(dilate, kernel, pad)]
    g = F.Convolution(g, w, kernel=kernel, dilate=tuple(dilate),
                      pad=tuple(max(f, 0) for f in full), num_filter=groups * per_group,
                      num_group=groups, no_bias=True)
    if any(f < 0 for f in full):
        g = F.slice(g, begin=(None, None) + tuple(max(-f, 0) for f in full),
                    end=(None, None, None, None))
    return F.slice_like(g, x, axes=(2, 3))


def _spread(F, g, stride):
    """g (N, C, H, W) with stride - 1 zeros after each entry along H and W:
    shape (N, C, H sh, W sw)."""
    g = F.expand_dims(F.expand_dims(g, axis=3), axis=5)           # (N, C, H, 1, W, 1)
    for axis, s in ((3, stride[0]), (5, stride[1])):
        if s > 1:
            g = F.concat(g, *([F.zeros_like(g)] * (s - 1)), dim=axis)
    return F.reshape(g, shape=(0, 0, -3, -3))


def _conv_input_gradient(F, g, x, layer, w):
    kw = layer._kwargs
    return _transposed(F, g, w, layer.weight.shape, x, kw["stride"], kw["dilate"], kw["pad"],
                       kw["num_group"])


def _avgpool_input_gradient(F, g, x, kw):
    """Each output's gradient, divided by its window's divisor (MXNet's: the
    whole window, or its inputs only without count_include_pad), spread over
    the window: a transposed convolution with a ones kernel, channel by
    channel (channels folded into the batch)."""
    kernel = tuple(kw["kernel"])
    ones = F.ones_like(x)
    sums = F.Pooling(ones, **dict(kw, pool_type="sum"))        # inputs per window
    means = F.Pooling(ones, **kw)                               # inputs / divisor
    g = g * means / F.maximum(sums, 1)
    per_channel = lambda a: F.expand_dims(F.reshape(a, shape=(-3, -2)), axis=1)  # noqa: E731
    g, xc = per_channel(g), per_channel(x)
    one = F.ones_like(F.slice(g, begin=(0, 0, 0, 0), end=(1, 1, 1, 1)))
    ones = F.BlockGrad(F.tile(one, reps=(1, 1) + kernel))        # (1, 1, kh, kw)
    g = _transposed(F, g, ones, (1, 1) + kernel, xc, tuple(kw["stride"]), (1, 1),
                    tuple(kw["pad"]), 1)
    return F.reshape_like(g, x)


class CriticInputGradient(HybridBlock):
    r""":func:`critic_input_gradient` as a block, so it can be hybridized (one
    cached graph instead of a few dozen small operator calls: much faster in
    a training loop). ``CriticInputGradient(critic)(x)`` returns the gradient
    of the critic's output with respect to ``x``; the critic's parameters are
    shared (the block holds the critic as its child). Supported layers and
    the rest are those of :func:`critic_input_gradient`.

    Example::

        >>> gradient = gluonx.loss.CriticInputGradient(critic)
        >>> gradient.hybridize()
        >>> with autograd.record():
        ...     loss = wgan(critic(fake), critic(real), gradient(x_interp))
    """

    def __init__(self, critic, **kwargs):
        super(CriticInputGradient, self).__init__(**kwargs)
        _plan_critic(critic)   # unsupported layers fail here, by name
        self.critic = critic

    def forward(self, x, *args):
        _check_mode(_plan_critic(self.critic))
        _finish_init(self.critic, x)
        return super(CriticInputGradient, self).forward(x, *args)

    def hybrid_forward(self, F, x):  # pylint: disable=arguments-differ
        # numpy mode (npx.set_np()): the same graph on zero-copy legacy views
        numpy_mode = isinstance(x, (mx.np.ndarray, mx.sym.np._Symbol))
        if isinstance(x, mx.sym.Symbol):
            param = lambda p: _legacy(p.var())  # noqa: E731
        else:
            param = lambda p: _legacy(p.data(x.context))  # noqa: E731
        with mx.util.np_array(False):
            g = _input_gradient(F, _plan_critic(self.critic), _legacy(x), param)[0]
        return g.as_np_ndarray() if numpy_mode else g


def _legacy(array):
    """The legacy view of an mx.np array or symbol (zero-copy); others unchanged."""
    numpy = isinstance(array, (mx.np.ndarray, mx.sym.np._Symbol))
    return array.as_nd_ndarray() if numpy else array
