"""Data-parallel training over several contexts with gluonx losses (issue 5, item 3).

``gluon.utils.split_and_load`` over [cpu(0), cpu(1)] (every GPU where there are
some) must reach the same parameters as training on one device on the same
data: the losses are per-sample, so the gradients of the shards add up to the
gradient of the whole batch. The training loop is the one of
``examples/dist_train.py``, so the example is tested too.
"""
import importlib.util
import os

import numpy as np
import pytest

import gluonx  # noqa: F401
import mxnet as mx
from gluonx import loss as gloss

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(os.path.dirname(HERE), "examples", "dist_train.py")


def load_example():
    spec = importlib.util.spec_from_file_location("gluonx_example_dist_train", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


example = load_example()


def one_hot(y, classes=4):
    return np.eye(classes, dtype="float32")[y.astype(int)]


# loss factory, label transform
LOSSES = {
    "SoftmaxCELoss": (lambda: gloss.SoftmaxCELoss(), lambda y: y),
    "SoftmaxCELoss-smoothing": (lambda: gloss.SoftmaxCELoss(label_smoothing=0.1), lambda y: y),
    "SigmoidBCELoss": (lambda: gloss.SigmoidBCELoss(), one_hot),
    "L2Loss": (lambda: gloss.L2Loss(), one_hot),
    "HuberLoss": (lambda: gloss.HuberLoss(rho=0.5), one_hot),
}


def device_sets():
    sets = [pytest.param([mx.cpu(0), mx.cpu(1)], id="cpu0+cpu1")]
    n = mx.context.num_gpus()
    gpus = [mx.gpu(i) for i in range(n)]
    sets.append(pytest.param(gpus, id="gpus", marks=pytest.mark.skipif(n == 0, reason="no GPU")))
    sets.append(pytest.param([mx.cpu(0)] + gpus[:1], id="cpu+gpu",
                             marks=pytest.mark.skipif(n == 0, reason="no GPU")))
    return sets


@pytest.mark.parametrize("contexts", device_sets())
@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("hybridize", [True, False], ids=["hybrid", "imperative"])
def test_split_and_load_matches_single_device(contexts, name, hybridize):
    make_loss, target = LOSSES[name]
    x, y = example.make_data()
    data = (x, target(y))
    single, _, _ = example.train("device", [mx.cpu()], loss_fn=make_loss(), data=data,
                                 hybridize=hybridize, steps=5, batch_size=30)
    multi, _, _ = example.train("device", contexts, loss_fn=make_loss(), data=data,
                                hybridize=hybridize, steps=5, batch_size=30)
    moved = 0.0
    start, _, _ = example.train("device", [mx.cpu()], loss_fn=make_loss(), data=data, steps=0)
    for key in single:
        np.testing.assert_allclose(multi[key], single[key], rtol=1e-5, atol=1e-6, err_msg=key)
        moved += float(np.abs(single[key] - start[key]).max())
    assert moved > 1e-3, "training did not change the parameters"


def test_uneven_split_matches_single_device():
    """A batch that does not divide evenly over the contexts (even_split=False)."""
    x, y = example.make_data()
    single, _, _ = example.train("device", [mx.cpu()], data=(x, y), steps=4, batch_size=31)
    multi, _, _ = example.train("device", [mx.cpu(0), mx.cpu(1), mx.cpu(2)], data=(x, y), steps=4,
                                batch_size=31)
    for key in single:
        np.testing.assert_allclose(multi[key], single[key], rtol=1e-5, atol=1e-6, err_msg=key)
