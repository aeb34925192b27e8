"""Bad input gets a LossInputError naming the loss, the argument and what was
expected; value checks can be switched off; an error never poisons later calls."""
import re

import numpy as np
import pytest

import gluonx
import gluonx.loss as L
import mxnet as mx

from cases import loss_classes

nd = mx.nd.array
rng = np.random.RandomState(0)
P45 = rng.standard_normal((4, 5))
P46 = rng.standard_normal((4, 6))
CTC_PRED = rng.standard_normal((2, 6, 4))     # N=2, T=6, C=4 (blank = 3)


def E(id, loss, args, cls, arg, value_check=False, kwargs=None):
    """One bad call: ``loss`` (a factory), its args; the message must name
    ``cls`` and ``arg``; ``value_check``: switched off by check_values=False."""
    return pytest.param(loss, args, kwargs or {}, cls, arg, value_check, id=id)


BAD_CALLS = [
    # shapes that neither match nor broadcast
    E("L2-label-shape", L.L2Loss, lambda: [nd(P45), nd(P46)], "L2Loss", "label"),
    E("L1-label-batch", L.L1Loss, lambda: [nd(P45), nd(P45[:3])], "L1Loss", "label"),
    E("Huber-label-shape", L.HuberLoss, lambda: [nd(P45), nd(np.ones((5, 4)))], "HuberLoss",
      "label"),
    E("SigmoidBCE-label-shape", L.SigmoidBCELoss, lambda: [nd(P45), nd(np.ones((4, 3)))],
      "SigmoidBinaryCrossEntropyLoss", "label"),
    E("SigmoidBCE-pos_weight-shape", L.SigmoidBCELoss,
      lambda: [nd(P45), nd(np.ones((4, 5))), None, nd(np.ones((1, 3)))],
      "SigmoidBinaryCrossEntropyLoss", "pos_weight"),
    E("SoftmaxCE-label-shape", L.SoftmaxCELoss, lambda: [nd(P46), nd(np.zeros((3,)))],
      "SoftmaxCrossEntropyLoss", "label"),
    E("SoftmaxCE-dense-label-shape", lambda: L.SoftmaxCELoss(sparse_label=False),
      lambda: [nd(P46), nd(np.ones((4, 5)) / 5)], "SoftmaxCrossEntropyLoss", "label"),
    E("KLDiv-label-shape", L.KLDivLoss, lambda: [nd(P46), nd(np.ones((4, 5)) / 5)],
      "KLDivLoss", "label"),
    E("Hinge-label-shape", L.HingeLoss, lambda: [nd(P45), nd(np.ones((2, 5)))], "HingeLoss",
      "label"),
    E("SquaredHinge-label-shape", L.SquaredHingeLoss, lambda: [nd(P45), nd(np.ones((4, 7)))],
      "SquaredHingeLoss", "label"),
    E("Logistic-label-shape", L.LogisticLoss, lambda: [nd(P45), nd(np.ones((4, 7)))],
      "LogisticLoss", "label"),
    E("PoissonNLL-target-shape", L.PoissonNLLLoss, lambda: [nd(P45), nd(np.ones((4, 6)))],
      "PoissonNLLLoss", "target"),
    E("Triplet-positive-shape", L.TripletLoss, lambda: [nd(P45), nd(P46), nd(P45)],
      "TripletLoss", "positive"),
    E("Triplet-negative-shape", L.TripletLoss, lambda: [nd(P45), nd(P45), nd(P46)],
      "TripletLoss", "negative"),
    E("Cosine-input2-shape", L.CosineEmbeddingLoss,
      lambda: [nd(P45), nd(P46), nd(np.ones(4))], "CosineEmbeddingLoss", "input2"),
    E("Cosine-label-shape", L.CosineEmbeddingLoss,
      lambda: [nd(P45), nd(P45), nd(np.ones(3))], "CosineEmbeddingLoss", "label"),
    E("SDML-x2-shape", L.SDMLLoss, lambda: [nd(P45), nd(P46)], "SDMLLoss", "x2"),
    E("CTC-label-batch", L.CTCLoss, lambda: [nd(CTC_PRED), nd(np.zeros((3, 2)))], "CTCLoss",
      "label"),
    E("CTC-pred-rank", L.CTCLoss, lambda: [nd(P45), nd(np.zeros((4, 2)))], "CTCLoss", "pred"),
    # sample_weight that does not broadcast
    E("L2-sample_weight", L.L2Loss, lambda: [nd(P45), nd(P45), nd(np.ones((3, 1)))], "L2Loss",
      "sample_weight"),
    E("L1-sample_weight-kw", L.L1Loss, lambda: [nd(P45), nd(P45)], "L1Loss", "sample_weight",
      kwargs={"sample_weight": lambda: nd(np.ones((4, 3)))}),
    E("SoftmaxCE-sample_weight", L.SoftmaxCELoss,
      lambda: [nd(P46), nd(np.zeros(4)), nd(np.ones((3, 2)))], "SoftmaxCrossEntropyLoss",
      "sample_weight"),
    E("Triplet-sample_weight", L.TripletLoss,
      lambda: [nd(P45), nd(P45), nd(P45), nd(np.ones(5))], "TripletLoss", "sample_weight"),
    E("CTC-sample_weight", L.CTCLoss,
      lambda: [nd(CTC_PRED), nd(np.zeros((2, 2))), None, None, nd(np.ones(3))], "CTCLoss",
      "sample_weight"),
    # values
    E("SoftmaxCE-label-too-big", L.SoftmaxCELoss, lambda: [nd(P46), nd([0.0, 6.0, 1.0, 2.0])],
      "SoftmaxCrossEntropyLoss", "label", True),
    E("SoftmaxCE-label-negative", L.SoftmaxCELoss, lambda: [nd(P46), nd([0.0, -1.0, 1.0, 2.0])],
      "SoftmaxCrossEntropyLoss", "label", True),
    E("SoftmaxCE-label-axis1-too-big", lambda: L.SoftmaxCELoss(axis=1),
      lambda: [nd(rng.standard_normal((2, 3, 4))), nd(np.full((2, 4), 3.0))],
      "SoftmaxCrossEntropyLoss", "label", True),
    E("CTC-label-is-blank", L.CTCLoss, lambda: [nd(CTC_PRED), nd([[0.0, 3.0], [1.0, -1.0]])],
      "CTCLoss", "label", True),
    E("CTC-pred_lengths-too-long", L.CTCLoss,
      lambda: [nd(CTC_PRED), nd([[0.0, 1.0], [1.0, 2.0]]), nd([6.0, 7.0])], "CTCLoss",
      "pred_lengths", True),
    E("CTC-pred_lengths-negative", L.CTCLoss,
      lambda: [nd(CTC_PRED), nd([[0.0, 1.0], [1.0, 2.0]]), nd([-1.0, 6.0])], "CTCLoss",
      "pred_lengths", True),
    E("CTC-label_lengths-too-long", L.CTCLoss,
      lambda: [nd(CTC_PRED), nd([[0.0, 1.0], [1.0, 2.0]]), None, nd([2.0, 3.0])], "CTCLoss",
      "label_lengths", True),
    E("CTC-label_lengths-negative-kw", L.CTCLoss,
      lambda: [nd(CTC_PRED), nd([[0.0, 1.0], [1.0, 2.0]])], "CTCLoss", "label_lengths", True,
      kwargs={"label_lengths": lambda: nd([-1.0, 2.0])}),
    E("PoissonNLL-negative-rate", lambda: L.PoissonNLLLoss(from_logits=False),
      lambda: [nd(np.abs(P45) * np.where(np.arange(5) == 2, -1, 1)), nd(np.ones((4, 5)))],
      "PoissonNLLLoss", "pred", True),
    # torch.nn's losses, Gluon-style (issue 10)
    E("MSE-label-shape", L.MSELoss, lambda: [nd(P45), nd(P46)], "MSELoss", "label"),
    E("SmoothL1-label-shape", L.SmoothL1Loss, lambda: [nd(P45), nd(np.ones((5, 4)))],
      "SmoothL1Loss", "label"),
    E("GaussianNLL-var-shape", L.GaussianNLLLoss,
      lambda: [nd(P45), nd(P45), nd(np.ones((4, 3)))], "GaussianNLLLoss", "var"),
    E("GaussianNLL-var-negative", L.GaussianNLLLoss,
      lambda: [nd(P45), nd(P45), nd(-np.ones((4, 1)))], "GaussianNLLLoss", "var", True),
    E("NLL-label-shape", L.NLLLoss, lambda: [nd(P46), nd(np.zeros((3,)))], "NLLLoss", "label"),
    E("NLL-label-too-big", L.NLLLoss, lambda: [nd(P46), nd([0.0, 6.0, 1.0, 2.0])], "NLLLoss",
      "label", True),
    E("NLL-class_weight-length", lambda: L.NLLLoss(class_weight=[1.0, 2.0]),
      lambda: [nd(P46), nd([0.0, 1.0, 1.0, 2.0])], "NLLLoss", "class_weight"),
    E("MultiLabelSoftMargin-label-shape", L.MultiLabelSoftMarginLoss,
      lambda: [nd(P45), nd(np.ones((4, 3)))], "MultiLabelSoftMarginLoss", "label"),
    E("MultiLabelSoftMargin-class_weight-length",
      lambda: L.MultiLabelSoftMarginLoss(class_weight=[1.0, 2.0]),
      lambda: [nd(P45), nd(np.ones((4, 5)))], "MultiLabelSoftMarginLoss", "class_weight"),
    E("MultiMargin-pred-rank", L.MultiMarginLoss,
      lambda: [nd(rng.standard_normal((2, 3, 4))), nd(np.zeros(2))], "MultiMarginLoss", "pred"),
    E("MultiMargin-label-shape", L.MultiMarginLoss, lambda: [nd(P45), nd(np.zeros(3))],
      "MultiMarginLoss", "label"),
    E("MultiMargin-label-too-big", L.MultiMarginLoss, lambda: [nd(P45), nd([0.0, 5.0, 1.0, 2.0])],
      "MultiMarginLoss", "label", True),
    E("MultiMargin-label-fraction", L.MultiMarginLoss,
      lambda: [nd(P45), nd([0.0, 0.5, 1.0, 2.0])], "MultiMarginLoss", "label", True),
    E("MultiMargin-class_weight-length", lambda: L.MultiMarginLoss(class_weight=[1.0, 2.0]),
      lambda: [nd(P45), nd([0.0, 1.0, 1.0, 2.0])], "MultiMarginLoss", "class_weight"),
    E("MultiLabelMargin-label-shape", L.MultiLabelMarginLoss,
      lambda: [nd(P45), nd(np.zeros((4, 3)))], "MultiLabelMarginLoss", "label"),
    E("MultiLabelMargin-label-too-big", L.MultiLabelMarginLoss,
      lambda: [nd(P45), nd(np.full((4, 5), 5.0))], "MultiLabelMarginLoss", "label", True),
    E("MultiLabelMargin-label-below-minus-one", L.MultiLabelMarginLoss,
      lambda: [nd(P45), nd(np.full((4, 5), -2.0))], "MultiLabelMarginLoss", "label", True),
    E("SoftMargin-label-shape", L.SoftMarginLoss, lambda: [nd(P45), nd(P46)],
      "SoftMarginLoss", "label"),
    E("MarginRanking-input2-shape", L.MarginRankingLoss,
      lambda: [nd(P45), nd(P46), nd(np.ones((4, 5)))], "MarginRankingLoss", "input2"),
    E("MarginRanking-label-values", L.MarginRankingLoss,
      lambda: [nd(P45), nd(P45), nd(np.zeros((4, 5)))], "MarginRankingLoss", "label", True),
    E("HingeEmbedding-label-values", L.HingeEmbeddingLoss,
      lambda: [nd(P45), nd(np.full((4, 5), 2.0))], "HingeEmbeddingLoss", "label", True),
    E("TripletMargin-negative-shape", L.TripletMarginLoss, lambda: [nd(P45), nd(P45), nd(P46)],
      "TripletMarginLoss", "negative"),
    E("TripletMarginWithDistance-positive-shape", L.TripletMarginWithDistanceLoss,
      lambda: [nd(P45), nd(P46), nd(P45)], "TripletMarginWithDistanceLoss", "positive"),
]


def _call(loss, args, kwargs):
    out = loss(*args(), **{k: v() for k, v in kwargs.items()})
    return out.asnumpy()


def _pattern(cls, arg):
    return re.escape(cls) + r"(?s:.*)" + re.escape(arg)


def _unrelated_call_is_fine():
    out = L.L2Loss()(nd([[1.0, 2.0]]), nd([[0.0, 0.0]])).asnumpy()
    np.testing.assert_allclose(out, [1.25])
    mx.nd.waitall()


@pytest.mark.parametrize("loss,args,kwargs,cls,arg,value_check", BAD_CALLS)
def test_bad_call_raises(loss, args, kwargs, cls, arg, value_check):
    with pytest.raises(L.LossInputError, match=_pattern(cls, arg)):
        _call(loss(), args, kwargs)
    _unrelated_call_is_fine()


@pytest.mark.parametrize("static", [False, True], ids=["hybrid", "static"])
@pytest.mark.parametrize("loss,args,kwargs,cls,arg,value_check", BAD_CALLS)
def test_bad_call_raises_when_hybridized(loss, args, kwargs, cls, arg, value_check, static):
    block = loss()
    block.hybridize(static_alloc=static, static_shape=static)
    with pytest.raises(L.LossInputError, match=_pattern(cls, arg)):
        _call(block, args, kwargs)
    _unrelated_call_is_fine()


@pytest.mark.parametrize("hybridize", [False, True])
def test_error_does_not_poison_the_same_block(hybridize):
    loss = L.SoftmaxCELoss()
    if hybridize:
        loss.hybridize()
    pred = nd(P46)
    with pytest.raises(L.LossInputError):
        loss(pred, nd([0.0, 9.0, 1.0, 2.0])).asnumpy()
    with pytest.raises(L.LossInputError):
        loss(pred, nd(np.zeros(5))).asnumpy()
    out = loss(pred, nd([0.0, 5.0, 1.0, 2.0])).asnumpy()
    import reference as R
    np.testing.assert_allclose(out, R.ref_softmax_ce(P46, np.array([0, 5, 1, 2]))[1], rtol=1e-5)
    _unrelated_call_is_fine()


SAFE_VALUE_CALLS = [p for p in BAD_CALLS if p.id in (
    "SoftmaxCE-label-too-big", "SoftmaxCE-label-negative", "PoissonNLL-negative-rate")]


@pytest.mark.parametrize("loss,args,kwargs,cls,arg,value_check", SAFE_VALUE_CALLS)
def test_check_values_off_skips_value_checks(loss, args, kwargs, cls, arg, value_check,
                                             check_values_off):
    assert gluonx.config.check_values is False
    _call(loss(), args, kwargs)   # no LossInputError; the number is the caller's problem
    _unrelated_call_is_fine()


def test_check_values_off_keeps_shape_checks(check_values_off):
    with pytest.raises(L.LossInputError, match="L2Loss(?s:.*)label"):
        L.L2Loss()(nd(P45), nd(P46)).asnumpy()


def test_check_values_is_on_by_default():
    assert gluonx.config.check_values is True


ALL = [cls.__name__ for cls in loss_classes()]


def _needs_no_arguments(name):
    import inspect
    return all(p.default is not inspect.Parameter.empty or p.kind in (p.VAR_POSITIONAL,
                                                                      p.VAR_KEYWORD)
               for n, p in inspect.signature(getattr(L, name).__init__).parameters.items()
               if n != "self")


@pytest.mark.parametrize("name", [n for n in ALL if _needs_no_arguments(n)])
@pytest.mark.parametrize("bad", ["avg", "Mean", None, "batch"])
def test_unknown_reduction_at_construction(name, bad):
    cls = getattr(L, name)
    with pytest.raises(L.LossInputError, match=_pattern(cls.__name__, "reduction")):
        cls(reduction=bad)


@pytest.mark.parametrize("kwargs,arg", [({"layout": "NCT"}, "layout"),
                                        ({"layout": "ntc"}, "layout"),
                                        ({"label_layout": "NN"}, "label_layout"),
                                        ({"label_layout": "TNC"}, "label_layout")])
def test_unknown_ctc_layout_at_construction(kwargs, arg):
    with pytest.raises(L.LossInputError, match=_pattern("CTCLoss", arg)):
        L.CTCLoss(**kwargs)


def test_unknown_label_format_at_construction():
    with pytest.raises(L.LossInputError, match=_pattern("LogisticLoss", "label_format")):
        L.LogisticLoss(label_format="sign")


def test_error_is_catchable_as_value_error():
    with pytest.raises(ValueError):
        L.L2Loss()(nd(P45), nd(P46))


@pytest.mark.parametrize("dtype", ["float16", "float64"])
def test_ctc_other_dtypes_do_not_poison_later_calls(dtype):
    """1.9.1 fails asynchronously on float16/float64 CTC, inside a later call."""
    out = L.CTCLoss()(mx.nd.array(CTC_PRED, dtype=dtype), nd([[0.0, 1.0], [2.0, -1.0]]))
    assert np.all(np.isfinite(out.asnumpy()))
    _unrelated_call_is_fine()


@pytest.mark.parametrize("static", [False, True], ids=["hybrid", "static"])
def test_bad_call_after_a_cached_graph(static):
    """A graph cached by a good call does not swallow a later bad call."""
    import reference as R
    loss = L.CTCLoss()
    loss.hybridize(static_alloc=static, static_shape=static)
    good = [nd(CTC_PRED), nd([[0.0, 1.0], [1.0, 2.0]])]
    ref = R.ref_ctc(CTC_PRED, np.array([[0.0, 1.0], [1.0, 2.0]]))[1]
    np.testing.assert_allclose(loss(*good).asnumpy(), ref, rtol=1e-4)
    with pytest.raises(L.LossInputError, match="CTCLoss(?s:.*)label"):
        loss(nd(CTC_PRED), nd([[0.0, 3.0], [1.0, 2.0]])).asnumpy()
    with pytest.raises(L.LossInputError, match="CTCLoss(?s:.*)label"):
        loss(nd(CTC_PRED), nd(np.zeros((3, 2)))).asnumpy()
    np.testing.assert_allclose(loss(*good).asnumpy(), ref, rtol=1e-4)
    l2 = L.L2Loss()
    l2.hybridize(static_alloc=static, static_shape=static)
    l2(nd(P45), nd(P45)).asnumpy()
    with pytest.raises(L.LossInputError, match="L2Loss(?s:.*)label"):
        l2(nd(P45), nd(P46)).asnumpy()
    _unrelated_call_is_fine()


@pytest.mark.parametrize("hybridize", [False, True])
def test_inputs_on_another_context_after_a_cached_call(hybridize):
    """The check still runs once a call's signature (and graph) is cached."""
    loss = L.L2Loss()
    if hybridize:
        loss.hybridize()
    pred, label = mx.nd.ones((4, 3)), mx.nd.zeros((4, 3))
    np.testing.assert_allclose(loss(pred, label).asnumpy(), 0.5)
    with pytest.raises(L.LossInputError, match=r"L2Loss: argument 'label' is on cpu\(1\)"):
        loss(pred, label.as_in_context(mx.cpu(1))).asnumpy()
    np.testing.assert_allclose(loss(pred, label).asnumpy(), 0.5)


# ---------------------------------------------------------------- focal, overlap, Keras-style, circle
P3 = rng.uniform(0.1, 0.9, size=(4, 3, 5))
PROBS45 = rng.uniform(0.1, 0.9, size=(4, 5))
BAD_CALLS_MORE = [
    E("LogCosh-label-shape", L.LogCoshLoss, lambda: [nd(P45), nd(P46)], "LogCoshLoss", "label"),
    E("MAPE-label-shape", L.MAPELoss, lambda: [nd(P45), nd(np.ones((3, 5)))], "MAPELoss",
      "label"),
    E("MSLE-sample_weight", L.MSLELoss, lambda: [nd(P45), nd(P45), nd(np.ones((4, 2)))],
      "MSLELoss", "sample_weight"),
    E("CategoricalHinge-label-shape", L.CategoricalHingeLoss,
      lambda: [nd(P46), nd(np.ones((4, 5)))], "CategoricalHingeLoss", "label"),
    E("GeneralizedCE-label-shape", L.GeneralizedCELoss, lambda: [nd(P46), nd(np.zeros(3))],
      "GeneralizedCELoss", "label"),
    E("GeneralizedCE-label-too-big", L.GeneralizedCELoss,
      lambda: [nd(P46), nd([0.0, 6.0, 1.0, 2.0])], "GeneralizedCELoss", "label", True),
    E("GeneralizedCE-label-fraction", L.GeneralizedCELoss,
      lambda: [nd(P46), nd([0.0, 1.5, 1.0, 2.0])], "GeneralizedCELoss", "label", True),
    E("GeneralizedCE-pred-not-probabilities", lambda: L.GeneralizedCELoss(from_softmax=True),
      lambda: [nd(P46), nd([0.0, 1.0, 1.0, 2.0])], "GeneralizedCELoss", "pred", True),
    E("SigmoidFocal-label-shape", L.SigmoidFocalLoss, lambda: [nd(P45), nd(np.ones((4, 4)))],
      "SigmoidFocalLoss", "label"),
    E("SigmoidFocal-label-range", L.SigmoidFocalLoss,
      lambda: [nd(P45), nd(np.full((4, 5), 2.0))], "SigmoidFocalLoss", "label", True),
    E("SigmoidFocal-label-minus-one-without-ignore", L.SigmoidFocalLoss,
      lambda: [nd(P45), nd(np.full((4, 5), -1.0))], "SigmoidFocalLoss", "label", True),
    E("SigmoidFocal-pred-not-probabilities", lambda: L.SigmoidFocalLoss(from_logits=False),
      lambda: [nd(P45), nd(np.ones((4, 5)))], "SigmoidFocalLoss", "pred", True),
    E("SoftmaxFocal-label-shape", L.SoftmaxFocalLoss, lambda: [nd(P46), nd(np.zeros((4, 2)))],
      "SoftmaxFocalLoss", "label"),
    E("SoftmaxFocal-label-too-big", L.SoftmaxFocalLoss,
      lambda: [nd(P46), nd([0.0, 1.0, 7.0, 2.0])], "SoftmaxFocalLoss", "label", True),
    E("SoftmaxFocal-label-negative-not-ignored", lambda: L.SoftmaxFocalLoss(ignore_index=5),
      lambda: [nd(P46), nd([0.0, -1.0, 5.0, 2.0])], "SoftmaxFocalLoss", "label", True),
    E("SoftmaxFocal-dense-label-shape", lambda: L.SoftmaxFocalLoss(sparse_label=False),
      lambda: [nd(P46), nd(np.ones((4, 5)) / 5)], "SoftmaxFocalLoss", "label"),
    E("SoftmaxFocal-class_weight-length", lambda: L.SoftmaxFocalLoss(class_weight=[1.0] * 5),
      lambda: [nd(P46), nd([0.0, 1.0, 1.0, 2.0])], "SoftmaxFocalLoss", "class_weight"),
    E("SoftmaxFocal-class_weight-axis", lambda: L.SoftmaxFocalLoss(class_weight=[1.0] * 3,
                                                                   axis=1),
      lambda: [nd(P3), nd(np.zeros((4, 5)))], "SoftmaxFocalLoss", "class_weight"),
    E("Dice-label-shape", L.DiceLoss, lambda: [nd(PROBS45), nd(np.ones((4, 4)))], "DiceLoss",
      "label"),
    E("Dice-sparse-label-shape", lambda: L.DiceLoss(axis=1, sparse_label=True),
      lambda: [nd(P3), nd(np.zeros((4, 3)))], "DiceLoss", "label"),
    E("Dice-sparse-label-too-big", lambda: L.DiceLoss(axis=1, sparse_label=True),
      lambda: [nd(P3), nd(np.full((4, 5), 3.0))], "DiceLoss", "label", True),
    E("Dice-label-range", L.DiceLoss, lambda: [nd(PROBS45), nd(np.full((4, 5), 1.5))],
      "DiceLoss", "label", True),
    E("Dice-pred-not-probabilities", L.DiceLoss, lambda: [nd(P45), nd(np.ones((4, 5)))],
      "DiceLoss", "pred", True),
    E("Dice-axis-is-batch-axis", lambda: L.DiceLoss(axis=0),
      lambda: [nd(PROBS45), nd(np.ones((4, 5)))], "DiceLoss", "axis"),
    E("Dice-axis-out-of-range", lambda: L.DiceLoss(axis=3),
      lambda: [nd(PROBS45), nd(np.ones((4, 5)))], "DiceLoss", "axis"),
    E("Dice-sample_weight", L.DiceLoss, lambda: [nd(PROBS45), nd(np.ones((4, 5))),
                                                 nd(np.ones(3))], "DiceLoss", "sample_weight"),
    E("Tversky-label-shape", L.TverskyLoss, lambda: [nd(PROBS45), nd(np.ones((2, 5)))],
      "TverskyLoss", "label"),
    E("Tversky-sparse-label-negative", lambda: L.TverskyLoss(axis=-1, sparse_label=True,
                                                             from_logits=True),
      lambda: [nd(P45), nd(np.full((4,), -1.0))], "TverskyLoss", "label", True),
    E("Circle-pred-rank", L.CircleLoss, lambda: [nd(P3), nd(np.zeros(4))], "CircleLoss",
      "pred"),
    E("Circle-label-size", L.CircleLoss, lambda: [nd(P45), nd(np.zeros(5))], "CircleLoss",
      "label"),
    E("Circle-label-2d", L.CircleLoss, lambda: [nd(P45), nd(np.zeros((2, 2)))], "CircleLoss",
      "label"),
    E("Circle-sample_weight", L.CircleLoss,
      lambda: [nd(P45), nd(np.zeros(4)), nd(np.ones(5))], "CircleLoss", "sample_weight"),
]


@pytest.mark.parametrize("static", [None, False, True], ids=["imperative", "hybrid", "static"])
@pytest.mark.parametrize("loss,args,kwargs,cls,arg,value_check", BAD_CALLS_MORE)
def test_bad_call_raises_more_losses(loss, args, kwargs, cls, arg, value_check, static):
    block = loss()
    if static is not None:
        block.hybridize(static_alloc=static, static_shape=static)
    with pytest.raises(L.LossInputError, match=_pattern(cls, arg)):
        _call(block, args, kwargs)
    _unrelated_call_is_fine()


@pytest.mark.parametrize("loss,args,kwargs,cls,arg,value_check",
                         [p for p in BAD_CALLS_MORE if p.values[-1]])
def test_check_values_off_skips_value_checks_more_losses(loss, args, kwargs, cls, arg,
                                                         value_check, check_values_off):
    _call(loss(), args, kwargs)
    _unrelated_call_is_fine()


BAD_OPTIONS = [
    ("MAPELoss", {"epsilon": 0.0}, "epsilon"),
    ("MSLELoss", {"epsilon": -1e-3}, "epsilon"),
    ("GeneralizedCELoss", {"q": 0.0}, "q"),
    ("GeneralizedCELoss", {"q": 1.5}, "q"),
    ("SigmoidFocalLoss", {"alpha": 1.5}, "alpha"),
    ("SigmoidFocalLoss", {"gamma": -1.0}, "gamma"),
    ("SigmoidFocalLoss", {"label_smoothing": 1.2}, "label_smoothing"),
    ("SoftmaxFocalLoss", {"gamma": -0.5}, "gamma"),
    ("SoftmaxFocalLoss", {"label_smoothing": -0.1}, "label_smoothing"),
    ("DiceLoss", {"smooth": -1.0}, "smooth"),
    ("DiceLoss", {"sparse_label": True}, "sparse_label"),
    ("TverskyLoss", {"alpha": -0.1}, "alpha"),
    ("TverskyLoss", {"beta": -0.1}, "beta"),
    ("CircleLoss", {"gamma": 0}, "gamma"),
]


@pytest.mark.parametrize("name,kwargs,arg", BAD_OPTIONS,
                         ids=["%s-%s" % (n, a) for n, _, a in BAD_OPTIONS])
def test_bad_option_at_construction(name, kwargs, arg):
    with pytest.raises(L.LossInputError, match=_pattern(name, arg)):
        getattr(L, name)(**kwargs)


@pytest.mark.parametrize("name", ["LogCoshLoss", "MAPELoss", "MSLELoss", "CategoricalHingeLoss",
                                  "GeneralizedCELoss", "SigmoidFocalLoss", "SoftmaxFocalLoss",
                                  "DiceLoss", "TverskyLoss", "CircleLoss"])
def test_unknown_reduction_at_construction_more_losses(name):
    with pytest.raises(L.LossInputError, match=_pattern(name, "reduction")):
        getattr(L, name)(reduction="avg")


@pytest.mark.parametrize("factory,cls,arg", [
    (lambda: L.SmoothL1Loss(beta=-1.0), "SmoothL1Loss", "beta"),
    (lambda: L.GaussianNLLLoss(eps=0.0), "GaussianNLLLoss", "eps"),
    (lambda: L.MultiMarginLoss(p=3), "MultiMarginLoss", "p"),
    (lambda: L.MultiMarginLoss(class_weight=[[1.0, 2.0]]), "MultiMarginLoss", "class_weight"),
    (lambda: L.MultiLabelSoftMarginLoss(class_weight="abc"), "MultiLabelSoftMarginLoss",
     "class_weight"),
    (lambda: L.TripletMarginLoss(p=0), "TripletMarginLoss", "p"),
    (lambda: L.TripletMarginWithDistanceLoss(distance_function=3),
     "TripletMarginWithDistanceLoss", "distance_function"),
], ids=["SmoothL1-beta", "GaussianNLL-eps", "MultiMargin-p", "MultiMargin-class_weight-2d",
        "MultiLabelSoftMargin-class_weight", "TripletMargin-p", "TripletMarginWithDistance-fn"])
def test_bad_option_at_construction(factory, cls, arg):
    with pytest.raises(L.LossInputError, match=_pattern(cls, arg)):
        factory()
