"""Data-parallel training with a gluonx loss, on one machine's devices or with MXNet's parameter server.

    # single process, all of this machine's devices (two CPU contexts where there is no GPU)
    python examples/dist_train.py --kvstore device
    # parameter server: 1 scheduler, 1 server, 2 workers, all on 127.0.0.1
    python -m gluonx.dist -n 2 -- python examples/dist_train.py --kvstore dist_sync

Every run trains the same model on the same generated data from the same
initial weights, so all of them end with the same parameters (``--out``
saves them to an .npz file per worker). Each step takes one global batch of
``--batch-size`` rows; in a dist job worker ``kv.rank`` takes its own slice of
it and splits that over its devices with ``gluon.utils.split_and_load``.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import gluonx  # noqa: E402,F401  (before mxnet)
import mxnet as mx  # noqa: E402
from mxnet import autograd, gluon  # noqa: E402

from gluonx import loss as gloss  # noqa: E402


def make_data(n=256, dim=10, classes=4, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.normal(size=(n, dim)).astype("float32")
    w = rng.normal(size=(dim, classes))
    y = (x @ w + 0.5 * rng.normal(size=(n, classes))).argmax(axis=1).astype("float32")
    return x, y


def make_net(contexts, dim=10, classes=4, seed=1):
    """A small MLP with fixed initial weights (the same in every process)."""
    net = gluon.nn.HybridSequential()
    with net.name_scope():
        net.add(gluon.nn.Dense(16, activation="tanh", in_units=dim), gluon.nn.Dense(classes, in_units=16))
    net.initialize(mx.init.Zero(), ctx=contexts)
    rng = np.random.RandomState(seed)
    for p in net.collect_params().values():
        p.set_data(mx.nd.array(rng.normal(scale=0.3, size=p.shape)))
    return net


def default_contexts():
    n = mx.context.num_gpus()
    return [mx.gpu(i) for i in range(n)] if n else [mx.cpu(0), mx.cpu(1)]


def train(kvstore="device", contexts=None, steps=6, batch_size=32, lr=0.5, hybridize=True,
          loss_fn=None, data=None):
    """Train; returns (parameters as numpy dict, kvstore rank, number of workers)."""
    contexts = contexts or [mx.cpu()]
    x, y = data if data is not None else make_data()
    net = make_net(contexts, x.shape[1])
    if hybridize:
        net.hybridize()
    loss_fn = loss_fn or gloss.SoftmaxCELoss()
    kv = mx.kv.create(kvstore) if isinstance(kvstore, str) else kvstore
    rank, workers = kv.rank, kv.num_workers
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": lr}, kvstore=kv)
    for step in range(steps):
        start = (step * batch_size) % len(x)
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        share = batch_size // workers             # this worker's slice of the global batch
        xb, yb = xb[rank * share:(rank + 1) * share], yb[rank * share:(rank + 1) * share]
        xs = gluon.utils.split_and_load(xb, contexts, even_split=False)
        ys = gluon.utils.split_and_load(yb, contexts, even_split=False)
        with autograd.record():
            losses = [loss_fn(net(xi), yi) for xi, yi in zip(xs, ys)]
        autograd.backward(losses)
        trainer.step(batch_size)                  # the global batch size
    params = {name[len(net.prefix):]: p.data(contexts[0]).asnumpy()  # names without the instance prefix
              for name, p in net.collect_params().items()}
    return params, rank, workers


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kvstore", default="device", help="device, local, dist_sync, ...")
    parser.add_argument("--cpus", type=int, default=0,
                        help="use this many CPU contexts per process (default: GPUs, else 2 CPUs)")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--out", default=None, help="save parameters to OUT/params-<rank>.npz")
    args = parser.parse_args(argv)
    contexts = [mx.cpu(i) for i in range(args.cpus)] if args.cpus else default_contexts()
    params, rank, workers = train(args.kvstore, contexts, steps=args.steps)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        np.savez(os.path.join(args.out, f"params-{rank}.npz"), **params)
    print(f"worker {rank}/{workers} on {contexts}: done, "
          f"|w| = {sum(float(np.abs(v).sum()) for v in params.values()):.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
