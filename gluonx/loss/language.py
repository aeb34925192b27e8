"""Language-model losses, as in GluonNLP 0.10: masked softmax cross-entropy,
label smoothing, and the AWD-LSTM activation regularisers (AR and TAR)."""
import numpy as np
import mxnet as mx
from mxnet.gluon import HybridBlock

from ..kernels import ANY, Kernel
from ._base import Loss, _fail
from ._labels import check_index_shape, check_index_values
from ._reduce import last_axis_sum, total_mean

__all__ = ["MaskedSoftmaxCrossEntropyLoss", "MaskedSoftmaxCELoss", "LabelSmoothing",
           "ActivationRegularizationLoss", "TemporalActivationRegularizationLoss"]

AVERAGES = ("valid", "padded")


class MaskedSoftmaxCrossEntropyLoss(Loss):
    r"""Softmax cross-entropy of sequences of different lengths: each sample's
    value is the mean over its valid steps only.

    .. math::
        \ell_{t} = -\log \mathrm{softmax}(\text{pred}_{t})_{\text{label}_t},\qquad
        L = \frac{1}{\max(1, n)} \sum_{t < n} \ell_t

    with :math:`n` the sample's ``valid_length`` (all :math:`T` steps when
    ``valid_length`` is not given; a sequence of length 0 has loss 0). So a
    sequence's loss does not depend on how much the batch pads it.

    GluonNLP 0.10's ``MaskedSoftmaxCELoss`` divides by the padded length
    :math:`T` instead (gluon-nlp issue #238): ``average='padded'`` gives its
    numbers, for runs that must match old ones.

    Parameters
    ----------
    sparse_label : bool, default True
        Whether ``label`` holds class indices (else a distribution over classes).
    from_logits : bool, default False
        Whether ``pred`` already holds log-probabilities.
    weight : float or None
    batch_axis : {0, 1}, default 0
        0 for (N, T, C) inputs (GluonNLP's layout), 1 for (T, N, C).
    average : {'valid', 'padded'}, default 'valid'
        Divide a sample's sum over its valid steps by the number of valid
        steps, or by the padded length :math:`T` (GluonNLP 0.10).
    reduction : {'sample', 'mean', 'sum', 'none'}, default 'sample'
        ``'none'`` gives each step's share of its sample's value, shape (N, T)
        (zero on padded steps).

    Inputs:
        - **pred**: scores, shape (N, T, C) (or (T, N, C) with ``batch_axis=1``).
        - **label**: class indices, shape (N, T); or a distribution, pred's shape.
          Padded steps may hold any index.
        - **valid_length**: optional, shape (N,): integers in [0, T].
        - **sample_weight**: optional, shape (N,), or broadcastable to (N, T, 1).

    Outputs:
        - **loss**: shape (N,).

    Example::

        >>> loss = gluonx.loss.MaskedSoftmaxCELoss()
        >>> loss(mx.nd.zeros((1, 3, 4)), mx.nd.array([[1, 2, 0]]), mx.nd.array([2]))  # [1.3863]
    """

    _optional = ("valid_length", "sample_weight")
    _kind = "contract"
    _contract_axis = -1
    _sample_reduce = "sum"
    # softmax CE's operator, its positions t >= valid_length masked: a sample's
    # value is the sum over its valid steps / their number ('valid') or / T
    _kernel = Kernel("gluonx_softmax_ce_loss",
                     attrs={"sparse_label": "sparse_label", "from_logits": "from_logits",
                            "label_smoothing": lambda self: 0, "ignore": lambda self: False,
                            "ignore_index": lambda self: 0,
                            "average_valid": lambda self: self._average == "valid",
                            "batch_mean": lambda self: False, "gamma": lambda self: 0},
                     inputs=("pred", "label", "sample_weight", "valid_length", "class_weight"),
                     options={"average": ("valid", "padded")},
                     any_dtype=("label", "valid_length"),
                     when=lambda self, call: self._sparse_label or
                     call.dtypes["label"] == call.dtypes["pred"])

    def __init__(self, sparse_label=True, from_logits=False, weight=None, batch_axis=0,
                 average="valid", reduction="sample", **kwargs):
        super(MaskedSoftmaxCrossEntropyLoss, self).__init__(weight, batch_axis, reduction,
                                                            **kwargs)
        if batch_axis not in (0, 1):
            _fail(self, "batch_axis", "must be 0 (N, T, C) or 1 (T, N, C), got %r"
                  % (batch_axis,))
        if average not in AVERAGES:
            _fail(self, "average", "must be one of %s, got %r" % (AVERAGES, average))
        self._sparse_label = sparse_label
        self._from_logits = from_logits
        self._average = average
        self._time_axis = 1 - batch_axis
        self._like_pred = () if sparse_label else ("label",)

    def _casts(self, name):
        return name != "valid_length"

    def _check_shapes(self, plan):
        pred = plan.shapes["pred"]
        if len(pred) != 3:
            _fail(self, "pred", "has shape %s, expected 3 axes (%s, C)"
                  % (pred, "N, T" if self._batch_axis == 0 else "T, N"))
        if self._sparse_label:
            check_index_shape(self, "label", plan.shapes["label"], pred, -1)
        if "valid_length" in plan.shapes:
            n = pred[self._batch_axis]
            if int(np.prod(plan.shapes["valid_length"])) != n:
                _fail(self, "valid_length", "has shape %s, expected (%d,): one length per "
                      "sequence" % (plan.shapes["valid_length"], n))

    def _check_values(self, tensors, plan):
        pred = plan.shapes["pred"]
        steps = pred[self._time_axis]
        used = None
        if "valid_length" in tensors:
            lengths = tensors["valid_length"].asnumpy().astype(np.float64).ravel()
            if not (np.isfinite(lengths).all() and (lengths == np.floor(lengths)).all()
                    and (lengths >= 0).all() and (lengths <= steps).all()):
                _fail(self, "valid_length", "must hold integers in [0, %d], got %s"
                      % (steps, lengths.tolist()))
            used = np.arange(steps)[None, :] < lengths[:, None]     # (N, T)
        if self._sparse_label:
            label = tensors["label"].asnumpy().reshape(pred[:2])
            if self._batch_axis == 1:
                label = label.T
            check_index_values(self, "label", label, pred[-1], used=used)

    def _loss(self, F, pred, label, valid_length=None):
        logp = pred if self._from_logits else F.log_softmax(pred, axis=-1)
        if self._sparse_label:
            steps = -F.pick(logp, label, axis=-1, keepdims=True)
        else:
            steps = -last_axis_sum(F, logp * label)
        axis = self._time_axis
        ones = F.ones_like(steps)
        if valid_length is None:
            return F.broadcast_div(steps, F.sum(ones, axis=axis, keepdims=True))
        steps = F.SequenceMask(steps, sequence_length=valid_length, use_sequence_length=True,
                               axis=axis)
        if self._average == "padded":
            count = F.sum(ones, axis=axis, keepdims=True)
        else:
            count = F.sum(F.SequenceMask(ones, sequence_length=valid_length,
                                         use_sequence_length=True, axis=axis),
                          axis=axis, keepdims=True)
            count = F.maximum(count, 1)
        return F.broadcast_div(steps, count)


MaskedSoftmaxCELoss = MaskedSoftmaxCrossEntropyLoss


class LabelSmoothing(HybridBlock):
    r"""Label smoothing (Szegedy et al., 2016), as GluonNLP's block: turns labels
    into smoothed distributions over V classes.

    .. math:: q = (1 - \varepsilon)\, \text{onehot}(\text{label}) + \varepsilon / V

    Not a loss: its output is the label to give a cross-entropy with
    ``sparse_label=False``. Unlike GluonNLP's, it hybridizes with ``units``
    given at call time, dense inputs need no custom operator, and it runs in
    numpy mode (``mx.npx.set_np()``: mx.np arrays in and out).

    Parameters
    ----------
    axis : int, default -1
        The class axis of dense inputs (sparse inputs gain a last axis).
    epsilon : float, default 0.1
        :math:`\varepsilon` in [0, 1].
    units : int or None
        V, the number of classes. Needed for sparse inputs (here or at call
        time); for dense inputs None means their size along ``axis``.
    sparse_label : bool, default True
        Whether the inputs are class indices (else one-hot rows or distributions).
    prefix, params : as for any gluon Block.
    dtype : str, default 'float32'
        The output dtype for sparse inputs (dense inputs keep their dtype).

    Inputs:
        - **inputs**: class indices (any shape, integers in [0, V)), or
          distributions with V entries along ``axis``.
        - **units**: optional int, overrides the constructor's ``units``.

    Outputs:
        - **smoothed**: the inputs' shape plus a last axis of size V (sparse),
          or the inputs' shape (dense).

    Example::

        >>> smooth = gluonx.loss.LabelSmoothing(epsilon=0.1, units=4)
        >>> smooth(mx.nd.array([[1, 3]]))  # [[[0.025, 0.925, 0.025, 0.025], ...]]
    """

    def __init__(self, axis=-1, epsilon=0.1, units=None, sparse_label=True, prefix=None,
                 params=None, dtype="float32"):
        super(LabelSmoothing, self).__init__(prefix=prefix, params=params)
        if not 0 <= epsilon <= 1:
            _fail(self, "epsilon", "must be in [0, 1], got %r" % (epsilon,))
        _check_units(self, units)
        self._axis = axis
        self._epsilon = float(epsilon)
        self._units = units
        self._sparse_label = sparse_label
        self._dtype = dtype
        self._by_units = {}
        self._config = {"axis": axis, "epsilon": epsilon, "units": units,
                        "sparse_label": sparse_label, "dtype": dtype}

    def get_config(self):
        """The constructor arguments, as a dict."""
        return dict(self._config)

    @classmethod
    def from_config(cls, cfg):
        return cls(**cfg)

    def __call__(self, inputs, units=None):
        if units is None or units == self._units:
            self._check(inputs, self._units)
            return super(LabelSmoothing, self).__call__(inputs)
        _check_units(self, units)
        self._check(inputs, units)
        block = self._by_units.get(units)
        if block is None:
            cfg = dict(self._config, units=units)
            block = self._by_units[units] = LabelSmoothing(**cfg)
        if block._active != self._active:   # follow this block's hybridize() state
            block.hybridize(self._active, **dict(self._flags))
        return block(inputs)

    def _check(self, inputs, units):
        if not isinstance(inputs, (mx.nd.NDArray, mx.sym.Symbol)):
            _fail(self, "inputs", "must be an mxnet NDArray or Symbol, got %s"
                  % type(inputs).__name__)
        if isinstance(inputs, mx.sym.Symbol):
            if self._sparse_label and units is None:
                _fail(self, "units", "is needed with sparse labels (give it to the "
                      "constructor or the call)")
            return
        if self._sparse_label:
            if units is None:
                _fail(self, "units", "is needed with sparse labels (give it to the "
                      "constructor or the call)")
            check_index_values(self, "inputs", inputs.asnumpy(), units)
        else:
            if inputs.ndim == 0:
                _fail(self, "inputs", "must have a class axis, got a scalar")
            if not -inputs.ndim <= self._axis < inputs.ndim:
                _fail(self, "axis", "is %d but 'inputs' has only %d axes"
                      % (self._axis, inputs.ndim))
            size = inputs.shape[self._axis]
            if units is not None and size != units:
                _fail(self, "inputs", "has %d entries along axis %d, expected units=%d"
                      % (size, self._axis, units))

    def hybrid_forward(self, F, inputs):  # pylint: disable=arguments-differ
        # numpy mode (mx.np arrays or symbols): the same legacy operators on
        # zero-copy legacy views, the result an mx.np array (symbol) again
        numpy_mode = isinstance(inputs, (mx.np.ndarray, mx.sym.np._Symbol))
        if numpy_mode:
            with mx.util.np_array(False):
                return self._smooth(F, inputs.as_nd_ndarray()).as_np_ndarray()
        return self._smooth(F, inputs)

    def _smooth(self, F, inputs):
        eps = self._epsilon
        if self._sparse_label:
            onehot = F.one_hot(inputs, depth=self._units, dtype=self._dtype)
            return onehot * (1 - eps) + eps / self._units
        if self._units is not None:
            return inputs * (1 - eps) + eps / self._units
        # V from the data (unknown when a graph is built), in the inputs' dtype
        classes = F.sum(F.ones_like(inputs), axis=self._axis, keepdims=True)
        return F.broadcast_add(inputs * (1 - eps), eps / classes)


def _check_units(block, units):
    if units is not None and not (isinstance(units, (int, np.integer)) and units > 0):
        _fail(block, "units", "must be a positive int or None, got %r" % (units,))


class _Regularizer(Loss):
    """AR and TAR: called on RNN states, regularise the last one."""

    _inputs = ("states",)
    _like_pred = ()
    _direct_ok = True    # __call__ only picks the last state before Loss.__call__

    def __call__(self, *states, **kwargs):
        if "states" in kwargs:
            states = (kwargs.pop("states"),) + states
        if len(states) == 1 and isinstance(states[0], (list, tuple)):
            states = tuple(states[0])
        if not states:
            _fail(self, "states", "needs at least one RNN state (got none)")
        return super(_Regularizer, self).__call__(states[-1], **kwargs)

    def _per_sample(self, F, loss, norm=None):
        if self._batch_axis is None:   # the one value of GluonNLP's batch_axis=None
            return total_mean(F, loss)
        return super(_Regularizer, self)._per_sample(F, loss)

    @staticmethod
    def _rows(loss, F, inputs):
        """The state as rows for a sums-of-squares operator: one per sample, or
        one per leading index with batch_axis=None (one value for the batch)."""
        return dict(inputs, states=F.reshape(inputs["states"], shape=(0, -1)))

    @staticmethod
    def _mean(steps):
        """``after`` for an operator's sums of squares per row: each sample's
        mean (a row per sample: its elements, fixed whatever the batch size),
        or with batch_axis=None the mean over the whole batch, shape (1,),
        whose number of terms is read from the state (an exported graph serves
        other batch sizes); ``steps`` says whether those terms are the state's
        elements or its steps along the first axis (one fewer per row of it)."""
        def mean(loss, F, sums, call, inputs):
            if loss._batch_axis is not None:
                return sums / float(np.prod(call.shape[1:]))
            states = inputs["states"]
            count = F.size_array(states)
            if steps:
                count = count - F.size_array(F.slice_axis(states, axis=0, begin=0, end=1))
            count = F.cast(count, dtype=np.dtype(call.dtypes["states"]).name)
            return F.broadcast_div(F.sum(sums), count)
        return mean

    def _scale(self, coefficient):
        """The coefficient scales the whole loss, like ``weight``: folded into
        it, it is applied once per sample instead of once per element."""
        self._coefficient = coefficient
        self._weight = coefficient * (1 if self._weight is None else self._weight)


class ActivationRegularizationLoss(_Regularizer):
    r"""Activation regularisation (AR) of AWD-LSTM (Merity et al., 2017): the
    scaled mean square of the last RNN state.

    .. math:: L = \alpha \,\overline{h^2}

    Called on a list of states (GluonNLP's ``loss(*states)``, or ``loss(states)``),
    it regularises the last one, as GluonNLP 0.10 does (the output of the top
    layer). With GluonNLP's default ``batch_axis=None`` the mean runs over
    every element, shape (1,); ``batch_axis=1`` gives one value per sequence
    of a (T, N, C) state. Unlike GluonNLP's, ``weight`` and ``sample_weight``
    are applied.

    Parameters
    ----------
    alpha : float, default 0
        :math:`\alpha`.
    weight : float or None
    batch_axis : int or None, default None
        None: one value for the whole batch (GluonNLP).
    reduction : {'sample', 'mean', 'sum', 'none'}, default 'sample'

    Inputs:
        - **states**: one or more arrays (or one list of them), e.g. (T, N, C);
          only the last is used.
        - **sample_weight**: optional keyword, broadcastable to a state (or
          (N,) with an int ``batch_axis``).

    Outputs:
        - **loss**: shape (1,) (with an int ``batch_axis``: (batch_size,)).

    Example::

        >>> ar = gluonx.loss.ActivationRegularizationLoss(alpha=2.0)
        >>> ar(mx.nd.ones((3, 2, 4)))  # [2.]
    """

    # each row's sum of squares (a row per sample, or per leading index with
    # batch_axis=None), then their means
    _kernel = Kernel("gluonx_row_sum_squares", inputs=("states",), whole=True,
                     options={"alpha": ANY}, before=_Regularizer._rows,
                     after=_Regularizer._mean(steps=False))

    def __init__(self, alpha=0, weight=None, batch_axis=None, reduction="sample", **kwargs):
        super(ActivationRegularizationLoss, self).__init__(weight, batch_axis, reduction,
                                                           **kwargs)
        self._scale(alpha)

    def _loss(self, F, states):
        return F.square(states)


class TemporalActivationRegularizationLoss(_Regularizer):
    r"""Temporal activation regularisation (TAR) of AWD-LSTM (Merity et al.,
    2017): the scaled mean square of the last RNN state's change per step.

    .. math:: L = \beta \,\overline{(h_{t+1} - h_t)^2}

    Called as :class:`ActivationRegularizationLoss` (the last state is used;
    GluonNLP's ``batch_axis=None``: the mean over every element). The steps run
    along ``time_axis`` (0 for GluonNLP's (T, N, C) states); a state needs at
    least 2 of them. Unlike GluonNLP's, it hybridizes.

    Parameters
    ----------
    beta : float, default 0
        :math:`\beta`.
    weight : float or None
    batch_axis : int or None, default None
    time_axis : int, default 0
    reduction : {'sample', 'mean', 'sum', 'none'}, default 'sample'
        ``'none'`` gives the elementwise terms, the state's shape with one
        step less.

    Inputs:
        - **states**: one or more arrays (or one list of them), e.g. (T, N, C)
          with T >= 2; only the last is used.
        - **sample_weight**: optional keyword, broadcastable to the elementwise
          terms (or (N,) with an int ``batch_axis``).

    Outputs:
        - **loss**: shape (1,) (with an int ``batch_axis``: (batch_size,)).

    Example::

        >>> tar = gluonx.loss.TemporalActivationRegularizationLoss(beta=1.0)
        >>> tar(mx.nd.array([[[0.]], [[1.]], [[3.]]]))  # [2.5]
    """

    # the sum of squared steps between consecutive time steps, then the mean
    # over the whole batch (time_axis=0, batch_axis=None: GluonNLP's layout)
    _kernel = Kernel("gluonx_step_sum_squares", inputs=("states",), whole=True,
                     options={"beta": ANY, "time_axis": 0},
                     when=lambda self, call: self._batch_axis is None,
                     before=_Regularizer._rows,
                     after=_Regularizer._mean(steps=True))

    def __init__(self, beta=0, weight=None, batch_axis=None, time_axis=0, reduction="sample",
                 **kwargs):
        super(TemporalActivationRegularizationLoss, self).__init__(weight, batch_axis, reduction,
                                                                   **kwargs)
        if not isinstance(time_axis, (int, np.integer)):
            _fail(self, "time_axis", "must be an int, got %r" % (time_axis,))
        self._scale(beta)
        self._time_axis = int(time_axis)

    def _check_shapes(self, plan):
        shape = plan.shapes["states"]
        if not -len(shape) <= self._time_axis < len(shape):
            _fail(self, "time_axis", "is %d but 'states' has only %d axes"
                  % (self._time_axis, len(shape)))
        if self._batch_axis is not None and \
                self._batch_axis % len(shape) == self._time_axis % len(shape):
            _fail(self, "time_axis", "is the batch axis (%d)" % self._batch_axis)
        if shape[self._time_axis] < 2:
            _fail(self, "states", "has shape %s, expected at least 2 time steps along axis %d"
                  % (shape, self._time_axis))

    def _loss_shape(self, plan):
        shape = list(plan.shapes["states"])
        shape[self._time_axis] -= 1
        return tuple(shape)

    def _loss(self, F, states):
        axis = self._time_axis
        step = F.slice_axis(states, axis=axis, begin=1, end=None) - \
            F.slice_axis(states, axis=axis, begin=0, end=-1)
        return F.square(step)
