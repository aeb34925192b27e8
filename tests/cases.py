"""The one table of loss cases every parametrized test draws from.

A :class:`Case` names a gluonx loss class and constructor options, an input
generator (numpy, float64, call order, None for an optional input left out),
the numpy reference from ``reference.py`` and the inputs to differentiate.
``family`` is the gluonx.loss module the class lives in, so each
``test_<family>.py`` picks its own rows.
"""
import functools

import numpy as np
import pytest

import reference as R

MODES_ALL = ("imperative", "hybrid", "static", "symbol", "export")


class Case:
    def __init__(self, id, cls, kwargs, make, ref, grad=(0,), family="regression",
                 tol32=None, tol64=None, f16=False, symbol_differs=None, fused=None):
        self.id, self.cls, self.kwargs, self.make = id, cls, dict(kwargs), make
        # In mx.sym composition shapes are unknown when the graph is built,
        # so MXNet's rule applies there: a sample_weight broadcasts as given
        # (a per-sample weight is (batch, 1)). ``symbol_differs`` names the
        # dtypes for which this case relies on more than that; test_modes
        # checks that mx.sym then fails loudly instead of giving a number.
        self.symbol_differs = tuple(symbol_differs or ())
        self.ref, self.grad, self.family = ref, tuple(grad), family
        # (rtol, atol) for values and gradients, per dtype
        self.tol = {"float32": tol32 or (2e-4, 2e-5), "float64": tol64 or (1e-6, 1e-8),
                    "float16": (2e-2, 2e-2)}
        self.f16 = f16
        # Whether, with kernels on, the case runs the loss's fused kernel: None
        # means whenever the class declares one; False for a row whose option,
        # layout or batch axis the kernel does not support (it must then run
        # the stock operators). Asserted by check_fused.
        self.fused = fused

    def runs_fused(self):
        """Derived from the class's kernel declaration: it exists, every
        option value of this case is one it supports, and every input the
        case passes (and every constant the loss holds) is one it takes."""
        if self.fused is not None:
            return self.fused
        import gluonx.kernels as K
        import gluonx.loss as L
        cls = getattr(L, self.cls)
        kernel = K.kernel_of(cls)
        if kernel is None:
            return False
        loss = self.factory()()
        if not all(K._allowed(allowed, K._option(loss, name, ()))
                   for name, allowed in kernel.options.items()):
            return False
        names = cls._inputs + cls._optional
        passed = {n for n, a in zip(names, self.inputs()) if a is not None}
        return passed | set(loss._reg_params) <= set(kernel.inputs or names)

    def __repr__(self):
        return "Case(%s)" % self.id

    def factory(self, **extra):
        import gluonx.loss as L
        kw = dict(self.kwargs)
        kw.update(extra)
        return lambda: getattr(L, self.cls)(**kw)

    def inputs(self, seed=0):
        return self.make(np.random.RandomState(seed))

    def reference(self, inputs, reduction="sample", **extra):
        kw = dict(self.kwargs)
        kw.update(extra)
        kw.pop("reduction", None)
        out = self.ref(*inputs, **kw)
        return R.reduce(out[0], out[1], reduction, *out[2:])

    def own_mean(self, inputs):
        """Whether the reference's 'mean' has its own denominator (not the
        mean of the per-sample values)."""
        return len(self.ref(*inputs, **self.kwargs)) > 2


def cast(inputs, dtype):
    """Round float inputs through ``dtype`` (back to float64) so the reference
    sees exactly what the loss sees."""
    return [None if a is None else
            (np.asarray(a).astype(dtype).astype(np.float64) if np.asarray(a).dtype.kind == "f"
             else np.asarray(a)) for a in inputs]


def head_for(shape, seed=1):
    return np.random.RandomState(seed).uniform(0.5, 1.5, size=shape)


@functools.lru_cache(maxsize=None)
def expected(case_id, dtype, reduction="sample", seed=0):
    """(inputs cast to dtype, reference output, head gradient, {pos: gradient})."""
    case = CASE_BY_ID[case_id]
    inputs = cast(case.inputs(seed), dtype)
    out = case.reference(inputs, reduction)
    head = head_for(np.shape(out))
    # differentiate the per-sample values (a 'mean'/'sum' of a +inf sample is +inf,
    # yet the finite samples keep their gradients)
    inner, inner_head = reduction, head
    if reduction == "sum" or (reduction == "mean" and not case.own_mean(inputs)):
        inner = "sample"
        n = np.shape(case.reference(inputs, "sample"))[0]
        inner_head = np.full(n, head[0] / (n if reduction == "mean" else 1))
    grads = R.numeric_grad(lambda *xs: case.reference(list(xs), inner), inputs,
                           case.grad, inner_head) if case.grad else {}
    return inputs, out, head, grads


# --------------------------------------------------------------------------
# input generators
def _n(rng, *shape, scale=1.0):
    return rng.standard_normal(shape) * scale


def _u(rng, lo, hi, *shape):
    return rng.uniform(lo, hi, size=shape)


def _sign(rng, *shape):
    return np.where(rng.uniform(size=shape) < 0.5, -1.0, 1.0)


def _bits(rng, *shape):
    return (rng.uniform(size=shape) < 0.5).astype(np.float64)


def _classes(rng, c, *shape):
    return rng.randint(0, c, size=shape).astype(np.float64)


def _probs(rng, *shape, axis=-1):
    return np.exp(R.log_softmax(rng.standard_normal(shape), axis))


def _poisson_counts(rng, *shape):
    t = rng.poisson(2.0, size=shape).astype(np.float64)
    t.flat[0], t.flat[1] = 0.0, 1.0   # always exercise target 0 and 1
    return t


def _ctc_inputs(rng, n=3, T=7, C=5, L=3, layout="NTC", label_layout="NT", lengths=False,
                infeasible=False, sw=False):
    pred = rng.standard_normal((n, T, C))
    label = rng.randint(0, C - 1, size=(n, L)).astype(np.float64)
    label_len = rng.randint(1, L + 1, size=n)
    label_len[0] = L
    for i in range(n):
        label[i, label_len[i]:] = -1   # -1 pads (blank is the last class)
    pred_len = None
    if lengths:
        pred_len = rng.randint(L * 2 + 1, T + 1, size=n).astype(np.float64)
        pred_len[0] = T
    if infeasible:
        # sample 1: four equal labels need 4 + 3 blanks = 7 steps > T=5
        label = np.full((n, 4), -1.0)
        label[0, :2] = [1, 2]
        label[1, :4] = [1, 1, 1, 1]
        label[2, :3] = [0, 3, 0]
        pred = rng.standard_normal((n, 5, C))
    if layout == "TNC":
        pred = pred.transpose(1, 0, 2).copy()
    if label_layout == "TN":
        label = label.T.copy()
    ll = None
    if lengths:
        ll = label_len.astype(np.float64)
        label = np.where(label < 0, 0.0, label)  # with lengths, padding is ignored
    return [pred, label, pred_len, ll, rng.uniform(0.5, 2.0, size=n) if sw else None]


def _onehot(rng, c, *shape, axis=-1):
    """One-hot labels with ``c`` classes along ``axis`` of the result."""
    labels = rng.randint(0, c, size=shape)
    return np.moveaxis(np.eye(c)[labels], -1, axis)


def _signed(rng, lo, hi, *shape):
    """Magnitudes in [lo, hi) with random signs."""
    return _u(rng, lo, hi, *shape) * _sign(rng, *shape)


def _with(array, index, value):
    array = np.array(array)
    array[index] = value
    return array


def _padded_labels(rng, classes, lengths, steps, batch_axis=0, pad=0.0):
    """Class indices (N, T) (or (T, N)), ``pad`` beyond each sample's valid length."""
    label = rng.randint(0, classes, size=(len(lengths), steps)).astype(np.float64)
    label[np.arange(steps)[None, :] >= np.asarray(lengths)[:, None]] = pad
    return label.T.copy() if batch_axis == 1 else label


def _seg_labels(rng, classes, *shape, ignore=-1.0):
    """Class indices with about a fifth of the pixels set to ``ignore``."""
    label = rng.randint(0, classes, size=shape).astype(np.float64)
    if ignore is not None:
        label[rng.uniform(size=shape) < 0.2] = ignore
        label.flat[0] = ignore
    return label


LENGTHS = np.array([5.0, 2.0, 0.0])   # full, partial and empty sequences (T = 5)




def _ctc_first(inputs):
    """CTC inputs for blank_label='first': symbols shifted to [1, C), padding
    -1 kept in the first sequence and 0 in the others (both pad)."""
    inputs = list(inputs)
    label = inputs[1]
    first = np.where(label >= 0, label + 1, -1.0) if inputs[3] is None else label + 1
    if inputs[3] is None:   # padded (N, L) labels
        first[1:][first[1:] < 0] = 0.0
    inputs[1] = first
    return inputs


def _seq_labels(rng, c, n, t, ignore):
    """(n, t) class indices, some of them ``ignore``; sequence 1 all ignored."""
    label = rng.randint(0, c, size=(n, t)).astype(np.float64)
    label[0, 1] = label[2, 0] = label[2, 3] = ignore
    label[1, :] = ignore
    return label


# --------------------------------------------------------------------------
# the table
B, D = 4, 5
CASES = [
    # regression -----------------------------------------------------------
    Case("L2", "L2Loss", {}, lambda r: [_n(r, B, D), _n(r, B, D)], R.ref_l2, (0, 1), f16=True),
    Case("L2-weight-sw", "L2Loss", {"weight": 0.7},
         lambda r: [_n(r, B, D), _n(r, B, D), _u(r, 0, 2, B, 1)], R.ref_l2, (0, 1, 2)),
    Case("L2-weight-None", "L2Loss", {"weight": None},
         lambda r: [_n(r, B, D), _n(r, B, D)], R.ref_l2, (0, 1)),
    Case("L2-sw-per-sample", "L2Loss", {},
         lambda r: [_n(r, B, D), _n(r, B, D), _u(r, 0, 2, B)], R.ref_l2, (0,),
         symbol_differs=("float32", "float64")),
    Case("L1-pred-B1-label-B", "L1Loss", {},
         lambda r: [_n(r, B, 1), _n(r, B)], R.ref_l1, (0, 1)),
    Case("L2-batch_axis1", "L2Loss", {"batch_axis": 1},
         lambda r: [_n(r, 3, B, 2), _n(r, 3, B, 2)], R.ref_l2, (0,), fused=False),
    Case("L2-label-reshaped", "L2Loss", {},
         lambda r: [_n(r, B, 1), _n(r, B)], R.ref_l2, (0,)),
    Case("L1", "L1Loss", {}, lambda r: [_n(r, B, D), _n(r, B, D)], R.ref_l1, (0, 1), f16=True),
    Case("L1-sw-elementwise", "L1Loss", {"weight": 1.5},
         lambda r: [_n(r, B, D), _n(r, B, D), _u(r, 0, 2, B, D)], R.ref_l1, (0, 2)),
    Case("Huber", "HuberLoss", {}, lambda r: [_n(r, B, D, scale=1.5), _n(r, B, D)],
         R.ref_huber, (0, 1)),
    Case("Huber-rho", "HuberLoss", {"rho": 0.3, "weight": 2.0},
         lambda r: [_n(r, B, D), _n(r, B, D), _u(r, 0, 2, B, 1)], R.ref_huber, (0,)),
    Case("PoissonNLL", "PoissonNLLLoss", {},
         lambda r: [_n(r, B, D, scale=0.5), _poisson_counts(r, B, D)], R.ref_poisson_nll, (0,)),
    Case("PoissonNLL-rate", "PoissonNLLLoss", {"from_logits": False},
         lambda r: [_u(r, 0.2, 3, B, D), _poisson_counts(r, B, D)], R.ref_poisson_nll, (0,)),
    Case("PoissonNLL-full", "PoissonNLLLoss", {"compute_full": True},
         lambda r: [_n(r, B, D, scale=0.5), _poisson_counts(r, B, D)], R.ref_poisson_nll, (0,)),
    Case("PoissonNLL-full-rate-eps", "PoissonNLLLoss",
         {"from_logits": False, "compute_full": True, "epsilon": 0.25, "weight": 0.5},
         lambda r: [_u(r, 0.01, 2, B, D), _poisson_counts(r, B, D), _u(r, 0, 2, B, 1)],
         R.ref_poisson_nll, (0,)),
    Case("PoissonNLL-batch_axis1", "PoissonNLLLoss", {"batch_axis": 1},
         lambda r: [_n(r, 3, B, scale=0.5), _poisson_counts(r, 3, B)], R.ref_poisson_nll, (0,), fused=False),
    # classification -------------------------------------------------------
    Case("SigmoidBCE", "SigmoidBCELoss", {},
         lambda r: [_n(r, B, D, scale=2), _bits(r, B, D)], R.ref_sigmoid_bce, (0,),
         family="classification", f16=True),
    Case("SigmoidBCE-soft-sw", "SigmoidBinaryCrossEntropyLoss", {"weight": 0.5},
         lambda r: [_n(r, B, D, scale=2), _u(r, 0, 1, B, D), _u(r, 0, 2, B, 1)],
         R.ref_sigmoid_bce, (0, 1), family="classification"),
    Case("SigmoidBCE-pos_weight", "SigmoidBCELoss", {},
         lambda r: [_n(r, B, D, scale=2), _bits(r, B, D), None, _u(r, 0.5, 3, 1, D)],
         R.ref_sigmoid_bce, (0,), family="classification"),
    Case("SigmoidBCE-from_sigmoid", "SigmoidBCELoss", {"from_sigmoid": True},
         lambda r: [_u(r, 0.05, 0.95, B, D), _bits(r, B, D)], R.ref_sigmoid_bce, (0,),
         family="classification"),
    Case("SigmoidBCE-from_sigmoid-pos_weight", "SigmoidBCELoss", {"from_sigmoid": True},
         lambda r: [_u(r, 0.05, 0.95, B, D), _u(r, 0, 1, B, D), _u(r, 0, 2, B, 1),
                    _u(r, 0.5, 3, 1, D)], R.ref_sigmoid_bce, (0,), family="classification"),
    Case("SoftmaxCE", "SoftmaxCELoss", {},
         lambda r: [_n(r, B, 6, scale=2), _classes(r, 6, B)], R.ref_softmax_ce, (0,),
         family="classification", f16=True),
    Case("SoftmaxCE-int32-labels", "SoftmaxCELoss", {},
         lambda r: [_n(r, B, 6), r.randint(0, 6, size=B).astype(np.int32)], R.ref_softmax_ce,
         (0,), family="classification"),
    Case("SoftmaxCE-large-logits", "SoftmaxCELoss", {},
         lambda r: [_n(r, B, 6, scale=300), _classes(r, 6, B)], R.ref_softmax_ce, (0,),
         family="classification"),
    Case("SigmoidBCE-large-logits", "SigmoidBCELoss", {},
         lambda r: [_n(r, B, D, scale=200), _bits(r, B, D), None, _u(r, 0.5, 3, 1, D)],
         R.ref_sigmoid_bce, (0,), family="classification"),
    Case("Logistic-large-logits", "LogisticLoss", {},
         lambda r: [_n(r, B, D, scale=200), _sign(r, B, D)], R.ref_logistic, (0,),
         family="classification"),
    Case("SoftmaxCE-axis1", "SoftmaxCrossEntropyLoss", {"axis": 1},
         lambda r: [_n(r, 3, 4, 5), _classes(r, 4, 3, 5)], R.ref_softmax_ce, (0,),
         family="classification", fused=False),
    Case("SoftmaxCE-dense", "SoftmaxCELoss", {"sparse_label": False},
         lambda r: [_n(r, B, 6), _probs(r, B, 6)], R.ref_softmax_ce, (0, 1),
         family="classification"),
    Case("SoftmaxCE-from_logits", "SoftmaxCELoss", {"from_logits": True},
         lambda r: [_n(r, B, 6), _classes(r, 6, B)], R.ref_softmax_ce, (0,),
         family="classification"),
    Case("SoftmaxCE-sw-weight", "SoftmaxCELoss", {"weight": 2.0},
         lambda r: [_n(r, B, 6), _classes(r, 6, B), _u(r, 0, 2, B, 1)], R.ref_softmax_ce,
         (0, 2), family="classification"),
    Case("SoftmaxCE-sw-per-sample", "SoftmaxCELoss", {},
         lambda r: [_n(r, B, 6), _classes(r, 6, B), _u(r, 0, 2, B)], R.ref_softmax_ce, (0,),
         family="classification", symbol_differs=("float32", "float64")),
    Case("SoftmaxCE-label-B1", "SoftmaxCELoss", {},
         lambda r: [_n(r, B, 6), _classes(r, 6, B, 1)], R.ref_softmax_ce, (0,),
         family="classification"),
    Case("SigmoidBCE-1d", "SigmoidBCELoss", {},
         lambda r: [_n(r, B + 2), _bits(r, B + 2)], R.ref_sigmoid_bce, (0,),
         family="classification"),
    Case("SoftmaxCE-seq-batch_axis1", "SoftmaxCELoss", {"batch_axis": 1},
         lambda r: [_n(r, 3, B, 6), _classes(r, 6, 3, B)], R.ref_softmax_ce, (0,),
         family="classification", fused=False),
    Case("SoftmaxCE-label_smoothing", "SoftmaxCELoss", {"label_smoothing": 0.2},
         lambda r: [_n(r, B, 6), _classes(r, 6, B)], R.ref_softmax_ce, (0,),
         family="classification"),
    Case("SoftmaxCE-class_weight", "SoftmaxCELoss",
         {"class_weight": [0.5, 1.0, 2.0, 0.25, 1.5, 3.0]},
         lambda r: [_n(r, B, 6), _classes(r, 6, B)], R.ref_softmax_ce, (0,),
         family="classification"),
    Case("SoftmaxCE-ignore_index", "SoftmaxCELoss", {"ignore_index": 2},
         lambda r: [_n(r, 6, 6), np.array([2., 0., 2., 5., 1., 3.])], R.ref_softmax_ce, (0,),
         family="classification"),
    # SoftmaxCE masking (ignore_index, valid_length), weighted means, smoothing
    Case("SoftmaxCE-ignore_index-seq", "SoftmaxCELoss", {"ignore_index": 2},
         lambda r: [_n(r, 3, 5, 6), _seq_labels(r, 6, 3, 5, ignore=2)], R.ref_softmax_ce, (0,),
         family="classification"),
    Case("SoftmaxCE-valid_length", "SoftmaxCELoss", {},
         lambda r: [_n(r, 3, 5, 6), _classes(r, 6, 3, 5), None, np.array([5., 2., 0.])],
         R.ref_softmax_ce, (0,), family="classification"),
    Case("SoftmaxCE-valid_length-TNC", "SoftmaxCELoss", {"batch_axis": 1},
         lambda r: [_n(r, 5, 3, 6), _classes(r, 6, 5, 3), None, np.array([1, 5, 3],
                                                                           dtype=np.int32)],
         R.ref_softmax_ce, (0,), family="classification", fused=False),
    Case("SoftmaxCE-valid_length-NCT-ignore-cw", "SoftmaxCELoss",
         {"axis": 1, "ignore_index": 0, "class_weight": [0.5, 1.0, 2.0, 0.25]},
         lambda r: [_n(r, 3, 4, 5), _seq_labels(r, 4, 3, 5, ignore=0), _u(r, 0.5, 2, 3, 1, 1),
                    np.array([4., 5., 1.])],
         R.ref_softmax_ce, (0,), family="classification", fused=False),
    Case("SoftmaxCE-class_weight-axis1", "SoftmaxCELoss",
         {"axis": 1, "class_weight": [0.5, 1.0, 2.0, 3.0], "label_smoothing": 0.3},
         lambda r: [_n(r, 3, 4, 5), _classes(r, 4, 3, 5)], R.ref_softmax_ce, (0,),
         family="classification", fused=False),
    Case("SoftmaxCE-all-options", "SoftmaxCELoss",
         {"ignore_index": 1, "class_weight": [0.5, 1.0, 2.0, 0.25, 1.5, 3.0],
          "label_smoothing": 0.15, "weight": 1.5},
         lambda r: [_n(r, 3, 5, 6), _seq_labels(r, 6, 3, 5, ignore=1), _u(r, 0.5, 2, 3, 1, 1),
                    np.array([4., 5., 3.])], R.ref_softmax_ce, (0,), family="classification"),
    Case("SoftmaxCE-dense-options", "SoftmaxCELoss",
         {"sparse_label": False, "class_weight": [0.5, 1.0, 2.0, 0.25, 1.5, 3.0],
          "label_smoothing": 0.2},
         lambda r: [_n(r, 3, 5, 6), _probs(r, 3, 5, 6), None, np.array([5., 2., 0.])],
         R.ref_softmax_ce, (0, 1), family="classification"),
    # SigmoidBCE: pos_weight given to the constructor, label smoothing
    Case("SigmoidBCE-pos_weight-ctor", "SigmoidBCELoss",
         {"pos_weight": [0.5, 1.0, 2.0, 3.0, 1.5]},
         lambda r: [_n(r, B, D, scale=2), _bits(r, B, D)], R.ref_sigmoid_bce, (0,),
         family="classification"),
    Case("SigmoidBCE-label_smoothing", "SigmoidBCELoss", {"label_smoothing": 0.2},
         lambda r: [_n(r, B, D, scale=2), _bits(r, B, D), None, _u(r, 0.5, 3, 1, D)],
         R.ref_sigmoid_bce, (0,), family="classification"),
    Case("SigmoidBCE-from_sigmoid-smoothing-pos_weight-ctor", "SigmoidBCELoss",
         {"from_sigmoid": True, "label_smoothing": 0.1, "pos_weight": 2.5},
         lambda r: [_u(r, 0.05, 0.95, B, D), _bits(r, B, D), _u(r, 0, 2, B, 1)],
         R.ref_sigmoid_bce, (0,), family="classification"),
    Case("Hinge", "HingeLoss", {}, lambda r: [_n(r, B, D), _sign(r, B, D)], R.ref_hinge, (0,),
         family="classification", f16=True),
    Case("Hinge-margin", "HingeLoss", {"margin": 2.5, "weight": 0.5},
         lambda r: [_n(r, B, D, scale=2), _sign(r, B, D), _u(r, 0, 2, B, 1)], R.ref_hinge, (0,),
         family="classification"),
    Case("Hinge-batch_axis1", "HingeLoss", {"batch_axis": 1},
         lambda r: [_n(r, 3, B), _sign(r, 3, B)], R.ref_hinge, (0,), family="classification", fused=False),
    Case("SigmoidBCE-batch_axis1", "SigmoidBCELoss", {"batch_axis": 1},
         lambda r: [_n(r, 3, B, 2), _bits(r, 3, B, 2)], R.ref_sigmoid_bce, (0,),
         family="classification", fused=False),
    Case("SquaredHinge", "SquaredHingeLoss", {},
         lambda r: [_n(r, B, D), _sign(r, B, D)], R.ref_squared_hinge, (0,),
         family="classification"),
    Case("SquaredHinge-margin", "SquaredHingeLoss", {"margin": 0.4},
         lambda r: [_n(r, B, D), _sign(r, B, D)], R.ref_squared_hinge, (0,),
         family="classification"),
    Case("Logistic", "LogisticLoss", {}, lambda r: [_n(r, B, D, scale=2), _sign(r, B, D)],
         R.ref_logistic, (0,), family="classification"),
    Case("Logistic-binary", "LogisticLoss", {"label_format": "binary"},
         lambda r: [_n(r, B, D, scale=2), _bits(r, B, D), _u(r, 0, 2, B, 1)],
         R.ref_logistic, (0,), family="classification"),
    # divergence -----------------------------------------------------------
    Case("KLDiv", "KLDivLoss", {},
         lambda r: [R.log_softmax(_n(r, B, 6), -1), _probs(r, B, 6)], R.ref_kldiv, (0,),
         family="divergence"),
    Case("KLDiv-softmax-axis1", "KLDivLoss", {"from_logits": False, "axis": 1},
         lambda r: [_n(r, 3, 4, 5), _probs(r, 3, 4, 5, axis=1)], R.ref_kldiv, (0,),
         family="divergence", fused=False),
    Case("KLDiv-sw", "KLDivLoss", {"from_logits": False, "weight": 3.0},
         lambda r: [_n(r, B, 6), _probs(r, B, 6), _u(r, 0, 2, B, 1)], R.ref_kldiv, (0, 2),
         family="divergence"),
    Case("KLDiv-batch_axis1", "KLDivLoss", {"batch_axis": 1},
         lambda r: [R.log_softmax(_n(r, 3, B, 5), -1), _probs(r, 3, B, 5)], R.ref_kldiv, (0,),
         family="divergence", fused=False),
    Case("KLDiv-log_target", "KLDivLoss", {"log_target": True},
         lambda r: [R.log_softmax(_n(r, B, 6), -1), R.log_softmax(_n(r, B, 6), -1)],
         R.ref_kldiv, (0, 1), family="divergence"),
    Case("KLDiv-log_target-softmax-sw", "KLDivLoss",
         {"log_target": True, "from_logits": False, "weight": 0.5},
         lambda r: [_n(r, B, 6), R.log_softmax(_n(r, B, 6), -1), _u(r, 0, 2, B, 1)],
         R.ref_kldiv, (0, 1), family="divergence"),
    # embedding ------------------------------------------------------------
    Case("Triplet", "TripletLoss", {},
         lambda r: [_n(r, B, D), _n(r, B, D), _n(r, B, D)], R.ref_triplet, (0, 1, 2),
         family="embedding"),
    Case("Triplet-margin-sw", "TripletLoss", {"margin": 3.0, "weight": 0.5},
         lambda r: [_n(r, B, 2, 3), _n(r, B, 2, 3), _n(r, B, 2, 3), _u(r, 0, 2, B)],
         R.ref_triplet, (0, 1, 2, 3), family="embedding"),
    Case("Triplet-batch_axis1", "TripletLoss", {"batch_axis": 1},
         lambda r: [_n(r, 3, B), _n(r, 3, B), _n(r, 3, B)], R.ref_triplet, (0, 1, 2),
         family="embedding", fused=False),
    Case("CosineEmbedding", "CosineEmbeddingLoss", {},
         lambda r: [_n(r, B + 2, D), _n(r, B + 2, D), _sign(r, B + 2)],
         R.ref_cosine_embedding, (0, 1), family="embedding"),
    Case("CosineEmbedding-margin-sw", "CosineEmbeddingLoss", {"margin": 0.3, "weight": 2.0},
         lambda r: [_n(r, B + 2, D), _n(r, B + 2, D), np.array([1., -1., -1., 1., -1., -1.]),
                    _u(r, 0.5, 2, B + 2)],
         R.ref_cosine_embedding, (0, 1), family="embedding",
         symbol_differs=("float32", "float64")),
    Case("SDML", "SDMLLoss", {}, lambda r: [_n(r, B, D, scale=0.5), _n(r, B, D, scale=0.5)],
         R.ref_sdml, (0, 1), family="embedding"),
    Case("SDML-smoothing-sw", "SDMLLoss", {"smoothing_parameter": 0.1, "weight": 2.0},
         lambda r: [_n(r, B, D, scale=0.5), _n(r, B, D, scale=0.5), _u(r, 0.5, 2, B)],
         R.ref_sdml, (0, 1), family="embedding"),
    # sequence -------------------------------------------------------------
    Case("CTC", "CTCLoss", {}, lambda r: _ctc_inputs(r), R.ref_ctc, (0,), family="sequence",
         tol64=(2e-4, 2e-5)),
    Case("CTC-lengths", "CTCLoss", {}, lambda r: _ctc_inputs(r, T=10, lengths=True), R.ref_ctc,
         (0,),
         family="sequence", tol64=(2e-4, 2e-5)),
    Case("CTC-TNC-TN-sw", "CTCLoss", {"layout": "TNC", "label_layout": "TN", "weight": 0.5},
         lambda r: _ctc_inputs(r, layout="TNC", label_layout="TN", sw=True), R.ref_ctc, (0,),
         family="sequence", tol64=(2e-4, 2e-5)),
    Case("CTC-int32-labels-lengths", "CTCLoss", {},
         lambda r: [a if a is None or k == 0 else a.astype(np.int32)
                    for k, a in enumerate(_ctc_inputs(r, T=10, lengths=True))],
         R.ref_ctc, (0,), family="sequence", tol64=(2e-4, 2e-5)),
    Case("CTC-infeasible", "CTCLoss", {}, lambda r: _ctc_inputs(r, infeasible=True), R.ref_ctc,
         (0,), family="sequence", tol64=(2e-4, 2e-5)),
    # Keras regression and hinge losses, GCE, focal, overlap, circle -------
    Case("LogCosh", "LogCoshLoss", {}, lambda r: [_n(r, B, D, scale=2), _n(r, B, D)],
         R.ref_log_cosh, (0, 1), f16=True),
    Case("LogCosh-large-errors-sw", "LogCoshLoss", {"weight": 0.5},
         lambda r: [_n(r, B, D, scale=100), _n(r, B, D), _u(r, 0, 2, B, 1)], R.ref_log_cosh,
         (0, 1, 2)),
    Case("LogCosh-batch_axis1", "LogCoshLoss", {"batch_axis": 1},
         lambda r: [_n(r, 3, B, 2), _n(r, 3, B, 2)], R.ref_log_cosh, (0,), fused=False),
    Case("MAPE", "MAPELoss", {}, lambda r: [_n(r, B, D), _signed(r, 0.5, 2, B, D)], R.ref_mape,
         (0, 1)),
    Case("MAPE-epsilon-sw", "MAPELoss", {"epsilon": 0.5, "weight": 0.1},
         lambda r: [_n(r, B, D), _signed(r, 0.05, 1, B, D), _u(r, 0.5, 2, B, 1)], R.ref_mape,
         (0,)),
    Case("MSLE", "MSLELoss", {}, lambda r: [_u(r, 0.1, 3, B, D), _u(r, 0.1, 3, B, D)],
         R.ref_msle, (0, 1)),
    Case("MSLE-negative-epsilon", "MSLELoss", {"epsilon": 0.5, "batch_axis": 1},
         lambda r: [_with(_u(r, 0.7, 3, 3, B), (0, 0), -1.0), _u(r, 0, 3, 3, B)], R.ref_msle,
         (0,), fused=False),
    Case("CategoricalHinge", "CategoricalHingeLoss", {},
         lambda r: [_n(r, B, 6), _onehot(r, 6, B)], R.ref_categorical_hinge, (0,),
         family="classification"),
    Case("CategoricalHinge-axis1-batch_axis2", "CategoricalHingeLoss", {"axis": 1, "batch_axis": 2},
         lambda r: [_n(r, 3, 4, B), _onehot(r, 4, 3, B, axis=1)], R.ref_categorical_hinge, (0,),
         family="classification", fused=False),
    Case("CategoricalHinge-margin-axis1-sw", "CategoricalHingeLoss",
         {"margin": 2.5, "axis": 1, "weight": 0.5},
         lambda r: [_n(r, 3, 4, 5), _onehot(r, 4, 3, 5, axis=1), _u(r, 0, 2, 3, 1, 1)],
         R.ref_categorical_hinge, (0, 2), family="classification", fused=False),
    Case("CategoricalHinge-margin-soft-sw-3d", "CategoricalHingeLoss",
         {"margin": 0.5, "weight": 0.5},
         lambda r: [_n(r, B, 3, 6), _u(r, 0, 1, B, 3, 6), _u(r, 0, 2, B, 3, 1)],
         R.ref_categorical_hinge, (0, 1, 2), family="classification"),
    Case("GeneralizedCE", "GeneralizedCELoss", {},
         lambda r: [_n(r, B, 6, scale=2), _classes(r, 6, B)], R.ref_generalized_ce, (0,),
         family="classification", f16=True),
    Case("GeneralizedCE-q-axis1", "GeneralizedCELoss", {"q": 0.8, "axis": 1},
         lambda r: [_n(r, 3, 4, 5), _classes(r, 4, 3, 5)], R.ref_generalized_ce, (0,),
         family="classification", fused=False),   # the kernel takes classes on the last axis
    Case("GeneralizedCE-q-3d-colsw", "GeneralizedCELoss", {"q": 0.8},
         lambda r: [_n(r, 3, 4, 5, scale=2), _classes(r, 5, 3, 4), _u(r, 0.5, 2, 1, 4, 1)],
         R.ref_generalized_ce, (0,), family="classification"),
    Case("GeneralizedCE-from_softmax-sw", "GeneralizedCELoss",
         {"q": 0.3, "from_softmax": True, "weight": 2.0},
         lambda r: [_probs(r, B, 6), _classes(r, 6, B), _u(r, 0.5, 2, B, 1)],
         R.ref_generalized_ce, (0,), family="classification"),
    Case("GeneralizedCE-batch_axis1-int32", "GeneralizedCELoss", {"batch_axis": 1},
         lambda r: [_n(r, 3, B, 6), r.randint(0, 6, size=(3, B)).astype(np.int32)],
         R.ref_generalized_ce, (0,), family="classification", fused=False),
    Case("SigmoidFocal", "SigmoidFocalLoss", {},
         lambda r: [_n(r, B, D, scale=2), _bits(r, B, D)], R.ref_sigmoid_focal, (0,),
         family="detection", f16=True),
    Case("SigmoidFocal-no-alpha-gamma", "SigmoidFocalLoss", {"alpha": None, "gamma": 0.5},
         lambda r: [_n(r, B, D, scale=2), _u(r, 0, 1, B, D)], R.ref_sigmoid_focal, (0, 1),
         family="detection"),
    Case("SigmoidFocal-probabilities", "SigmoidFocalLoss",
         {"from_logits": False, "alpha": 0.75, "gamma": 3.0},
         lambda r: [_u(r, 0.05, 0.95, B, D), _bits(r, B, D)], R.ref_sigmoid_focal, (0,),
         family="detection"),
    Case("SigmoidFocal-ignore-smoothing", "SigmoidFocalLoss",
         {"ignore_index": -1, "label_smoothing": 0.2},
         lambda r: [_n(r, B, D, scale=2), _with(_bits(r, B, D), (slice(None), 1), -1.0)],
         R.ref_sigmoid_focal, (0,), family="detection"),
    Case("SigmoidFocal-large-logits", "SigmoidFocalLoss", {"alpha": 0.6},
         lambda r: [_n(r, B, D, scale=60), _bits(r, B, D)], R.ref_sigmoid_focal, (0,),
         family="detection"),
    Case("SigmoidFocal-batch_axis1-sw", "SigmoidFocalLoss", {"batch_axis": 1, "weight": 3.0},
         lambda r: [_n(r, 3, B, 2), _bits(r, 3, B, 2), _u(r, 0, 2, 1, B, 1)],
         R.ref_sigmoid_focal, (0, 2), family="detection", fused=False),
    Case("SigmoidFocal-smoothing", "SigmoidFocalLoss", {"label_smoothing": 0.15, "gamma": 1.5},
         lambda r: [_n(r, B, D, scale=2), _bits(r, B, D)], R.ref_sigmoid_focal, (0,),
         family="detection"),
    Case("SoftmaxFocal", "SoftmaxFocalLoss", {},
         lambda r: [_n(r, B, 6, scale=2), _classes(r, 6, B)], R.ref_softmax_focal, (0,),
         family="detection", f16=True),
    Case("SoftmaxFocal-gamma-class_weight", "SoftmaxFocalLoss",
         {"gamma": 1.5, "class_weight": [0.5, 1.0, 2.0, 0.25, 1.5, 3.0]},
         lambda r: [_n(r, B, 6, scale=2), _classes(r, 6, B)], R.ref_softmax_focal, (0,),
         family="detection"),
    Case("SoftmaxFocal-ignore-smoothing", "SoftmaxFocalLoss",
         {"ignore_index": 2, "label_smoothing": 0.2},
         lambda r: [_n(r, 6, 6), np.array([2., 0., 2., 5., 1., 3.])], R.ref_softmax_focal, (0,),
         family="detection"),
    Case("SoftmaxFocal-smoothing-class_weight", "SoftmaxFocalLoss",
         {"label_smoothing": 0.1, "class_weight": [2.0, 1.0, 0.5, 1.5, 0.25, 1.0]},
         lambda r: [_n(r, B, 6, scale=2), _classes(r, 6, B)], R.ref_softmax_focal, (0,),
         family="detection"),
    Case("SoftmaxFocal-dense-axis1", "SoftmaxFocalLoss", {"sparse_label": False, "axis": 1},
         lambda r: [_n(r, 3, 4, 5), _probs(r, 3, 4, 5, axis=1)], R.ref_softmax_focal, (0, 1),
         family="detection"),
    Case("SoftmaxFocal-sw-batch_axis1", "SoftmaxFocalLoss", {"batch_axis": 1, "weight": 0.5},
         lambda r: [_n(r, 3, B, 6), _classes(r, 6, 3, B), _u(r, 0, 2, 3, B, 1)],
         R.ref_softmax_focal, (0, 2), family="detection", fused=False),
    Case("SoftmaxFocal-ignore-seq-sw-cw", "SoftmaxFocalLoss",
         {"ignore_index": 2, "gamma": 0.5, "class_weight": [0.5, 1.0, 2.0, 0.25, 1.5, 3.0]},
         lambda r: [_n(r, 3, 5, 6, scale=2), _seq_labels(r, 6, 3, 5, ignore=2),
                    _u(r, 0.5, 2, 3, 1, 1)], R.ref_softmax_focal, (0, 2), family="detection"),
    Case("Dice", "DiceLoss", {}, lambda r: [_u(r, 0, 1, B, 3, 4), _bits(r, B, 3, 4)],
         R.ref_dice, (0, 1), family="segmentation"),
    Case("Dice-smooth0-logits", "DiceLoss", {"smooth": 0.0, "from_logits": True},
         lambda r: [_n(r, B, 12), _bits(r, B, 12)], R.ref_dice, (0,), family="segmentation"),
    Case("Dice-onehot-axis1", "DiceLoss", {"axis": 1, "smooth": 0.5},
         lambda r: [_probs(r, B, 3, 2, 4, axis=1), _onehot(r, 3, B, 2, 4, axis=1)],
         R.ref_dice, (0,), family="segmentation"),
    Case("Dice-onehot-logits-last-sw", "DiceLoss", {"axis": -1, "smooth": 0.5, "from_logits": True},
         lambda r: [_n(r, B, 2, 3, 4), _onehot(r, 4, B, 2, 3), _u(r, 0.5, 2, B)],
         R.ref_dice, (0, 1, 2), family="segmentation"),
    Case("Dice-sparse-logits-last", "DiceLoss",
         {"axis": -1, "sparse_label": True, "from_logits": True},
         lambda r: [_n(r, B, 2, 5, 3), _classes(r, 3, B, 2, 5)], R.ref_dice, (0,),
         family="segmentation"),
    Case("Dice-batch_axis1-sw", "DiceLoss", {"batch_axis": 1, "weight": 2.0},
         lambda r: [_u(r, 0, 1, 6, B), _bits(r, 6, B), _u(r, 0.5, 2, B)], R.ref_dice, (0, 2),
         family="segmentation", fused=False),
    Case("Tversky", "TverskyLoss", {"alpha": 0.3, "beta": 0.7},
         lambda r: [_u(r, 0, 1, B, 3, 4), _bits(r, B, 3, 4)], R.ref_tversky, (0, 1),
         family="segmentation"),
    Case("Tversky-smooth0-asymmetric", "TverskyLoss", {"alpha": 0.2, "beta": 0.9, "smooth": 0.0},
         lambda r: [_u(r, 0, 1, B, 3, 4), _bits(r, B, 3, 4)], R.ref_tversky, (0, 1),
         family="segmentation"),
    Case("Dice-sparse-smooth0-axis1", "DiceLoss",
         {"axis": 1, "sparse_label": True, "smooth": 0.0},
         lambda r: [_probs(r, B, 3, 8, axis=1), _classes(r, 3, B, 8)], R.ref_dice, (0,),
         family="segmentation"),
    Case("Tversky-sparse-axis1", "TverskyLoss",
         {"alpha": 0.8, "beta": 0.1, "smooth": 0.5, "axis": 1, "sparse_label": True,
          "from_logits": True},
         lambda r: [_n(r, B, 3, 6), _classes(r, 3, B, 6)], R.ref_tversky, (0,),
         family="segmentation"),
    Case("Tversky-sparse-last-sw", "TverskyLoss",
         {"alpha": 0.8, "beta": 0.1, "smooth": 0.5, "axis": -1, "sparse_label": True},
         lambda r: [_probs(r, B, 6, 3), _classes(r, 3, B, 6), _u(r, 0.5, 2, B)],
         R.ref_tversky, (0, 2), family="segmentation"),
    Case("Tversky-onehot-sw", "TverskyLoss", {"axis": -1, "smooth": 0.0, "weight": 0.5},
         lambda r: [_probs(r, B, 5, 3), _onehot(r, 3, B, 5), _u(r, 0.5, 2, B)],
         R.ref_tversky, (0, 1), family="segmentation"),
    Case("Circle", "CircleLoss", {},
         lambda r: [_n(r, 8, 5), np.array([0., 0., 1., 1., 1., 2., 2., 3.])], R.ref_circle,
         (0,), family="embedding", tol32=(1e-3, 1e-4)),
    Case("Circle-gamma-margin", "CircleLoss", {"gamma": 32, "margin": 0.4},
         lambda r: [_n(r, 8, 5), np.array([0., 1., 0., 1., 2., 2., 3., 3.])], R.ref_circle,
         (0,), family="embedding"),
    Case("Circle-unnormalized-sw-batch_axis1", "CircleLoss",
         {"normalize": False, "gamma": 16, "batch_axis": 1, "weight": 0.5},
         lambda r: [_n(r, 4, 6, scale=0.4), np.array([1., 1., 2., 2., 2., 5.]),
                    _u(r, 0.5, 2, 6)], R.ref_circle, (0,), family="embedding"),
    # the kernel compares labels in their own dtype: integers, and fractions
    # that an integer cast would merge (0.5/0.7); (N, 1) labels
    Case("Circle-int-labels-sw-f16", "CircleLoss", {"gamma": 8, "margin": 0.3},
         lambda r: [_n(r, 8, 4), np.array([3, 3, 1, 1, 1, 7, 7, 2], dtype=np.int32),
                    _u(r, 0.5, 2, 8)], R.ref_circle, (0,), family="embedding", f16=True),
    Case("Circle-fractional-labels-column", "CircleLoss", {"gamma": 64, "margin": 0.2},
         lambda r: [_n(r, 9, 6), np.array([[0.5], [0.5], [0.7], [0.7], [0.7], [1.5], [2.5],
                                           [0.5], [-3.0]])], R.ref_circle, (0,),
         family="embedding"),
    # distillation ---------------------------------------------------------
    Case("Distillation", "DistillationLoss", {},
         lambda r: [_n(r, B, 6, scale=2), _classes(r, 6, B), _n(r, B, 6, scale=2)],
         R.ref_distillation, (0, 2), family="distillation", f16=True),
    Case("Distillation-T-hard_weight", "DistillationLoss", {"temperature": 3.0,
                                                            "hard_weight": 0.5},
         lambda r: [_n(r, B, 6, scale=2), _classes(r, 6, B), _n(r, B, 6, scale=2)],
         R.ref_distillation, (0, 2), family="distillation"),
    Case("Distillation-gluoncv", "DistillationLoss",
         {"temperature": 2.0, "hard_weight": 0.3, "teacher_probabilities": True,
          "soft_loss": "cross_entropy", "mix": "convex"},
         lambda r: [_n(r, B, 6, scale=2), _classes(r, 6, B), _probs(r, B, 6)],
         R.ref_distillation, (0, 2), family="distillation"),
    Case("Distillation-gluoncv-T4-sw", "DistillationLoss",   # hard exps as 4th powers
         {"temperature": 4.0, "hard_weight": 0.3, "teacher_probabilities": True,
          "soft_loss": "cross_entropy", "mix": "convex"},
         lambda r: [_n(r, B, 6, scale=2), _classes(r, 6, B), _probs(r, B, 6), _u(r, 0.5, 2, B, 1)],
         R.ref_distillation, (0, 2), family="distillation"),
    Case("Distillation-kl-probabilities", "DistillationLoss",
         {"temperature": 2.0, "teacher_probabilities": True},
         lambda r: [_n(r, B, 6, scale=2), _classes(r, 6, B), _probs(r, B, 6)],
         R.ref_distillation, (0,), family="distillation"),
    Case("Distillation-dense-axis1-sw", "DistillationLoss",
         {"sparse_label": False, "axis": 1, "hard_weight": 1.5, "weight": 0.5,
          "temperature": 0.5},
         lambda r: [_n(r, 3, 4, 5), _probs(r, 3, 4, 5, axis=1), _n(r, 3, 4, 5),
                    _u(r, 0.5, 2, 3, 1, 5)],
         R.ref_distillation, (0, 1, 2), family="distillation",
         fused=False),   # the kernel takes classes on the last axis
    Case("Distillation-dense-3d-sw", "DistillationLoss",
         {"sparse_label": False, "hard_weight": 1.5, "weight": 0.5, "temperature": 0.5},
         lambda r: [_n(r, 3, 4, 5), _probs(r, 3, 4, 5), _n(r, 3, 4, 5), _u(r, 0.5, 2, 3, 4, 1)],
         R.ref_distillation, (0, 1, 2), family="distillation"),
    Case("Distillation-cross_entropy-logits", "DistillationLoss",
         {"temperature": 2.0, "hard_weight": 0.4, "soft_loss": "cross_entropy"},
         lambda r: [_n(r, B, 6, scale=2), _classes(r, 6, B), _n(r, B, 6, scale=2)],
         R.ref_distillation, (0, 2), family="distillation"),
    Case("Distillation-kl-probabilities-convex-sw", "DistillationLoss",
         {"temperature": 1.5, "hard_weight": 0.6, "teacher_probabilities": True, "mix": "convex"},
         lambda r: [_n(r, B, 6, scale=2), _classes(r, 6, B), _probs(r, B, 6), _u(r, 0.5, 2, B, 1)],
         R.ref_distillation, (0, 2), family="distillation"),
    Case("Distillation-batch_axis1", "DistillationLoss", {"batch_axis": 1, "hard_weight": 0.2},
         lambda r: [_n(r, 3, B, 6), _classes(r, 6, 3, B), _n(r, 3, B, 6)],
         R.ref_distillation, (0, 2), family="distillation", fused=False),
    # language models --------------------------------------------------------
    Case("MaskedCE", "MaskedSoftmaxCELoss", {},
         lambda r: [_n(r, 3, 5, 7), _padded_labels(r, 7, LENGTHS, 5), LENGTHS],
         R.ref_masked_softmax_ce, (0,), family="language", f16=True),
    Case("MaskedCE-padded-gluonnlp", "MaskedSoftmaxCELoss", {"average": "padded"},
         lambda r: [_n(r, 3, 5, 7), _padded_labels(r, 7, LENGTHS, 5), LENGTHS],
         R.ref_masked_softmax_ce, (0,), family="language"),
    Case("MaskedCE-no-valid_length", "MaskedSoftmaxCrossEntropyLoss", {},
         lambda r: [_n(r, 3, 5, 7), _classes(r, 7, 3, 5)],
         R.ref_masked_softmax_ce, (0,), family="language"),
    Case("MaskedCE-int32-lengths", "MaskedSoftmaxCELoss", {},
         lambda r: [_n(r, 3, 5, 7), _padded_labels(r, 7, [3, 5, 1], 5),
                    np.array([3, 5, 1], dtype=np.int32)],
         R.ref_masked_softmax_ce, (0,), family="language"),
    Case("MaskedCE-dense-from_logits-sw", "MaskedSoftmaxCELoss",
         {"sparse_label": False, "from_logits": True, "weight": 2.0},
         lambda r: [_n(r, 3, 5, 7) - 2, _probs(r, 3, 5, 7), LENGTHS,
                    _u(r, 0.5, 2, 3, 1, 1)],
         R.ref_masked_softmax_ce, (0, 1), family="language"),
    Case("MaskedCE-TNC", "MaskedSoftmaxCELoss", {"batch_axis": 1},
         lambda r: [_n(r, 5, 3, 7), _padded_labels(r, 7, LENGTHS, 5, batch_axis=1), LENGTHS],
         R.ref_masked_softmax_ce, (0,), family="language", fused=False),
    Case("AR", "ActivationRegularizationLoss", {"alpha": 2.0},
         lambda r: [_n(r, 4, 3, 5)], R.ref_activation_regularization, (0,), family="language",
         f16=True),
    Case("AR-per-sequence-weight", "ActivationRegularizationLoss",
         {"alpha": 0.5, "batch_axis": 1, "weight": 3.0},
         lambda r: [_n(r, 4, 3, 5)], R.ref_activation_regularization, (0,), family="language",
         fused=False),   # the kernel's rows are along the first axis
    Case("AR-batch_axis0", "ActivationRegularizationLoss", {"alpha": 1.5, "batch_axis": 0},
         lambda r: [_n(r, 3, 4, 5)], R.ref_activation_regularization, (0,), family="language"),
    Case("TAR", "TemporalActivationRegularizationLoss", {"beta": 1.5},
         lambda r: [_n(r, 4, 3, 5)], R.ref_temporal_activation_regularization, (0,),
         family="language", f16=True),
    Case("TAR-long", "TemporalActivationRegularizationLoss", {"beta": 2.0},
         lambda r: [_n(r, 9, 2, 3)], R.ref_temporal_activation_regularization, (0,),
         family="language"),
    Case("TAR-NTC-weight", "TemporalActivationRegularizationLoss",
         {"beta": 1.0, "batch_axis": 0, "time_axis": 1, "weight": 0.5},
         lambda r: [_n(r, 4, 3, 5)], R.ref_temporal_activation_regularization, (0,),
         family="language"),
    # segmentation with an auxiliary head ---------------------------------------
    Case("MixCE", "MixSoftmaxCELoss", {},
         lambda r: [_n(r, 2, 4, 3, 3), _n(r, 2, 4, 3, 3), _seg_labels(r, 4, 2, 3, 3)],
         R.ref_mix_softmax_ce, (0, 1), family="pixelwise", f16=True),
    Case("MixCE-aux_weight-sw", "MixSoftmaxCrossEntropyLoss", {"aux_weight": 0.7, "weight": 2.0},
         lambda r: [_n(r, 2, 4, 3, 3), _n(r, 2, 4, 3, 3), _seg_labels(r, 4, 2, 3, 3),
                    _u(r, 0.5, 2, 2, 1, 3, 3)],
         R.ref_mix_softmax_ce, (0, 1), family="pixelwise"),
    Case("MixCE-no-aux", "MixSoftmaxCELoss", {"aux": False},
         lambda r: [_n(r, 2, 4, 3, 3), _seg_labels(r, 4, 2, 3, 3)],
         R.ref_mix_softmax_ce, (0,), family="pixelwise"),
    Case("MixCE-ignore-none", "MixSoftmaxCELoss", {"ignore_index": None, "aux_weight": 0.5},
         lambda r: [_n(r, 2, 4, 3, 3), _n(r, 2, 4, 3, 3), _seg_labels(r, 4, 2, 3, 3, ignore=None)],
         R.ref_mix_softmax_ce, (0, 1), family="pixelwise"),
    # mixup (issue 14): lam per sample (and its gradient), per batch; weights
    Case("MixCE-mixup", "MixSoftmaxCELoss", {"mixup": True},
         lambda r: [_n(r, 2, 4, 3, 3), _n(r, 2, 4, 3, 3), _seg_labels(r, 4, 2, 3, 3),
                    _seg_labels(r, 4, 2, 3, 3), _u(r, 0.1, 0.9, 2)],
         R.ref_mix_softmax_ce, (0, 1, 4), family="pixelwise"),
    Case("MixCE-mixup-no-aux-sw", "MixSoftmaxCrossEntropyLoss",
         {"mixup": True, "aux": False, "ignore_index": None, "weight": 0.5},
         lambda r: [_n(r, 3, 4, 2, 3), _seg_labels(r, 4, 3, 2, 3, ignore=None),
                    _seg_labels(r, 4, 3, 2, 3, ignore=None), _u(r, 0.1, 0.9, 1),
                    _u(r, 0.5, 2, 3)],
         R.ref_mix_softmax_ce, (0,), family="pixelwise"),
    Case("MixCE-NHWC-ignore255", "MixSoftmaxCELoss", {"ignore_index": 255, "axis": -1},
         lambda r: [_n(r, 2, 3, 3, 4), _n(r, 2, 3, 3, 4), _seg_labels(r, 4, 2, 3, 3, ignore=255)],
         R.ref_mix_softmax_ce, (0, 1), family="pixelwise"),
    Case("CTC-blank-first", "CTCLoss", {"blank_label": "first"},
         lambda r: _ctc_first(_ctc_inputs(r)), R.ref_ctc, (0,), family="sequence",
         tol64=(2e-4, 2e-5)),
    Case("CTC-blank-first-lengths-TNC", "CTCLoss",
         {"blank_label": "first", "layout": "TNC", "label_layout": "TN"},
         lambda r: _ctc_first(_ctc_inputs(r, T=10, lengths=True, layout="TNC",
                                          label_layout="TN")),
         R.ref_ctc, (0,), family="sequence", tol64=(2e-4, 2e-5)),
    Case("CTC-zero_infinity", "CTCLoss", {"zero_infinity": True},
         lambda r: _ctc_inputs(r, infeasible=True), R.ref_ctc, (0,), family="sequence",
         tol64=(2e-4, 2e-5)),
    Case("CTC-first-zero_infinity", "CTCLoss", {"blank_label": "first", "zero_infinity": True},
         lambda r: _ctc_first(_ctc_inputs(r, infeasible=True, sw=True)), R.ref_ctc, (0,),
         family="sequence", tol64=(2e-4, 2e-5)),
    # generative -----------------------------------------------------------
    Case("VAE", "VAELoss", {},
         lambda r: [_u(r, 0.05, 0.95, B, D), _u(r, 0, 1, B, D), _n(r, B, 3),
                    _n(r, B, 3, scale=0.5)], R.ref_vae, (0, 1, 2, 3), family="generative"),
    Case("VAE-logits-sw", "VAELoss", {"from_sigmoid": False, "weight": 0.5},
         lambda r: [_n(r, B, D, scale=2), _bits(r, B, D), _n(r, B, 3), _n(r, B, 3),
                    _u(r, 0.5, 2, B)], R.ref_vae, (0, 2, 3), family="generative"),
    Case("VAE-eps", "VAELoss", {"eps": 0.1},
         lambda r: [np.array([[0.02, 0.5, 0.97], [0.3, 0.04, 0.6]]), _bits(r, 2, 3),
                    _n(r, 2, 2), _n(r, 2, 2)], R.ref_vae, (0, 2), family="generative"),
    Case("VAE-images", "VAELoss", {},
         lambda r: [_u(r, 0.05, 0.95, B, 2, 3), _bits(r, B, 2, 3), _n(r, B, 2),
                    _n(r, B, 2)], R.ref_vae, (0, 2, 3), family="generative"),
    Case("VAE-batch_axis1", "VAELoss", {"batch_axis": 1},
         lambda r: [_u(r, 0.05, 0.95, D, B), _bits(r, D, B), _n(r, 3, B), _n(r, 3, B)],
         R.ref_vae, (0, 2, 3), family="generative", fused=False),
    # eps=0: the kernel's log that takes 0 (a probability below the default
    # eps, too close to 0 for pred's finite differences); one weight for all
    Case("VAE-eps0-sw1", "VAELoss", {"eps": 0.0},
         lambda r: [np.where(np.eye(B, D) > 0, 5e-8, _u(r, 0.05, 0.95, B, D)),
                    np.where(np.eye(B, D) > 0, 1.0, _u(r, 0, 1, B, D)), _n(r, B, 2, 2),
                    _n(r, B, 2, 2, scale=0.5), _u(r, 0.5, 2, 1)], R.ref_vae, (1, 2, 3),
         family="generative"),
    Case("VAE-logits-features1-f16", "VAELoss", {"from_sigmoid": False},
         lambda r: [_n(r, B, scale=3), _u(r, 0, 1, B), _n(r, B, 1), _n(r, B, 1)], R.ref_vae,
         (0, 1, 2, 3), family="generative", f16=True),
    Case("WGANGP-critic", "WGANGPLoss", {},
         lambda r: [_n(r, B), _n(r, B), _n(r, B, D, scale=0.5)], R.ref_wgan_gp, (0, 1, 2),
         family="generative"),
    Case("WGANGP-critic-lambda-sw", "WGANGPLoss", {"lambda_": 2.5, "weight": 0.5},
         lambda r: [_n(r, B, 1), _n(r, B, 1), _n(r, B, 2, 3), _u(r, 0.5, 2, B)],
         R.ref_wgan_gp, (0, 1, 2), family="generative"),
    Case("WGANGP-generator", "WGANGPLoss", {},
         lambda r: [_n(r, B, 1)], R.ref_wgan_gp, (0,), family="generative"),
    Case("WGANGP-generator-sw-f16", "WGANGPLoss", {},
         lambda r: [_n(r, B), None, None, _u(r, 0.5, 2, B)], R.ref_wgan_gp, (0, 3),
         family="generative", f16=True),
    # one sample's gradient is 0 (the penalty's NORM_EPSILON); one weight for all
    Case("WGANGP-critic-zero-grad-sw1", "WGANGPLoss", {"lambda_": 4.0},
         lambda r: [_n(r, B), _n(r, B, 1), np.concatenate([np.zeros((1, D)), _n(r, B - 1, D)]),
                    _u(r, 0.5, 2, 1)], R.ref_wgan_gp, (0, 1, 2, 3), family="generative",
         f16=True),
    # torch.nn's losses, Gluon-style (issue 10) ---------------------------
    Case("MSE", "MSELoss", {}, lambda r: [_n(r, B, D), _n(r, B, D)], R.ref_mse, (0, 1),
         f16=True),
    Case("MSE-weight-sw-batch_axis1", "MSELoss", {"weight": 0.5, "batch_axis": 1},
         lambda r: [_n(r, 3, B), _n(r, 3, B), _u(r, 0, 2, 3, B)], R.ref_mse, (0, 2), fused=False),
    Case("SmoothL1", "SmoothL1Loss", {}, lambda r: [_n(r, B, D, scale=1.5), _n(r, B, D)],
         R.ref_smooth_l1, (0, 1), f16=True),
    Case("SmoothL1-beta-sw", "SmoothL1Loss", {"beta": 0.4, "weight": 2.0},
         lambda r: [_n(r, B, D), _n(r, B, D), _u(r, 0, 2, B)], R.ref_smooth_l1, (0,),
         symbol_differs=("float32", "float64")),
    Case("SmoothL1-beta0", "SmoothL1Loss", {"beta": 0.0},
         lambda r: [_n(r, B, D), _n(r, B, D)], R.ref_smooth_l1, (0,), fused=False),
    Case("GaussianNLL", "GaussianNLLLoss", {},
         lambda r: [_n(r, B, D), _n(r, B, D), _u(r, 0.2, 2, B, D)], R.ref_gaussian_nll,
         (0, 1, 2), f16=True),
    Case("GaussianNLL-full-eps-var-B1", "GaussianNLLLoss", {"full": True, "eps": 0.5},
         lambda r: [_n(r, B, D), _n(r, B, D), _u(r, 0.05, 1, B, 1)], R.ref_gaussian_nll,
         (0,)),   # var's gradient where clamped: torch's (straight through), in test_torch_*
    Case("GaussianNLL-var-no-last-axis-sw", "GaussianNLLLoss", {"weight": 0.5},
         lambda r: [_n(r, B, D), _n(r, B, D), _u(r, 0.2, 2, B), _u(r, 0, 2, B, 1)],
         R.ref_gaussian_nll, (0, 2), symbol_differs=("float32", "float64")),
    Case("GaussianNLL-var-per-column", "GaussianNLLLoss", {"eps": 0.8},
         lambda r: [_n(r, B, D), _n(r, B, D), _u(r, 0.1, 2, D)], R.ref_gaussian_nll, (0, 1)),
    # var of pred's shape without the last axis, on 3-D pred: the kernel's
    # broadcast patterns do not cover it (one variance per (sample, position))
    Case("GaussianNLL-3d-var-no-last-axis", "GaussianNLLLoss", {},
         lambda r: [_n(r, B, 3, D), _n(r, B, 3, D), _u(r, 0.2, 2, B, 3)], R.ref_gaussian_nll,
         (0, 2), fused=False, symbol_differs=("float32", "float64")),
    Case("NLL", "NLLLoss", {}, lambda r: [R.log_softmax(_n(r, B, 6), -1), _classes(r, 6, B)],
         R.ref_nll, (0,), family="classification"),
    Case("NLL-class_weight-ignore_index", "NLLLoss",
         {"class_weight": [0.5, 1.0, 2.0, 0.25, 1.5, 3.0], "ignore_index": 2},
         lambda r: [R.log_softmax(_n(r, 6, 6), -1), np.array([2., 0., 2., 5., 1., 3.])],
         R.ref_nll, (0,), family="classification"),
    Case("NLL-axis1-sw", "NLLLoss", {"axis": 1, "weight": 2.0},
         lambda r: [R.log_softmax(_n(r, 3, 4, 5), 1), _classes(r, 4, 3, 5), _u(r, 0, 2, 3, 1, 5)],
         R.ref_nll, (0,), family="classification", fused=False),  # the class axis is not last
    Case("MultiLabelSoftMargin", "MultiLabelSoftMarginLoss", {},
         lambda r: [_n(r, B, D, scale=2), _bits(r, B, D)], R.ref_multilabel_soft_margin, (0, 1),
         family="classification", f16=True),
    Case("MultiLabelSoftMargin-class_weight-sw", "MultiLabelSoftMarginLoss",
         {"class_weight": [0.5, 1.0, 2.0, 0.25, 1.5], "weight": 0.5},
         lambda r: [_n(r, B, D, scale=2), _u(r, 0, 1, B, D), _u(r, 0, 2, B, 1)],
         R.ref_multilabel_soft_margin, (0,), family="classification", fused=False),
    Case("MultiMargin", "MultiMarginLoss", {}, lambda r: [_n(r, B, 6), _classes(r, 6, B)],
         R.ref_multi_margin, (0,), family="margin"),
    Case("MultiMargin-p2-margin-class_weight", "MultiMarginLoss",
         {"p": 2, "margin": 0.6, "class_weight": [0.5, 1.0, 2.0, 0.25, 1.5, 3.0]},
         lambda r: [_n(r, B, 6), _classes(r, 6, B), _u(r, 0.5, 2, B, 1)], R.ref_multi_margin,
         (0,), family="margin"),
    Case("MultiMargin-int32-labels", "MultiMarginLoss", {"margin": 2.0},
         lambda r: [_n(r, B, 6), r.randint(0, 6, size=B).astype(np.int32)], R.ref_multi_margin,
         (0,), family="margin"),
    Case("MultiMargin-p2-f16", "MultiMarginLoss", {"p": 2},
         lambda r: [_n(r, B, 6), _classes(r, 6, B)], R.ref_multi_margin, (0,), family="margin",
         f16=True),
    Case("MultiMargin-class_weight-margin-scalar-sw", "MultiMarginLoss",
         {"margin": 0.3, "class_weight": [2.0, 0.5, 1.0, 3.0, 0.25, 1.5], "weight": 0.5},
         lambda r: [_n(r, B + 3, 6), r.randint(0, 6, size=B + 3).astype(np.int64),
                    _u(r, 0.5, 2, 1)], R.ref_multi_margin, (0, 2), family="margin"),
    Case("MultiMargin-wide-p2-class_weight", "MultiMarginLoss",
         {"p": 2, "margin": 1.5, "class_weight": list(np.linspace(0.25, 2.0, 37))},
         lambda r: [_n(r, 3, 37), _classes(r, 37, 3, 1)], R.ref_multi_margin, (0,),
         family="margin"),
    Case("MultiLabelMargin", "MultiLabelMarginLoss", {},
         lambda r: [_n(r, B, D), np.array([[3., 0., -1., 1., 2.], [1., 2., 3., 4., 0.],
                                           [-1., 0., 0., 0., 0.], [4., -1., 2., 2., 2.]])],
         R.ref_multilabel_margin, (0,), family="margin"),
    Case("MultiLabelMargin-sw-weight", "MultiLabelMarginLoss", {"weight": 2.0},
         lambda r: [_n(r, B, D), np.array([[0., -1., 1., 1., 1.], [2., 2., -1., 4., 0.],
                                           [1., 3., -1., -1., -1.], [4., 0., 1., 2., 3.]]),
                    _u(r, 0.5, 2, B, 1)], R.ref_multilabel_margin, (0,), family="margin"),
    # int32 lists with repeats and entries after the first -1, one weight for all
    Case("MultiLabelMargin-int32-scalar-sw-f16", "MultiLabelMarginLoss", {},
         lambda r: [_n(r, 3, 8), np.array([[7, 7, 1, -1, 7, 0, 2, 3], [-1, 5, 5, 5, 5, 5, 5, 5],
                                           [0, 1, 2, 3, 4, 5, 6, -1]], dtype=np.int32),
                    _u(r, 0.5, 2, 1)], R.ref_multilabel_margin, (0, 2), family="margin",
         f16=True),
    Case("MultiLabelMargin-wide", "MultiLabelMarginLoss", {},
         lambda r: [_n(r, 5, 40), np.stack([np.r_[r.permutation(40)[:k], -np.ones(40 - k)]
                                            for k in (0, 1, 3, 17, 40)])],
         R.ref_multilabel_margin, (0,), family="margin"),
    Case("SoftMargin", "SoftMarginLoss", {}, lambda r: [_n(r, B, D, scale=2), _sign(r, B, D)],
         R.ref_soft_margin, (0,), family="margin", f16=True),
    Case("SoftMargin-sw-weight", "SoftMarginLoss", {"weight": 0.3},
         lambda r: [_n(r, B, D, scale=2), _sign(r, B, D), _u(r, 0, 2, B, D)],
         R.ref_soft_margin, (0, 2), family="margin"),
    Case("MarginRanking", "MarginRankingLoss", {},
         lambda r: [_n(r, B, D), _n(r, B, D), _sign(r, B, D)], R.ref_margin_ranking, (0, 1),
         family="embedding"),
    Case("MarginRanking-margin-sw", "MarginRankingLoss", {"margin": 0.5, "weight": 2.0},
         lambda r: [_n(r, B + 4), _n(r, B + 4), _sign(r, B + 4), _u(r, 0, 2, B + 4)],
         R.ref_margin_ranking, (0, 1), family="embedding"),
    Case("HingeEmbedding", "HingeEmbeddingLoss", {},
         lambda r: [_u(r, 0, 2, B, D), _sign(r, B, D)], R.ref_hinge_embedding, (0,),
         family="embedding"),
    Case("HingeEmbedding-margin-sw", "HingeEmbeddingLoss", {"margin": 0.6, "weight": 0.5},
         lambda r: [_u(r, 0, 1.2, B, D), _sign(r, B, D), _u(r, 0, 2, B, 1)],
         R.ref_hinge_embedding, (0,), family="embedding"),
    Case("TripletMargin", "TripletMarginLoss", {},
         lambda r: [_n(r, B, D), _n(r, B, D), _n(r, B, D)], R.ref_triplet_margin, (0, 1, 2),
         family="embedding"),
    Case("TripletMargin-p1-swap-margin-eps", "TripletMarginLoss",
         {"p": 1, "swap": True, "margin": 2.0, "eps": 0.1},
         lambda r: [_n(r, B, D), _n(r, B, D), _n(r, B, D)], R.ref_triplet_margin, (0, 1, 2),
         family="embedding"),
    Case("TripletMargin-p3-sw-3d", "TripletMarginLoss", {"p": 3, "weight": 0.5},
         lambda r: [_n(r, B, 2, D), _n(r, B, 2, D), _n(r, B, 2, D), _u(r, 0.5, 2, B, 1, 1)],
         R.ref_triplet_margin, (0, 1), family="embedding"),
    Case("TripletMargin-swap-sw-3d", "TripletMarginLoss", {"swap": True, "margin": 0.5},
         lambda r: [_n(r, B, 2, D), _n(r, B, 2, D), _n(r, B, 2, D), _u(r, 0.5, 2, B, 1, 1)],
         R.ref_triplet_margin, (0, 1, 2, 3), family="embedding"),
    Case("TripletMargin-inf", "TripletMarginLoss", {"p": float("inf")},
         lambda r: [_n(r, B, D), _n(r, B, D), _n(r, B, D)], R.ref_triplet_margin, (0, 1, 2),
         family="embedding", fused=False),
    Case("TripletMarginWithDistance", "TripletMarginWithDistanceLoss", {},
         lambda r: [_n(r, B, D), _n(r, B, D), _n(r, B, D)], R.ref_triplet_margin_with_distance,
         (0, 1, 2), family="embedding"),
    Case("TripletMarginWithDistance-swap-margin-sw", "TripletMarginWithDistanceLoss",
         {"swap": True, "margin": 2.5, "weight": 2.0},
         lambda r: [_n(r, B, D), _n(r, B, D), _n(r, B, D), _u(r, 0.5, 2, B)],
         R.ref_triplet_margin_with_distance, (0, 1, 2), family="embedding"),
]
CASE_BY_ID = {c.id: c for c in CASES}
assert len(CASE_BY_ID) == len(CASES)


def family(name):
    return [c for c in CASES if c.family == name]


def loss_class(case):
    import gluonx.loss as L
    return getattr(L, case.cls)


def input_names(case):
    """The call-order names of ``case``'s inputs (from the loss, which may
    set them per instance)."""
    loss = case.factory()()
    return tuple(loss._inputs) + tuple(loss._optional)


def n_required(case):
    return len(case.factory()()._inputs)


def loss_classes():
    """Every public gluonx loss class (aliases counted once), from gluonx.loss."""
    import gluonx.loss as L
    out = []
    for name in L.__all__:
        obj = getattr(L, name)
        if isinstance(obj, type) and issubclass(obj, L.Loss) and obj is not L.Loss \
                and obj not in out:
            out.append(obj)
    return out


def one_per_class(cases=None):
    """For each loss class, its row with the most options and inputs."""
    best = {}
    for case in cases if cases is not None else CASES:
        cls = loss_class(case)
        score = len(case.kwargs) + sum(a is not None for a in case.inputs())
        if cls not in best or score > best[cls][0]:
            best[cls] = (score, case)
    return [case for _, case in best.values()]


def ids(cases):
    return [c.id for c in cases]


def as_dtype(inputs, dtype, keep=()):
    """Float inputs -> ``dtype`` (positions in ``keep`` stay as they are)."""
    return [None if a is None else
            (np.asarray(a).astype(dtype) if np.asarray(a).dtype.kind == "f" and k not in keep
             else np.asarray(a)) for k, a in enumerate(inputs)]


def assert_close(actual, desired, tol, what=""):
    """allclose with atol scaled by the magnitude of ``desired``; infs must match."""
    rtol, atol = tol
    actual = np.asarray(actual, dtype=np.float64)
    desired = np.asarray(desired, dtype=np.float64)
    assert actual.shape == desired.shape, "%s: shape %s, expected %s" % (
        what, actual.shape, desired.shape)
    finite = desired[np.isfinite(desired)]
    scale = max(1.0, float(np.max(np.abs(finite)))) if finite.size else 1.0
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=atol * scale, err_msg=what)


def check_result(case, dtype, result, exp, what=""):
    """Compare one (output, grads) result with ``expected(...)``."""
    _, out, _, grads = exp
    value, g = result
    tol = case.tol[dtype]
    assert_close(value, out, tol, "%s %s value" % (case.id, what))
    for k, ref in grads.items():
        assert np.all(np.isfinite(g[k])), "%s %s: gradient of input %d not finite" % (
            case.id, what, k)
        assert_close(g[k], ref, (tol[0] * 5, tol[1] * 5), "%s %s grad[%d]" % (case.id, what, k))


def check_fused(case, mode, reduction="sample", ctx=None):
    """The fused kernel ran in the last ``run_mode`` exactly when it should:
    kernels on, a CPU context, a mode that knows shapes (not mx.sym), a
    reduction other than 'none', and a case meant to run fused. Call
    ``gluonx.kernels.reset_calls()`` before the run."""
    import gluonx
    on = (gluonx.config.use_kernels and mode != "symbol" and reduction != "none"
          and (ctx is None or ctx.device_type == "cpu"))
    want = bool(on and case.runs_fused())
    calls = gluonx.kernels.calls()
    assert bool(calls) == want, "%s [%s/%s]: expected the fused kernel %s, got calls %s" % (
        case.id, mode, reduction, "to run" if want else "not to run", calls)


def check_imperative(case, dtype, ctx, reduction="sample", seed=0):
    """Imperative value and gradients of ``case`` against the reference, and
    whether the fused kernel ran."""
    import gluonx
    from conftest import run_mode
    exp = expected(case.id, dtype, reduction, seed)
    inputs, _, head, _ = exp
    factory = case.factory() if reduction == "sample" else case.factory(reduction=reduction)
    gluonx.kernels.reset_calls()
    result = run_mode("imperative", factory, as_dtype(inputs, dtype), case.grad, ctx, head)
    check_result(case, dtype, result, exp, "imperative/%s" % reduction)
    check_fused(case, "imperative", reduction, ctx)
    return result


def options_that_matter(case, seed=0):
    """Each constructor option of ``case`` changes the reference output on its
    inputs (so a loss that ignored the option could not match the reference).
    Returns the list of options that do NOT matter (should be empty)."""
    inputs = case.inputs(seed)
    full = case.reference(inputs)
    ignored = []
    for key, value in case.kwargs.items():
        if value is None:   # None spells a default (e.g. L2Loss(weight=None) means 1)
            continue
        kw = {k: v for k, v in case.kwargs.items() if k != key}
        try:
            none, sample = case.ref(*inputs, **kw)[:2]
        except Exception:  # the inputs do not even fit the loss without the option
            continue
        alt = R.reduce(none, sample, "sample")
        if np.shape(alt) == np.shape(full) and np.allclose(alt, full, rtol=1e-3, atol=1e-6):
            ignored.append(key)
    return ignored


def family_tests(name):
    """The table-driven tests every ``test_<family>.py`` runs on its own rows:
    value and gradient against the reference, and every option mattering.
    Returns (rows, test functions) for the module to bind by name."""
    rows = family(name)

    @pytest.mark.parametrize("case", rows, ids=ids(rows))
    def test_value_and_gradient_match_reference(case, dtype, kernels, ctx):
        check_imperative(case, dtype, ctx)

    @pytest.mark.parametrize("case", rows, ids=ids(rows))
    def test_every_option_changes_the_answer(case):
        assert options_that_matter(case) == []

    return rows, test_value_and_gradient_match_reference, test_every_option_changes_the_answer


def fix_tests(fixes):
    """The tests of a family's fixes over mxnet 1.9.1: each ``fix(loss_module,
    ctx)`` passes on gluonx (kernels on and off) and fails on
    mxnet.gluon.loss, which shows the check detects the bug."""
    names = [f.__name__ for f in fixes]

    @pytest.mark.parametrize("fix", fixes, ids=names)
    def test_fix(fix, kernels, ctx):
        import gluonx.loss
        fix(gluonx.loss, ctx)

    @pytest.mark.parametrize("fix", fixes, ids=names)
    def test_fix_fails_on_mxnet_1_9_1(fix):
        import mxnet
        with pytest.raises(Exception):
            fix(mxnet.gluon.loss)

    return test_fix, test_fix_fails_on_mxnet_1_9_1
