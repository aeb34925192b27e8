"""Dice and Tversky (gluonx/loss/segmentation.py)."""
from cases import family_tests

CASES, test_value_and_gradient_match_reference, test_every_option_changes_the_answer = \
    family_tests("segmentation")


import numpy as np  # noqa: E402
import pytest  # noqa: E402

import gluonx.loss as L  # noqa: E402
from conftest import run_mode  # noqa: E402


@pytest.mark.parametrize("kwargs", [{}, {"axis": 1, "from_logits": True}, {"smooth": 0.0}])
def test_tversky_with_equal_weights_is_dice(kwargs):
    rng = np.random.RandomState(0)
    if "axis" in kwargs:
        pred, label = rng.standard_normal((3, 4, 6)), np.eye(4)[rng.randint(0, 4, (3, 6))]
        label = label.transpose(0, 2, 1)
    else:
        pred, label = rng.uniform(size=(3, 10)), (rng.uniform(size=(3, 10)) < 0.5) * 1.0
    dice, gd = run_mode("hybrid", lambda: L.DiceLoss(**kwargs), [pred, label], (0,))
    # (2I + s) / (P + Y + s) = (I + s/2) / (I + (P - I)/2 + (Y - I)/2 + s/2)
    tw = dict(kwargs, smooth=kwargs.get("smooth", 1.0) / 2)
    tversky, gt = run_mode("hybrid", lambda: L.TverskyLoss(0.5, 0.5, **tw), [pred, label],
                           (0,))
    np.testing.assert_allclose(tversky, dice, rtol=1e-5)
    np.testing.assert_allclose(gt[0], gd[0], rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("cls", ["DiceLoss", "TverskyLoss"])
@pytest.mark.parametrize("axis", [1, -1])
def test_sparse_labels_are_one_hot_labels(cls, axis):
    rng = np.random.RandomState(1)
    shape = (2, 3, 5, 4) if axis == 1 else (2, 5, 4, 3)
    pred = rng.standard_normal(shape)
    classes = rng.randint(0, 3, (2, 5, 4))
    onehot = np.moveaxis(np.eye(3)[classes], -1, axis)
    kw = {"axis": axis, "from_logits": True}
    sparse, gs = run_mode("hybrid", lambda: getattr(L, cls)(sparse_label=True, **kw),
                          [pred, classes.astype(np.float64)], (0,))
    dense, gd = run_mode("hybrid", lambda: getattr(L, cls)(**kw), [pred, onehot], (0,))
    np.testing.assert_allclose(sparse, dense, rtol=1e-6)
    np.testing.assert_allclose(gs[0], gd[0], rtol=1e-5, atol=1e-8)


def test_sparse_label_with_class_axis_of_size_one():
    rng = np.random.RandomState(2)
    pred = rng.standard_normal((2, 3, 4))
    classes = rng.randint(0, 3, (2, 4)).astype(np.float64)
    loss = lambda: L.DiceLoss(axis=1, sparse_label=True, from_logits=True)  # noqa: E731
    a, _ = run_mode("hybrid", loss, [pred, classes])
    b, _ = run_mode("hybrid", loss, [pred, classes[:, None, :]])
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_perfect_and_empty_masks():
    """A perfect prediction costs 0; an empty mask predicted empty costs 0 with
    smooth > 0 and stays finite (1) with smooth = 0."""
    label = np.array([[1., 0., 1., 0.], [0., 0., 0., 0.]])
    value, grads = run_mode("imperative", lambda: L.DiceLoss(), [label, label], (0,))
    np.testing.assert_allclose(value, [0.0, 0.0], atol=1e-6)
    value, grads = run_mode("imperative", lambda: L.DiceLoss(smooth=0), [label, label], (0,))
    np.testing.assert_allclose(value, [0.0, 1.0], atol=1e-6)
    assert np.all(np.isfinite(grads[0]))


def test_tversky_alpha_weighs_false_positives():
    """Salehi et al.: alpha multiplies sum p (1 - y). A prediction with only false
    positives is penalised more as alpha grows, not as beta grows."""
    label = np.array([[1., 1., 0., 0.]])
    pred = np.array([[1., 1., 1., 1.]])          # two false positives, no false negative
    loss = lambda a, b: run_mode("imperative", lambda: L.TverskyLoss(alpha=a, beta=b, smooth=0),
                                 [pred, label])[0][0]
    assert loss(0.9, 0.1) > loss(0.1, 0.9)
    np.testing.assert_allclose(loss(0.9, 0.1), 1 - 2 / (2 + 0.9 * 2), rtol=1e-6)
