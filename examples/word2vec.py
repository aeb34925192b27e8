"""Skip-gram word2vec (numpy-ml's ``Word2Vec`` with NCE, rebuilt in Gluon) trained
with ``gluonx.loss.NCELoss`` on the small corpus that ships in
``examples/data/corpus.txt``.

    python examples/word2vec.py               # about a minute on 2 cores
    python examples/word2vec.py --steps 500   # a quick look

Every (centre, context) pair within ``--window`` words is a training example
(frequent words subsampled as in Mikolov et al., 2013): the centre word's
embedding is the input of ``NCELoss``, which owns the output layer over the
vocabulary and contrasts the true context word with ``--negatives`` words
drawn from the unigram distribution to the power 0.75 (NCE, log Q
subtracted). Trained with ``gluon.Trainer``; the embedding and the loss are
exported and re-imported. Writes to ``--out``:

* ``word2vec_neighbours.md``: the nearest neighbours (cosine) of a few words;
* ``word2vec_projection.png``: a 2-D PCA projection of the embeddings,
  coloured by the kind of word;
* ``embedding-symbol.json`` / ``nce-symbol.json`` (+ params): the exported blocks.
"""
import argparse
import collections
import os
import sys
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import gluonx  # noqa: E402,F401  (before mxnet)
import mxnet as mx  # noqa: E402
from mxnet import autograd, gluon  # noqa: E402

from gluonx import loss as gloss  # noqa: E402

CORPUS = os.path.join(HERE, "data", "corpus.txt")
QUERIES = ["cat", "red", "monday", "bread", "river", "farmer", "boat", "three", "rain"]


# --------------------------------------------------------------------------- data
def load_corpus(path=CORPUS):
    with open(path) as f:
        sentences = [line.split() for line in f if line.strip()]
    counts = collections.Counter(w for s in sentences for w in s)
    vocab = sorted(counts, key=lambda w: (-counts[w], w))
    index = {w: i for i, w in enumerate(vocab)}
    return [[index[w] for w in s] for s in sentences], vocab, \
        np.array([counts[w] for w in vocab], dtype=np.float64)


def skipgram_pairs(sentences, counts, window=2, subsample=1e-3, seed=0):
    """(centre, context) pairs; word w is kept with probability
    min(1, sqrt(t / f_w) + t / f_w) (f_w its frequency)."""
    rng = np.random.RandomState(seed)
    freq = counts / counts.sum()
    keep = np.minimum(1.0, np.sqrt(subsample / freq) + subsample / freq)
    pairs = []
    for s in sentences:
        s = [w for w in s if rng.uniform() < keep[w]]
        for i, centre in enumerate(s):
            for j in range(max(0, i - window), min(len(s), i + window + 1)):
                if j != i:
                    pairs.append((centre, s[j]))
    return np.array(pairs, dtype=np.float32)


# -------------------------------------------------------------------------- train
def train(steps=4000, batch_size=256, dim=32, negatives=16, window=2, lr=0.01, seed=0,
          progress=True):
    """Returns (embedding, nce, vocab, per-step loss per pair)."""
    from tqdm import tqdm

    mx.random.seed(seed)
    sentences, vocab, counts = load_corpus()
    noise = counts ** 0.75
    embedding = gluon.nn.Embedding(len(vocab), dim)
    nce = gloss.NCELoss(len(vocab), negatives, noise, in_units=dim)
    embedding.initialize(mx.init.Uniform(0.5 / dim))
    nce.initialize()
    embedding.hybridize(static_alloc=True, static_shape=True)
    nce.hybridize(static_alloc=True, static_shape=True)
    params = embedding.collect_params()
    params.update(nce.collect_params())
    trainer = gluon.Trainer(params, "adam", {"learning_rate": lr})
    rng = np.random.RandomState(seed)
    pairs, offset, epoch = None, 0, 0
    history = []
    bar = tqdm(range(steps), desc="word2vec", disable=not progress, mininterval=0.5)
    for step in bar:
        if pairs is None or offset + batch_size > len(pairs):   # a new epoch: new subsample
            pairs = skipgram_pairs(sentences, counts, window, seed=seed + epoch)
            pairs = mx.nd.array(pairs[rng.permutation(len(pairs))])
            offset, epoch = 0, epoch + 1
        batch = pairs[offset:offset + batch_size]
        offset += batch_size
        centre, context = batch[:, 0], batch[:, 1]
        with autograd.record():
            loss = nce(embedding(centre), context)
        loss.backward()
        trainer.step(batch_size)
        history.append(float(loss.mean().asscalar()))
        if step % 100 == 0:
            bar.set_postfix(loss="%.3f" % np.mean(history[-100:]))
    return embedding, nce, vocab, np.array(history)


def neighbours(embedding, vocab, words=QUERIES, k=5):
    vectors = embedding.weight.data().asnumpy()
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    index = {w: i for i, w in enumerate(vocab)}
    table = {}
    for w in words:
        sims = vectors @ vectors[index[w]]
        order = [j for j in np.argsort(-sims) if j != index[w]][:k]
        table[w] = [(vocab[j], float(sims[j])) for j in order]
    return table


def kind_accuracy(table):
    """Fraction of the neighbours that are words of the query's kind."""
    sys.path.insert(0, os.path.join(HERE, "data"))
    from make_corpus import KINDS
    kind_of = {w: k for k, ws in KINDS.items() for w in ws}
    hits = [kind_of.get(n) == kind_of[q] for q, ns in table.items() for n, _ in ns]
    return float(np.mean(hits))


def export_and_reimport(embedding, nce, out, batch=8):
    words = mx.nd.arange(batch)
    context = mx.nd.arange(batch)[::-1]
    negatives = mx.nd.arange(nce._num_sampled)
    vectors = embedding(words)
    expected = (vectors.asnumpy(), nce(vectors, context, None, negatives).asnumpy())
    paths = [os.path.join(out, "embedding"), os.path.join(out, "nce")]
    embedding.export(paths[0])
    nce.export(paths[1])
    with warnings.catch_warnings():   # it cannot infer the inputs' types; the params settle them
        warnings.filterwarnings("ignore", message="Cannot decide type")
        emb = gluon.SymbolBlock.imports(paths[0] + "-symbol.json", ["data"],
                                        paths[0] + "-0000.params")
        loss = gluon.SymbolBlock.imports(paths[1] + "-symbol.json", ["data0", "data1", "data2"],
                                         paths[1] + "-0000.params")
    got = emb(words)
    np.testing.assert_allclose(got.asnumpy(), expected[0], rtol=1e-6)
    np.testing.assert_allclose(loss(got, context, negatives).asnumpy(), expected[1], rtol=1e-5)
    return paths


# ------------------------------------------------------------------------ figures
def save_outputs(embedding, vocab, table, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sys.path.insert(0, os.path.join(HERE, "data"))
    from make_corpus import KINDS

    paths = {"neighbours": os.path.join(out, "word2vec_neighbours.md")}
    with open(paths["neighbours"], "w") as f:
        f.write(markdown_table(table) + "\n")
    vectors = embedding.weight.data().asnumpy()
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    index = {w: i for i, w in enumerate(vocab)}
    words = [w for ws in KINDS.values() for w in ws if w in index]
    x = vectors[[index[w] for w in words]]
    x = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    xy = x @ vt[:2].T
    fig, ax = plt.subplots(figsize=(8, 6.5))
    colours = plt.get_cmap("tab10")
    for c, (kind, ws) in enumerate(KINDS.items()):
        rows = [words.index(w) for w in ws if w in index]
        ax.scatter(xy[rows, 0], xy[rows, 1], s=18, color=colours(c), label=kind)
        for r in rows:
            ax.annotate(words[r], xy[r], fontsize=7, color=colours(c),
                        xytext=(2, 2), textcoords="offset points")
    ax.legend(fontsize=8, loc="best")
    ax.set_title("word embeddings, first two principal components")
    ax.set_xticks([])
    ax.set_yticks([])
    paths["projection"] = os.path.join(out, "word2vec_projection.png")
    fig.savefig(paths["projection"], dpi=110, bbox_inches="tight")
    plt.close(fig)
    return paths


def markdown_table(table):
    k = len(next(iter(table.values())))
    lines = ["| word | " + " | ".join("neighbour %d" % (i + 1) for i in range(k)) + " |",
             "|---|" + "---|" * k]
    for w, ns in table.items():
        lines.append("| %s | " % w + " | ".join("%s (%.2f)" % n for n in ns) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--negatives", type=int, default=16)
    parser.add_argument("--window", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="word2vec_out")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    embedding, nce, vocab, history = train(args.steps, args.batch_size, args.dim,
                                           args.negatives, args.window, seed=args.seed,
                                           progress=not args.no_progress)
    exported = export_and_reimport(embedding, nce, args.out)
    table = neighbours(embedding, vocab)
    paths = save_outputs(embedding, vocab, table, args.out)
    k = max(1, len(history) // 20)
    print("NCE loss per pair: first %d steps %.3f, last %d steps %.3f"
          % (k, history[:k].mean(), k, history[-k:].mean()))
    print(markdown_table(table))
    print("neighbours of the same kind: %.0f%%" % (100 * kind_accuracy(table)))
    print("exported and re-imported:", ", ".join(p + "-symbol.json" for p in exported))
    for name, p in paths.items():
        print("%s: %s" % (name, p))
    return {"history": history, "paths": paths, "table": table, "export": exported}


if __name__ == "__main__":
    main()
