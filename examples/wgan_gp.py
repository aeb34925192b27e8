"""WGAN-GP (numpy-ml's ``WGAN_GP``, rebuilt in Gluon) on a 2-D mixture of eight
Gaussians, trained with ``gluonx.loss.WGANGPLoss`` and
``gluonx.loss.CriticInputGradient``.

    python examples/wgan_gp.py                # about a minute on 2 cores
    python examples/wgan_gp.py --steps 200    # a quick look

The critic is trained ``--n-critic`` times per generator step on
:math:`D(\\tilde x) - D(x) + \\lambda (\\lVert \\nabla D(\\hat x) \\rVert - 1)^2`
at random interpolates :math:`\\hat x`; the gradient :math:`\\nabla D(\\hat x)`
is built by ``CriticInputGradient`` (hybridized) as an ordinary forward graph, so that
plain first-order ``autograd`` trains the critic through the penalty (MXNet
1.9.1 cannot differentiate its layers' backward again). The generator
minimises :math:`-D(G(z))`. Both are MLPs, trained with ``gluon.Trainer``
(Adam, as in the paper), then exported and re-imported. Writes to ``--out``:

* ``wgan_points.png``: real versus generated points at a few steps;
* ``wgan_wasserstein.png``: the critic's Wasserstein estimate
  :math:`\\overline{D(x)} - \\overline{D(\\tilde x)}` during training;
* ``generator-symbol.json`` / ``generator-0000.params``: the exported generator.
"""
import argparse
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import gluonx  # noqa: E402,F401  (before mxnet)
import mxnet as mx  # noqa: E402
from mxnet import autograd, gluon  # noqa: E402
from mxnet.gluon import nn  # noqa: E402

from gluonx import loss as gloss  # noqa: E402

MODES, RADIUS, STD = 8, 2.0, 0.05


# --------------------------------------------------------------------------- data
def centers():
    angles = 2 * np.pi * np.arange(MODES) / MODES
    return RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def sample_real(rng, n):
    """n points of the mixture: a random mode plus isotropic noise."""
    return (centers()[rng.randint(0, MODES, size=n)] +
            rng.normal(0, STD, size=(n, 2))).astype(np.float32)


def mode_distance(points):
    """Mean distance of points to their nearest mixture centre (0 is perfect)."""
    d = np.linalg.norm(points[:, None, :] - centers()[None], axis=2)
    return float(d.min(axis=1).mean())


def modes_covered(points, within=4 * STD):
    d = np.linalg.norm(points[:, None, :] - centers()[None], axis=2)
    near = d.min(axis=1) < within
    return int(len(set(d.argmin(axis=1)[near])))


# -------------------------------------------------------------------------- model
def mlp(out, hidden=64, depth=3, act="relu", prefix=None):
    net = nn.HybridSequential(prefix=prefix)
    with net.name_scope():
        for _ in range(depth):
            net.add(nn.Dense(hidden, activation=act))
        net.add(nn.Dense(out))
    return net


# -------------------------------------------------------------------------- train
def train(steps=600, batch_size=256, n_critic=5, lambda_=0.1, latent=2, lr=1e-3,
          seed=0, snapshots=4, progress=True):
    """Returns (generator, critic, history dict, {step: generated points})."""
    from tqdm import tqdm

    mx.random.seed(seed)
    rng = np.random.RandomState(seed)
    generator = mlp(2, prefix="generator_")
    critic = mlp(1, prefix="critic_")
    generator.initialize(mx.init.Xavier())
    critic.initialize(mx.init.Xavier())
    generator.hybridize(static_alloc=True, static_shape=True)
    critic.hybridize(static_alloc=True, static_shape=True)
    gradient = gloss.CriticInputGradient(critic)   # the penalty's input gradient, as a graph
    gradient.hybridize(static_alloc=True, static_shape=True)
    wgan = gloss.WGANGPLoss(lambda_=lambda_, reduction="mean")
    adam = {"learning_rate": lr, "beta1": 0.5, "beta2": 0.9}
    g_trainer = gluon.Trainer(generator.collect_params(), "adam", adam)
    c_trainer = gluon.Trainer(critic.collect_params(), "adam", adam)
    fixed_z = mx.nd.random.normal(shape=(1024, latent))
    keep = set(np.linspace(0, steps, snapshots).astype(int))
    shots = {}
    history = {"wasserstein": [], "critic": [], "generator": [], "mode_distance": []}
    bar = tqdm(range(steps + 1), desc="WGAN-GP", disable=not progress, mininterval=0.5)
    for step in bar:
        if step in keep or step % 25 == 0:
            fake_points = generator(fixed_z).asnumpy()
            history["mode_distance"].append((step, mode_distance(fake_points)))
            if step in keep:
                shots[step] = fake_points
        if step == steps:
            break
        for _ in range(n_critic):
            real = mx.nd.array(sample_real(rng, batch_size))
            fake = generator(mx.nd.random.normal(shape=(batch_size, latent))).detach()
            alpha = mx.nd.random.uniform(shape=(batch_size, 1))
            interp = alpha * real + (1 - alpha) * fake
            with autograd.record():
                grad = gradient(interp)
                d_real, d_fake = critic(real), critic(fake)
                c_loss = wgan(d_fake, d_real, grad)
            c_loss.backward()
            c_trainer.step(1)
        history["critic"].append(float(c_loss.asscalar()))
        history["wasserstein"].append(float((d_real.mean() - d_fake.mean()).asscalar()))
        with autograd.record():
            g_loss = wgan(critic(generator(mx.nd.random.normal(shape=(batch_size, latent)))))
        g_loss.backward()
        g_trainer.step(1)
        history["generator"].append(float(g_loss.asscalar()))
        if step % 25 == 0:
            bar.set_postfix(W="%.3f" % np.mean(history["wasserstein"][-25:]),
                            dist="%.3f" % history["mode_distance"][-1][1])
    return generator, critic, {k: np.array(v) for k, v in history.items()}, shots


def export_and_reimport(generator, out, latent=2):
    z = mx.nd.random.normal(shape=(16, latent))
    expected = generator(z).asnumpy()
    path = os.path.join(out, "generator")
    generator.export(path)
    with warnings.catch_warnings():   # it cannot infer the input's type; the params settle it
        warnings.filterwarnings("ignore", message="Cannot decide type")
        imported = gluon.SymbolBlock.imports(path + "-symbol.json", ["data"],
                                             path + "-0000.params")
    np.testing.assert_allclose(imported(z).asnumpy(), expected, rtol=1e-5, atol=1e-6)
    return path


# ------------------------------------------------------------------------ figures
def save_figures(history, shots, out, seed=0):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    real = sample_real(np.random.RandomState(seed + 7), 1024)
    steps = sorted(shots)
    fig, axes = plt.subplots(1, len(steps), figsize=(3.0 * len(steps), 3.2))
    for ax, step in zip(np.atleast_1d(axes), steps):
        ax.scatter(real[:, 0], real[:, 1], s=3, c="tab:blue", alpha=0.4, label="real")
        ax.scatter(shots[step][:, 0], shots[step][:, 1], s=3, c="tab:orange", alpha=0.5,
                   label="generated")
        ax.set_xlim(-3, 3)
        ax.set_ylim(-3, 3)
        ax.set_aspect("equal")
        ax.set_title("generator step %d" % step)
        ax.set_xticks([])
        ax.set_yticks([])
    np.atleast_1d(axes)[0].legend(loc="lower left", fontsize=8, markerscale=3)
    paths = {"points": os.path.join(out, "wgan_points.png")}
    fig.savefig(paths["points"], dpi=100, bbox_inches="tight")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    w = history["wasserstein"]
    window = max(1, len(w) // 40)
    ax.plot(w, color="0.8", lw=0.6, label="per step")
    ax.plot(np.arange(window - 1, len(w)), np.convolve(w, np.ones(window) / window, "valid"),
            lw=1.6, label="moving average")
    ax.set_xlabel("generator step")
    ax.set_ylabel("mean D(real) - mean D(fake)")
    ax.set_title("the critic's Wasserstein estimate")
    ax.legend()
    paths["wasserstein"] = os.path.join(out, "wgan_wasserstein.png")
    fig.savefig(paths["wasserstein"], dpi=110, bbox_inches="tight")
    plt.close(fig)
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=600, help="generator steps")
    parser.add_argument("--n-critic", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lambda", dest="lambda_", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="wgan_out")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    generator, _, history, shots = train(args.steps, args.batch_size, args.n_critic,
                                         args.lambda_, seed=args.seed,
                                         progress=not args.no_progress)
    path = export_and_reimport(generator, args.out)
    paths = save_figures(history, shots, args.out, args.seed)
    dist = history["mode_distance"]
    print("mean distance of generated points to the nearest mode: %.3f at step 0, %.3f at "
          "step %d; modes covered: %d of %d" % (dist[0][1], dist[-1][1], int(dist[-1][0]),
                                                modes_covered(shots[max(shots)]), MODES))
    print("exported and re-imported:", path + "-symbol.json")
    for name, p in paths.items():
        print("%s: %s" % (name, p))
    return {"history": history, "paths": paths, "export": path}


if __name__ == "__main__":
    main()
