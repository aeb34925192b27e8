"""The chunked output projection + softmax cross-entropy behind
:class:`gluonx.loss.LinearSoftmaxCELoss`, as an ``mx.operator.CustomOp``.

Why a CustomOp: autograd would keep every chunk's logits for the backward
pass, which is the memory the fused loss exists to save; a CustomOp owns its
backward, and unlike ``mx.autograd.Function`` it runs hybridized, in
``mx.sym`` graphs and in exported graphs (which load wherever ``gluonx`` is
imported, as the op is registered on import).

The rows are processed in chunks of ``chunk`` rows. For each chunk the
logits ``x_r W^T + b`` (chunk x num_classes) are computed with
``FullyConnected`` and the loss by :class:`gluonx.loss.SoftmaxCELoss`
(``reduction='sample'``, one value per row, with the class weights, ignore
index and label smoothing: one implementation of the math, and its fused
kernel where the options allow), under a private
``autograd.record()`` whose backward gives the chunk's gradients of x, W and
b; then the chunk's logits are dropped. Only one chunk's logits exist at a
time (the engine is synchronised once per chunk).

A training forward (``is_train``) computes the gradients for an output
gradient of 1 per row in the same pass and leaves them as extra outputs; the
backward scales them by the actual output gradient g: exact for the input
(row n's gradient is proportional to g_n) and, when g is the same for every
row (``reduction='mean'``/``'sum'``, ``backward()`` of the per-sample
losses), for the weight and bias. Otherwise the backward recomputes the
chunks with g. So a training step costs the three matrix products of
``Dense`` + ``SoftmaxCELoss``, without the (N, num_classes) buffers.
"""
import numpy as np
import mxnet as mx
from mxnet import autograd

OP_NAME = "gluonx_linear_softmax_ce"

#: rows per chunk when none is given: one chunk's logits stay within this many bytes
BLOCK_BYTES = 128 << 20


def _flag(value):
    return str(value).lower() in ("1", "true")


def chunk_rows(chunk, num_classes, itemsize):
    """Rows per chunk: ``chunk`` if given (> 0), else from :data:`BLOCK_BYTES`."""
    if chunk > 0:
        return chunk
    return max(1, BLOCK_BYTES // (num_classes * itemsize))


class _LinearSoftmaxCE(mx.operator.CustomOp):
    def __init__(self, num_classes, chunk, smoothing, ignore_index, has_bias, has_cw):
        super(_LinearSoftmaxCE, self).__init__()
        self.num_classes = num_classes
        self.chunk = chunk
        self.eps = smoothing
        self.ignore_index = ignore_index
        self.has_bias = has_bias
        self.has_cw = has_cw
        self._ce = None

    def _unpack(self, in_data):
        x, label, weight = in_data[0], in_data[1], in_data[2]
        rest = list(in_data[3:])
        bias = rest.pop(0) if self.has_bias else None
        cw = rest.pop(0) if self.has_cw else None
        return x, label, weight, bias, cw

    def _loss_block(self, cw):
        if self._ce is None:
            from .classification import SoftmaxCrossEntropyLoss
            ignore = self.ignore_index
            if ignore is not None and float(ignore) == int(ignore):
                ignore = int(ignore)
            self._ce = SoftmaxCrossEntropyLoss(
                reduction="sample", label_smoothing=self.eps, ignore_index=ignore,
                class_weight=None if cw is None else cw.asnumpy().astype(np.float64).ravel())
        return self._ce

    def _sweep(self, x, label, weight, bias, cw, g=None, want_dx=True, want_dw=True,
               out=None):
        """Loss of every row and, with an output gradient ``g`` (N,), the
        gradients of x, weight and bias, one chunk of rows at a time. ``out``:
        optional (dx, dw, db) arrays to write the gradients into (else new)."""
        ce = self._loss_block(cw)
        n = x.shape[0]
        rows = chunk_rows(self.chunk, self.num_classes, np.dtype(x.dtype).itemsize)
        grads = g is not None
        w, b = weight, bias
        dx = dw = db = None
        if grads:
            dx, dw, db = out if out is not None else (None, None, None)
            if want_dx and dx is None:
                dx = mx.nd.zeros_like(x)
            w = weight.detach()
            if want_dw:
                dw = mx.nd.zeros_like(weight) if dw is None else dw
                dw[:] = 0
                autograd.mark_variables([w], [dw], grad_reqs="add")
            if bias is not None:
                b = bias.detach()
                if want_dw:
                    db = mx.nd.zeros_like(bias) if db is None else db
                    db[:] = 0
                    autograd.mark_variables([b], [db], grad_reqs="add")
        losses = []
        for r0 in range(0, n, rows):
            r1 = min(n, r0 + rows)
            xr = x[r0:r1].copy() if grads else x[r0:r1]
            yr = label[r0:r1]
            if grads:
                xr.attach_grad(grad_req="write" if want_dx else "null")
                with autograd.record():
                    loss = ce(self._project(xr, w, b), yr)
                loss.backward(g[r0:r1])
                if want_dx:
                    dx[r0:r1] = xr.grad
            else:
                loss = ce(self._project(xr, w, b), yr)
            losses.append(loss)
            loss.wait_to_read()   # one chunk's logits alive at a time
        loss = mx.nd.concat(*losses, dim=0) if len(losses) > 1 else losses[0]
        return loss, dx, dw, db

    def _project(self, x, weight, bias):
        if bias is None:
            return mx.nd.FullyConnected(x, weight, num_hidden=self.num_classes, no_bias=True)
        return mx.nd.FullyConnected(x, weight, bias, num_hidden=self.num_classes)

    def forward(self, is_train, req, in_data, out_data, aux):
        x, label, weight, bias, cw = self._unpack(in_data)
        with autograd.pause():
            ones = mx.nd.ones((x.shape[0],), dtype=x.dtype, ctx=x.context) if is_train else None
            # the gradients go straight into the extra outputs
            loss, _, _, _ = self._sweep(x, label, weight, bias, cw, ones, out=(
                out_data[2], out_data[3], out_data[4] if bias is not None else None))
        self.assign(out_data[0], req[0], loss)
        out_data[1][:] = float(bool(is_train))

    def backward(self, req, out_grad, in_data, out_data, in_grad, aux):
        x, label, weight, bias, cw = self._unpack(in_data)
        g = out_grad[0]
        ready = out_data[1].asscalar() > 0
        want_dw = req[2] != "null" or (bias is not None and req[3] != "null")
        dw = db = None
        with autograd.pause():
            if ready:
                # row n's input gradient is proportional to g_n; the weight's
                # is a sum over rows, exact from the forward only for a uniform g
                dx = mx.nd.broadcast_mul(out_data[2], g.reshape((-1, 1)))
                low, high = mx.nd.min(g).asscalar(), mx.nd.max(g).asscalar()
                if low == high:
                    dw = out_data[3] if low == 1 else out_data[3] * float(low)
                    if bias is not None:
                        db = out_data[4] if low == 1 else out_data[4] * float(low)
                elif want_dw:
                    _, _, dw, db = self._sweep(x, label, weight, bias, cw, g, want_dx=False)
            else:
                _, dx, dw, db = self._sweep(x, label, weight, bias, cw, g, want_dw=want_dw)
        self.assign(in_grad[0], req[0], dx)
        self.assign(in_grad[1], req[1], mx.nd.zeros_like(in_data[1]))
        if req[2] != "null":
            self.assign(in_grad[2], req[2], dw)
        if bias is not None and req[3] != "null":
            self.assign(in_grad[3], req[3], db)
        if self.has_cw:
            k = 4 if self.has_bias else 3
            self.assign(in_grad[k], req[k], mx.nd.zeros_like(in_data[k]))


@mx.operator.register(OP_NAME)
class _LinearSoftmaxCEProp(mx.operator.CustomOpProp):
    def __init__(self, num_classes, chunk="0", smoothing="0", ignore_index="None",
                 has_bias="False", has_cw="False"):
        super(_LinearSoftmaxCEProp, self).__init__(need_top_grad=True)
        self.num_classes = int(num_classes)
        self.chunk = int(chunk)
        self.eps = float(smoothing)
        self.ignore_index = None if ignore_index in ("None", "") else float(ignore_index)
        self.has_bias = _flag(has_bias)
        self.has_cw = _flag(has_cw)

    def list_arguments(self):
        args = ["data", "label", "weight"]
        if self.has_bias:
            args.append("bias")
        if self.has_cw:
            args.append("class_weight")
        return args

    def list_outputs(self):
        # the loss, then what a training forward leaves for backward: a flag
        # and the gradients for an output gradient of 1 per row
        return ["output", "ready", "grad_data", "grad_weight"] + (
            ["grad_bias"] if self.has_bias else [])

    def infer_shape(self, in_shape):
        rows = in_shape[0][0]
        out = [(rows,), (1,), tuple(in_shape[0]), tuple(in_shape[2])]
        if self.has_bias:
            out.append(tuple(in_shape[3]))
        return in_shape, out, []

    def infer_type(self, in_type):
        dtype = in_type[0]
        types = [dtype, in_type[1]] + [dtype] * (len(in_type) - 2)
        return types, [dtype] * (5 if self.has_bias else 4), []

    def declare_backward_dependency(self, out_grad, in_data, out_data):
        # Everything, as CustomOpProp's default: MXNet 1.9.1 keeps the declared
        # dependencies of the most recently declared custom operator in one
        # global set and marks backward's arrays by it, so a narrower list
        # breaks when another configuration (other inputs) was declared in
        # between ("unknown storage type: -1" in CustomOp.backward).
        return list(out_grad) + list(in_data) + list(out_data)

    def create_operator(self, ctx, shapes, dtypes):
        return _LinearSoftmaxCE(self.num_classes, self.chunk, self.eps, self.ignore_index,
                                self.has_bias, self.has_cw)
