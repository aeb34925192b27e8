"""Keras 3 (torch backend) as an independent oracle for the losses gluonx takes
from Keras: values and gradients (torch autograd through Keras' own ops) of
every case whose options Keras can express, in every mode, float64.

Keras reduces per sample over the last axis; a case is mapped onto that by
moving its batch axis first and its class axis (if any) last and flattening
the rest, then averaging Keras' per-row values over a sample's rows. Keras'
``sample_weight`` semantics differ, so weights are applied here by hand."""
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "torch":
    pytest.skip("keras was imported with the %s backend" % keras.backend.backend(),
                allow_module_level=True)
KL = keras.losses
TF = torch.nn.functional

from cases import CASES, as_dtype, assert_close, expected  # noqa: E402
from conftest import MODES, run_mode  # noqa: E402
import reference as R  # noqa: E402


def _rows(x, batch_axis, class_axis=None):
    """(B, rows, C) or (B, rows): batch first, class axis last, the rest flattened."""
    nd = x.dim()
    b = batch_axis % nd
    if class_axis is None:
        x = torch.movedim(x, b, 0)
        return x.reshape(x.shape[0], -1, 1)
    c = class_axis % nd
    x = torch.movedim(x, (b, c), (0, nd - 1))
    return x.reshape(x.shape[0], -1, x.shape[-1])


def _class_indices(label, pred_shape, batch_axis, class_axis):
    """Sparse labels laid out as ``_rows`` lays out pred: (B, rows)."""
    nd = len(pred_shape)
    c = class_axis % nd
    shape = pred_shape[:c] + (1,) + pred_shape[c + 1:]
    label = label.reshape(shape)
    return _rows(label, batch_axis, c)[..., 0]


def _per_sample_weight(sw, batch):
    return sw is None or sw.numel() == batch


def _weigh(per_sample, sw, weight):
    if sw is not None:
        per_sample = per_sample * sw.reshape(-1)
    return per_sample if weight is None else per_sample * weight


def _weigh_rows(rows, sw, loss_shape, batch_axis, class_axis, weight):
    """Per-row values (B, rows) weighted by a sample_weight broadcast onto the
    loss (of ``loss_shape``), then averaged per sample."""
    if _per_sample_weight(sw, rows.shape[0]):
        return _weigh(rows.mean(1), sw, weight)
    if sw is not None:
        sw = _rows(sw.expand(loss_shape), batch_axis, class_axis)[..., 0]
        rows = rows * sw
    return _weigh(rows.mean(1), None, weight)


class _epsilon:
    """keras.config.set_epsilon for one call."""

    def __init__(self, value):
        self.value = value

    def __enter__(self):
        self.old = keras.config.epsilon()
        if self.value is not None:
            keras.config.set_epsilon(self.value)

    def __exit__(self, *exc):
        keras.config.set_epsilon(self.old)


def keras_loss(case, x):
    """The per-sample loss of ``case`` through Keras on torch tensors ``x``, or None
    where Keras has no counterpart for its options."""
    kw, name = dict(case.kwargs), case.cls
    x = list(x) + [None] * (4 - len(x))
    pred, label, sw = x[0], x[1], x[2]
    w, ba = kw.pop("weight", None), kw.pop("batch_axis", 0)
    if name in ("LogCoshLoss", "MAPELoss", "MSLELoss", "SigmoidFocalLoss"):
        p, y = _rows(pred, ba)[..., 0], _rows(label.reshape(pred.shape), ba)[..., 0]
        keep = None
        if kw.get("ignore_index") is not None:   # Keras per element, ignored ones zeroed
            keep = (y != kw["ignore_index"]).to(p.dtype)
            y = y * keep
        elementwise = keep is not None or not _per_sample_weight(sw, p.shape[0])
        if elementwise:      # Keras' values per element: rows of one
            p, y = p[..., None], y[..., None]
        if name == "LogCoshLoss":
            out = KL.log_cosh(y, p)
        elif name in ("MAPELoss", "MSLELoss"):
            fn = KL.mean_absolute_percentage_error if name == "MAPELoss" else \
                KL.mean_squared_logarithmic_error
            with _epsilon(kw.get("epsilon")):
                out = fn(y, p)
        else:
            if kw.get("from_logits", True) and p.abs().max() > 15:
                return None   # Keras clips sigmoid(logits) to [1e-7, 1 - 1e-7]
            alpha = kw.get("alpha", 0.25)
            out = KL.binary_focal_crossentropy(
                y, p, apply_class_balancing=alpha is not None,
                alpha=0.25 if alpha is None else alpha, gamma=kw.get("gamma", 2.0),
                from_logits=kw.get("from_logits", True),
                label_smoothing=kw.get("label_smoothing", 0.0))
        if elementwise:
            if keep is not None:
                out = out * keep
            return _weigh_rows(out, sw, tuple(pred.shape), ba, None, w)
        return _weigh(out, sw, w)
    if name in ("CategoricalHingeLoss", "SoftmaxFocalLoss", "GeneralizedCELoss"):
        axis = kw.get("axis", -1)
        p = _rows(pred, ba, axis)
        B, rows, C = p.shape
        if name == "GeneralizedCELoss":
            probs = p if kw.get("from_softmax") else torch.softmax(p, -1)
            idx = _class_indices(label, tuple(pred.shape), ba, axis)
            out = KL.categorical_generalized_cross_entropy(
                idx.reshape(-1), probs.reshape(-1, C), q=kw.get("q", 0.5))
        else:
            keep = None
            if kw.get("sparse_label", True) and name == "SoftmaxFocalLoss":
                idx = _class_indices(label, tuple(pred.shape), ba, axis)
                if kw.get("ignore_index") is not None:   # Keras per row, ignored rows zeroed
                    keep = (idx != kw["ignore_index"]).to(p.dtype)
                    idx = idx * keep
                y = TF.one_hot(idx.long(), C).to(p.dtype)
            else:
                y = _rows(label.reshape(pred.shape), ba, axis)
            if name == "CategoricalHingeLoss":
                if kw.get("margin", 1) != 1:
                    return None   # Keras' margin is 1
                out = KL.categorical_hinge(y.reshape(-1, C), p.reshape(-1, C))
            else:
                cw = kw.get("class_weight")
                out = KL.categorical_focal_crossentropy(
                    y.reshape(-1, C), p.reshape(-1, C),
                    alpha=1.0 if cw is None else list(cw), gamma=kw.get("gamma", 2.0),
                    from_logits=True, label_smoothing=kw.get("label_smoothing", 0.0))
                if keep is not None:
                    out = out * keep.reshape(-1)
        shape = list(pred.shape)
        shape[axis % len(shape)] = 1
        return _weigh_rows(out.reshape(B, rows), sw, tuple(shape), ba, axis, w)
    if name in ("DiceLoss", "TverskyLoss"):
        if kw.get("smooth", 1.0) != 0:
            return None    # Keras has no smoothing term
        axis = kw.get("axis")
        p = _rows(pred, ba, axis)
        if kw.get("from_logits"):
            p = torch.sigmoid(p) if axis is None else torch.softmax(p, -1)
        if kw.get("sparse_label"):
            idx = _class_indices(label, tuple(pred.shape), ba, axis).long()
            y = TF.one_hot(idx, p.shape[-1]).to(p.dtype)
        else:
            y = _rows(label.reshape(pred.shape), ba, axis)
        per_class = []
        for c in range(p.shape[-1]):    # Keras' binary loss on each class's mask
            if name == "DiceLoss":
                per_class.append(KL.dice(y[..., c], p[..., c], axis=(1,)))
            else:   # Keras' code weighs sum((1 - p) y) by alpha: ours is beta
                per_class.append(KL.tversky(y[..., c], p[..., c], alpha=kw.get("beta", 0.5),
                                            beta=kw.get("alpha", 0.5), axis=(1,)))
        return _weigh(torch.stack(per_class, -1).mean(-1), sw, w)
    if name == "CircleLoss":
        if not torch.equal(label, torch.round(label)):
            return None   # Keras casts labels to int32 (0.5 and 0.7 become one class)
        e = pred.T if ba % 2 == 1 else pred
        if kw.get("normalize", True):
            e = TF.normalize(e, dim=1, eps=1e-12)
        elif (e @ e.T).max() > 1:
            return None   # Keras clamps cosine distances at 0 (similarities at 1)
        out = KL.circle(label.reshape(-1), e, gamma=kw.get("gamma", 256),
                        margin=kw.get("margin", 0.25))
        return _weigh(out, sw, w)
    return None


def _t(a, grad=False):
    return None if a is None else torch.tensor(np.asarray(a, dtype=np.float64),
                                               requires_grad=grad)


def _keras_result(case, inputs, head):
    x = [_t(a, k in case.grad) for k, a in enumerate(inputs)]
    out = keras_loss(case, x)
    value = out.detach().numpy().copy()
    out.backward(torch.tensor(np.asarray(head, dtype=np.float64).reshape(out.shape)))
    return value, {k: x[k].grad.numpy() for k in case.grad}


ORACLE = [c for c in CASES if keras_loss(c, [_t(a) for a in c.inputs()]) is not None]


def test_keras_covers_every_loss_taken_from_keras():
    names = {c.cls for c in ORACLE}
    assert names >= {"LogCoshLoss", "MAPELoss", "MSLELoss", "CategoricalHingeLoss",
                     "GeneralizedCELoss", "SigmoidFocalLoss", "SoftmaxFocalLoss", "DiceLoss",
                     "TverskyLoss", "CircleLoss"}, names
    assert len(ORACLE) >= 20, len(ORACLE)


@pytest.mark.parametrize("case", ORACLE, ids=[c.id for c in ORACLE])
def test_reference_agrees_with_keras(case):
    inputs, out, head, grads = expected(case.id, "float64")
    value, kgrads = _keras_result(case, inputs, head)
    # Keras makes some constants in float32 (log 2, epsilon): ~1e-7 relative
    assert_close(out, value, (2e-6, 1e-9), case.id)
    for k in case.grad:
        assert_close(grads[k], kgrads[k], (1e-5, 1e-7), "%s grad[%d]" % (case.id, k))


# every mode for the first case of each loss, imperative and hybridized for the
# others (test_modes runs every case in every mode against the numpy reference,
# which test_reference_agrees_with_keras checks against Keras)
_FIRST = {}
for _case in ORACLE:
    _FIRST.setdefault(_case.cls, _case.id)
ORACLE_RUNS = [pytest.param(case, mode, id="%s-%s" % (case.id, mode))
               for case in ORACLE
               for mode in (MODES if _FIRST[case.cls] == case.id else ("imperative", "hybrid"))
               if not (mode == "symbol" and "float64" in case.symbol_differs)]


@pytest.mark.parametrize("case, mode", ORACLE_RUNS)
def test_gluonx_agrees_with_keras(case, mode, tmp_path):
    inputs, _, head, _ = expected(case.id, "float64")
    value, kgrads = _keras_result(case, inputs, head)
    ours, ograds = run_mode(mode, case.factory(), as_dtype(inputs, "float64"), case.grad,
                            head=head, tmpdir=tmp_path)
    tol = case.tol["float64"]
    assert_close(ours, value, tol, "%s %s" % (case.id, mode))
    for k in case.grad:
        assert_close(ograds[k], kgrads[k], (tol[0] * 5, tol[1] * 5),
                     "%s %s grad[%d]" % (case.id, mode, k))


@pytest.mark.parametrize("case", ORACLE, ids=[c.id for c in ORACLE])
def test_gluonx_float32_agrees_with_keras(case):
    inputs, _, head, _ = expected(case.id, "float32")
    value, kgrads = _keras_result(case, inputs, head)
    ours, ograds = run_mode("hybrid", case.factory(), as_dtype(inputs, "float32"), case.grad,
                            head=head)
    tol = case.tol["float32"]
    assert_close(ours, value, tol, case.id)
    for k in case.grad:
        assert_close(ograds[k], kgrads[k], (tol[0] * 5, tol[1] * 5), "%s grad[%d]" % (case.id, k))


# ------------------------------------------------------------- circle: detached weights
def _circle_torch(emb, label, margin, gamma, detach):
    """Sun et al. 2020 per anchor, written in torch (alpha optionally detached)."""
    e = TF.normalize(emb, dim=1, eps=1e-12)
    s = e @ e.T
    same = label[:, None] == label[None, :]
    pos = same & ~torch.eye(len(label), dtype=torch.bool)
    neg = ~same
    fixed = s.detach() if detach else s
    lp = -gamma * torch.relu(1 + margin - fixed) * (s - 1 + margin)
    ln = gamma * torch.relu(fixed + margin) * (s - margin)
    inf = torch.tensor(float("-inf"), dtype=s.dtype)
    total = torch.logsumexp(torch.where(pos, lp, inf), 1) + \
        torch.logsumexp(torch.where(neg, ln, inf), 1)
    ok = torch.isfinite(total)
    return torch.where(ok, TF.softplus(torch.where(ok, total, torch.zeros_like(total))),
                       torch.zeros_like(total))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("detach", [False, True])
def test_circle_detach_weights_against_torch(detach, mode, tmp_path):
    """detach_weights=True: the authors' gradient (alpha constant); False: Keras'."""
    rng = np.random.RandomState(7)
    emb = rng.standard_normal((8, 5))
    label = np.array([0., 0., 1., 1., 1., 2., 2., 3.])
    head = rng.uniform(0.5, 1.5, size=8)
    x = _t(emb, True)
    ref = _circle_torch(x, torch.tensor(label), 0.3, 48.0, detach)
    ref.backward(torch.tensor(head))
    ours, grads = run_mode(mode, lambda: __import__("gluonx").loss.CircleLoss(
        margin=0.3, gamma=48, detach_weights=detach), [emb, label], (0,), head=head,
        tmpdir=tmp_path)
    assert_close(ours, ref.detach().numpy(), (1e-6, 1e-8))
    assert_close(grads[0], x.grad.numpy(), (1e-5, 1e-7))
    # the two conventions have the same values but different gradients
    other = _t(emb, True)
    _circle_torch(other, torch.tensor(label), 0.3, 48.0, not detach).backward(
        torch.tensor(head))
    assert not np.allclose(grads[0], other.grad.numpy(), rtol=1e-3)
    assert_close(ours, R.ref_circle(emb, label, margin=0.3, gamma=48)[1], (1e-6, 1e-8))
