"""Candidate-sampling losses: noise-contrastive estimation and negative sampling."""
import warnings

import numpy as np
import mxnet as mx

from ._base import Loss, _fail

__all__ = ["NCELoss", "alias_tables"]


def alias_tables(probabilities):
    """Walker's alias tables (built with Vose's method) of a distribution over
    ``len(probabilities)`` classes: ``(keep, alias)`` such that drawing a column
    ``j`` uniformly and keeping it with probability ``keep[j]`` (else taking
    ``alias[j]``) samples class ``j`` with probability ``probabilities[j]``."""
    q = np.asarray(probabilities, dtype=np.float64)
    n = q.size
    scaled = q * n / q.sum()
    keep = np.ones(n)
    alias = np.arange(n, dtype=np.float64)
    small = [j for j in range(n) if scaled[j] < 1]
    large = [j for j in range(n) if scaled[j] >= 1]
    while small and large:
        lo, hi = small.pop(), large.pop()
        keep[lo], alias[lo] = scaled[lo], hi
        scaled[hi] -= 1 - scaled[lo]
        (small if scaled[hi] < 1 else large).append(hi)
    return keep, alias


class NCELoss(Loss):
    r"""Noise-contrastive estimation (or negative sampling) for a large output layer.

    The block owns the output layer, ``weight`` :math:`W` of shape
    (num_classes, in_units) and ``bias`` :math:`b` of shape (num_classes,),
    and at each call draws ``num_sampled`` negative classes :math:`n_1..n_k`
    from the noise distribution :math:`Q` (one draw shared by the batch, with
    replacement; deterministic under ``mx.random.seed``). With scores
    :math:`s_c(x) = W_c \cdot x + b_c - [\text{subtract\_log\_q}] \log Q(c)`,

    .. math::
        L = \sum_t \Big( \mathrm{softplus}\big(-s_{y}(x_t)\big)
            + \sum_{j=1}^{k} \mathrm{softplus}\big(s_{n_j}(x_t)\big) \Big)

    the binary logistic loss of the true class :math:`y` against the
    negatives, summed over the sample's context vectors :math:`x_t` (one for
    ``pred`` of shape (batch_size, in_units)). ``subtract_log_q=True`` is NCE
    (Gutmann & Hyvarinen, 2010; Mnih & Teh, 2012), ``False`` negative sampling
    (Mikolov et al., 2013). A negative equal to the target is kept (as
    numpy-ml does). For evaluation, :meth:`logits` gives the full scores
    :math:`W x + b` for a softmax over all classes.

    Gradients of ``weight`` and ``bias`` are dense (rows that were not used get
    0); train with ``gluon.Trainer`` like any block with parameters (call
    ``initialize()`` first). In numpy mode (``mx.npx.set_np()``) it takes and
    returns mx.np arrays (``logits`` too), with the legacy numbers; the
    negatives drawn depend on the compute dtype (float64 inputs draw in
    float64), not on the mode. MXNet 1.9.1's initializers fail on float64
    parameters in numpy mode: build a ``dtype='float64'`` loss in legacy mode.

    Parameters
    ----------
    num_classes : int
    num_sampled : int
        Negatives per call, k >= 1.
    noise_distribution : sequence of float
        Probabilities (or non-negative weights, normalised here) of the
        num_classes classes under the noise distribution Q, e.g. unigram
        counts to the power 0.75.
    in_units : int, default 0
        Size of the input vectors; 0 infers it at the first call.
    subtract_log_q : bool, default True
        NCE (True) or negative sampling (False).
    weight : float or None
        Global scalar weight of the loss (the layer's weight is the parameter
        ``self.weight``).
    weight_initializer, bias_initializer : initializers of the output layer
        (default Xavier uniform and zeros).
    dtype : str, default 'float32'
        dtype of the parameters.
    reduction : {'sample', 'mean', 'sum', 'none'}, default 'sample'

    Inputs:
        - **pred**: input vectors, shape (batch_size, in_units) or
          (batch_size, contexts, in_units).
        - **label**: target classes, shape (batch_size,).
        - **sample_weight**: optional, shape (batch_size,).
        - **negatives**: optional, shape (num_sampled,): classes to use
          instead of drawing them (tests, reproducing other libraries).

    Outputs:
        - **loss**: shape (batch_size,).

    Example::

        >>> nce = gluonx.loss.NCELoss(1000, 16, counts ** 0.75, in_units=64)
        >>> nce.initialize()
        >>> nce(mx.nd.random.normal(shape=(8, 64)), mx.nd.arange(8))
    """

    _inputs = ("pred", "label")
    _optional = ("sample_weight", "negatives")
    _like_pred = ()
    _kind = "sample"

    def __init__(self, num_classes, num_sampled, noise_distribution, in_units=0,
                 subtract_log_q=True, weight=None, weight_initializer=None,
                 bias_initializer="zeros", dtype="float32", reduction="sample", **kwargs):
        super(NCELoss, self).__init__(weight, 0, reduction, **kwargs)
        if not (isinstance(num_classes, (int, np.integer)) and num_classes >= 1):
            _fail(self, "num_classes", "must be a positive int, got %r" % (num_classes,))
        if not (isinstance(num_sampled, (int, np.integer)) and num_sampled >= 1):
            _fail(self, "num_sampled", "must be a positive int, got %r" % (num_sampled,))
        if not (isinstance(in_units, (int, np.integer)) and in_units >= 0):
            _fail(self, "in_units", "must be an int >= 0, got %r" % (in_units,))
        q = np.asarray(noise_distribution, dtype=np.float64).ravel()
        if q.size != num_classes:
            _fail(self, "noise_distribution", "has %d entries, expected num_classes=%d"
                  % (q.size, num_classes))
        if not (np.all(np.isfinite(q)) and np.all(q >= 0) and q.sum() > 0):
            _fail(self, "noise_distribution", "must hold non-negative weights with a "
                  "positive sum")
        q = q / q.sum()
        self._config["noise_distribution"] = q.tolist()
        self._num_classes = int(num_classes)
        self._num_sampled = int(num_sampled)
        self._subtract_log_q = bool(subtract_log_q)
        keep, alias = alias_tables(q)
        with np.errstate(divide="ignore"):
            log_q = np.log(q)
        self._constant("noise_keep", keep.astype(np.float32))
        self._constant("noise_alias", alias.astype(np.float32))
        # float64, cast to the compute dtype at each call (float64 inputs get
        # the exact log Q)
        self._constant("noise_log_q", mx.nd.array(log_q, dtype="float64"))
        self._call_dtype = None
        if weight_initializer is None:
            weight_initializer = mx.init.Xavier(rnd_type="uniform", factor_type="avg",
                                                magnitude=3)
        self.weight = self.params.get("weight", shape=(num_classes, in_units), dtype=dtype,
                                      init=weight_initializer, allow_deferred_init=True)
        self.bias = self.params.get("bias", shape=(num_classes,), dtype=dtype,
                                    init=bias_initializer)

    # ------------------------------------------------------------------ calls
    def _dispatch(self, values, *args, **kwargs):
        pred = values.get(self._inputs[0])
        if isinstance(pred, mx.nd.NDArray) and not self._in_units() and pred.ndim >= 2:
            self.weight.shape = (self._num_classes, pred.shape[-1])
            self.weight._finish_deferred_init()
        return super(NCELoss, self)._dispatch(values, *args, **kwargs)

    def _run(self, plan, tensors, *args):
        if plan.graph is None and self._optional[-1] in tensors:   # negatives given
            # with negatives given, the sampler's tables are unused in this graph
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*not used by any computation.*")
                return super(NCELoss, self)._run(plan, tensors, *args)
        return super(NCELoss, self)._run(plan, tensors, *args)

    def _in_units(self):
        """The weight's input size; 0 while unknown (a deferred shape holds 0,
        or -1 when the loss was built in numpy mode)."""
        return max(self.weight.shape[1], 0)

    def _check_shapes(self, plan):
        pred, label = plan.shapes["pred"], plan.shapes["label"]
        in_units = self._in_units()
        if len(pred) not in (2, 3) or (in_units and pred[-1] != in_units):
            _fail(self, "pred", "has shape %s, expected (batch_size, %s) or (batch_size, "
                  "contexts, %s)" % (pred, in_units or "in_units", in_units or "in_units"))
        if tuple(s for s in label if s != 1) not in ((pred[0],), ()) or \
                int(np.prod(label)) != pred[0]:
            _fail(self, "label", "has shape %s, expected one class per sample, shape (%d,)"
                  % (label, pred[0]))
        if "negatives" in plan.shapes and plan.shapes["negatives"] != (self._num_sampled,):
            _fail(self, "negatives", "has shape %s, expected (num_sampled=%d,)"
                  % (plan.shapes["negatives"], self._num_sampled))

    def _check_values(self, tensors, plan):
        for name in ("label", "negatives"):
            if name not in tensors:
                continue
            v = tensors[name].asnumpy()
            bad = ~((v >= 0) & (v < self._num_classes) & (v == np.floor(v)))
            if bad.any():
                _fail(self, name, "holds %r; classes must be integers in [0, %d)"
                      % (v[bad].ravel()[0], self._num_classes))

    def _compute_dtype(self, plan):
        dtype = super(NCELoss, self)._compute_dtype(plan)
        param = np.dtype(self.weight.dtype).type
        return np.float64 if np.float64 in (dtype, param) else dtype

    def _compute(self, F, tensors, plan, params):
        dtype = self._compute_dtype(plan)
        self._call_dtype = np.dtype(dtype).name if dtype is not None else "float32"
        return super(NCELoss, self)._compute(F, tensors, plan, params)

    def _casts(self, name):
        return name in ("pred", "sample_weight")

    # ------------------------------------------------------------------- math
    def _sample(self, F, noise_keep, noise_alias):
        """num_sampled classes from Q by the alias method (two uniforms each)."""
        like = F.zeros_like(F.slice_axis(noise_keep, axis=0, begin=0, end=1))
        uniforms = F.random.uniform_like(
            F.broadcast_axis(F.reshape(like, shape=(1, 1)), axis=(0, 1),
                             size=(2, self._num_sampled)))
        column = F.minimum(F.floor(F.slice_axis(uniforms, axis=0, begin=0, end=1) *
                                   self._num_classes), self._num_classes - 1)
        coin = F.slice_axis(uniforms, axis=0, begin=1, end=2)
        keep = F.take(noise_keep, column) > coin
        drawn = F.where(keep, column, F.take(noise_alias, column))
        return F.BlockGrad(F.reshape(drawn, shape=(-1,)))

    def _loss(self, F, pred, label, negatives=None, weight=None, bias=None, noise_keep=None,
              noise_alias=None, noise_log_q=None):
        if negatives is None:
            negatives = self._sample(F, noise_keep, noise_alias)
        label = F.reshape(label, shape=(-1,))
        x = F.reshape(pred, shape=(0, -1, self.weight.shape[1]))           # (N, T, D)
        # one gather of the N target rows and the k negative rows: the backward
        # then scatters into one dense weight gradient, not two
        classes = F.concat(F.cast(label, dtype="int32"), F.cast(negatives, dtype="int32"),
                           dim=0)
        rows, row_bias = F.take(weight, classes), F.take(bias, classes)
        k = self._num_sampled
        true = F.broadcast_add(
            F.sum(F.broadcast_mul(x, F.expand_dims(
                F.slice_axis(rows, axis=0, begin=0, end=-k), axis=1)), axis=2),
            F.expand_dims(F.slice_axis(row_bias, axis=0, begin=0, end=-k), axis=1))  # (N, T)
        noise = F.broadcast_add(
            F.dot(x, F.slice_axis(rows, axis=0, begin=-k, end=None), transpose_b=True),
            F.reshape(F.slice_axis(row_bias, axis=0, begin=-k, end=None), shape=(1, 1, -1)))
        if self._subtract_log_q:
            noise_log_q = F.cast(noise_log_q, dtype=self._call_dtype or "float32")
            true = F.broadcast_sub(true, F.expand_dims(F.take(noise_log_q, label), axis=1))
            noise = F.broadcast_sub(noise, F.reshape(F.take(noise_log_q, negatives),
                                                     shape=(1, 1, -1)))
        positive = F.sum(F.Activation(-true, act_type="softrelu"), axis=1)
        negative = F.sum(F.Activation(noise, act_type="softrelu"), axis=(1, 2))
        return positive + negative

    # ------------------------------------------------------------- evaluation
    def logits(self, x):
        """Full scores :math:`W x + b` over all classes, shape x's shape with the
        last axis replaced by num_classes (for a softmax over all classes, e.g.
        ``SoftmaxCELoss()(nce.logits(x), label)``). NDArray or Symbol."""
        if isinstance(x, mx.sym.Symbol):
            numpy_mode = isinstance(x, mx.sym.np._Symbol)
            x, w, b = (_legacy(s) for s in (x, self.weight.var(), self.bias.var()))
            out = mx.sym.FullyConnected(x, w, b, num_hidden=self._num_classes, flatten=False)
            return out.as_np_ndarray() if numpy_mode else out
        numpy_mode = isinstance(x, mx.np.ndarray)
        w, b = (_legacy(p.data(x.context)) for p in (self.weight, self.bias))
        x = _legacy(x)
        if w.dtype != x.dtype:
            w, b = w.astype(x.dtype), b.astype(x.dtype)
        with mx.util.np_array(False):
            out = mx.nd.FullyConnected(x, w, b, num_hidden=self._num_classes, flatten=False)
        return out.as_np_ndarray() if numpy_mode else out


def _legacy(array):
    """The legacy view of an mx.np array or symbol (zero-copy); others unchanged."""
    numpy = isinstance(array, (mx.np.ndarray, mx.sym.np._Symbol))
    return array.as_nd_ndarray() if numpy else array
