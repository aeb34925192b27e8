"""Numpy mode (``mx.npx.set_np()``): every loss of the case table accepts
mx.np arrays, returns mx.np arrays, differentiates, hybridizes and exports,
with the numbers of legacy mode; mixing the two kinds of array is an error."""
import numpy as np
import pytest

import gluonx.loss as L
import mxnet as mx
from mxnet import autograd, gluon

from cases import CASES, as_dtype, check_result, expected, ids
from conftest import NUMPY_MODES, grid, numpy_mode, run_mode


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_every_case_in_numpy_mode(case, dtype, kernels, ctx, tmp_path):
    exp = expected(case.id, dtype)
    inputs, _, head, _ = exp
    failures = []
    for mode in grid(NUMPY_MODES, every=2) if dtype == "float64" else NUMPY_MODES:
        try:
            result = run_mode(mode, case.factory(), as_dtype(inputs, dtype), case.grad, ctx,
                              head, tmp_path)
            check_result(case, dtype, result, exp, mode)
        except Exception as err:  # collect, so one report names every broken mode
            failures.append("[%s] %s: %s" % (mode, type(err).__name__, str(err)[:600]))
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("hybridize", [False, True])
def test_mixing_legacy_and_numpy_arrays_raises(hybridize):
    loss = L.L2Loss()
    if hybridize:
        loss.hybridize()
    with numpy_mode():
        pred = mx.np.ones((2, 3))
        with pytest.raises(L.LossInputError, match="L2Loss: argument 'label' .*numpy-mode"):
            loss(pred, mx.nd.zeros((2, 3)))
        # nothing poisoned: the next call works
        assert loss(pred, mx.np.zeros((2, 3))).asnumpy().tolist() == [0.5, 0.5]


def test_inside_a_users_hybridized_network_in_numpy_mode(tmp_path):
    """A numpy-mode network (mx.np symbols) that computes its loss in its own
    hybrid_forward: same numbers as mxnet.gluon.loss, trains, exports."""
    class Net(gluon.HybridBlock):
        def __init__(self, loss, **kwargs):
            super().__init__(**kwargs)
            with self.name_scope():
                self.dense = gluon.nn.Dense(4)
            self.loss = loss

        def hybrid_forward(self, F, x, label):
            return self.loss(self.dense(x), label)

    rng = np.random.RandomState(0)
    x, label = rng.standard_normal((5, 3)), rng.randint(0, 4, 5)
    results = []
    with numpy_mode():
        for loss in (L.SoftmaxCELoss(), gluon.loss.SoftmaxCELoss()):
            mx.random.seed(1)
            net = Net(loss)
            net.initialize(mx.init.Xavier())
            net.hybridize()
            with autograd.record():
                out = net(mx.np.array(x, dtype="float32"), mx.np.array(label, dtype="float32"))
            out.backward()
            assert isinstance(out, mx.np.ndarray)
            results.append((out.asnumpy(), net.dense.weight.grad().asnumpy()))
        net.export(str(tmp_path / "net"))
        back = gluon.SymbolBlock.imports(str(tmp_path / "net-symbol.json"), ["data0", "data1"],
                                         str(tmp_path / "net-0000.params"))
        again = back(mx.np.array(x, dtype="float32"), mx.np.array(label, dtype="float32")).asnumpy()
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(again, results[1][0], rtol=1e-5, atol=1e-6)
