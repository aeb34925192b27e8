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
    "ref_distillation", "ref_masked_softmax_ce", "ref_label_smoothing",
    "ref_activation_regularization", "ref_temporal_activation_regularization",
    "ref_mix_softmax_ce",
    "ref_vae", "ref_wgan_gp", "ref_nce",
    "reduce", "numeric_grad", "log_softmax", "softplus", "ctc_nll",
    "ref_log_cosh", "ref_mape", "ref_msle", "ref_categorical_hinge", "ref_generalized_ce",
    "ref_sigmoid_focal", "ref_softmax_focal", "ref_dice", "ref_tversky", "ref_circle",
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


def reduce(none, sample, reduction, mean=None):
    """The output of ``reduction`` given the reference's (none, sample) and,
    for a loss with its own 'mean' denominator, that mean."""
    if reduction == "none":
        return none
    if reduction == "sample":
        return sample
    if reduction == "mean":
        return np.array([np.mean(sample)]) if mean is None else mean
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
                    weight=None, batch_axis=0, label_smoothing=0.0):
    """``pos_weight`` is the call input or the constructor's; the label is
    smoothed as z (1 - s) + s / 2."""
    pred, label = _f64(pred), _f64(label).reshape(np.shape(pred))
    label = label * (1.0 - label_smoothing) + label_smoothing / 2.0
    pw = 1.0 if pos_weight is None else _f64(pos_weight)
    if from_sigmoid:
        with np.errstate(divide="ignore"):
            log_p, log_1mp = np.log(pred), np.log1p(-pred)
    else:
        log_p, log_1mp = -softplus(-pred), -softplus(pred)
    elem = -(pw * label * log_p + (1.0 - label) * log_1mp)
    return _finish(elem, sample_weight, weight, batch_axis)


def ref_softmax_ce(pred, label, sample_weight=None, valid_length=None, axis=-1,
                   sparse_label=True, from_logits=False, weight=None, batch_axis=0,
                   label_smoothing=0.0, class_weight=None, ignore_index=None):
    """Per element: (1 - s) * -cw[y] log p[y] + s/C * sum_c -cw[c] log p[c]
    (torch's definition of label smoothing with class weights). Entries whose
    sparse label is ``ignore_index``, and time steps >= ``valid_length`` (pred
    of 3 axes), are masked: they contribute 0, and a sample's value is the mean
    over its unmasked entries (0 if none); 'mean' is sum / number of unmasked
    entries (with class weights and sparse labels: / their summed cw[y]).
    The 'none' output has the class axis removed. Returns (none, sample) or,
    with masking or class weights, (none, sample, mean)."""
    pred = _f64(pred)
    axis = axis % pred.ndim
    logp = pred if from_logits else log_softmax(pred, axis)
    C = pred.shape[axis]
    cw_shape = [1] * pred.ndim
    cw_shape[axis] = C
    cw = np.ones(cw_shape) if class_weight is None else _f64(class_weight).reshape(cw_shape)
    kept = pred.shape[:axis] + (1,) + pred.shape[axis + 1:]
    if sparse_label:
        lab = _f64(label).reshape(kept)
        idx = np.clip(lab, 0, C - 1).astype(np.int64)
        onehot = (np.arange(C).reshape(cw_shape) == idx).astype(np.float64)
    else:
        onehot = _f64(label).reshape(pred.shape)
    nll = -np.sum(onehot * cw * logp, axis=axis, keepdims=True)
    if label_smoothing:
        smooth = -np.sum(cw * logp, axis=axis, keepdims=True) / C
        nll = (1.0 - label_smoothing) * nll + label_smoothing * smooth
    mask = np.ones(kept)
    if sparse_label and ignore_index is not None:
        mask = mask * (lab != ignore_index)
    if valid_length is not None:
        time = [a for a in range(3) if a not in (batch_axis % 3, axis)][0]
        shape = [1, 1, 1]
        shape[time] = pred.shape[time]
        steps = np.arange(pred.shape[time]).reshape(shape)
        shape = [1, 1, 1]
        shape[batch_axis % 3] = -1
        mask = mask * (steps < _f64(valid_length).reshape(shape))
    nll = np.where(mask > 0, nll, 0.0)
    # sample_weight broadcasts against the loss with the class axis kept (size 1),
    # as in mxnet: pred (B, C) takes a (B, 1) sample_weight.
    nll = _weighted(nll, sample_weight, weight, batch_axis)
    none = np.squeeze(nll, axis=axis)
    masked = (sparse_label and ignore_index is not None) or valid_length is not None
    if not masked and class_weight is None:
        return none, _per_sample(nll, batch_axis)
    ba = batch_axis % nll.ndim
    others = tuple(a for a in range(nll.ndim) if a != ba)
    num, den = np.sum(nll, axis=others), np.sum(mask, axis=others)
    sample = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    total = mask * (np.sum(onehot * cw, axis=axis, keepdims=True) if sparse_label else 1.0)
    mean = np.sum(nll) / np.sum(total) if np.sum(total) != 0 else 0.0
    return none, sample, np.array([mean])


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
              batch_axis=0, log_target=False):
    """sum over non-batch axes of label * (log(label) - log_prob); 0 log 0 = 0.
    ``log_target``: the label is log(label)."""
    pred, label = _f64(pred), _f64(label).reshape(np.shape(pred))
    logq = pred if from_logits else log_softmax(pred, axis)
    if log_target:
        elem = np.exp(label) * (label - logq)
        return _finish(elem, sample_weight, weight, batch_axis, agg="sum")
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
def ctc_nll(logp, seq, blank=None):
    """-log p(seq | logp) by the CTC forward algorithm in log space.

    ``logp``: (T, C) log-probabilities, blank = C - 1 unless given. ``seq``:
    label ids. Returns +inf when the label cannot be aligned in T steps.
    """
    T, C = logp.shape
    blank = C - 1 if blank is None else blank
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
            layout="NTC", label_layout="NT", weight=None, blank_label="last",
            zero_infinity=False):
    """Unnormalised activations -> log_softmax over C -> CTC NLL per sample.

    Labels are padded with -1 when ``label_lengths`` is None (blank = last;
    with blank_label='first' the blank is 0 and 0 pads too). An infeasible
    sample is +inf, or 0 with ``zero_infinity``."""
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
            pad = np.nonzero((row == -1) | ((row == 0) & (blank_label == "first")))[0]
            l_i = len(row) if len(pad) == 0 else int(pad[0])
        else:
            l_i = int(np.asarray(label_lengths)[i])
        out[i] = ctc_nll(logp[i, :t_i], row[:l_i], 0 if blank_label == "first" else None)
        if zero_infinity and not np.isfinite(out[i]):
            out[i] = 0.0
    none = _weighted(out, sample_weight, weight)
    return none, none


# --------------------------------------------------------------------------
# distillation (Hinton et al. 2015; GluonCV's DistillationSoftmaxCrossEntropyLoss)
def _xlogx(q):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(q > 0, q * np.log(np.where(q > 0, q, 1.0)), 0.0)


def _onehot(label, shape, axis):
    """One-hot of class indices ``label`` (pred's shape without ``axis``)."""
    C = shape[axis]
    kept = shape[:axis] + (1,) + shape[axis + 1:]
    idx = np.clip(_f64(label).reshape(kept), 0, C - 1).astype(np.int64)
    classes = np.arange(C).reshape([C if a == axis else 1 for a in range(len(shape))])
    return (classes == idx).astype(np.float64)


def ref_distillation(pred, label, teacher, sample_weight=None, temperature=1.0,
                     hard_weight=0.0, sparse_label=True, axis=-1, teacher_probabilities=False,
                     soft_loss="kl", mix="add", weight=None, batch_axis=0):
    """T^2 * sum_c q (log q - log softmax(pred/T)) [+ w * CE(pred, label)];
    q = softmax(teacher/T) or the given probabilities. 'none' drops the class axis."""
    pred, teacher = _f64(pred), _f64(teacher).reshape(np.shape(pred))
    axis = axis % pred.ndim
    T = float(temperature)
    logp_t = log_softmax(pred / T, axis)
    q = teacher if teacher_probabilities else np.exp(log_softmax(teacher / T, axis))
    soft = -np.sum(q * logp_t, axis=axis, keepdims=True)
    if soft_loss == "kl":
        soft = soft + np.sum(_xlogx(q), axis=axis, keepdims=True)
    soft = soft * T * T
    target = _onehot(label, pred.shape, axis) if sparse_label else \
        _f64(label).reshape(pred.shape)
    hard = -np.sum(target * log_softmax(pred, axis), axis=axis, keepdims=True)
    w = hard_weight
    elem = ((1 - w) if mix == "convex" else 1.0) * soft + w * hard
    elem = _weighted(elem, sample_weight, weight, batch_axis)
    return np.squeeze(elem, axis=axis), _per_sample(elem, batch_axis)


# --------------------------------------------------------------------------
# language models (GluonNLP 0.10)
def ref_masked_softmax_ce(pred, label, valid_length=None, sample_weight=None, sparse_label=True,
                          from_logits=False, weight=None, batch_axis=0, average="valid"):
    """Per sample: the sum of the step losses over its first valid_length steps,
    divided by max(1, valid_length) ('valid') or by T ('padded'). The 'none'
    output is each step's share, (N, T) (or (T, N) with batch_axis=1)."""
    pred = _f64(pred)
    logp = pred if from_logits else log_softmax(pred, -1)
    target = _onehot(label, pred.shape, 2) if sparse_label else _f64(label).reshape(pred.shape)
    steps = -np.sum(target * logp, axis=-1, keepdims=True)          # (N, T, 1) or (T, N, 1)
    time_axis = 1 - batch_axis
    T, n = pred.shape[time_axis], pred.shape[batch_axis]
    lengths = np.full(n, T) if valid_length is None else _f64(valid_length).reshape(n)
    used = (np.arange(T)[None, :] < lengths[:, None]).astype(np.float64)   # (N, T)
    denom = np.full(n, float(T)) if average == "padded" or valid_length is None else \
        np.maximum(lengths, 1.0)
    share = used / denom[:, None]
    if batch_axis == 1:
        share = share.T
    elem = _weighted(steps * share[..., None], sample_weight, weight, batch_axis)
    return elem[..., 0], _per_sample(elem, batch_axis, agg="sum")


def ref_label_smoothing(inputs, units=None, axis=-1, epsilon=0.1, sparse_label=True):
    """(1 - eps) * onehot(inputs) + eps / V (dense inputs: (1 - eps) * inputs + eps / V)."""
    x = _f64(inputs)
    if sparse_label:
        x = (np.arange(units) == x[..., None]).astype(np.float64)
        axis = -1
    V = x.shape[axis] if units is None else units
    return (1.0 - epsilon) * x + epsilon / V


def _last_state(states):
    return _f64(states[-1] if isinstance(states, (list, tuple)) else states)


def _regularizer(elem, sample_weight, weight, batch_axis):
    """batch_axis None (GluonNLP's default): one value, the mean over everything."""
    if batch_axis is None:
        none = _weighted(elem, sample_weight, weight)
        return none, np.array([none.mean()])
    return _finish(elem, sample_weight, weight, batch_axis)


def ref_activation_regularization(states, sample_weight=None, alpha=0, weight=None,
                                  batch_axis=None):
    """alpha * h^2 of the last state, averaged."""
    h = _last_state(states)
    return _regularizer(alpha * h * h, sample_weight, weight, batch_axis)


def ref_temporal_activation_regularization(states, sample_weight=None, beta=0, weight=None,
                                           batch_axis=None, time_axis=0):
    """beta * (h[t+1] - h[t])^2 of the last state, along the time axis, averaged."""
    h = _last_state(states)
    d = np.diff(h, axis=time_axis)
    return _regularizer(beta * d * d, sample_weight, weight, batch_axis)


# --------------------------------------------------------------------------
# segmentation with an auxiliary head (GluonCV's MixSoftmaxCrossEntropyLoss)
def ref_mix_softmax_ce(*inputs, aux=True, aux_weight=0.2, ignore_index=-1, axis=1, weight=None,
                       batch_axis=0, mixup=False):
    """CE(pred) + aux_weight * CE(aux_pred) per pixel, 0 where label == ignore_index,
    averaged over every pixel of a sample. Inputs: pred, [aux_pred], label, [sample_weight].
    mixup=True: inputs pred, [aux_pred], label, label2, lam, [sample_weight]; lam times
    the loss against label plus (1 - lam) times the loss against label2, lam per
    batch (1,) or per sample (N,)."""
    if mixup:
        heads = 2 if aux else 1
        heads, (label, label2, lam), rest = (list(inputs[:heads]), inputs[heads:heads + 3],
                                             list(inputs[heads + 3:]))
        kw = dict(aux=aux, aux_weight=aux_weight, ignore_index=ignore_index, axis=axis,
                  weight=weight, batch_axis=batch_axis)
        first = ref_mix_softmax_ce(*(heads + [label] + rest), **kw)
        second = ref_mix_softmax_ce(*(heads + [label2] + rest), **kw)
        n = np.shape(first[1])[0]
        lam = np.broadcast_to(_f64(lam).reshape(-1), (n,))
        shape = [1] * np.ndim(first[0])
        shape[batch_axis] = n
        pixel = lam.reshape(shape) * first[0] + (1 - lam.reshape(shape)) * second[0]
        return pixel, lam * first[1] + (1 - lam) * second[1]
    inputs = list(inputs) + [None] * 4
    if aux:
        pred, aux_pred, label, sample_weight = inputs[:4]
    else:
        (pred, label, sample_weight), aux_pred = inputs[:3], None
    pred = _f64(pred)
    axis = axis % pred.ndim
    target = _onehot(label, pred.shape, axis)
    elem = -np.sum(target * log_softmax(pred, axis), axis=axis, keepdims=True)
    if aux:
        aux_pred = _f64(aux_pred).reshape(pred.shape)
        elem = elem - aux_weight * np.sum(target * log_softmax(aux_pred, axis), axis=axis,
                                          keepdims=True)
    if ignore_index is not None:
        lab = _f64(label).reshape(elem.shape)
        elem = np.where(lab == ignore_index, 0.0, elem)
    elem = _weighted(elem, sample_weight, weight, batch_axis)
    return np.squeeze(elem, axis=axis), _per_sample(elem, batch_axis)
# generative models and candidate sampling
def ref_vae(pred, label, mean, log_var, sample_weight=None, from_sigmoid=True, eps=1e-7,
            weight=None, batch_axis=0):
    """Bernoulli reconstruction cross-entropy (summed) + KL(N(mean, e^log_var) || N(0, I))."""
    pred, label, mean, log_var = _f64(pred), _f64(label), _f64(mean), _f64(log_var)
    if from_sigmoid:
        p = np.clip(pred, eps, 1 - eps)
        rec = -(label * np.log(p) + (1 - label) * np.log(1 - p))
    else:
        rec = softplus(pred) - pred * label
    kl = 0.5 * (np.exp(log_var) + mean ** 2 - 1 - log_var)
    elem = _per_sample(rec, batch_axis, "sum") + _per_sample(kl, batch_axis, "sum")
    none = _weighted(elem, sample_weight, weight)
    return none, none


def ref_wgan_gp(fake, real=None, grad_interp=None, sample_weight=None, lambda_=10, weight=None):
    """Critic loss fake - real + lambda (||g|| - 1)^2 per sample, or generator loss -fake."""
    fake = _f64(fake).reshape(len(fake), -1).sum(axis=1)
    if real is None:
        elem = -fake
    else:
        real = _f64(real).reshape(len(real), -1).sum(axis=1)
        norm = np.sqrt(np.sum(_f64(grad_interp).reshape(len(fake), -1) ** 2, axis=1))
        elem = fake - real + lambda_ * (norm - 1) ** 2
    none = _weighted(elem, sample_weight, weight)
    return none, none


def ref_nce(pred, label, negatives, W, b, noise, subtract_log_q=True, sample_weight=None,
            weight=None):
    """Binary logistic loss of the target against the given negatives, summed
    over the sample's context vectors (pred (N, D) or (N, T, D))."""
    x = _f64(pred)
    x = x.reshape(x.shape[0], -1, x.shape[-1])
    label = np.asarray(label).astype(int).ravel()
    negatives = np.asarray(negatives).astype(int)
    W, b = _f64(W), _f64(b)
    q = _f64(noise) / np.sum(noise)
    true = np.einsum("ntd,nd->nt", x, W[label]) + b[label][:, None]
    noise_scores = np.einsum("ntd,kd->ntk", x, W[negatives]) + b[negatives]
    if subtract_log_q:
        true = true - np.log(q[label])[:, None]
        noise_scores = noise_scores - np.log(q[negatives])
    elem = softplus(-true).sum(axis=1) + softplus(noise_scores).sum(axis=(1, 2))
    none = _weighted(elem, sample_weight, weight)
    return none, none


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


# --------------------------------------------------------------------------
# Keras-style regression and hinge losses, focal, overlap, circle, GCE
KERAS_EPSILON = 1e-7


def ref_log_cosh(pred, label, sample_weight=None, weight=None, batch_axis=0):
    pred, label = _f64(pred), _f64(label).reshape(np.shape(pred))
    d = pred - label
    # log(cosh(d)) = |d| + log1p(exp(-2|d|)) - log 2, finite for any d
    elem = np.abs(d) + np.log1p(np.exp(-2.0 * np.abs(d))) - math.log(2.0)
    return _finish(elem, sample_weight, weight, batch_axis)


def ref_mape(pred, label, sample_weight=None, epsilon=KERAS_EPSILON, weight=None, batch_axis=0):
    pred, label = _f64(pred), _f64(label).reshape(np.shape(pred))
    elem = 100.0 * np.abs(label - pred) / np.maximum(np.abs(label), epsilon)
    return _finish(elem, sample_weight, weight, batch_axis)


def ref_msle(pred, label, sample_weight=None, epsilon=KERAS_EPSILON, weight=None, batch_axis=0):
    pred, label = _f64(pred), _f64(label).reshape(np.shape(pred))
    elem = (np.log(np.maximum(pred, epsilon) + 1.0) - np.log(np.maximum(label, epsilon) + 1.0)) ** 2
    return _finish(elem, sample_weight, weight, batch_axis)


def _contracted(elem, axis, sample_weight, weight, batch_axis):
    """A loss with its class ``axis`` kept (size 1): weighting and per-sample
    mean as in ref_softmax_ce; 'none' drops the class axis."""
    elem = _weighted(elem, sample_weight, weight, batch_axis)
    return np.squeeze(elem, axis=axis), _per_sample(elem, batch_axis)


def _onehot_and_label(label, shape, axis):
    axis = axis % len(shape)
    C = shape[axis]
    lab = _f64(label).reshape(shape[:axis] + (1,) + shape[axis + 1:])
    classes = np.arange(C).reshape([C if a == axis else 1 for a in range(len(shape))])
    return (classes == lab).astype(np.float64), lab


def ref_categorical_hinge(pred, label, sample_weight=None, margin=1, axis=-1, weight=None,
                          batch_axis=0):
    """max(0, margin + max_c (1 - y_c) pred_c - sum_c y_c pred_c) (Keras' formula)."""
    pred = _f64(pred)
    axis = axis % pred.ndim
    y = _f64(label).reshape(pred.shape)
    positive = np.sum(y * pred, axis=axis, keepdims=True)
    negative = np.max((1.0 - y) * pred, axis=axis, keepdims=True)
    elem = np.maximum(0.0, negative - positive + margin)
    return _contracted(elem, axis, sample_weight, weight, batch_axis)


def ref_generalized_ce(pred, label, sample_weight=None, q=0.5, axis=-1, from_softmax=False,
                       weight=None, batch_axis=0):
    """(1 - p_y ** q) / q with p = softmax(pred) (Zhang and Sabuncu, 2018)."""
    pred = _f64(pred)
    axis = axis % pred.ndim
    p = pred if from_softmax else np.exp(log_softmax(pred, axis))
    onehot, _ = _onehot_and_label(label, pred.shape, axis)
    p_y = np.sum(onehot * p, axis=axis, keepdims=True)
    elem = (1.0 - p_y ** q) / q
    return _contracted(elem, axis, sample_weight, weight, batch_axis)


def ref_sigmoid_focal(pred, label, sample_weight=None, alpha=0.25, gamma=2.0, from_logits=True,
                      ignore_index=None, label_smoothing=0.0, weight=None, batch_axis=0):
    """RetinaNet's focal loss per element (Lin et al., 2017):
    -alpha_t (1 - p_t)^gamma log p_t for a soft target z, written as
    -alpha_t (1 - p_t)^gamma (z log p + (1 - z) log(1 - p))."""
    pred, label = _f64(pred), _f64(label).reshape(np.shape(pred))
    keep = np.ones_like(label) if ignore_index is None else (label != ignore_index) * 1.0
    z = label * keep
    z = z * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        log_p, log_1mp = -softplus(-pred), -softplus(pred)
    else:
        p = np.clip(pred, KERAS_EPSILON, 1.0 - KERAS_EPSILON)
        log_p, log_1mp = np.log(p), np.log(1.0 - p)
    p, one_minus_p = np.exp(log_p), np.exp(log_1mp)
    ce = -(z * log_p + (1.0 - z) * log_1mp)
    one_minus_pt = z * one_minus_p + (1.0 - z) * p
    alpha_t = 1.0 if alpha is None else alpha * z + (1.0 - alpha) * (1.0 - z)
    elem = alpha_t * one_minus_pt ** gamma * ce * keep
    return _finish(elem, sample_weight, weight, batch_axis)


def ref_softmax_focal(pred, label, sample_weight=None, gamma=2.0, class_weight=None, axis=-1,
                      sparse_label=True, ignore_index=None, label_smoothing=0.0, weight=None,
                      batch_axis=0):
    """-sum_c q_c w_c (1 - p_c)^gamma log p_c, q smoothed towards 1/C."""
    pred = _f64(pred)
    axis = axis % pred.ndim
    C = pred.shape[axis]
    logp = log_softmax(pred, axis)
    cw_shape = [C if a == axis else 1 for a in range(pred.ndim)]
    cw = np.ones(cw_shape) if class_weight is None else _f64(class_weight).reshape(cw_shape)
    if sparse_label:
        q, lab = _onehot_and_label(label, pred.shape, axis)
    else:
        q = _f64(label).reshape(pred.shape)
    q = q * (1.0 - label_smoothing) + label_smoothing / C
    elem = -np.sum(q * cw * (1.0 - np.exp(logp)) ** gamma * logp, axis=axis, keepdims=True)
    if sparse_label and ignore_index is not None:
        elem = np.where(lab == ignore_index, 0.0, elem)
    return _contracted(elem, axis, sample_weight, weight, batch_axis)


def _overlap_sums(pred, label, from_logits, axis, sparse_label, batch_axis):
    """Per sample (and class): sum p*y, sum p, sum y, shape (batch, classes)."""
    pred = _f64(pred)
    b = batch_axis % pred.ndim
    if axis is None:
        p = 1.0 / (1.0 + np.exp(-pred)) if from_logits else pred
        y = _f64(label).reshape(pred.shape)
        p, y = p[..., None], y[..., None]       # one class, last
        c = pred.ndim
    else:
        c = axis % pred.ndim
        p = np.exp(log_softmax(pred, c)) if from_logits else pred
        y = _onehot_and_label(label, pred.shape, c)[0] if sparse_label else _f64(label).reshape(pred.shape)
    p, y = np.moveaxis(p, (b, c), (0, -1)), np.moveaxis(y, (b, c), (0, -1))
    n, k = p.shape[0], p.shape[-1]
    p, y = p.reshape(n, -1, k), y.reshape(n, -1, k)
    return (p * y).sum(1), p.sum(1), y.sum(1)


def _per_sample_overlap(ratio, sample_weight, weight):
    elem = 1.0 - ratio.mean(axis=1)
    if sample_weight is not None:
        elem = elem * _f64(sample_weight).reshape(-1)
    if weight is not None:
        elem = elem * weight
    return elem, elem


def ref_dice(pred, label, sample_weight=None, smooth=1.0, from_logits=False, axis=None,
             sparse_label=False, weight=None, batch_axis=0):
    """1 - mean_c (2 I_c + s) / (P_c + Y_c + s + 1e-7) per sample."""
    inter, psum, ysum = _overlap_sums(pred, label, from_logits, axis, sparse_label, batch_axis)
    ratio = (2.0 * inter + smooth) / (psum + ysum + smooth + KERAS_EPSILON)
    return _per_sample_overlap(ratio, sample_weight, weight)


def ref_tversky(pred, label, sample_weight=None, alpha=0.5, beta=0.5, smooth=1.0,
                from_logits=False, axis=None, sparse_label=False, weight=None, batch_axis=0):
    """1 - mean_c (I + s) / (I + alpha FP + beta FN + s + 1e-7) (Salehi et al., 2017:
    alpha weighs the false positives sum p (1 - y))."""
    inter, psum, ysum = _overlap_sums(pred, label, from_logits, axis, sparse_label, batch_axis)
    fp, fn = psum - inter, ysum - inter
    ratio = (inter + smooth) / (inter + alpha * fp + beta * fn + smooth + KERAS_EPSILON)
    return _per_sample_overlap(ratio, sample_weight, weight)


def _logsumexp_rows(z, mask):
    """log sum_j over mask of exp(z_ij); -inf for an empty row."""
    out = np.full(z.shape[0], -np.inf)
    for i in range(z.shape[0]):
        v = z[i][mask[i]]
        if v.size:
            m = v.max()
            out[i] = m + np.log(np.sum(np.exp(v - m)))
    return out


def ref_circle(pred, label, sample_weight=None, margin=0.25, gamma=256, normalize=True,
               detach_weights=False, weight=None, batch_axis=0):
    """Sun et al. 2020, eq. (4)/(6) per anchor: softplus(lse_n + lse_p), with
    alpha_p = [1 + m - s_p]+, alpha_n = [s_n + m]+, Delta_p = 1 - m,
    Delta_n = m; an anchor without positives or negatives gives 0.
    (``detach_weights`` changes gradients only, not values.)"""
    x = _f64(pred)
    if batch_axis % 2 == 1:
        x = x.T
    if normalize:
        x = x / np.maximum(np.sqrt(np.sum(x * x, axis=1, keepdims=True)), 1e-12)
    s = x @ x.T
    lab = _f64(label).reshape(-1)
    same = lab[:, None] == lab[None, :]
    positive = same & ~np.eye(len(lab), dtype=bool)
    negative = ~same
    m = margin
    lp = -gamma * np.maximum(1.0 + m - s, 0.0) * (s - (1.0 - m))
    ln = gamma * np.maximum(s + m, 0.0) * (s - m)
    total = _logsumexp_rows(lp, positive) + _logsumexp_rows(ln, negative)
    elem = np.where(np.isfinite(total), softplus(np.where(np.isfinite(total), total, 0.0)), 0.0)
    return _per_sample_overlap(1.0 - elem[:, None], sample_weight, weight)
