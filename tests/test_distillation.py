"""Knowledge distillation (gluonx/loss/distillation.py)."""
import numpy as np
import pytest

import gluonx.loss as L
import mxnet as mx
from mxnet import autograd

import oracles
import reference as R
from cases import family_tests
from conftest import MODES, run_mode

CASES, test_value_and_gradient_match_reference, test_every_option_changes_the_answer = \
    family_tests("distillation")

GLUONCV_OPTIONS = {"teacher_probabilities": True, "soft_loss": "cross_entropy", "mix": "convex"}


@pytest.fixture(scope="module")
def gluoncv():
    module = oracles.gluoncv_loss()
    if module is None:
        pytest.skip("gluoncv is not installed (CI's Python 3.11 environment has it)")
    return module


def _inputs(seed, shape=(5, 7), sparse=True, temperature=2.0):
    rng = np.random.RandomState(seed)
    pred = rng.standard_normal(shape) * 2
    label = rng.randint(0, shape[-1], size=shape[:-1]).astype(np.float64) if sparse else \
        np.exp(R.log_softmax(rng.standard_normal(shape), -1))
    teacher = rng.standard_normal(shape) * 2
    soft_target = np.exp(R.log_softmax(teacher / temperature, -1))
    return pred, label, teacher, soft_target


def _gluoncv_result(gluoncv, inputs, temperature, hard_weight, sparse, head, hybridize):
    loss = gluoncv.DistillationSoftmaxCrossEntropyLoss(temperature=temperature,
                                                       hard_weight=hard_weight,
                                                       sparse_label=sparse)
    if hybridize:
        loss.hybridize()
    nds = [mx.nd.array(a, dtype="float64") for a in inputs]
    nds[0].attach_grad()
    nds[2].attach_grad()
    with autograd.record():
        out = loss(*nds)
    out.backward(mx.nd.array(head, dtype="float64"))
    return out.asnumpy(), {0: nds[0].grad.asnumpy(), 2: nds[2].grad.asnumpy()}


@pytest.mark.parametrize("hybridize", [False, True], ids=["gluoncv-imperative", "gluoncv-hybrid"])
@pytest.mark.parametrize("sparse", [True, False], ids=["sparse", "dense"])
@pytest.mark.parametrize("temperature,hard_weight", [(1.0, 0.0), (2.0, 0.5), (4.0, 0.9),
                                                     (0.5, 1.0)])
def test_matches_gluoncv(gluoncv, temperature, hard_weight, sparse, hybridize, tmp_path):
    """GluonCV's loss on (output, label, soft_target): the same values and
    gradients (pred and soft_target), in every gluonx mode."""
    pred, label, _, soft_target = _inputs(0, sparse=sparse, temperature=temperature)
    inputs = [pred, label, soft_target]
    head = np.random.RandomState(1).uniform(0.5, 1.5, size=pred.shape[0])
    value, grads = _gluoncv_result(gluoncv, inputs, temperature, hard_weight, sparse, head,
                                   hybridize)
    factory = lambda: L.DistillationLoss(temperature, hard_weight, sparse_label=sparse,  # noqa
                                         **GLUONCV_OPTIONS)
    for mode in MODES:
        ours, ograds = run_mode(mode, factory, inputs, (0, 2), head=head, tmpdir=tmp_path)
        np.testing.assert_allclose(ours, value, rtol=1e-10, atol=1e-12, err_msg=mode)
        for k in (0, 2):
            np.testing.assert_allclose(ograds[k], grads[k], rtol=1e-9, atol=1e-12,
                                       err_msg="%s grad[%d]" % (mode, k))


@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_default_is_kl_so_gluoncv_minus_teacher_entropy(gluoncv, temperature):
    """DistillationLoss(T) (the issue's T^2 KL) is GluonCV's hard_weight=0 value
    minus T^2 times the teacher's entropy, with the same gradient in pred."""
    pred, label, teacher, soft_target = _inputs(2, temperature=temperature)
    head = np.ones(pred.shape[0])
    value, grads = _gluoncv_result(gluoncv, [pred, label, soft_target], temperature, 0.0, True,
                                   head, False)
    ours, ograds = run_mode("imperative", lambda: L.DistillationLoss(temperature),
                            [pred, label, teacher], (0,))
    entropy = -np.sum(soft_target * np.log(soft_target), axis=-1)
    np.testing.assert_allclose(ours, value - temperature ** 2 * entropy, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(ograds[0], grads[0], rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("mode", ["imperative", "hybrid", "symbol"])
def test_student_equal_to_teacher_gives_zero(mode, tmp_path):
    rng = np.random.RandomState(3)
    logits = rng.standard_normal((4, 6)) * 3
    value, grads = run_mode(mode, lambda: L.DistillationLoss(temperature=2.5),
                            [logits, np.zeros(4), logits], (0,), tmpdir=tmp_path)
    np.testing.assert_allclose(value, 0, atol=1e-6)
    np.testing.assert_allclose(grads[0], 0, atol=1e-6)


def test_hard_weight_adds_the_cross_entropy():
    pred, label, teacher, _ = _inputs(4, temperature=2.0)
    nd = [mx.nd.array(a, dtype="float64") for a in (pred, label, teacher)]
    soft = L.DistillationLoss(2.0)(*nd).asnumpy()
    both = L.DistillationLoss(2.0, hard_weight=0.7)(*nd).asnumpy()
    ce = R.ref_softmax_ce(pred, label)[1]
    np.testing.assert_allclose(both, soft + 0.7 * ce, rtol=1e-10)
    convex = L.DistillationLoss(2.0, hard_weight=0.7, mix="convex")(*nd).asnumpy()
    np.testing.assert_allclose(convex, 0.3 * soft + 0.7 * ce, rtol=1e-10)


def test_temperature_softens_with_t_squared_scaling():
    """At a large temperature T^2 KL tends to the mean-centred squared logit gap / 2C."""
    rng = np.random.RandomState(5)
    pred, teacher = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    T = 1000.0
    out = L.DistillationLoss(T)(mx.nd.array(pred, dtype="float64"), mx.nd.zeros(3),
                                mx.nd.array(teacher, dtype="float64")).asnumpy()
    gap = (pred - pred.mean(-1, keepdims=True)) - (teacher - teacher.mean(-1, keepdims=True))
    np.testing.assert_allclose(out, (gap ** 2).sum(-1) / (2 * 4), rtol=2e-3)


def test_sequence_inputs_average_over_steps():
    """(N, T, C) inputs: one value per sequence, the mean over its steps."""
    rng = np.random.RandomState(6)
    pred, teacher = rng.standard_normal((2, 3, 5)), rng.standard_normal((2, 3, 5))
    label = rng.randint(0, 5, size=(2, 3)).astype(np.float64)
    out = L.DistillationLoss(2.0, 0.5)(*[mx.nd.array(a) for a in (pred, label, teacher)])
    per_step = R.ref_distillation(pred.reshape(6, 5), label.reshape(6), teacher.reshape(6, 5),
                                  temperature=2.0, hard_weight=0.5)[1]
    np.testing.assert_allclose(out.asnumpy(), per_step.reshape(2, 3).mean(1), rtol=1e-5)


# ---------------------------------------------------------------- bad input
P = np.random.RandomState(7).standard_normal((4, 6))
Q = np.exp(R.log_softmax(P, -1))


@pytest.mark.parametrize("kwargs,args,arg", [
    ({}, [P, np.zeros(3), P], "label"),
    ({}, [P, np.zeros(4), P[:, :5]], "teacher"),
    ({"sparse_label": False}, [P, np.zeros((4, 5)), P], "label"),
    ({"hard_weight": 0.5}, [P, np.array([0, 1, 6, 2]), P], "label"),
    ({"hard_weight": 0.5}, [P, np.array([0, 1, -1, 2]), P], "label"),
    ({"hard_weight": 0.5}, [P, np.array([0, 1, 0.5, 2]), P], "label"),
    ({"teacher_probabilities": True}, [P, np.zeros(4), P], "teacher"),
], ids=["label-shape", "teacher-shape", "dense-label-shape", "label-too-big", "label-negative",
        "label-fraction", "teacher-not-probabilities"])
@pytest.mark.parametrize("hybridize", [False, True])
def test_bad_input(kwargs, args, arg, hybridize):
    loss = L.DistillationLoss(**kwargs)
    if hybridize:
        loss.hybridize()
    with pytest.raises(L.LossInputError, match="DistillationLoss: argument '%s'" % arg):
        loss(*[mx.nd.array(a) for a in args]).asnumpy()
    good_label = np.zeros(4) if kwargs.get("sparse_label", True) else Q
    good_teacher = Q if kwargs.get("teacher_probabilities") else P
    out = loss(mx.nd.array(P), mx.nd.array(good_label), mx.nd.array(good_teacher)).asnumpy()
    assert out.shape == (4,) and np.all(np.isfinite(out))


@pytest.mark.parametrize("kwargs,arg", [
    ({"temperature": 0}, "temperature"), ({"temperature": -1.0}, "temperature"),
    ({"hard_weight": -0.1}, "hard_weight"), ({"hard_weight": 1.5, "mix": "convex"}, "hard_weight"),
    ({"soft_loss": "ce"}, "soft_loss"), ({"mix": "sum"}, "mix"),
    ({"reduction": "avg"}, "reduction"),
])
def test_bad_options(kwargs, arg):
    with pytest.raises(L.LossInputError, match="DistillationLoss: argument '%s'" % arg):
        L.DistillationLoss(**kwargs)


def test_missing_teacher_is_a_type_error():
    with pytest.raises(TypeError, match="teacher"):
        L.DistillationLoss()(mx.nd.array(P), mx.nd.zeros(4))
