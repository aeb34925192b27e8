"""PyTorch (torch==2.13.0, CPU) as an independent oracle: gluonx values and
gradients against torch.nn.functional, float64, for every case torch can express.
The numpy references are checked against torch here too."""
import numpy as np
import pytest

from cases import CASES, as_dtype, assert_close, expected
from conftest import MODES, run_mode

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _per_sample(elem, batch_axis, agg="mean"):
    axes = [a for a in range(elem.dim()) if a != batch_axis % elem.dim()]
    if not axes:
        return elem
    return elem.mean(dim=axes) if agg == "mean" else elem.sum(dim=axes)


def _weigh(elem, sw, weight, batch_axis=0):
    if sw is not None:
        try:
            fits = torch.broadcast_shapes(sw.shape, elem.shape) == elem.shape
        except RuntimeError:
            fits = False
        if not fits:
            shape = [1] * elem.dim()
            shape[batch_axis] = -1
            sw = sw.reshape(shape)
        elem = elem * sw
    return elem if weight is None else elem * weight


def _t(a, grad=False):
    if a is None:
        return None
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def torch_loss(case, x):
    """The per-sample loss of ``case`` on torch tensors ``x`` (call order)."""
    kw, name = case.kwargs, case.cls
    x = list(x) + [None] * (5 - len(x))
    if name not in ("SoftmaxCELoss", "SoftmaxCrossEntropyLoss", "CTCLoss", "CosineEmbeddingLoss",
                    "SDMLLoss", "NLLLoss", "MultiMarginLoss", "MultiLabelMarginLoss") \
            and x[1] is not None and x[1].numel() == x[0].numel():
        x[1] = x[1].reshape(x[0].shape)   # mxnet: label reshaped like pred
    w = kw.get("weight")
    ba = kw.get("batch_axis", 0)
    if name == "L2Loss":
        e = 0.5 * TF.mse_loss(x[0], x[1].reshape(x[0].shape), reduction="none")
        return _per_sample(_weigh(e, x[2], 1.0 if w is None else w, ba), ba)
    if name == "L1Loss":
        return _per_sample(_weigh(TF.l1_loss(x[0], x[1], reduction="none"), x[2], w, ba), ba)
    if name == "HuberLoss":
        e = TF.smooth_l1_loss(x[0], x[1], reduction="none", beta=kw.get("rho", 1))
        return _per_sample(_weigh(e, x[2], w, ba), ba)
    if name == "PoissonNLLLoss":
        e = TF.poisson_nll_loss(x[0], x[1], log_input=kw.get("from_logits", True),
                                full=kw.get("compute_full", False),
                                eps=kw.get("epsilon", 1e-8), reduction="none")
        return _per_sample(_weigh(e, x[2], w, ba), ba)
    if name in ("SigmoidBCELoss", "SigmoidBinaryCrossEntropyLoss"):
        return _per_sample(_weigh(torch_sigmoid_bce(x[0], x[1], kw, x[3]), x[2], w, ba), ba)
    if name in ("SoftmaxCELoss", "SoftmaxCrossEntropyLoss"):
        e, keep = torch_softmax_ce(x[0], x[1], kw, x[3])
        axis = kw.get("axis", -1) % x[0].dim()
        e = _weigh(e.unsqueeze(axis), x[2], w, ba)  # class axis kept (size 1) as in mxnet
        if keep is None:
            return _per_sample(e, ba)
        axes = [a for a in range(e.dim()) if a != ba % e.dim()]
        count = keep.unsqueeze(axis).double().expand(e.shape).sum(dim=axes)
        return torch.where(count > 0, e.sum(dim=axes) / count.clamp(min=1), 0 * count)
    if name == "LogisticLoss":
        y = x[1] if kw.get("label_format", "signed") == "signed" else 2 * x[1] - 1
        return _per_sample(_weigh(TF.soft_margin_loss(x[0], y, reduction="none"), x[2], w, ba),
                           ba)
    if name == "KLDivLoss":
        logq = x[0] if kw.get("from_logits", True) else TF.log_softmax(x[0], kw.get("axis", -1))
        e = TF.kl_div(logq, x[1], reduction="none", log_target=kw.get("log_target", False))
        return _per_sample(_weigh(e, x[2], w, ba), ba, "sum")
    if name == "CosineEmbeddingLoss":
        e = TF.cosine_embedding_loss(x[0], x[1], x[2], margin=kw.get("margin", 0),
                                     reduction="none")
        return _weigh(e, x[3], w)
    if name == "SDMLLoss":
        n = x[0].shape[0]
        s = kw.get("smoothing_parameter", 0.3)
        dist = ((x[0][:, None, :] - x[1][None, :, :]) ** 2).sum(-1)
        eye = torch.eye(n, dtype=torch.float64)
        target = eye * (1 - s) + (1 - eye) * s / (n - 1)
        e = TF.kl_div(TF.log_softmax(-dist, 1), target, reduction="none").sum(1)
        return _weigh(e, x[2], kw.get("weight", 1.0))
    if name == "CTCLoss":
        pred, label = x[0], x[1]
        if kw.get("layout", "NTC") == "NTC":
            pred = pred.transpose(0, 1)
        if kw.get("label_layout", "NT") == "TN":
            label = label.T
        T, N, C = pred.shape
        first = kw.get("blank_label", "last") == "first"
        lengths = x[3] if x[3] is not None else (label >= (1 if first else 0)).sum(1)
        frames = x[2] if x[2] is not None else torch.full((N,), T)
        e = TF.ctc_loss(TF.log_softmax(pred, -1), label.clamp(min=0).long(), frames.long(),
                        lengths.long(), blank=0 if first else C - 1, reduction="none",
                        zero_infinity=_ZERO_INF[0] or kw.get("zero_infinity", False))
        return _weigh(e, x[4], w)
    cw = kw.get("class_weight")
    cw = None if cw is None else _t(cw)
    if name == "MSELoss":
        return _per_sample(_weigh(TF.mse_loss(x[0], x[1], reduction="none"), x[2], w, ba), ba)
    if name == "SmoothL1Loss":
        e = TF.smooth_l1_loss(x[0], x[1], reduction="none", beta=kw.get("beta", 1.0))
        return _per_sample(_weigh(e, x[2], w, ba), ba)
    if name == "GaussianNLLLoss":
        var = x[2]
        if var.shape != x[0].shape and var.shape != x[0].shape[:-1] and \
                var.shape[:-1] != x[0].shape[:-1]:
            var = torch.broadcast_to(var, x[0].shape)  # (one per column: torch broadcasts none)
        e = TF.gaussian_nll_loss(x[0], x[1], var, full=kw.get("full", False),
                                 eps=kw.get("eps", 1e-6), reduction="none")
        return _per_sample(_weigh(e, x[3], w, ba), ba)
    if name == "NLLLoss":
        axis = kw.get("axis", -1) % x[0].dim()
        label = x[1].reshape(x[0].shape[:axis] + x[0].shape[axis + 1:]).long()
        ii = kw.get("ignore_index")
        e = TF.nll_loss(torch.movedim(x[0], axis, 1), label, weight=cw, reduction="none",
                        ignore_index=-100 if ii is None else ii)
        return _per_sample(_weigh(e.unsqueeze(axis), x[2], w, ba), ba)
    if name == "MultiLabelSoftMarginLoss":
        e = TF.multilabel_soft_margin_loss(x[0], x[1], weight=cw, reduction="none")
        return _weigh(e, None if x[2] is None else x[2].reshape(-1), w)
    if name == "MultiMarginLoss":
        e = TF.multi_margin_loss(x[0], x[1].reshape(-1).long(), p=kw.get("p", 1),
                                 margin=kw.get("margin", 1.0), weight=cw, reduction="none")
        return _weigh(e, x[2], w)
    if name == "MultiLabelMarginLoss":
        return _weigh(TF.multilabel_margin_loss(x[0], x[1].long(), reduction="none"), x[2], w)
    if name == "SoftMarginLoss":
        return _per_sample(_weigh(TF.soft_margin_loss(x[0], x[1], reduction="none"), x[2], w,
                                  ba), ba)
    if name == "MarginRankingLoss":
        e = TF.margin_ranking_loss(x[0], x[1], x[2], margin=kw.get("margin", 0.0),
                                   reduction="none")
        return _per_sample(_weigh(e, x[3], w, ba), ba)
    if name == "HingeEmbeddingLoss":
        e = TF.hinge_embedding_loss(x[0], x[1], margin=kw.get("margin", 1.0), reduction="none")
        return _per_sample(_weigh(e, x[2], w, ba), ba)
    if name == "TripletMarginLoss":
        e = TF.triplet_margin_loss(x[0], x[1], x[2], margin=kw.get("margin", 1.0),
                                   p=kw.get("p", 2), eps=kw.get("eps", 1e-6),
                                   swap=kw.get("swap", False), reduction="none")
        return _per_sample(_weigh(e, x[3], w, ba), ba)
    if name == "TripletMarginWithDistanceLoss":
        e = TF.triplet_margin_with_distance_loss(x[0], x[1], x[2], margin=kw.get("margin", 1.0),
                                                 swap=kw.get("swap", False), reduction="none")
        return _weigh(e, x[3], w)
    return None   # torch has no counterpart (hinge, squared hinge, triplet)


_ZERO_INF = [False]


def torch_sigmoid_bce(pred, label, kw, pos_weight=None):
    """The elementwise sigmoid BCE of gluonx's options, in torch: torch's
    binary_cross_entropy(_with_logits) on the smoothed label z (1 - s) + s / 2;
    pos_weight: the call input, else the constructor's."""
    eps = kw.get("label_smoothing", 0.0)
    label = label * (1 - eps) + eps / 2
    if pos_weight is None and kw.get("pos_weight") is not None:
        pos_weight = _t(kw["pos_weight"])
    if not kw.get("from_sigmoid"):
        return TF.binary_cross_entropy_with_logits(pred, label, reduction="none",
                                                   pos_weight=pos_weight)
    if pos_weight is None:
        return TF.binary_cross_entropy(pred, label, reduction="none")
    # torch has no pos_weight on probabilities: the definition, on torch.log
    return -(pos_weight * label * torch.log(pred) + (1 - label) * torch.log1p(-pred))


def length_mask(shape, batch_axis, time_axis, valid_length):
    """bool tensor of ``shape``: True where the step along time_axis < valid_length."""
    view = [1] * len(shape)
    view[time_axis] = shape[time_axis]
    steps = torch.arange(shape[time_axis]).reshape(view)
    view = [1] * len(shape)
    view[batch_axis] = -1
    return (steps < valid_length.reshape(view)).expand(shape)


def torch_softmax_ce(pred, label, kw, valid_length=None):
    """torch's cross_entropy (nll_loss for from_logits) with gluonx's options,
    class axis moved to 1: returns (elementwise loss without the class axis,
    mask of the positions kept, or None when nothing is masked). ignore_index
    and valid_length both become torch's ignore_index on sparse labels."""
    axis = kw.get("axis", -1) % pred.dim()
    batch_axis = kw.get("batch_axis", 0) % pred.dim()
    moved = torch.movedim(pred, axis, 1)
    cw = None if kw.get("class_weight") is None else _t(kw["class_weight"])
    eps = kw.get("label_smoothing", 0.0)
    shape = pred.shape[:axis] + pred.shape[axis + 1:]
    keep = None
    if valid_length is not None:
        time = [a for a in range(3) if a not in (batch_axis, axis)][0]
        keep = length_mask(shape, batch_axis - (batch_axis > axis), time - (time > axis),
                           valid_length)
    if not kw.get("sparse_label", True):
        e = TF.cross_entropy(moved, torch.movedim(label, axis, 1), weight=cw,
                             label_smoothing=eps, reduction="none")
        return (e if keep is None else torch.where(keep, e, 0 * e)), keep
    target = label.reshape(shape).long()
    if kw.get("ignore_index") is not None:
        ignored = target != kw["ignore_index"]
        keep = ignored if keep is None else keep & ignored
    if keep is not None:
        target = torch.where(keep, target, torch.full_like(target, -100))
    if kw.get("from_logits"):
        return TF.nll_loss(moved, target, weight=cw, reduction="none"), keep
    return TF.cross_entropy(moved, target, weight=cw, label_smoothing=eps,
                            reduction="none"), keep


def _torch_result(case, inputs, head):
    x = [_t(a, k in case.grad) for k, a in enumerate(inputs)]
    _ZERO_INF[0] = False
    out = torch_loss(case, x)
    if out is None:
        return None
    value = out.detach().numpy().copy()
    if case.cls == "CTCLoss":   # torch: an infeasible sample's gradient is zeroed this way
        x = [_t(a, k in case.grad) for k, a in enumerate(inputs)]
        _ZERO_INF[0] = True
        out = torch_loss(case, x)
    out.backward(torch.tensor(np.asarray(head, dtype=np.float64).reshape(out.shape)))
    return value, {k: x[k].grad.numpy() for k in case.grad}


ORACLE = [c for c in CASES if torch_loss(c, [_t(a) for a in c.inputs()]) is not None]


@pytest.mark.parametrize("case", ORACLE, ids=[c.id for c in ORACLE])
def test_reference_agrees_with_torch(case):
    inputs, out, head, grads = expected(case.id, "float64")
    value, tgrads = _torch_result(case, inputs, head)
    assert_close(out, value, (1e-7, 1e-9), case.id)
    for k in case.grad:
        assert_close(grads[k], tgrads[k], (1e-5, 1e-7), "%s grad[%d]" % (case.id, k))


# mx.sym follows MXNet's broadcasting rule where a case relies on more
# (Case.symbol_differs); test_modes checks that it fails loudly there.
ORACLE_RUNS = [pytest.param(case, mode, id="%s-%s" % (case.id, mode))
               for case in ORACLE for mode in MODES
               if not (mode == "symbol" and "float64" in case.symbol_differs)]


@pytest.mark.parametrize("case, mode", ORACLE_RUNS)
def test_gluonx_agrees_with_torch(case, mode, kernels, tmp_path):
    inputs, _, head, _ = expected(case.id, "float64")
    value, tgrads = _torch_result(case, inputs, head)
    ours, ograds = run_mode(mode, case.factory(), as_dtype(inputs, "float64"), case.grad,
                            head=head, tmpdir=tmp_path)
    tol = case.tol["float64"]
    assert_close(ours, value, tol, "%s %s" % (case.id, mode))
    for k in case.grad:
        assert_close(ograds[k], tgrads[k], (tol[0] * 5, tol[1] * 5),
                     "%s %s grad[%d]" % (case.id, mode, k))
