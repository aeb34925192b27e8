"""gluonx end to end: three small models trained with gluonx losses.

Run it with ``python -m gluonx.demo`` (or ``bash .ci/demo`` on a fresh
machine, which sets up its own environment first). Everything is generated
here, nothing is downloaded:

* a classifier on Gaussian blobs, trained with ``SoftmaxCELoss`` with class
  weights (rare classes weigh more, as per-sample weights);
* a sequence recogniser (bidirectional GRU) reading noisy frame sequences,
  trained with ``CTCLoss``;
* an embedding model trained with ``TripletLoss``.

Each model is hybridized and trained in a ``gluon.Trainer`` loop twice, from
the same initial parameters on the same batches: once with ``gluonx.loss``
and once with ``mxnet.gluon.loss`` -- the same code, only the loss module
differs -- so the summary shows that switching the import keeps the numbers
(the largest difference of the per-step losses) and what it saves per step.
The gluonx model is then exported together with its loss as one symbolic
graph, re-imported with ``gluon.SymbolBlock.imports`` and checked to give the
same loss. The demo writes ``loss_curves.png`` and the exported graphs into
``--out`` and ends with a summary table.
"""
import argparse
import os
import sys
import time
import warnings

import numpy as np

import gluonx  # noqa: F401  (makes mxnet importable on new numpys/Pythons)
import mxnet as mx
from mxnet import autograd, gluon
from mxnet.gluon import nn, rnn

from gluonx import loss as gloss
from mxnet.gluon import loss as mloss

#: the two loss modules the demo trains every model with
MODULES = (("gluonx", gloss), ("mxnet", mloss))


# --------------------------------------------------------------------------- data
def make_blobs(rng, n, n_classes=6, dim=16, spread=2.4):
    """Gaussian blobs with unbalanced classes (class c has weight ~ 1/(c+1))."""
    centers = rng.normal(0, 1.6, size=(n_classes, dim))
    prior = 1.0 / np.arange(1, n_classes + 1)
    y = rng.choice(n_classes, size=n, p=prior / prior.sum())
    x = centers[y] + rng.normal(0, spread, size=(n, dim))
    return x.astype("float32"), y.astype("float32")


def make_sequences(rng, n, alphabet=5, feat=8, t=32, max_len=6, noise=0.9):
    """Frame sequences: each symbol is a few noisy frames of its own prototype,
    with short runs of background frames between symbols. Label padding is -1."""
    protos = rng.normal(0, 1.0, size=(alphabet, feat))
    x = rng.normal(0, noise, size=(n, t, feat))
    labels = np.full((n, max_len), -1.0)
    lengths = np.zeros(n)
    for i in range(n):
        k = rng.integers(1, max_len + 1)
        seq = rng.integers(0, alphabet, size=k)
        pos = rng.integers(0, 3)
        for s in seq:
            width = rng.integers(2, 4)
            x[i, pos:pos + width] += protos[s]
            pos += width + rng.integers(1, 3)
        labels[i, :k] = seq
        lengths[i] = k
    return x.astype("float32"), labels.astype("float32"), lengths.astype("float32")


def make_embedding_data(rng, n, n_classes=8, dim=24, spread=2.6):
    """Points of n_classes clusters living on a random 4-d subspace plus noise."""
    basis = rng.normal(0, 1, size=(4, dim))
    centers = rng.normal(0, 1.5, size=(n_classes, 4)) @ basis
    y = rng.integers(0, n_classes, size=n)
    x = centers[y] + rng.normal(0, spread, size=(n, dim))
    return x.astype("float32"), y


def triplets(rng, y, count):
    """(anchor, positive, negative) indices with y[a] == y[p] != y[n]."""
    by_class = {c: np.flatnonzero(y == c) for c in np.unique(y)}
    a = rng.integers(0, len(y), size=count)
    p = np.array([rng.choice(by_class[y[i]]) for i in a])
    n = np.array([rng.choice(np.flatnonzero(y != y[i])) for i in a])
    return a, p, n


# --------------------------------------------------------------------------- models
class WithLoss(gluon.HybridBlock):
    """A model and its loss as one block: ``loss(model(x), *targets)``.

    Exporting this block writes the network and the loss as one graph."""

    def __init__(self, model, loss_fn, n_model_inputs=1, **kwargs):
        super().__init__(**kwargs)
        self.n_model_inputs = n_model_inputs
        with self.name_scope():
            self.model = model
            self.loss_fn = loss_fn

    def hybrid_forward(self, F, *inputs):
        if self.n_model_inputs == 1:
            return self.loss_fn(self.model(inputs[0]), *inputs[1:])
        # embedding: every input goes through the model (anchor, positive, negative)
        return self.loss_fn(*[self.model(v) for v in inputs])


class Embedder(gluon.HybridBlock):
    def __init__(self, dim=8, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.body = nn.HybridSequential()
            self.body.add(nn.Dense(48, activation="relu"), nn.Dense(dim))

    def hybrid_forward(self, F, x):
        return F.L2Normalization(self.body(x))


def classifier():
    net = nn.HybridSequential(prefix="classifier_")
    with net.name_scope():
        net.add(nn.Dense(64, activation="relu"), nn.Dense(64, activation="relu"), nn.Dense(6))
    return net


def recogniser(n_classes):
    net = nn.HybridSequential(prefix="recogniser_")
    with net.name_scope():
        net.add(nn.Dense(32, flatten=False, activation="relu"),
                rnn.GRU(32, layout="NTC", bidirectional=True),
                nn.Dense(n_classes, flatten=False))
    return net


# --------------------------------------------------------------------------- training
def batches(rng, n, batch_size):
    order = rng.permutation(n)
    for i in range(0, n - batch_size + 1, batch_size):  # equal batch sizes: static shapes
        yield order[i:i + batch_size]


def train(name, block, arrays, steps_per_epoch, epochs, batch_size, lr, rng, bar, ctx):
    """Trainer loop on ``block`` (a WithLoss); returns per-step losses and seconds per step."""
    block.loss_fn.initialize(ctx=ctx)  # the loss's constants (class weights), if it has any
    block.hybridize(static_alloc=True, static_shape=True)
    # only the model's parameters train (a loss may hold constants, e.g. class weights)
    trainer = gluon.Trainer(block.model.collect_params(), "adam", {"learning_rate": lr})
    n = len(arrays[0])
    history, seconds = [], 0.0
    for _ in range(epochs):
        for step, idx in enumerate(batches(rng, n, batch_size)):
            if step >= steps_per_epoch:
                break
            inputs = [mx.nd.array(a[idx], ctx=ctx) for a in arrays]
            tic = time.perf_counter()
            with autograd.record():
                loss = block(*inputs)
            loss.backward()
            trainer.step(batch_size)
            value = float(loss.mean().asscalar())  # syncs, so the timing is real
            seconds += time.perf_counter() - tic
            history.append(value)
            bar.set_postfix_str(f"{name} loss {value:.3f}", refresh=False)
            bar.update(1)
    return history, seconds / max(1, len(history))


def train_both(name, make_net, make_loss, arrays, steps, epochs, batch_size, lr, seed, bar, ctx,
               n_model_inputs=1):
    """Train ``make_net()`` with ``make_loss(gluonx.loss)`` and again, from the
    same initial parameters on the same batches, with ``make_loss(mxnet.gluon.loss)``.
    Returns {module name: (block, history, seconds per step)}."""
    out, initial = {}, None
    for label, module in MODULES:
        net = make_net()
        net.initialize(mx.init.Xavier(), ctx=ctx)
        net(mx.nd.array(arrays[0][:batch_size], ctx=ctx))  # finish deferred initialisation
        params = list(net.collect_params().values())
        if initial is None:
            initial = [p.data(ctx).copy() for p in params]
        else:
            for p, value in zip(params, initial):
                p.set_data(value)
        block = WithLoss(net, make_loss(module), n_model_inputs=n_model_inputs,
                         prefix="%s_with_%s_loss_" % (name, label))
        hist, sps = train(name + " (" + label + ")", block, arrays, steps, epochs, batch_size, lr,
                          np.random.default_rng(seed), bar, ctx)
        out[label] = (block, hist, sps)
    return out


def comparison(runs):
    """Summary-row fields comparing the gluonx and mxnet runs of one model."""
    (_, hist, sps), (_, mx_hist, mx_sps) = runs["gluonx"], runs["mxnet"]
    return dict(final=float(np.mean(hist[-10:])), mx_final=float(np.mean(mx_hist[-10:])),
                step_diff=float(np.max(np.abs(np.subtract(hist, mx_hist)))),
                ms=sps * 1e3, mx_ms=mx_sps * 1e3)


def export_and_check(block, inputs, out_dir, name):
    """Export block (model + loss), re-import it with SymbolBlock.imports, compare losses."""
    path = os.path.join(out_dir, name)
    expected = block(*inputs).asnumpy()
    block.export(path)
    names = [f"data{i}" for i in range(len(inputs))]
    with warnings.catch_warnings():  # "Cannot decide type": the params file settles the types
        warnings.simplefilter("ignore", UserWarning)
        reloaded = gluon.SymbolBlock.imports(path + "-symbol.json", names, path + "-0000.params",
                                             ctx=inputs[0].context)
    got = reloaded(*inputs).asnumpy()
    diff = float(np.max(np.abs(got - expected)))
    if not np.allclose(got, expected, rtol=1e-5, atol=1e-6):
        raise AssertionError(f"{name}: re-imported graph gives a different loss (max diff {diff:g})")
    return diff, path + "-symbol.json"


def greedy_ctc_decode(logits, blank):
    """Best path decoding: argmax per frame, merge repeats, drop blanks."""
    best = logits.argmax(axis=-1)
    out = []
    for row in best:
        seq, prev = [], None
        for s in row:
            if s != prev and s != blank:
                seq.append(int(s))
            prev = s
        out.append(seq)
    return out


def run(out_dir="out/demo", scale=1.0, seed=0, plot=True, progress=True, ctx=None):
    """Train the three models; returns a list of summary rows (dicts)."""
    from tqdm.auto import tqdm

    ctx = ctx or mx.cpu()
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(seed)
    mx.random.seed(seed)
    epochs = max(1, int(round(20 * scale)))
    results, curves = [], {}

    # data
    xc, yc = make_blobs(rng, 3000)
    xc_tr, yc_tr, xc_va, yc_va = xc[:2400], yc[:2400], xc[2400:], yc[2400:]
    alphabet = 5
    xs, ls, lens = make_sequences(rng, 1400, alphabet=alphabet)
    xs_tr, ls_tr, lens_tr = xs[:1200], ls[:1200], lens[:1200]
    xs_va, ls_va, lens_va = xs[1200:], ls[1200:], lens[1200:]
    xe, ye = make_embedding_data(rng, 2000)
    xe_tr, ye_tr, xe_va, ye_va = xe[:1600], ye[:1600], xe[1600:], ye[1600:]
    ta, tp, tn = triplets(rng, ye_tr, 2400)

    bs = 64
    plan = [("classifier", len(xc_tr) // bs), ("sequence", len(xs_tr) // 32), ("embedding", len(ta) // bs)]
    bar = tqdm(total=len(MODULES) * sum(steps * epochs for _, steps in plan), desc="training",
               unit="step",
               disable=not progress, file=sys.stdout, mininterval=0.5)

    # 1. classifier: softmax CE with class weights (rare classes weigh more), given as
    #    per-sample weights, which both loss modules take
    counts = np.bincount(yc_tr.astype(int), minlength=6)
    class_weight = counts.sum() / (len(counts) * np.maximum(counts, 1))
    sw_tr = class_weight[yc_tr.astype(int)][:, None].astype("float32")
    runs = train_both("classifier", classifier, lambda m: m.SoftmaxCELoss(),
                      [xc_tr, yc_tr, sw_tr], plan[0][1], epochs, bs, 5e-3, seed + 1, bar, ctx)
    block = runs["gluonx"][0]
    net = block.model
    va = [mx.nd.array(a[:bs * 4], ctx=ctx) for a in
          (xc_va, yc_va, class_weight[yc_va.astype(int)][:, None].astype("float32"))]
    diff, graph = export_and_check(block, va, out_dir, "classifier")
    pred = net(mx.nd.array(xc_va, ctx=ctx)).asnumpy().argmax(axis=1)
    acc = float((pred == yc_va).mean())
    results.append(dict(model="classifier", loss="SoftmaxCELoss + class weights",
                        metric=f"accuracy {acc:.3f}", diff=diff, graph=graph, value=acc,
                        **comparison(runs)))
    curves["classifier (SoftmaxCELoss)"] = runs

    # 2. sequence recogniser: CTC, blank is the last class
    # inputs: frames, padded labels, pred_lengths (all T), label_lengths
    t_len = np.full(len(xs_tr), xs.shape[1], dtype="float32")
    runs = train_both("sequence", lambda: recogniser(alphabet + 1),
                      lambda m: m.CTCLoss(layout="NTC", label_layout="NT"),
                      [xs_tr, ls_tr, t_len, lens_tr], plan[1][1], epochs, 32, 1e-2, seed + 2, bar,
                      ctx)
    block = runs["gluonx"][0]
    net = block.model
    n_va = len(xs_va)
    va = [mx.nd.array(a, ctx=ctx) for a in (xs_va, ls_va, np.full(n_va, xs.shape[1], "float32"), lens_va)]
    diff, graph = export_and_check(block, va, out_dir, "recogniser")
    decoded = greedy_ctc_decode(net(va[0]).asnumpy(), blank=alphabet)
    truth = [[int(v) for v in row[:int(k)]] for row, k in zip(ls_va, lens_va)]
    acc = float(np.mean([d == t for d, t in zip(decoded, truth)]))
    results.append(dict(model="sequence", loss="CTCLoss", metric=f"sequence accuracy {acc:.3f}",
                        diff=diff, graph=graph, value=acc, **comparison(runs)))
    curves["sequence recogniser (CTCLoss)"] = runs

    # 3. embedding: triplet loss on L2-normalised embeddings
    runs = train_both("embedding", lambda: Embedder(prefix="embedder_"),
                      lambda m: m.TripletLoss(margin=0.3), [xe_tr[ta], xe_tr[tp], xe_tr[tn]],
                      plan[2][1], epochs, bs, 5e-3, seed + 3, bar, ctx, n_model_inputs=3)
    block = runs["gluonx"][0]
    net = block.model
    va_idx = triplets(rng, ye_va, 256)
    va = [mx.nd.array(xe_va[i], ctx=ctx) for i in va_idx]
    diff, graph = export_and_check(block, va, out_dir, "embedder")
    # 1-nearest-neighbour accuracy of validation points against the training points
    emb_tr = net(mx.nd.array(xe_tr, ctx=ctx)).asnumpy()
    emb_va = net(mx.nd.array(xe_va, ctx=ctx)).asnumpy()
    nn_idx = (emb_va @ emb_tr.T).argmax(axis=1)
    acc = float((ye_tr[nn_idx] == ye_va).mean())
    results.append(dict(model="embedding", loss="TripletLoss(margin=0.3)",
                        metric=f"1-NN accuracy {acc:.3f}", diff=diff, graph=graph, value=acc,
                        **comparison(runs)))
    curves["embedding (TripletLoss)"] = runs
    bar.close()

    if plot:
        plot_curves(curves, os.path.join(out_dir, "loss_curves.png"))
    return results


def plot_curves(curves, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.2))
    for ax, (title, runs) in zip(np.atleast_1d(axes), curves.items()):
        hist = np.asarray(runs["gluonx"][1])
        ax.plot(hist, color="#9ecae1", lw=0.8, label="per step")
        k = max(1, len(hist) // 25)
        smooth = np.convolve(hist, np.ones(k) / k, mode="valid")
        ax.plot(np.arange(k - 1, len(hist)), smooth, color="#08519c", lw=1.8,
                label=f"gluonx, mean of {k}")
        mx_hist = np.asarray(runs["mxnet"][1])
        mx_smooth = np.convolve(mx_hist, np.ones(k) / k, mode="valid")
        ax.plot(np.arange(k - 1, len(mx_hist)), mx_smooth, color="#e6550d", lw=1.0, ls="--",
                label="mxnet.gluon.loss")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"loss curves: {path}")


def summary_table(results):
    head = ("model", "loss", "final loss gluonx", "final loss mxnet", "max|step diff|",
            "ms/step gluonx", "ms/step mxnet", "quality", "export max|diff|")
    rows = [(r["model"], r["loss"], f"{r['final']:.4f}", f"{r['mx_final']:.4f}",
             f"{r['step_diff']:.1e}", f"{r['ms']:.1f}", f"{r['mx_ms']:.1f}", r["metric"],
             f"{r['diff']:.1e}") for r in results]
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    fmt = " | ".join("{:<%d}" % w for w in widths)
    out = [fmt.format(*head), "-+-".join("-" * w for w in widths)]
    out += [fmt.format(*r) for r in rows]
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m gluonx.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="out/demo", help="folder for the PNG and exported graphs")
    parser.add_argument("--scale", type=float, default=1.0, help="epochs multiplier (0.25 = quick run)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    tic = time.perf_counter()
    print(f"gluonx {gluonx.__version__} on mxnet {mx.__version__}, numpy {np.__version__}, "
          f"Python {sys.version.split()[0]}")
    results = run(args.out, args.scale, args.seed, plot=not args.no_plot, progress=not args.no_progress)
    print()
    print(summary_table(results))
    print()
    for r in results:
        print(f"exported {r['model']} + loss: {r['graph']} (re-imported with SymbolBlock.imports: same loss)")
    print(f"done in {time.perf_counter() - tic:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
