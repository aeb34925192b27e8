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
        pw = x[3]
        if kw.get("from_sigmoid"):
            if pw is not None:
                return None
            e = TF.binary_cross_entropy(x[0], x[1], reduction="none")
        else:
            e = TF.binary_cross_entropy_with_logits(x[0], x[1], reduction="none",
                                                    pos_weight=pw)
        return _per_sample(_weigh(e, x[2], w, ba), ba)
    if name in ("SoftmaxCELoss", "SoftmaxCrossEntropyLoss"):
        axis = kw.get("axis", -1) % x[0].dim()
        pred = torch.movedim(x[0], axis, 1)
        if kw.get("sparse_label", True):   # label: pred's shape without the class axis
            x[1] = x[1].reshape(x[0].shape[:axis] + x[0].shape[axis + 1:])
        if not kw.get("sparse_label", True):
            target = torch.movedim(x[1], axis, 1)
            e = TF.cross_entropy(pred, target, reduction="none")
        elif kw.get("from_logits"):
            e = TF.nll_loss(pred, x[1].long(), reduction="none")
        else:
            cw = kw.get("class_weight")
            e = TF.cross_entropy(pred, x[1].long(), reduction="none",
                                 weight=None if cw is None else _t(cw),
                                 ignore_index=kw.get("ignore_index") or -100,
                                 label_smoothing=kw.get("label_smoothing", 0.0))
        e = e.unsqueeze(axis)   # class axis kept (size 1) for weighting as in mxnet
        return _per_sample(_weigh(e, x[2], w, ba), ba)
    if name == "LogisticLoss":
        y = x[1] if kw.get("label_format", "signed") == "signed" else 2 * x[1] - 1
        return _per_sample(_weigh(TF.soft_margin_loss(x[0], y, reduction="none"), x[2], w, ba),
                           ba)
    if name == "KLDivLoss":
        logq = x[0] if kw.get("from_logits", True) else TF.log_softmax(x[0], kw.get("axis", -1))
        e = TF.kl_div(logq, x[1], reduction="none")
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
        lengths = x[3] if x[3] is not None else (label >= 0).sum(1)
        frames = x[2] if x[2] is not None else torch.full((N,), T)
        e = TF.ctc_loss(TF.log_softmax(pred, -1), label.clamp(min=0).long(), frames.long(),
                        lengths.long(), blank=C - 1, reduction="none",
                        zero_infinity=_ZERO_INF[0])
        return _weigh(e, x[4], w)
    cw = kw.get("class_weight")
    cw = None if cw is None else _t(cw)
    if name == "MSELoss":
        return _per_sample(_weigh(TF.mse_loss(x[0], x[1], reduction="none"), x[2], w, ba), ba)
    if name == "SmoothL1Loss":
        e = TF.smooth_l1_loss(x[0], x[1], reduction="none", beta=kw.get("beta", 1.0))
        return _per_sample(_weigh(e, x[2], w, ba), ba)
    if name == "GaussianNLLLoss":
        e = TF.gaussian_nll_loss(x[0], x[1], x[2], full=kw.get("full", False),
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
