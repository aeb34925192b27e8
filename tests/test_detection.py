"""Sigmoid and softmax focal loss (gluonx/loss/detection.py)."""
from cases import family_tests

CASES, test_value_and_gradient_match_reference, test_every_option_changes_the_answer = \
    family_tests("detection")


import numpy as np  # noqa: E402
import pytest  # noqa: E402

import gluonx.loss as L  # noqa: E402
from conftest import run_mode  # noqa: E402


@pytest.mark.parametrize("mode", ["imperative", "hybrid"])
def test_sigmoid_focal_without_focusing_is_binary_cross_entropy(mode):
    rng = np.random.RandomState(0)
    x, z = rng.standard_normal((5, 7)) * 3, (rng.uniform(size=(5, 7)) < 0.4) * 1.0
    ours, g = run_mode(mode, lambda: L.SigmoidFocalLoss(alpha=None, gamma=0), [x, z], (0,))
    bce, gb = run_mode(mode, lambda: L.SigmoidBCELoss(), [x, z], (0,))
    np.testing.assert_allclose(ours, bce, rtol=1e-6)
    np.testing.assert_allclose(g[0], gb[0], rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("kwargs", [{}, {"label_smoothing": 0.3},
                                    {"class_weight": [1.0, 2.0, 0.5, 3.0]},
                                    {"ignore_index": 1}])
def test_softmax_focal_without_focusing_is_softmax_cross_entropy(kwargs):
    rng = np.random.RandomState(1)
    x, y = rng.standard_normal((6, 4)) * 2, np.array([0., 1., 3., 2., 1., 0.])
    ours, g = run_mode("hybrid", lambda: L.SoftmaxFocalLoss(gamma=0, **kwargs), [x, y], (0,))
    ce, gc = run_mode("hybrid", lambda: L.SoftmaxCELoss(**kwargs), [x, y], (0,))
    np.testing.assert_allclose(ours, ce, rtol=1e-5)
    np.testing.assert_allclose(g[0], gc[0], rtol=1e-5, atol=1e-7)


def test_focal_down_weights_easy_examples():
    """The point of the focal term: a confident right answer costs far less than in CE."""
    x = np.array([[4.0], [-0.5]])     # an easy positive, a hard positive
    z = np.ones((2, 1))
    focal, _ = run_mode("imperative", lambda: L.SigmoidFocalLoss(alpha=None), [x, z])
    bce, _ = run_mode("imperative", lambda: L.SigmoidBCELoss(), [x, z])
    ratio = focal / bce
    assert ratio[0] < 1e-3 and ratio[1] > 0.3


def test_sigmoid_focal_extreme_logits_are_finite():
    x = np.array([[-300.0, -40.0, 0.0, 40.0, 300.0]])
    for z in (np.zeros((1, 5)), np.ones((1, 5))):
        for gamma in (0.5, 2.0):
            value, grads = run_mode("hybrid", lambda: L.SigmoidFocalLoss(gamma=gamma,
                                                                          reduction="none"),
                                    [x.astype(np.float32), z.astype(np.float32)], (0,))
            assert np.all(np.isfinite(value)) and np.all(np.isfinite(grads[0]))


@pytest.mark.parametrize("mode", ["imperative", "hybrid", "symbol"])
def test_sigmoid_focal_ignore_index_has_no_gradient(mode):
    rng = np.random.RandomState(2)
    x = rng.standard_normal((3, 4))
    z = np.array([[1., -1., 0., 1.], [-1., -1., 0., 0.], [1., 1., -1., 0.]])
    value, grads = run_mode(mode, lambda: L.SigmoidFocalLoss(ignore_index=-1,
                                                              reduction="none"), [x, z], (0,))
    assert np.all(value[z == -1] == 0) and np.all(grads[0][z == -1] == 0)
    assert np.all(value[z != -1] > 0)


def test_softmax_focal_certain_prediction_is_finite():
    x = np.array([[200.0, 0.0, -200.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    for gamma in (0.5, 2.0, 3.0):
        value, grads = run_mode("hybrid", lambda: L.SoftmaxFocalLoss(gamma=gamma),
                                [x, np.array([0.0, 1.0])], (0,))
        assert np.all(np.isfinite(value)) and np.all(np.isfinite(grads[0]))
