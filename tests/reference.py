"""Plain numpy references for every gluonx loss, written from the math.

Each ``ref_<loss>`` takes the loss inputs in call order (numpy arrays or
None) plus the constructor options, computes in float64 and returns
``(none, sample)``: the elementwise loss after weighting (what
``reduction='none'`` returns) and the per-sample loss (what the default
``reduction='sample'`` returns). :func:`reduce` derives ``'mean'``/``'sum'``.

:func:`numeric_grad` gives central finite differences of any of these in
float64; it is the gradient oracle when torch is not installed.
Nothing here imports gluonx or mxnet.
"""
import math

import numpy as np

__all__ = [
    "ref_l2", "ref_l1", "ref_huber", "ref_poisson_nll", "ref_sigmoid_bce",
    "ref_softmax_ce", "ref_hinge", "ref_squared_hinge", "ref_logistic",
    "ref_kldiv", "ref_triplet", "ref_cosine_embedding", "ref_sdml", "ref_ctc",
    "reduce", "numeric_grad", "log_softmax", "softplus", "ctc_nll",
    "ref_mse", "ref_smooth_l1", "ref_gaussian_nll", "ref_nll", "ref_multilabel_soft_margin",
    "ref_multi_margin", "ref_multilabel_margin", "ref_soft_margin", "ref_margin_ranking",
    "ref_hinge_embedding", "ref_triplet_margin", "ref_triplet_margin_with_distance",
    "p_distance",
]


# --------------------------------------------------------------------------
# helpers
def _f64(x):
    return None if x is None else np.asarray(x, dtype=np.float64)


def log_softmax(x, axis):
    x = _f64(x)
    m = np.max(x, axis=axis, keepdims=True)
    return x - m - np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))


def softplus(x):
    """log(1 + exp(x)), stable for any x."""
    return np.logaddexp(0.0, x)


def _weighted(elem, sample_weight, weight, batch_axis=0):
    """elem * sample_weight * weight. A sample_weight that does not broadcast
    but is a vector with one weight per sample weights the samples."""
    if sample_weight is not None:
        sw = _f64(sample_weight)
        try:
            fits = np.broadcast_shapes(sw.shape, elem.shape) == elem.shape
        except ValueError:
            fits = False
        if not fits:   # does not broadcast onto the loss without enlarging it
            if sw.ndim == 1 and elem.ndim > 1 and sw.shape[0] == elem.shape[batch_axis]:
                shape = [1] * elem.ndim
                shape[batch_axis] = -1
                sw = sw.reshape(shape)
        elem = elem * sw
    if weight is not None:
        elem = elem * weight
    return elem


def _per_sample(elem, batch_axis, agg="mean"):
    """Mean (or sum) over every axis except ``batch_axis``."""
    elem = np.asarray(elem)
    batch_axis = batch_axis % elem.ndim
    axes = tuple(a for a in range(elem.ndim) if a != batch_axis)
    if not axes:
        return elem.copy()
    return elem.mean(axis=axes) if agg == "mean" else elem.sum(axis=axes)


def _finish(elem, sample_weight, weight, batch_axis, agg="mean"):
    none = _weighted(elem, sample_weight, weight, batch_axis)
    return none, _per_sample(none, batch_axis, agg)


def reduce(none, sample, reduction):
    """The output of ``reduction`` given the reference's (none, sample)."""
    if reduction == "none":
        return none
    if reduction == "sample":
        return sample
    if reduction == "mean":
        return np.array([np.mean(sample)])
    if reduction == "sum":
        return np.array([np.sum(sample)])
    raise ValueError(reduction)


# --------------------------------------------------------------------------
# regression
def ref_l2(pred, label, sample_weight=None, weight=1.0, batch_axis=0):
    pred, label = _f64(pred), _f64(label).reshape(np.shape(pred))
    w = 1.0 if weight is None else weight
    return _finish(0.5 * (label - pred) ** 2, sample_weight, w, batch_axis)


def ref_l1(pred, label, sample_weight=None, weight=None, batch_axis=0):
    pred, label = _f64(pred), _f64(label).reshape(np.shape(pred))
    return _finish(np.abs(label - pred), sample_weight, weight, batch_axis)


def ref_huber(pred, label, sample_weight=None, rho=1, weight=None, batch_axis=0):
    pred, label = _f64(pred), _f64(label).reshape(np.shape(pred))
    d = np.abs(label - pred)
    elem = np.where(d > rho, d - 0.5 * rho, d * d / (2.0 * rho))
    return _finish(elem, sample_weight, weight, batch_axis)


def ref_poisson_nll(pred, target, sample_weight=None, weight=None, from_logits=True,
                    batch_axis=0, compute_full=False, epsilon=1e-8):
    pred, target = _f64(pred), _f64(target).reshape(np.shape(pred))
    if from_logits:
        elem = np.exp(pred) - target * pred
    else:
        elem = pred - target * np.log(pred + epsilon)
    if compute_full:
        # Stirling's approximation of log(target!), used only where target > 1
        # (log(0!) = log(1!) = 0 exactly).
        t = np.where(target > 1, target, 2.0)
        stirling = t * np.log(t) - t + 0.5 * np.log(2.0 * math.pi * t)
        elem = elem + np.where(target > 1, stirling, 0.0)
    return _finish(elem, sample_weight, weight, batch_axis)


# --------------------------------------------------------------------------
# classification
def ref_sigmoid_bce(pred, label, sample_weight=None, pos_weight=None, from_sigmoid=False,
                    weight=None, batch_axis=0):
    pred, label = _f64(pred), _f64(label).reshape(np.shape(pred))
    pw = 1.0 if pos_weight is None else _f64(pos_weight)
    if from_sigmoid:
        with np.errstate(divide="ignore"):
            log_p, log_1mp = np.log(pred), np.log1p(-pred)
    else:
        log_p, log_1mp = -softplus(-pred), -softplus(pred)
    elem = -(pw * label * log_p + (1.0 - label) * log_1mp)
    return _finish(elem, sample_weight, weight, batch_axis)


def ref_softmax_ce(pred, label, sample_weight=None, axis=-1, sparse_label=True,
                   from_logits=False, weight=None, batch_axis=0, label_smoothing=0.0,
                   class_weight=None, ignore_index=None):
    """Per element: (1 - s) * -cw[y] log p[y] + s/C * sum_c -cw[c] log p[c]
    (torch's definition of label smoothing with class weights); entries whose
    sparse label is ``ignore_index`` contribute 0. The 'none' output has the
    class axis removed."""
    pred = _f64(pred)
    axis = axis % pred.ndim
    logp = pred if from_logits else log_softmax(pred, axis)
    C = pred.shape[axis]
    cw_shape = [1] * pred.ndim
    cw_shape[axis] = C
    cw = np.ones(cw_shape) if class_weight is None else _f64(class_weight).reshape(cw_shape)
    if sparse_label:
        lab = _f64(label).reshape(pred.shape[:axis] + (1,) + pred.shape[axis + 1:])
        idx = np.clip(lab, 0, C - 1).astype(np.int64)
        onehot = (np.arange(C).reshape(cw_shape) == idx).astype(np.float64)
    else:
        onehot = _f64(label).reshape(pred.shape)
    nll = -np.sum(onehot * cw * logp, axis=axis, keepdims=True)
    if label_smoothing:
        smooth = -np.sum(cw * logp, axis=axis, keepdims=True) / C
        nll = (1.0 - label_smoothing) * nll + label_smoothing * smooth
    if sparse_label and ignore_index is not None:
        nll = np.where(lab == ignore_index, 0.0, nll)
    # sample_weight broadcasts against the loss with the class axis kept (size 1),
    # as in mxnet: pred (B, C) takes a (B, 1) sample_weight.
    nll = _weighted(nll, sample_weight, weight, batch_axis)
    sample = _per_sample(nll, batch_axis)
    return np.squeeze(nll, axis=axis), sample


def ref_hinge(pred, label, sample_weight=None, margin=1, weight=None, batch_axis=0):
    pred, label = _f64(pred), _f64(label).reshape(np.shape(pred))
    return _finish(np.maximum(0.0, margin - pred * label), sample_weight, weight, batch_axis)


def ref_squared_hinge(pred, label, sample_weight=None, margin=1, weight=None, batch_axis=0):
    pred, label = _f64(pred), _f64(label).reshape(np.shape(pred))
    return _finish(np.maximum(0.0, margin - pred * label) ** 2, sample_weight, weight,
                   batch_axis)


def ref_logistic(pred, label, sample_weight=None, weight=None, batch_axis=0,
                 label_format="signed"):
    pred, label = _f64(pred), _f64(label).reshape(np.shape(pred))
    sign = label if label_format == "signed" else 2.0 * label - 1.0
    return _finish(softplus(-pred * sign), sample_weight, weight, batch_axis)


# --------------------------------------------------------------------------
# divergence
def ref_kldiv(pred, label, sample_weight=None, from_logits=True, axis=-1, weight=None,
              batch_axis=0):
    """sum over non-batch axes of label * (log(label) - log_prob); 0 log 0 = 0."""
    pred, label = _f64(pred), _f64(label).reshape(np.shape(pred))
    logq = pred if from_logits else log_softmax(pred, axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(label > 0, label * np.log(np.where(label > 0, label, 1.0)), 0.0)
    return _finish(plogp - label * logq, sample_weight, weight, batch_axis, agg="sum")


# --------------------------------------------------------------------------
# embedding
def ref_triplet(pred, positive, negative, sample_weight=None, margin=1, weight=None,
                batch_axis=0):
    pred = _f64(pred)
    positive = _f64(positive).reshape(pred.shape)
    negative = _f64(negative).reshape(pred.shape)
    d = _per_sample((positive - pred) ** 2 - (negative - pred) ** 2, batch_axis, agg="sum")
    elem = np.maximum(0.0, d + margin)
    none = _weighted(elem, sample_weight, weight)
    return none, none


def cosine_similarity(x, y, axis=-1, eps=1e-12):
    x, y = _f64(x), _f64(y)
    nx = np.sqrt(np.sum(x * x, axis=axis))
    ny = np.sqrt(np.sum(y * y, axis=axis))
    return np.sum(x * y, axis=axis) / np.maximum(nx * ny, eps)


def ref_cosine_embedding(input1, input2, label, sample_weight=None, weight=None, batch_axis=0,
                         margin=0):
    """label 1: 1 - cos; label -1: max(0, cos - margin). 'none' drops the last axis."""
    input1 = _f64(input1)
    input2 = _f64(input2).reshape(input1.shape)
    cos = cosine_similarity(input1, input2, axis=-1)
    label = _f64(label).reshape(cos.shape)
    elem = np.where(label == 1, 1.0 - cos, 0.0) + \
        np.where(label == -1, np.maximum(0.0, cos - margin), 0.0)
    if sample_weight is not None:
        sw = _f64(sample_weight)
        if sw.ndim == cos.ndim + 1 and sw.shape[-1] == 1:  # mxnet-style (batch, 1)
            sw = sw[..., 0]
        elem = elem * sw
    if weight is not None:
        elem = elem * weight
    return elem, _per_sample(elem, batch_axis)


def ref_sdml(x1, x2, sample_weight=None, smoothing_parameter=0.3, weight=1.0, batch_axis=0):
    """KL(smoothed identity || softmax(-squared distances)) per row of x1."""
    x1, x2 = _f64(x1), _f64(x2)
    n = x1.shape[0]
    dist = np.sum((x1[:, None, :] - x2[None, :, :]) ** 2, axis=2)
    logq = log_softmax(-dist, axis=1)
    eye = np.eye(n)
    target = eye * (1.0 - smoothing_parameter) + (1.0 - eye) * smoothing_parameter / (n - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(target > 0, target * np.log(np.where(target > 0, target, 1.0)), 0.0)
    elem = np.sum(plogp - target * logq, axis=1)
    none = _weighted(elem, sample_weight, weight)
    return none, none


# --------------------------------------------------------------------------
# sequence
def ctc_nll(logp, seq):
    """-log p(seq | logp) by the CTC forward algorithm in log space.

    ``logp``: (T, C) log-probabilities, blank = C - 1. ``seq``: label ids.
    Returns +inf when the label cannot be aligned in T steps.
    """
    T, C = logp.shape
    blank = C - 1
    ext = [blank]
    for s in seq:
        ext += [int(s), blank]
    ext = np.array(ext)
    S = len(ext)
    if T == 0:
        return 0.0 if len(seq) == 0 else math.inf
    skip = np.zeros(S, dtype=bool)
    skip[2:] = (ext[2:] != blank) & (ext[2:] != ext[:-2])
    alpha = np.full(S, -np.inf)
    alpha[0] = logp[0, blank]
    if S > 1:
        alpha[1] = logp[0, ext[1]]
    with np.errstate(invalid="ignore"):
        for t in range(1, T):
            new = alpha.copy()
            new[1:] = np.logaddexp(new[1:], alpha[:-1])
            new[2:] = np.where(skip[2:], np.logaddexp(new[2:], alpha[:-2]), new[2:])
            alpha = new + logp[t, ext]
        ll = np.logaddexp(alpha[-1], alpha[-2]) if S > 1 else alpha[-1]
    return -ll


def ref_ctc(pred, label, pred_lengths=None, label_lengths=None, sample_weight=None,
            layout="NTC", label_layout="NT", weight=None):
    """Unnormalised activations -> log_softmax over C -> CTC NLL per sample.

    Labels are padded with -1 when ``label_lengths`` is None (blank = last)."""
    pred = _f64(pred)
    if layout == "TNC":
        pred = pred.transpose(1, 0, 2)
    label = np.asarray(label)
    if label_layout == "TN":
        label = label.T
    logp = log_softmax(pred, axis=-1)
    n, T, _ = logp.shape
    out = np.empty(n)
    for i in range(n):
        t_i = T if pred_lengths is None else int(np.asarray(pred_lengths)[i])
        row = label[i]
        if label_lengths is None:
            pad = np.nonzero(row == -1)[0]
            l_i = len(row) if len(pad) == 0 else int(pad[0])
        else:
            l_i = int(np.asarray(label_lengths)[i])
        out[i] = ctc_nll(logp[i, :t_i], row[:l_i])
    none = _weighted(out, sample_weight, weight)
    return none, none


# --------------------------------------------------------------------------
# torch.nn's losses, Gluon-style (issue 10)
def ref_mse(pred, label, sample_weight=None, weight=None, batch_axis=0):
    pred, label = _f64(pred), _f64(label).reshape(np.shape(pred))
    return _finish((pred - label) ** 2, sample_weight, weight, batch_axis)


def ref_smooth_l1(pred, label, sample_weight=None, beta=1.0, weight=None, batch_axis=0):
    pred, label = _f64(pred), _f64(label).reshape(np.shape(pred))
    d = np.abs(pred - label)
    elem = d if beta == 0 else np.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta)
    return _finish(elem, sample_weight, weight, batch_axis)


def ref_gaussian_nll(pred, label, var, sample_weight=None, full=False, eps=1e-6, weight=None,
                     batch_axis=0):
    """0.5 (log v + (pred - label)^2 / v) with v = max(var, eps); var may lack
    pred's last axis (one variance per row)."""
    pred, label, var = _f64(pred), _f64(label).reshape(np.shape(pred)), _f64(var)
    if var.shape == pred.shape[:-1] and var.shape != pred.shape:
        var = var[..., None]
    v = np.maximum(var, eps)
    elem = 0.5 * (np.log(v) + (pred - label) ** 2 / v) + np.zeros_like(pred)
    if full:
        elem = elem + 0.5 * math.log(2 * math.pi)
    return _finish(elem, sample_weight, weight, batch_axis)


def ref_nll(pred, label, sample_weight=None, axis=-1, class_weight=None, ignore_index=None,
            weight=None, batch_axis=0):
    """-cw[y] * pred[y]: softmax CE of log-probabilities."""
    return ref_softmax_ce(pred, label, sample_weight, axis=axis, from_logits=True,
                          weight=weight, batch_axis=batch_axis, class_weight=class_weight,
                          ignore_index=ignore_index)


def ref_multilabel_soft_margin(pred, label, sample_weight=None, class_weight=None, weight=None,
                               batch_axis=0):
    """-cw_c (y log sigmoid(x) + (1 - y) log sigmoid(-x)), C last."""
    pred, label = _f64(pred), _f64(label).reshape(np.shape(pred))
    elem = label * softplus(-pred) + (1.0 - label) * softplus(pred)
    if class_weight is not None:
        elem = elem * _f64(class_weight)
    return _finish(elem, sample_weight, weight, batch_axis)


def ref_multi_margin(pred, label, sample_weight=None, p=1, margin=1.0, class_weight=None,
                     weight=None, batch_axis=0):
    """(1/C) sum_{c != y} cw[y] max(0, margin - x[y] + x[c])^p, one value per row."""
    pred = _f64(pred)
    n, C = pred.shape
    y = _f64(label).reshape(n).astype(np.int64)
    out = np.empty((n, 1))
    for i in range(n):
        terms = [max(0.0, margin - pred[i, y[i]] + pred[i, c]) ** p for c in range(C)
                 if c != y[i]]
        w = 1.0 if class_weight is None else float(_f64(class_weight)[y[i]])
        out[i, 0] = w * sum(terms) / C
    none = _weighted(out, sample_weight, weight)
    return none[:, 0], _per_sample(none, 0)


def ref_multilabel_margin(pred, label, sample_weight=None, weight=None, batch_axis=0):
    """(1/C) sum over listed j, unlisted i of max(0, 1 - (x[j] - x[i])); a row's
    list ends at its first -1."""
    pred = _f64(pred)
    n, C = pred.shape
    label = _f64(label).astype(np.int64)
    out = np.empty((n, 1))
    for k in range(n):
        listed = []
        for v in label[k]:
            if v < 0:
                break
            listed.append(int(v))
        others = [i for i in range(C) if i not in listed]
        out[k, 0] = sum(max(0.0, 1.0 - (pred[k, j] - pred[k, i]))
                        for j in listed for i in others) / C
    none = _weighted(out, sample_weight, weight)
    return none[:, 0], _per_sample(none, 0)


def ref_soft_margin(pred, label, sample_weight=None, weight=None, batch_axis=0):
    pred, label = _f64(pred), _f64(label).reshape(np.shape(pred))
    return _finish(softplus(-label * pred), sample_weight, weight, batch_axis)


def ref_margin_ranking(input1, input2, label, sample_weight=None, margin=0.0, weight=None,
                       batch_axis=0):
    input1 = _f64(input1)
    input2, label = _f64(input2).reshape(input1.shape), _f64(label).reshape(input1.shape)
    return _finish(np.maximum(0.0, margin - label * (input1 - input2)), sample_weight, weight,
                   batch_axis)


def ref_hinge_embedding(pred, label, sample_weight=None, margin=1.0, weight=None,
                        batch_axis=0):
    pred, label = _f64(pred), _f64(label).reshape(np.shape(pred))
    elem = np.where(label == 1, pred, np.maximum(0.0, margin - pred))
    return _finish(elem, sample_weight, weight, batch_axis)


def p_distance(a, b, p=2.0, eps=1e-6):
    """||a - b + eps||_p along the last axis."""
    d = np.abs(_f64(a) - _f64(b) + eps)
    if math.isinf(p):
        return d.max(axis=-1)
    return (d ** p).sum(axis=-1) ** (1.0 / p)


def _triplet_margin(dist, anchor, positive, negative, sample_weight, margin, swap, weight):
    to_neg = dist(anchor, negative)
    if swap:
        to_neg = np.minimum(to_neg, dist(positive, negative))
    elem = np.maximum(0.0, dist(anchor, positive) - to_neg + margin)
    return elem


def ref_triplet_margin(pred, positive, negative, sample_weight=None, margin=1.0, p=2, eps=1e-6,
                       swap=False, weight=None, batch_axis=0):
    """max(0, d(a, p) - d(a, n) + margin), d the (non-squared) p-norm distance
    along the last axis; 'none' has the last axis removed."""
    pred = _f64(pred)
    positive, negative = _f64(positive).reshape(pred.shape), _f64(negative).reshape(pred.shape)
    elem = _triplet_margin(lambda a, b: p_distance(a, b, p, eps), pred, positive, negative,
                           sample_weight, margin, swap, weight)[..., None]
    none = _weighted(elem, sample_weight, weight, batch_axis)
    return none[..., 0], _per_sample(none, batch_axis)


def ref_triplet_margin_with_distance(pred, positive, negative, sample_weight=None,
                                     distance_function=None, margin=1.0, swap=False,
                                     weight=None, batch_axis=0):
    """As ref_triplet_margin with any numpy distance (default p=2, eps=1e-6).
    ``distance_function`` here is a numpy function of (a, b)."""
    pred = _f64(pred)
    positive, negative = _f64(positive).reshape(pred.shape), _f64(negative).reshape(pred.shape)
    dist = distance_function or p_distance
    elem = _triplet_margin(dist, pred, positive, negative, sample_weight, margin, swap, weight)
    none = _weighted(elem, sample_weight, weight)
    return none, none


# --------------------------------------------------------------------------
# gradients
def numeric_grad(fn, inputs, wrt, head, step=1e-6):
    """Central finite differences of ``sum(head * fn(*inputs))`` in float64.

    ``fn(*inputs)`` returns an array shaped like ``head``; ``wrt`` lists the
    positions in ``inputs`` to differentiate. Outputs that are not finite at
    the unperturbed point are structurally constant (e.g. an infeasible CTC
    sample): their head weight is set to 0, so their gradient is 0.
    Returns {position: gradient}.
    """
    inputs = [None if x is None else np.array(x, dtype=np.float64) for x in inputs]
    base = np.asarray(fn(*inputs), dtype=np.float64)
    head = np.where(np.isfinite(base), np.asarray(head, dtype=np.float64), 0.0)
    grads = {}
    for k in wrt:
        x = inputs[k]
        g = np.zeros_like(x)
        flat, gflat = x.reshape(-1), g.reshape(-1)
        for j in range(flat.size):
            old = flat[j]
            h = step * max(1.0, abs(old))
            flat[j] = old + h
            up = np.asarray(fn(*inputs), dtype=np.float64)
            flat[j] = old - h
            down = np.asarray(fn(*inputs), dtype=np.float64)
            flat[j] = old
            with np.errstate(invalid="ignore"):
                diff = np.where(head != 0, (up - down) * head, 0.0)
            gflat[j] = np.sum(diff) / (2.0 * h)
        grads[k] = g
    return grads
