"""Sequence losses: connectionist temporal classification (CTC)."""
import numpy as np

from mxnet.gluon import loss as mx_loss

from ..kernels import Kernel
from ._base import Loss, _fail

__all__ = ["CTCLoss"]

#: label value that pads label sequences shorter than the label tensor
PADDING = -1


class CTCLoss(Loss, mx_loss.CTCLoss):
    r"""Connectionist Temporal Classification loss (Graves et al., 2006).

    .. math:: L = -\log \sum_{\pi \in \mathcal{B}^{-1}(\text{label})} \prod_t p_t(\pi_t)

    where :math:`p_t = \mathrm{softmax}(\text{pred}_t)` over the alphabet and
    :math:`\mathcal{B}` removes repeats, then blanks. The blank is the last
    class (``alphabet_size - 1``, ``blank_label='last'``, as MXNet) or the
    first (class 0, ``blank_label='first'``, as PyTorch's default
    ``blank=0``). A label that cannot fit in the input (its length plus the
    blanks needed between repeated symbols exceeds the number of frames) has
    loss :math:`+\infty` (0 with ``zero_infinity=True``) and gradient exactly 0.
    Computed in float32 (float16/float64 activations are cast).

    Parameters
    ----------
    layout : {'NTC', 'TNC'}, default 'NTC'
        Layout of ``pred``: batch N, time T, alphabet C.
    label_layout : {'NT', 'TN'}, default 'NT'
        Layout of ``label``.
    weight : float or None
    reduction : {'sample', 'mean', 'sum', 'none'}, default 'sample'
        ``'none'`` is the same as ``'sample'``.
    blank_label : {'last', 'first'}, default 'last'
        Which class is the blank.
    zero_infinity : bool, default False
        Whether an infeasible sample gives loss 0 (else :math:`+\infty`);
        its gradient is 0 either way.

    Inputs:
        - **pred**: unnormalised scores, (N, T, C) or (T, N, C).
        - **label**: class indices, (N, L) or (L, N): in [0, C-1) padded with -1
          (``blank_label='last'``), or in [1, C) padded with 0 or -1
          (``blank_label='first'``).
        - **pred_lengths**: optional, (N,): frames used per sample, in [0, T].
        - **label_lengths**: optional, (N,): labels used per sample, in [0, L].
        - **sample_weight**: optional, (N,) or (N, 1).

    Outputs:
        - **loss**: shape (N,).

    Example::

        >>> loss = gluonx.loss.CTCLoss()
        >>> loss(mx.nd.zeros((2, 20, 5)), mx.nd.array([[1, 2, -1], [0, 0, 3]]))
    """

    _optional = ("pred_lengths", "label_lengths", "sample_weight")
    _like_pred = ()
    _kind = "sample"
    _kernel = Kernel("gluonx_ctc_loss",
                     attrs={"layout_ntc": lambda self: self._layout == "NTC",
                            "label_nt": lambda self: self._label_layout == "NT"},
                     # the kernel: blank last, +inf when infeasible
                     options={"layout": ("NTC", "TNC"), "label_layout": ("NT", "TN"),
                              "blank_label": "last", "zero_infinity": False},
                     any_dtype=("label", "pred_lengths", "label_lengths"), own_batch_axis=True)

    def __init__(self, layout="NTC", label_layout="NT", weight=None, reduction="sample",
                 blank_label="last", zero_infinity=False, **kwargs):
        if layout not in ("NTC", "TNC"):
            _fail(type(self).__name__, "layout", "must be 'NTC' or 'TNC', got %r" % (layout,))
        if label_layout not in ("NT", "TN"):
            _fail(type(self).__name__, "label_layout", "must be 'NT' or 'TN', got %r"
                  % (label_layout,))
        if blank_label not in ("last", "first"):
            _fail(type(self).__name__, "blank_label", "must be 'last' or 'first', got %r"
                  % (blank_label,))
        super(CTCLoss, self).__init__(weight, label_layout.find("N"), reduction, **kwargs)
        self._layout = layout
        self._label_layout = label_layout
        self._blank_first = blank_label == "first"
        self._zero_infinity = bool(zero_infinity)

    def _used(self, F, label):
        """1 where a label entry is not padding."""
        used = label != PADDING
        return used * (label != 0) if self._blank_first else used

    def _compute_dtype(self, plan):
        return np.float32

    def _casts(self, name):
        return name in ("pred", "sample_weight")

    def _sizes(self, plan):
        """(N, T, C, L) of this call."""
        pred, label = plan.shapes["pred"], plan.shapes["label"]
        n, t = (pred[0], pred[1]) if self._layout == "NTC" else (pred[1], pred[0])
        length = label[1] if self._label_layout == "NT" else label[0]
        return n, t, pred[2], length

    def _loss_shape(self, plan):
        return (self._sizes(plan)[0],)

    def _check_shapes(self, plan):
        pred, label = plan.shapes["pred"], plan.shapes["label"]
        if len(pred) != 3:
            _fail(self, "pred", "has shape %s, expected 3 axes (%s)" % (pred, self._layout))
        if len(label) != 2 or 0 in label:
            _fail(self, "label", "has shape %s, expected 2 non-empty axes (%s)"
                  % (label, self._label_layout))
        n = self._sizes(plan)[0]
        label_n = label[self._label_layout.find("N")]
        if label_n != n:
            _fail(self, "label", "has %d sequences (shape %s), expected %d as in pred %s"
                  % (label_n, label, n, pred))
        for name in ("pred_lengths", "label_lengths"):
            if name in plan.shapes and int(np.prod(plan.shapes[name])) != n:
                _fail(self, name, "has shape %s, expected (%d,)" % (plan.shapes[name], n))

    def _check_values(self, tensors, plan):
        n, frames, classes, length = self._sizes(plan)
        label = tensors["label"].asnumpy().astype(np.float64)
        if self._label_layout == "TN":
            label = label.T
        lengths = {}
        for name, limit in (("pred_lengths", frames), ("label_lengths", length)):
            if name in tensors:
                values = tensors[name].asnumpy().astype(np.float64).ravel()
                if not (np.isfinite(values).all() and (values == np.floor(values)).all()
                        and (values >= 0).all() and (values <= limit).all()):
                    _fail(self, name, "must hold integers in [0, %d], got %s"
                          % (limit, values.tolist()))
                lengths[name] = values.astype(np.int64)
        if "label_lengths" in lengths:
            used = np.arange(length)[None, :] < lengths["label_lengths"][:, None]
        else:
            used = label != PADDING
            if self._blank_first:
                used &= label != 0
            if (np.cumsum(~used, axis=1) > 0)[used].any():
                _fail(self, "label", "must put its padding (%s) after the labels of each "
                      "sequence (or pass label_lengths)"
                      % ("0 or -1" if self._blank_first else "-1"))
        symbols = label[used]
        low, high = (1, classes) if self._blank_first else (0, classes - 1)
        blank = 0 if self._blank_first else classes - 1
        if (symbols == blank).any():
            _fail(self, "label", "holds the blank (%d, the %s class); labels must be in "
                  "[%d, %d)" % (blank, "first" if self._blank_first else "last", low, high))
        if not ((symbols >= low) & (symbols < high) & (symbols == np.floor(symbols))).all():
            _fail(self, "label", "must hold integers in [%d, %d) (or %s as padding)"
                  % (low, high, "0 or -1" if self._blank_first else "-1"))

    def _loss(self, F, pred, label, pred_lengths=None, label_lengths=None):
        if self._layout == "NTC":
            pred = F.swapaxes(pred, 0, 1)
        if self._label_layout == "TN":
            label = F.swapaxes(label, 0, 1)
        label = F.cast(label, dtype="float32")
        if label_lengths is None:
            label_lengths = F.sum(self._used(F, label), axis=1)
        else:
            label_lengths = F.cast(F.reshape(label_lengths, shape=(-1,)), dtype="float32")
        if pred_lengths is None:
            frames = F.cast(F.slice_axis(F.shape_array(pred), axis=0, begin=0, end=1),
                            dtype="float32")
        else:
            pred_lengths = F.cast(F.reshape(pred_lengths, shape=(-1,)), dtype="float32")
            frames = pred_lengths
        feasible = F.broadcast_lesser_equal(label_lengths + self._repeats(F, label, label_lengths),
                                            frames)
        # An infeasible sample is computed with an empty label (finite, and its
        # gradient is then zeroed by the where below). MXNet's CTC operator reads
        # uninitialised memory when *every* label of a batch is empty, so one
        # dummy sample (one frame, one symbol) rides along and is sliced off.
        pred = F.concat(pred, F.zeros_like(F.slice_axis(pred, axis=1, begin=0, end=1)), dim=1)
        dummy = F.slice_axis(label, axis=0, begin=0, end=1)   # its one symbol: 0, or 1
        dummy = F.ones_like(dummy) if self._blank_first else F.zeros_like(dummy)
        label = F.concat(label, dummy, dim=0)
        label_lengths = _append_one(F, label_lengths * feasible)
        if pred_lengths is not None:
            pred_lengths = _append_one(F, pred_lengths)
        loss = F.CTCLoss(pred, label, pred_lengths, label_lengths,
                         use_data_lengths=pred_lengths is not None, use_label_lengths=True,
                         blank_label="first" if self._blank_first else "last")
        loss = F.slice_axis(loss, axis=0, begin=0, end=-1)
        if self._zero_infinity:
            return F.where(feasible, loss, F.zeros_like(loss))
        infinity = F.ones_like(loss) / F.zeros_like(loss)  # no 'inf' literal in the graph
        return F.where(feasible, loss, infinity)

    @staticmethod
    def _repeats(F, label, label_lengths):
        """How many labels equal their predecessor (each needs a blank between)."""
        positions = F.reshape(F.contrib.arange_like(label, axis=1), shape=(1, -1))
        used = F.broadcast_lesser(positions, F.reshape(label_lengths, shape=(-1, 1)))
        tail = F.slice_axis(label, axis=1, begin=1, end=None)
        head = F.slice_axis(label, axis=1, begin=0, end=-1)
        return F.sum((tail == head) * F.slice_axis(used, axis=1, begin=1, end=None), axis=1)


def _append_one(F, lengths):
    """``lengths`` (N,) with a trailing 1 (the dummy sample's length)."""
    return F.concat(lengths, F.ones_like(F.slice_axis(lengths, axis=0, begin=0, end=1)), dim=0)
