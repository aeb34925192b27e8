"""Plots of gluonx losses and their gradients for docs/choosing.md.

Run at every docs build (conf.py); writes PNGs into docs/_generated/. Every
curve is computed by gluonx itself: the loss value and, by autograd, its
gradient with respect to the prediction.
"""
import os

import numpy as np

import gluonx  # noqa: F401
import mxnet as mx
from gluonx import loss as gloss


def value_and_grad(loss_fn, pred, *others):
    """Loss and d loss / d pred for a column of scalar predictions."""
    x = mx.nd.array(pred.reshape(-1, 1), dtype="float64")
    x.attach_grad()
    others = [mx.nd.array(np.broadcast_to(o, (len(pred), 1)), dtype="float64") for o in others]
    with mx.autograd.record():
        out = loss_fn(x, *others)
    out.backward()
    return out.asnumpy().ravel(), x.grad.asnumpy().ravel()


def _figure(title, xlabel, curves, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.0, 5.6), sharex=True)
    for label, (x, value, grad) in curves.items():
        line, = top.plot(x, value, lw=1.8, label=label)
        bottom.plot(x, grad, lw=1.8, color=line.get_color())
    top.set_title(title, fontsize=11)
    top.set_ylabel("loss")
    bottom.set_ylabel("gradient wrt pred")
    bottom.set_xlabel(xlabel)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
        ax.axhline(0, color="k", lw=0.6)
    top.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def regression(path):
    r = np.linspace(-3, 3, 241)
    curves = {}
    for name, fn in [("L1Loss", gloss.L1Loss()), ("L2Loss", gloss.L2Loss()),
                     ("HuberLoss(rho=1)", gloss.HuberLoss(rho=1.0))]:
        v, g = value_and_grad(fn, r, 0.0)
        curves[name] = (r, v, g)
    _figure("Regression: loss of pred - label", "residual pred - label", curves, path)


def binary(path):
    x = np.linspace(-4, 4, 241)
    curves = {}
    for name, fn, label in [
            ("SigmoidBCELoss (label 1)", gloss.SigmoidBCELoss(), 1.0),
            ("LogisticLoss (label +1)", gloss.LogisticLoss(), 1.0),
            ("HingeLoss (label +1)", gloss.HingeLoss(), 1.0),
            ("SquaredHingeLoss (label +1)", gloss.SquaredHingeLoss(), 1.0)]:
        v, g = value_and_grad(fn, x, label)
        curves[name] = (x, v, g)
    _figure("Binary classification: loss of a positive example", "score (logit)", curves, path)


def softmax(path):
    """3 classes; the true class's logit varies, the other two are 0."""
    z = np.linspace(-4, 6, 241)
    curves = {}
    for name, kwargs in [("SoftmaxCELoss", {}), ("label_smoothing=0.1", {"label_smoothing": 0.1}),
                         ("label_smoothing=0.3", {"label_smoothing": 0.3})]:
        fn = gloss.SoftmaxCELoss(**kwargs)
        logits = mx.nd.array(np.stack([z, np.zeros_like(z), np.zeros_like(z)], axis=1), dtype="float64")
        logits.attach_grad()
        with mx.autograd.record():
            out = fn(logits, mx.nd.zeros(len(z), dtype="float64"))
        out.backward()
        curves[name] = (z, out.asnumpy(), logits.grad.asnumpy()[:, 0])
    _figure("Softmax cross-entropy, 3 classes, true class's logit varies", "logit of the true class",
            curves, path)


def poisson(path):
    x = np.linspace(-2, 3, 201)
    curves = {}
    for name, fn, target in [("PoissonNLLLoss, target 0", gloss.PoissonNLLLoss(), 0.0),
                             ("PoissonNLLLoss, target 3", gloss.PoissonNLLLoss(), 3.0),
                             ("target 3, compute_full=True", gloss.PoissonNLLLoss(compute_full=True), 3.0)]:
        v, g = value_and_grad(fn, x, target)
        curves[name] = (x, v, g)
    _figure("Poisson NLL of a log-rate (from_logits=True)", "log rate", curves, path)


def make_all(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    for name, fn in [("regression", regression), ("binary", binary), ("softmax", softmax),
                     ("poisson", poisson)]:
        fn(os.path.join(out_dir, f"{name}.png"))


if __name__ == "__main__":
    make_all(os.path.join(os.path.dirname(os.path.abspath(__file__)), "_generated"))
