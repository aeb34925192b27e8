"""numpy-ml 0.1.2's losses as gluonx blocks, with numpy-ml's names, call
signatures and reductions.

Each class is a thin view of a Gluon-style gluonx loss (the formula lives
there, once): it renames the inputs to numpy-ml's, fixes the reduction
numpy-ml uses and its epsilons, and otherwise behaves like every gluonx loss
(hybridize, ``mx.sym``, export, float32/float64). numpy-ml's hand-written
``grad()`` methods are replaced by ``autograd``; see the "coming from
numpy-ml" page of the docs for the mapping and for numpy-ml's known gradient
errors (``WGAN_GPLoss.grad``'s sign, ``NCELoss.grad`` on accidental hits).

They take legacy NDArrays or, in numpy mode (``mx.npx.set_np()``), mx.np
arrays, and return the same kind. Every block returns a tensor of shape (1,)
(numpy-ml returns a float), and
``block.loss(...)`` is the same call as ``block(...)`` (numpy-ml's name);
``NCELoss.loss`` also returns numpy-ml's ``y_pred``.
"""
import copy

import numpy as np
import mxnet as mx

from ._base import LossInputError
from .classification import SoftmaxCrossEntropyLoss
from .generative import VAELoss as _VAELoss, WGANGPLoss
from .regression import L2Loss
from .sampling import NCELoss as _NCELoss, _legacy

__all__ = ["SquaredError", "CrossEntropy", "VAELoss", "WGAN_GPLoss", "NCELoss"]

#: numpy-ml's epsilon, ``np.finfo(float).eps`` (added before logs, used to clip)
EPS = float(np.finfo(np.float64).eps)


class _NumpyMLNames(object):
    """Runs the parent loss under numpy-ml's input names (``_names`` maps each
    numpy-ml name to the parent's), and names numpy-ml's arguments in errors."""

    _names = {}
    _kernel = None   # inputs renamed: the parents' fused kernels do not apply

    def _dispatch(self, values, *args, **kwargs):
        # numpy-ml takes integer targets (one-hot y): compute them in y_pred's dtype
        y, y_pred = values.get("y"), values.get("y_pred")
        if isinstance(y, mx.nd.NDArray) and isinstance(y_pred, mx.nd.NDArray) and \
                np.dtype(y.dtype).kind != "f":
            values = dict(values, y=y.astype(y_pred.dtype))
        return super(_NumpyMLNames, self)._dispatch(values, *args, **kwargs)

    def _compute(self, F, tensors, plan, params):
        # integer targets inside the graph too (mx.sym with an integer 'y', and
        # an exported graph fed integer targets): cast to y_pred's dtype
        dtypes = plan.dtypes or {}
        if "y" in tensors and dtypes.get("y_pred") is not None:
            target = np.dtype(dtypes["y_pred"])
            tensors = dict(tensors, y=F.cast(tensors["y"], dtype=target.name))
            if dtypes.get("y") is not None and np.dtype(dtypes["y"]).kind != "f":
                plan = copy.copy(plan)
                plan.dtypes = dict(dtypes, y=target.type)
        return super(_NumpyMLNames, self)._compute(F, tensors, plan, params)

    def _to_parent(self, mapping):
        return {self._names.get(k, k): v for k, v in mapping.items()}

    def _reraise(self, err):
        message = str(err)
        for ours, theirs in self._names.items():
            message = message.replace("'%s'" % theirs, "'%s'" % ours)
        raise LossInputError(message) from None

    def _check_shapes(self, plan):
        view = copy.copy(plan)
        view.names = tuple(self._names.get(n, n) for n in plan.names)
        view.shapes = self._to_parent(plan.shapes)
        view.dtypes = self._to_parent(plan.dtypes)
        view.align = {}
        try:
            super(_NumpyMLNames, self)._check_shapes(view)
        except LossInputError as err:
            self._reraise(err)
        back = {theirs: ours for ours, theirs in self._names.items()}
        plan.align.update({back.get(k, k): v for k, v in view.align.items()})

    def _check_values(self, tensors, plan):
        try:
            super(_NumpyMLNames, self)._check_values(self._to_parent(tensors), plan)
        except LossInputError as err:
            self._reraise(err)

    def _loss(self, F, **inputs):
        return super(_NumpyMLNames, self)._loss(F, **self._to_parent(inputs))

    def loss(self, *args, **kwargs):
        """numpy-ml's name for the call."""
        return self(*args, **kwargs)


class SquaredError(_NumpyMLNames, L2Loss):
    r"""numpy-ml's ``SquaredError``: half the squared norm of the error over the
    whole batch, :math:`\frac12 \lVert \hat y - y \rVert_2^2` (the math of
    :class:`~gluonx.loss.L2Loss`, summed).

    Call: ``loss(y, y_pred)``, both of shape (n, m) (any shape); output shape (1,).
    numpy-ml's ``grad(y, y_pred, z, act_fn)`` (the gradient with respect to
    the pre-activation ``z``) is ``autograd`` through ``y_pred = act_fn(z)``.
    """

    _inputs = ("y", "y_pred")
    _optional = ()
    _like_pred = ("y_pred",)
    _sample_reduce = "sum"
    _names = {"y": "label", "y_pred": "pred"}

    def __init__(self, **kwargs):
        super(SquaredError, self).__init__(weight=None, batch_axis=0, reduction="sum", **kwargs)


class CrossEntropy(_NumpyMLNames, SoftmaxCrossEntropyLoss):
    r"""numpy-ml's ``CrossEntropy``: :math:`-\sum_{i,c} y_{ic} \log(\hat y_{ic} + \epsilon)`
    over classes and samples, for one-hot ``y`` and probabilities ``y_pred``
    (the math of :class:`~gluonx.loss.SoftmaxCrossEntropyLoss` on
    :math:`\log(\hat y + \epsilon)` with dense labels, summed), :math:`\epsilon`
    = ``np.finfo(float).eps``.

    Call: ``loss(y, y_pred)``, both of shape (n, m); output shape (1,). As in
    numpy-ml, ``y`` must be binary and the rows of ``y_pred`` probabilities
    summing to 1 (else :class:`LossInputError`). numpy-ml's ``grad(y,
    y_pred)``, the gradient with respect to the softmax input ``z``
    (:math:`\hat y - y`), is ``autograd`` through ``y_pred = softmax(z)``.
    """

    _inputs = ("y", "y_pred")
    _optional = ()
    _names = {"y": "label", "y_pred": "pred"}

    def __init__(self, **kwargs):
        super(CrossEntropy, self).__init__(axis=-1, sparse_label=False, from_logits=True,
                                           reduction="sum", **kwargs)
        self._like_pred = ("y_pred",)

    def _check_shapes(self, plan):
        y, y_pred = plan.shapes["y"], plan.shapes["y_pred"]
        if len(y_pred) != 2 or y != y_pred:
            raise LossInputError("CrossEntropy: argument 'y' has shape %s, expected y_pred's "
                                 "shape %s, both (n, m)" % (y, y_pred))

    def _check_values(self, tensors, plan):
        y = tensors["y"].asnumpy()
        if not np.array_equal(y, y.astype(bool)):
            raise LossInputError("CrossEntropy: argument 'y' must be binary (one-hot)")
        p = tensors["y_pred"].asnumpy().astype(np.float64)
        if (p < 0).any() or (p > 1).any() or not np.allclose(p.sum(axis=1), 1):
            raise LossInputError("CrossEntropy: argument 'y_pred' must hold probabilities "
                                 "summing to 1 along axis 1")

    def _loss(self, F, y, y_pred):
        return SoftmaxCrossEntropyLoss._loss(self, F, F.log(y_pred + EPS), y)


class VAELoss(_NumpyMLNames, _VAELoss):
    r"""numpy-ml's ``VAELoss``: the negative variational lower bound of a
    Bernoulli VAE averaged over the batch (the math of
    :class:`~gluonx.loss.VAELoss` with ``eps=np.finfo(float).eps``, ``reduction='mean'``).

    Call: ``loss(y, y_pred, t_mean, t_log_var)``: data (n, N), reconstruction
    probabilities (n, N), posterior mean and log-variance (n, T); output shape
    (1,). numpy-ml's ``grad`` (dY_pred, dLogVar, dMean) is ``autograd``
    with respect to ``y_pred``, ``t_log_var`` and ``t_mean``.
    """

    _inputs = ("y", "y_pred", "t_mean", "t_log_var")
    _optional = ()
    _like_pred = ("y_pred",)
    _names = {"y": "label", "y_pred": "pred", "t_mean": "mean", "t_log_var": "log_var"}

    def __init__(self, **kwargs):
        super(VAELoss, self).__init__(from_sigmoid=True, eps=EPS, reduction="mean", **kwargs)


class WGAN_GPLoss(_NumpyMLNames, WGANGPLoss):  # pylint: disable=invalid-name
    r"""numpy-ml's ``WGAN_GPLoss``: the critic (``module='C'``) or generator
    (``module='G'``) loss of WGAN-GP averaged over the batch (the math of
    :class:`~gluonx.loss.WGANGPLoss`, ``reduction='mean'``).

    Call: ``loss(Y_fake, module, Y_real=None, gradInterp=None)``: critic scores
    (n_fake,), ``'C'`` or ``'G'``, real scores (n_real,) and the critic's input
    gradient (n_interp, n_feats) (``'C'`` only; build it with
    :func:`~gluonx.loss.critic_input_gradient`); output shape (1,). As in
    numpy-ml, the three means are separate, so the three lengths may differ.

    numpy-ml 0.1.2's ``grad`` returns ``dY_fake = -1/n`` and ``dY_real = +1/n``
    for the critic, the opposite of its own loss's derivative; ``autograd``
    here gives the derivative of the loss (``+1/n``, ``-1/n``).
    """

    _inputs = ("Y_fake",)
    _optional = ("Y_real", "gradInterp")
    _like_pred = ()
    _names = {"Y_fake": "fake", "Y_real": "real", "gradInterp": "grad_interp"}

    def __init__(self, lambda_=10, **kwargs):
        super(WGAN_GPLoss, self).__init__(lambda_=lambda_, reduction="mean", **kwargs)

    def __call__(self, Y_fake, module, Y_real=None, gradInterp=None):  # noqa: N803
        if module == "C":
            if Y_real is None or gradInterp is None:
                raise LossInputError("WGAN_GPLoss: module 'C' (the critic) needs Y_real and "
                                     "gradInterp")
            return super(WGAN_GPLoss, self).__call__(Y_fake, Y_real, gradInterp)
        if module == "G":
            return super(WGAN_GPLoss, self).__call__(Y_fake)
        raise LossInputError("WGAN_GPLoss: argument 'module' must be 'C' or 'G', got %r"
                             % (module,))


class NCELoss(_NumpyMLNames, _NCELoss):
    r"""numpy-ml's ``NCELoss``: the noise-contrastive estimation loss summed
    over the minibatch, its contexts and the targets and negatives (the math
    of :class:`~gluonx.loss.NCELoss`, ``reduction='sum'``).

    Construction: ``NCELoss(n_classes, noise_sampler, num_negative_samples,
    optimizer=None, init='glorot_uniform', subtract_log_label_prob=True)``;
    ``noise_sampler`` is numpy-ml's ``DiscreteSampler`` (its ``probs`` are
    used, and the negatives are drawn by gluonx, under ``mx.random.seed``) or
    the probabilities themselves. ``optimizer`` is accepted and ignored:
    train with ``gluon.Trainer``. The parameters are initialised at the first
    call (with ``init``) unless ``initialize()`` was called.

    Call: ``loss(X, target, neg_samples=None)``: X of shape (n_ex, n_c, n_in),
    target (n_ex,), optional negatives (num_negative_samples,); output shape
    (1,). ``loss.loss(...)`` returns numpy-ml's pair ``(loss, y_pred)``, with
    ``y_pred`` the probability of each target under each context, (n_ex, n_c).

    Differences: the logistic terms are computed stably (softplus), where
    numpy-ml clips probabilities to [eps, 1 - eps] (identical for logits of
    magnitude below ~36); numpy-ml 0.1.2's ``grad`` drops the target's weight
    and bias gradient when a negative sample equals the target, ``autograd``
    here keeps it (the derivative of the loss).
    """

    _inputs = ("X", "target")
    _optional = ("neg_samples",)
    _names = {"X": "pred", "target": "label", "neg_samples": "negatives"}

    _INITS = {
        "glorot_uniform": lambda: mx.init.Xavier("uniform", "avg", 3),
        "glorot_normal": lambda: mx.init.Xavier("gaussian", "avg", 1),
        "he_uniform": lambda: mx.init.Xavier("uniform", "in", 6),
        "he_normal": lambda: mx.init.Xavier("gaussian", "in", 2),
    }

    def __init__(self, n_classes, noise_sampler, num_negative_samples, optimizer=None,
                 init="glorot_uniform", subtract_log_label_prob=True, **kwargs):
        if init not in self._INITS:
            raise LossInputError("NCELoss: argument 'init' must be one of %s, got %r"
                                 % (sorted(self._INITS), init))
        probs = np.asarray(getattr(noise_sampler, "probs", noise_sampler), dtype=np.float64)
        if getattr(noise_sampler, "log", False):
            probs = np.exp(probs)
        super(NCELoss, self).__init__(n_classes, num_negative_samples, probs,
                                      subtract_log_q=subtract_log_label_prob,
                                      weight_initializer=self._INITS[init](),
                                      reduction="sum", **kwargs)
        self._config.pop("noise_distribution", None)   # the parent's name for it
        self._config["noise_sampler"] = probs.tolist()
        self.optimizer = optimizer

    def _dispatch(self, values, *args, **kwargs):
        if self.bias._data is None and self.bias._deferred_init == ():
            self.initialize()
        return super(NCELoss, self)._dispatch(values, *args, **kwargs)

    def loss(self, X, target, neg_samples=None, retain_derived=True):  # noqa: N803
        """numpy-ml's ``loss``: ``(loss, y_pred)``; ``retain_derived`` is ignored."""
        value = self(X, target, neg_samples)
        numpy_mode = isinstance(X, mx.np.ndarray)
        ctx = X.context
        X, t = _legacy(X), mx.nd.reshape(_legacy(target), shape=(-1,))
        w, b, log_q = (_legacy(p.data(ctx)).astype(X.dtype)   # (log Q: stored in float64)
                       for p in (self.weight, self.bias, self.noise_log_q))
        with mx.util.np_array(False):
            score = mx.nd.sum(mx.nd.broadcast_mul(X, mx.nd.expand_dims(mx.nd.take(w, t), 1)),
                              axis=2) + mx.nd.expand_dims(mx.nd.take(b, t), 1)
            if self._subtract_log_q:
                score = mx.nd.broadcast_sub(score, mx.nd.expand_dims(mx.nd.take(log_q, t), 1))
            y_pred = mx.nd.sigmoid(score)
        return value, y_pred.as_np_ndarray() if numpy_mode else y_pred
