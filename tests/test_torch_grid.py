"""The Gluon-style losses that came from torch.nn (issue 10) against torch==2.13.0
itself, value and gradient, float64, imperative and hybridized, over the full grid
of each loss's options (``grid``: a subset off CI's main environment).

gluonx's default output is one value per sample, the mean over the non-batch
axes; torch's counterpart below is ``torch.nn.functional``'s elementwise loss
averaged the same way (``test_torch_oracle.torch_loss``), so the two are the
same computation, not the same code.
"""
import itertools
import math

import numpy as np
import pytest

import gluonx.loss as L
import mxnet as mx

from cases import Case, as_dtype, assert_close, head_for
from conftest import grid, run_mode

torch = pytest.importorskip("torch")
TF = torch.nn.functional
from test_torch_oracle import _t, torch_loss  # noqa: E402  (needs torch)

B, D, C = 5, 4, 6
CW = [0.5, 1.0, 2.0, 0.25, 1.5, 3.0]


def _n(r, *shape, scale=1.0):
    return r.standard_normal(shape) * scale


def _u(r, lo, hi, *shape):
    return r.uniform(lo, hi, size=shape)


def _sign(r, *shape):
    return np.where(r.uniform(size=shape) < 0.5, -1.0, 1.0)


def _log_probs(r, *shape, axis=-1):
    x = r.standard_normal(shape)
    return torch.log_softmax(torch.tensor(x), dim=axis % len(shape)).numpy()


def _multilabel_targets(r, n, c):
    t = np.full((n, c), -1.0)
    for i in range(n):
        k = r.randint(0, c + 1)
        t[i, :k] = r.permutation(c)[:k]
        if k < c:   # junk after the first -1 must be ignored
            t[i, k + 1:] = r.randint(-1, c, size=max(0, c - k - 1))
    return t


def _combos(**axes):
    keys = list(axes)
    return [dict(zip(keys, values)) for values in itertools.product(*(axes[k] for k in keys))]


def _drop_none(kw):
    return {k: v for k, v in kw.items() if v is not None}


# (class, constructor options, input maker (numpy, call order), differentiated inputs)
ROWS = []


def rows(cls, combos, make, grad=(0,)):
    for kw in combos:
        kw = _drop_none(kw)
        ROWS.append((cls, kw, make, grad))


rows("MSELoss", _combos(weight=[None, 2.0], batch_axis=[0, 1]),
     lambda r: [_n(r, B, D), _n(r, B, D), _u(r, 0, 2, B, D)], (0, 1))
rows("SmoothL1Loss", _combos(beta=[0.0, 0.25, 1.0, 3.0], weight=[None, 0.5]),
     lambda r: [_n(r, B, D, scale=2), _n(r, B, D)], (0, 1))


def _gaussian(var_shape):
    shapes = {"same": (B, D), "B1": (B, 1), "no-last-axis": (B,)}
    return lambda r: [_n(r, B, D), _n(r, B, D), _u(r, 0.01, 1.5, *shapes[var_shape])]


for var_shape in ("same", "B1", "no-last-axis"):
    rows("GaussianNLLLoss", _combos(full=[False, True], eps=[None, 0.3], var=[var_shape]),
         _gaussian(var_shape), (0, 1, 2))

for axis in (-1, 1):
    shape = (B, C) if axis == -1 else (B, C, 3)
    make = (lambda shape, axis: lambda r: [
        _log_probs(r, *shape, axis=axis),
        np.where(r.uniform(size=shape[:1] + shape[2:]) < 0.3, 2.0,
                 r.randint(0, C, size=shape[:1] + shape[2:])).astype(np.float64)])(shape, axis)
    rows("NLLLoss", _combos(axis=[axis], class_weight=[None, CW], ignore_index=[None, 2],
                            weight=[None, 0.5]), make)
rows("MultiLabelSoftMarginLoss", _combos(class_weight=[None, CW[:D]], weight=[None, 0.5]),
     lambda r: [_n(r, B, D, scale=2), (r.uniform(size=(B, D)) < 0.5).astype(np.float64)],
     (0, 1))
rows("MultiLabelSoftMarginLoss", _combos(class_weight=[CW[:D]]),
     lambda r: [_n(r, B, D, scale=2), _u(r, 0, 1, B, D)], (0, 1))
rows("MultiMarginLoss", _combos(p=[1, 2], margin=[0.5, 1.0, 2.0], class_weight=[None, CW]),
     lambda r: [_n(r, B, C), r.randint(0, C, size=B).astype(np.float64)])
rows("MultiLabelMarginLoss", _combos(weight=[None, 2.0]),
     lambda r: [_n(r, B, C), _multilabel_targets(r, B, C)])
rows("SoftMarginLoss", _combos(weight=[None, 0.3], batch_axis=[0, 1]),
     lambda r: [_n(r, B, D, scale=2), _sign(r, B, D)])
rows("MarginRankingLoss", _combos(margin=[0.0, 0.5, -0.2], weight=[None, 2.0]),
     lambda r: [_n(r, B, D), _n(r, B, D), _sign(r, B, D)], (0, 1))
rows("HingeEmbeddingLoss", _combos(margin=[0.5, 1.0, 2.0], weight=[None, 0.5]),
     lambda r: [_u(r, 0, 2.5, B, D), _sign(r, B, D)])
rows("TripletMarginLoss", _combos(p=[1, 2, 3, math.inf], swap=[False, True], eps=[None, 0.1],
                                  margin=[0.5, 2.0]),
     lambda r: [_n(r, B, D), _n(r, B, D), _n(r, B, D)], (0, 1, 2))


class _CosineDistance(mx.gluon.HybridBlock):
    def hybrid_forward(self, F, a, b):  # pylint: disable=arguments-differ
        dot = F.sum(a * b, axis=-1)
        return 1 - dot / F.sqrt(F.sum(a * a, axis=-1) * F.sum(b * b, axis=-1))


# gluonx distance -> torch distance
DISTANCES = {
    "default": (None, None),
    "l1-on-F": (lambda F, a, b: F.sum(F.abs(a - b), axis=-1),
                lambda a, b: (a - b).abs().sum(-1)),
    "squared-methods": (lambda a, b: (a - b).square().sum(axis=-1),
                        lambda a, b: ((a - b) ** 2).sum(-1)),
    "cosine-block": (_CosineDistance, lambda a, b: 1 - TF.cosine_similarity(a, b, dim=-1,
                                                                            eps=0.0)),
}
for name in DISTANCES:
    rows("TripletMarginWithDistanceLoss",
         _combos(distance_function=[name], swap=[False, True], margin=[1.0, 0.3]),
         lambda r: [_n(r, B, D), _n(r, B, D), _n(r, B, D)], (0, 1, 2))

REDUCTIONS = ("sample", "mean", "sum")
PARAMS = [pytest.param(cls, kw, make, g, red, id="%s-%s-%s" % (cls, "-".join(
    "%s=%s" % (k, (v if not isinstance(v, list) else "w")) for k, v in sorted(kw.items())), red))
    for (cls, kw, make, g) in ROWS for red in REDUCTIONS]


def _gluonx_kwargs(cls, kw):
    kw = dict(kw)
    kw.pop("var", None)
    if cls == "TripletMarginWithDistanceLoss":
        fn = DISTANCES[kw.pop("distance_function")][0]
        kw["distance_function"] = fn() if isinstance(fn, type) else fn
    return kw


def _torch_per_sample(cls, kw, x):
    if cls == "TripletMarginWithDistanceLoss":
        fn = DISTANCES[kw["distance_function"]][1]
        e = TF.triplet_margin_with_distance_loss(x[0], x[1], x[2], distance_function=fn,
                                                 margin=kw.get("margin", 1.0),
                                                 swap=kw.get("swap", False), reduction="none")
        return e * kw.get("weight", 1.0)
    kw = {k: v for k, v in kw.items() if k != "var"}
    return torch_loss(Case("grid", cls, kw, None, None), x)


def _item2_reduction(cls, kw, reduction):
    """The reductions of issue 10's item 2 (ignored positions left out of every
    mean, PyTorch's class-weighted 'mean'): torch's computation, or None where
    they do not apply."""
    if cls != "NLLLoss" or not (kw.get("ignore_index") is not None or
                                "class_weight" in kw):
        return None
    if reduction == "mean":
        return "mean"
    if reduction in ("sample", "sum") and kw.get("ignore_index") is not None and kw["axis"] == 1:
        return reduction   # the per-sample means over valid positions (and their sum)
    return None


def _torch_item2(kw, x, reduction):
    axis = kw["axis"] % x[0].dim()
    ii = kw.get("ignore_index")
    ii = -100 if ii is None else ii
    cw = _t(kw["class_weight"]) if "class_weight" in kw else None
    label = x[1].long()
    w = kw.get("weight", 1.0)
    if reduction == "mean":
        return TF.nll_loss(torch.movedim(x[0], axis, 1), label, weight=cw, ignore_index=ii) * w
    e = TF.nll_loss(torch.movedim(x[0], axis, 1), label, weight=cw, ignore_index=ii,
                    reduction="none")
    valid = (label != ii).double().reshape(e.shape[0], -1).sum(1)
    per_sample = e.reshape(e.shape[0], -1).sum(1) / valid.clamp(min=1) * w
    return per_sample.sum().reshape(1) if reduction == "sum" else per_sample


def _gluonx_supports(factory, inputs):
    """Whether this gluonx accepts the combination (issue 10's item 2 adds
    class weights on any axis)."""
    try:
        factory()(*[mx.nd.array(a, dtype="float64") for a in inputs if a is not None]) \
            .asnumpy()
        return True
    except L.LossInputError as err:
        if "class axis last" in str(err):
            return False
        raise


def _item2_merged():
    """True once softmax CE leaves ignored positions out of its means (item 2)."""
    pred = mx.nd.array(np.log([[[0.5, 0.25], [0.5, 0.5], [0.25, 0.5]]]).transpose(0, 2, 1))
    out = L.NLLLoss(axis=1, ignore_index=1)(pred, mx.nd.array([[0, 1, 1]])).asscalar()
    return abs(out - math.log(2)) < 1e-5


@pytest.mark.parametrize("mode", ["imperative", "static"])
@pytest.mark.parametrize("cls, kw, make, g, reduction", grid(PARAMS))
def test_matches_torch(cls, kw, make, g, reduction, mode):
    inputs = make(np.random.RandomState(len(kw)))
    x = [_t(a, k in g) for k, a in enumerate(inputs)]
    item2 = _item2_reduction(cls, kw, reduction)
    if item2 is not None:
        if not _item2_merged():
            pytest.skip("needs issue 10 item 2 (ignore_index left out of every mean, "
                        "class-weighted 'mean' as PyTorch), not merged yet")
        out = _torch_item2(kw, x, item2)
    else:
        out = _torch_per_sample(cls, kw, x)
        if reduction == "mean":
            out = out.mean().reshape(1)
        elif reduction == "sum":
            out = out.sum().reshape(1)
    out = out.reshape(-1) if out.dim() == 0 else out
    head = head_for(tuple(out.shape))
    out.backward(torch.tensor(head))
    expected = out.detach().numpy()
    options = _gluonx_kwargs(cls, kw)
    if reduction != "sample":
        options["reduction"] = reduction
    factory = lambda: getattr(L, cls)(**options)  # noqa: E731
    if not _gluonx_supports(factory, inputs):
        pytest.skip("class_weight on a class axis other than the last needs issue 10 item 2")
    value, grads = run_mode(mode, factory, as_dtype(inputs, "float64"), g, head=head)
    assert_close(value, expected, (1e-6, 1e-8), "%s %s value" % (cls, kw))
    for k in g:
        assert_close(grads[k], x[k].grad.numpy(), (1e-5, 1e-7), "%s %s grad[%d]" % (cls, kw, k))


@pytest.mark.parametrize("mode", ["hybrid", "export"])
def test_distance_block_in_cached_graph_and_export(mode, tmp_path):
    """A HybridBlock distance goes into the loss's cached graph and its export."""
    r = np.random.RandomState(3)
    inputs = [_n(r, B, D), _n(r, B, D), _n(r, B, D)]
    x = [_t(a, True) for a in inputs]
    out = TF.triplet_margin_with_distance_loss(*x, distance_function=DISTANCES[
        "cosine-block"][1], reduction="none")
    out.backward(torch.ones_like(out))
    value, grads = run_mode(mode, lambda: L.TripletMarginWithDistanceLoss(
        distance_function=_CosineDistance()), inputs, (0, 1, 2), tmpdir=tmp_path)
    assert_close(value, out.detach().numpy(), (1e-5, 1e-6), mode)
    for k in range(3):
        assert_close(grads[k], x[k].grad.numpy(), (1e-4, 1e-5), "%s grad[%d]" % (mode, k))


def test_distance_block_with_parameters_trains():
    """A learned distance (a Dense projection) gets gradients through the loss."""
    class Projected(mx.gluon.HybridBlock):
        def __init__(self, **kwargs):
            super(Projected, self).__init__(**kwargs)
            with self.name_scope():
                self.proj = mx.gluon.nn.Dense(3, in_units=D, use_bias=False)

        def hybrid_forward(self, F, a, b):  # pylint: disable=arguments-differ
            return F.sum(F.square(self.proj(a) - self.proj(b)), axis=-1)

    dist = Projected()
    dist.initialize(mx.init.Xavier())
    loss = L.TripletMarginWithDistanceLoss(distance_function=dist)
    loss.hybridize()
    r = np.random.RandomState(4)
    a, p, n = (mx.nd.array(_n(r, B, D)) for _ in range(3))
    with mx.autograd.record():
        out = loss(a, p, n)
    out.backward()
    w = dist.proj.weight
    assert w.name in loss.collect_params()
    assert np.abs(w.grad().asnumpy()).sum() > 0
    wt = torch.tensor(w.data().asnumpy().astype(np.float64), requires_grad=True)
    ta, tp, tn = (torch.tensor(v.asnumpy().astype(np.float64)) for v in (a, p, n))
    ref = TF.triplet_margin_with_distance_loss(
        ta, tp, tn, distance_function=lambda u, v: ((u @ wt.T - v @ wt.T) ** 2).sum(-1),
        reduction="none")
    ref.backward(torch.ones_like(ref))
    assert_close(out.asnumpy(), ref.detach().numpy(), (1e-5, 1e-6))
    assert_close(w.grad().asnumpy(), wt.grad.numpy(), (1e-4, 1e-5))
