"""A Bernoulli VAE (numpy-ml's ``BernoulliVAE``, rebuilt in Gluon) trained with
``gluonx.loss.VAELoss`` on procedurally drawn 16x16 shapes (no downloads).

    python examples/vae.py                 # about a minute on 2 cores
    python examples/vae.py --steps 300     # a quick look

An MLP encoder gives the mean and log-variance of a diagonal Gaussian
posterior, a latent sample is drawn by reparameterisation, and an MLP decoder
gives the Bernoulli logits of every pixel. ``VAELoss(from_sigmoid=False)``
is the negative ELBO per image (reconstruction cross-entropy summed over the
pixels + KL to the N(0, I) prior), computed stably on the logits. The model
is hybridized, trained with ``gluon.Trainer``, exported with ``export`` and
re-imported with ``SymbolBlock.imports``. Writes to ``--out``:

* ``vae_reconstructions.png``: test images (top) and their reconstructions;
* ``vae_samples.png``: decodings of draws from the prior;
* ``vae_elbo.png``: the ELBO (the negative loss, nats per image) during training;
* ``vae-symbol.json`` / ``vae-0000.params``: the exported model.
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

SIDE = 16


# --------------------------------------------------------------------------- data
def draw_shapes(n, seed=0, side=SIDE):
    """n binary images of a random filled square, disc, triangle, cross or ring,
    at a random position and size."""
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:side, 0:side] + 0.5
    images = np.zeros((n, side, side), dtype=np.float32)
    kinds = rng.randint(0, 5, size=n)
    for i, kind in enumerate(kinds):
        r = rng.uniform(2.5, 5.5)
        cy, cx = rng.uniform(r, side - r, size=2)
        dy, dx = yy - cy, xx - cx
        if kind == 0:     # square
            mask = (np.abs(dy) <= r * 0.8) & (np.abs(dx) <= r * 0.8)
        elif kind == 1:   # disc
            mask = dy ** 2 + dx ** 2 <= r ** 2
        elif kind == 2:   # triangle pointing up
            mask = (dy <= r * 0.8) & (dy >= -r) & (np.abs(dx) <= (dy + r) * 0.55)
        elif kind == 3:   # cross
            mask = ((np.abs(dy) <= r * 0.3) & (np.abs(dx) <= r)) | \
                   ((np.abs(dx) <= r * 0.3) & (np.abs(dy) <= r))
        else:             # ring
            d2 = dy ** 2 + dx ** 2
            mask = (d2 <= r ** 2) & (d2 >= (r * 0.55) ** 2)
        images[i] = mask
    return images.reshape(n, side * side), kinds


# -------------------------------------------------------------------------- model
class VAE(gluon.HybridBlock):
    """MLP encoder -> (mean, log_var); z = mean + exp(log_var / 2) * noise; MLP decoder
    -> pixel logits. ``noise`` is an input, so the exported graph is deterministic."""

    def __init__(self, pixels=SIDE * SIDE, hidden=256, latent=8, **kwargs):
        super(VAE, self).__init__(**kwargs)
        self.latent = latent
        with self.name_scope():
            self.encoder = nn.HybridSequential(prefix="encoder_")
            self.encoder.add(nn.Dense(hidden, activation="relu", in_units=pixels),
                             nn.Dense(2 * latent, in_units=hidden))
            self.decoder = nn.HybridSequential(prefix="decoder_")
            self.decoder.add(nn.Dense(hidden, activation="relu", in_units=latent),
                             nn.Dense(pixels, in_units=hidden))

    def hybrid_forward(self, F, x, noise):
        stats = self.encoder(x)
        mean = F.slice_axis(stats, axis=1, begin=0, end=self.latent)
        log_var = F.slice_axis(stats, axis=1, begin=self.latent, end=2 * self.latent)
        z = mean + F.exp(0.5 * log_var) * noise
        return self.decoder(z), mean, log_var


# -------------------------------------------------------------------------- train
def train(steps=2500, batch_size=64, n_train=4096, latent=8, lr=2e-3, seed=0, progress=True):
    """Train the VAE; returns (model, per-step loss (negative ELBO per image), test images)."""
    from tqdm import tqdm

    mx.random.seed(seed)
    images, _ = draw_shapes(n_train + 256, seed=seed)
    train_x, test_x = mx.nd.array(images[:n_train]), images[n_train:]
    model = VAE(latent=latent)
    model.initialize(mx.init.Xavier())
    model.hybridize(static_alloc=True, static_shape=True)
    loss_fn = gloss.VAELoss(from_sigmoid=False)
    loss_fn.hybridize(static_alloc=True, static_shape=True)
    trainer = gluon.Trainer(model.collect_params(), "adam", {"learning_rate": lr})
    rng = np.random.RandomState(seed + 1)
    history = []
    bar = tqdm(range(steps), desc="VAE", disable=not progress, mininterval=0.5)
    for _ in bar:
        idx = mx.nd.array(rng.randint(0, n_train, size=batch_size))
        x = mx.nd.take(train_x, idx)
        noise = mx.nd.random.normal(shape=(batch_size, latent))
        with autograd.record():
            logits, mean, log_var = model(x, noise)
            loss = loss_fn(logits, x, mean, log_var)
        loss.backward()
        trainer.step(batch_size)
        history.append(float(loss.mean().asscalar()))
        if len(history) % 50 == 0:
            bar.set_postfix(elbo="%.1f" % -np.mean(history[-50:]))
    return model, np.array(history), test_x


def export_and_reimport(model, out, latent):
    """Export the trained model and check the re-imported graph gives the same outputs."""
    x = mx.nd.array(draw_shapes(8, seed=123)[0])
    noise = mx.nd.random.normal(shape=(8, latent))
    expected = [o.asnumpy() for o in model(x, noise)]
    path = os.path.join(out, "vae")
    model.export(path)
    with warnings.catch_warnings():   # it cannot infer the inputs' types; the params settle them
        warnings.filterwarnings("ignore", message="Cannot decide type")
        imported = gluon.SymbolBlock.imports(path + "-symbol.json", ["data0", "data1"],
                                             path + "-0000.params")
    got = [o.asnumpy() for o in imported(x, noise)]
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    return path


# ------------------------------------------------------------------------ figures
def _grid(images, rows, cols, side=SIDE):
    grid = np.ones((rows * (side + 1) + 1, cols * (side + 1) + 1))
    for k, img in enumerate(images[:rows * cols]):
        r, c = divmod(k, cols)
        grid[1 + r * (side + 1):1 + r * (side + 1) + side,
             1 + c * (side + 1):1 + c * (side + 1) + side] = img.reshape(side, side)
    return grid


def save_figures(model, history, test_x, out, latent, seed=0):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = mx.nd.array(test_x[:16])
    logits, _, _ = model(x, mx.nd.zeros((16, latent)))   # the posterior mean's decoding
    recon = mx.nd.sigmoid(logits).asnumpy()
    mx.random.seed(seed + 2)
    z = mx.nd.random.normal(shape=(32, latent))
    samples = mx.nd.sigmoid(model.decoder(z)).asnumpy()
    paths = {}
    fig, ax = plt.subplots(figsize=(8, 1.4))
    ax.imshow(_grid(np.concatenate([test_x[:16], recon]), 2, 16), cmap="gray_r", vmin=0, vmax=1)
    ax.set_title("test images (top) and their reconstructions (bottom)")
    ax.axis("off")
    paths["reconstructions"] = os.path.join(out, "vae_reconstructions.png")
    fig.savefig(paths["reconstructions"], dpi=110, bbox_inches="tight")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(8, 1.4))
    ax.imshow(_grid(samples, 2, 16), cmap="gray_r", vmin=0, vmax=1)
    ax.set_title("decoded draws from the prior N(0, I)")
    ax.axis("off")
    paths["samples"] = os.path.join(out, "vae_samples.png")
    fig.savefig(paths["samples"], dpi=110, bbox_inches="tight")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    window = max(1, len(history) // 50)
    smooth = np.convolve(-history, np.ones(window) / window, mode="valid")
    ax.plot(-history, color="0.8", lw=0.6, label="per batch")
    ax.plot(np.arange(len(smooth)) + window - 1, smooth, lw=1.6, label="moving average")
    ax.set_xlabel("step")
    ax.set_ylabel("ELBO (nats per image)")
    ax.set_ylim(max(-300, float(np.percentile(-history, 1))), float(np.max(-history)) + 5)
    ax.legend()
    ax.set_title("ELBO during training")
    paths["elbo"] = os.path.join(out, "vae_elbo.png")
    fig.savefig(paths["elbo"], dpi=110, bbox_inches="tight")
    plt.close(fig)
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--latent", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="vae_out")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    model, history, test_x = train(args.steps, args.batch_size, latent=args.latent,
                                   seed=args.seed, progress=not args.no_progress)
    path = export_and_reimport(model, args.out, args.latent)
    paths = save_figures(model, history, test_x, args.out, args.latent, args.seed)
    k = max(1, len(history) // 20)
    print("negative ELBO per image: first %d steps %.1f, last %d steps %.1f"
          % (k, history[:k].mean(), k, history[-k:].mean()))
    print("exported and re-imported:", path + "-symbol.json")
    for name, p in paths.items():
        print("%s: %s" % (name, p))
    return {"history": history, "paths": paths, "export": path}


if __name__ == "__main__":
    main()
