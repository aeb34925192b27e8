"""Multi-class and multi-label hinge, soft margin (gluonx/loss/margin.py)."""
import numpy as np

import gluonx.loss as L
import mxnet as mx

import reference as R
from cases import family_tests

CASES, test_value_and_gradient_match_reference, test_every_option_changes_the_answer = \
    family_tests("margin")


def test_multilabel_margin_ignores_entries_after_the_first_padding():
    pred = np.random.RandomState(0).standard_normal((2, 4))
    a = np.array([[1., -1., 2., 3.], [0., 3., -1., 0.]])
    b = np.array([[1., -1., -1., -1.], [0., 3., -1., 2.]])
    loss = L.MultiLabelMarginLoss()
    np.testing.assert_allclose(loss(mx.nd.array(pred), mx.nd.array(a)).asnumpy(),
                               loss(mx.nd.array(pred), mx.nd.array(b)).asnumpy())
    np.testing.assert_allclose(loss(mx.nd.array(pred), mx.nd.array(a)).asnumpy(),
                               R.ref_multilabel_margin(pred, a)[1], rtol=1e-5)


def test_multi_margin_excludes_the_labelled_class():
    """x = [0, 0]: only the other class counts, (margin - 0 + 0) / C = 0.5."""
    out = L.MultiMarginLoss()(mx.nd.zeros((1, 2)), mx.nd.array([1])).asnumpy()
    np.testing.assert_allclose(out, [0.5])
