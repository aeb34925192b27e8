"""Real MXNet Gluon programs, with only the loss import changed.

Each test writes the pattern the way public MXNet code writes it (Dive into
Deep Learning, GluonNLP, GluonCV, MXNet's estimator), once against
``mxnet.gluon.loss`` and once against ``gluonx.loss`` -- the same code, the
module passed in -- and compares the numbers (values and gradients) in every
mode: imperative, hybridized, static_alloc, inside a user's hybridized
network and export + SymbolBlock.imports, with kernels on and off.
"""
import numpy as np
import pytest

import gluonx
import gluonx.loss as gloss
import mxnet as mx
from mxnet import autograd, gluon, nd
from mxnet.gluon import loss as mloss

from conftest import numpy_mode

BOTH = [pytest.param(mloss, id="mxnet"), pytest.param(gloss, id="gluonx")]
MODES = ("imperative", "hybrid", "static", "network", "export")
TOL = dict(rtol=1e-5, atol=1e-6)


def close(a, b, what=""):
    np.testing.assert_allclose(a, b, err_msg=what, **TOL)


class InNetwork(gluon.HybridBlock):
    """A user's network that computes its loss inside its hybrid_forward."""

    def __init__(self, loss, **kwargs):
        super().__init__(**kwargs)
        self.loss = loss

    def hybrid_forward(self, F, *args):
        return self.loss(*args)


def run(make_loss, inputs, mode, tmp_path, grad=(0,)):
    """(value, {position: gradient}) of ``make_loss()`` on numpy ``inputs``."""
    arrays = [None if a is None else nd.array(a, dtype=a.dtype) for a in inputs]
    loss = make_loss()
    block = loss
    if mode in ("hybrid", "export"):
        loss.hybridize()
    elif mode == "static":
        loss.hybridize(static_alloc=True, static_shape=True)
    elif mode == "network":
        block = InNetwork(loss)
        block.hybridize()
    if mode == "export":
        loss(*arrays).wait_to_read()
        path = str(tmp_path / ("exported-%d" % id(loss)))
        loss.export(path)
        params = path + "-0000.params"
        import os
        block = gluon.SymbolBlock.imports(path + "-symbol.json",
                                          ["data%d" % i for i in range(len(arrays))],
                                          params if os.path.exists(params) else None)
    for k in grad:
        arrays[k].attach_grad()
    with autograd.record():
        out = block(*arrays)
    out.backward()
    return out.asnumpy(), {k: arrays[k].grad.asnumpy() for k in grad}


def compare_with_mxnet(define, inputs, tmp_path, modes=MODES, grad=(0,)):
    """``define(module)`` returns a loss factory written against ``module``;
    gluonx must give mxnet's imperative numbers in every mode, kernels on and off."""
    want, want_grad = run(define(mloss), inputs, "imperative", tmp_path, grad)
    for kernels in (True, False):
        gluonx.config.use_kernels = kernels
        for mode in modes:
            got, got_grad = run(define(gloss), inputs, mode, tmp_path, grad)
            what = "%s, kernels %s" % (mode, kernels)
            close(got, want, what)
            for k in grad:
                close(got_grad[k], want_grad[k], "gradient %d, %s" % (k, what))
    return want


# ------------------------------------------------------ 1. forward overrides
def d2l_masked_ce(module):
    """Dive into Deep Learning's masked softmax CE (legacy ``mx.nd`` edition)."""
    class MaskedSoftmaxCELoss(module.SoftmaxCELoss):
        def forward(self, pred, label, valid_len):
            weights = nd.ones_like(label).expand_dims(axis=-1)
            weights = nd.SequenceMask(weights, valid_len, True, axis=1)
            return super(MaskedSoftmaxCELoss, self).forward(pred, label, weights)
    return MaskedSoftmaxCELoss


@pytest.mark.parametrize("module", BOTH)
def test_d2l_masked_softmax_ce_check(module):
    loss = d2l_masked_ce(module)()
    out = loss(nd.ones((3, 4, 10)), nd.ones((3, 4)), nd.array([4, 2, 0]))
    close(out.asnumpy(), [2.3026, 1.1513, 0], "the book's own check")
    # the subclass's extra argument binds by keyword too
    out = loss(nd.ones((3, 4, 10)), nd.ones((3, 4)), valid_len=nd.array([4, 2, 0])) \
        if module is gloss else out
    close(out.asnumpy(), [2.3026, 1.1513, 0])


def test_d2l_masked_softmax_ce_in_every_mode(tmp_path):
    rng = np.random.RandomState(0)
    inputs = [rng.standard_normal((3, 5, 7)).astype(np.float32),
              rng.randint(0, 7, (3, 5)).astype(np.float32),
              np.array([5, 2, 0], dtype=np.float32)]
    # (not in a network: its forward uses mx.nd; an export holds the parent's
    # graph, whose inputs are pred, label and the mask, as in mxnet)
    compare_with_mxnet(lambda m: d2l_masked_ce(m), inputs, tmp_path,
                       modes=("imperative", "hybrid", "static"))


def test_d2l_masked_softmax_ce_numpy_edition():
    """The numpy (npx.set_np()) edition of the same loss, trained a few steps."""
    def define(module):
        class MaskedSoftmaxCELoss(module.SoftmaxCELoss):
            def forward(self, pred, label, valid_len):
                weights = mx.np.expand_dims(mx.np.ones_like(label), axis=-1)
                weights = mx.npx.sequence_mask(weights, valid_len, True, axis=1)
                return super(MaskedSoftmaxCELoss, self).forward(pred, label, weights)
        return MaskedSoftmaxCELoss()

    rng = np.random.RandomState(1)
    x = rng.standard_normal((4, 6, 3)).astype(np.float32)
    y = rng.randint(0, 5, (4, 6)).astype(np.float32)
    lengths = np.array([6, 3, 1, 0], dtype=np.float32)
    curves, weights = [], []
    with numpy_mode():
        for module in (mloss, gloss):
            mx.random.seed(0)
            net = gluon.nn.Dense(5, flatten=False)
            net.initialize(mx.init.Xavier())
            trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.5})
            loss, curve = define(module), []
            for _ in range(3):
                with autograd.record():
                    value = loss(net(mx.np.array(x)), mx.np.array(y), mx.np.array(lengths))
                value.backward()
                trainer.step(4)
                assert isinstance(value, mx.np.ndarray)
                curve.append(value.asnumpy())
            curves.append(np.array(curve))
            weights.append(net.weight.data().asnumpy())
    close(curves[1], curves[0], "per-step losses")
    close(weights[1], weights[0], "final parameters")


def pairwise_ranking(module):
    """A ranking loss subclassing the base Loss with only forward."""
    class PairwiseRankingLoss(module.Loss):
        def __init__(self, margin=1.0, weight=None, batch_axis=0, **kwargs):
            super().__init__(weight, batch_axis, **kwargs)
            self.margin = margin

        def forward(self, positive, negative):
            return nd.relu(self.margin - positive + negative).mean(axis=self._batch_axis,
                                                                   exclude=True)
    return PairwiseRankingLoss


def test_forward_only_subclass_of_base_loss(tmp_path):
    rng = np.random.RandomState(2)
    inputs = [rng.standard_normal((6, 3)).astype(np.float32) for _ in range(2)]
    compare_with_mxnet(lambda m: pairwise_ranking(m), inputs, tmp_path,
                       modes=("imperative", "hybrid", "static"), grad=(0, 1))
    assert isinstance(pairwise_ranking(gloss)(), mloss.Loss)


# ------------------------------------------- GluonNLP: hybrid_forward overrides
def nlp_masked_ce(module):
    """GluonNLP 0.10's masked softmax CE (its NMT and Transformer scripts)."""
    class SoftmaxCEMaskedLoss(module.SoftmaxCELoss):
        def hybrid_forward(self, F, pred, label, valid_length):
            if self._sparse_label:
                sample_weight = F.cast(F.expand_dims(F.ones_like(label), axis=-1),
                                       dtype=np.float32)
            else:
                sample_weight = F.ones_like(label)
            sample_weight = F.SequenceMask(sample_weight, sequence_length=valid_length,
                                           use_sequence_length=True, axis=1)
            return super(SoftmaxCEMaskedLoss, self).hybrid_forward(F, pred, label,
                                                                   sample_weight)
    return SoftmaxCEMaskedLoss


@pytest.mark.parametrize("sparse_label", [True, False], ids=["sparse", "label-smoothed"])
def test_gluonnlp_masked_softmax_ce_in_every_mode(sparse_label, tmp_path):
    """sparse_label=False is the label-smoothing Transformer recipe: a (B, T, V)
    mask as sample_weight of a (B, T, 1) elementwise loss (MXNet's broadcasting)."""
    rng = np.random.RandomState(3)
    pred = rng.standard_normal((3, 5, 7)).astype(np.float32)
    label = rng.randint(0, 7, (3, 5)).astype(np.float32)
    if not sparse_label:
        smoothed = np.full((3, 5, 7), 0.1 / 6, np.float32)
        np.put_along_axis(smoothed, label.astype(int)[..., None], 0.9, axis=-1)
        label = smoothed
    inputs = [pred, label, np.array([5, 2, 1], dtype=np.float32)]
    compare_with_mxnet(lambda m: (lambda: nlp_masked_ce(m)(sparse_label=sparse_label)),
                       inputs, tmp_path)


def test_enlarging_sample_weight_without_a_subclass(tmp_path):
    """The same recipe's weighting called directly: (B, T, V) mask, (B, T, 1) loss."""
    rng = np.random.RandomState(4)
    pred = rng.standard_normal((2, 4, 6)).astype(np.float32)
    label = np.exp(pred) / np.exp(pred).sum(-1, keepdims=True)
    mask = (rng.uniform(size=(2, 4, 6)) < 0.7).astype(np.float32)
    compare_with_mxnet(lambda m: (lambda: m.SoftmaxCELoss(sparse_label=False)),
                       [pred, label, mask], tmp_path, grad=(0, 2))
    # and on an elementwise loss, enlarged along one axis and broadcast along another
    compare_with_mxnet(lambda m: m.L1Loss, [pred[..., :1], label[..., :1], mask[:1]],
                       tmp_path, grad=(0, 2))


def nlp_activation_regularization(module):
    """GluonNLP's AWD-LSTM activation regulariser: batch_axis=None, *states."""
    class ActivationRegularizationLoss(module.Loss):
        def __init__(self, alpha=0, weight=None, batch_axis=None, **kwargs):
            super().__init__(weight, batch_axis, **kwargs)
            self._alpha = alpha

        def hybrid_forward(self, F, *states):
            if self._alpha != 0 and states:
                means = [self._alpha * (state ** 2).mean() for state in states[-1:]]
                return F.add_n(*means)
            return F.zeros(1)
    return ActivationRegularizationLoss


def test_batch_axis_none(tmp_path):
    rng = np.random.RandomState(5)
    states = [rng.standard_normal((4, 3, 5)).astype(np.float32) for _ in range(2)]
    compare_with_mxnet(lambda m: (lambda: nlp_activation_regularization(m)(alpha=2.0)),
                       states, tmp_path, modes=("imperative", "hybrid", "static", "network"),
                       grad=(1,))
    value = compare_with_mxnet(lambda m: (lambda: m.L2Loss(batch_axis=None)),
                               [states[0][0], states[1][0]], tmp_path, grad=(0, 1))
    assert value.shape == (1,)


# ------------------------------------------------------------------- GluonCV
def gluoncv_focal(module):
    """GluonCV-style focal loss: a Loss subclass with its own hybrid_forward."""
    class FocalLoss(module.Loss):
        def __init__(self, axis=-1, alpha=0.25, gamma=2, num_class=None, eps=1e-12,
                     weight=None, batch_axis=0, **kwargs):
            super(FocalLoss, self).__init__(weight, batch_axis, **kwargs)
            self._axis, self._alpha, self._gamma = axis, alpha, gamma
            self._num_class, self._eps = num_class, eps

        def hybrid_forward(self, F, pred, label, sample_weight=None):
            pred = F.sigmoid(pred)
            one_hot = F.one_hot(label, self._num_class)
            pt = F.where(one_hot, pred, 1 - pred)
            t = F.ones_like(one_hot)
            alpha = F.where(one_hot, self._alpha * t, (1 - self._alpha) * t)
            loss = -alpha * ((1 - pt) ** self._gamma) * F.log(F.minimum(pt + self._eps, 1))
            loss = module._apply_weighting(F, loss, self._weight, sample_weight)
            return F.mean(loss, axis=self._batch_axis, exclude=True)
    return FocalLoss


def test_gluoncv_focal_loss_subclass(tmp_path):
    rng = np.random.RandomState(6)
    inputs = [rng.standard_normal((6, 4)).astype(np.float32),
              rng.randint(0, 4, 6).astype(np.float32),
              rng.uniform(size=(6, 1)).astype(np.float32)]
    compare_with_mxnet(lambda m: (lambda: gluoncv_focal(m)(num_class=4)), inputs, tmp_path)


def test_rcnn_masked_out_of_range_labels(tmp_path):
    """GluonCV's R-CNN recipes: label -1 marks ignored samples, masked by
    ``sample_weight = label >= 0``; they contribute 0 value and 0 gradient."""
    rng = np.random.RandomState(7)
    pred = rng.standard_normal((2, 6, 4)).astype(np.float32)
    label = rng.randint(-1, 4, (2, 6)).astype(np.float32)
    label[0, 0] = -1
    weight = (label >= 0)[..., None].astype(np.float32)

    def define(m):
        return lambda: m.SoftmaxCELoss()
    compare_with_mxnet(define, [pred, label, weight], tmp_path)
    _, grads = run(define(gloss), [pred, label, weight], "hybrid", tmp_path)
    assert not grads[0][label < 0].any()
    with pytest.raises(gloss.LossInputError, match="SoftmaxCrossEntropyLoss: argument 'label'"):
        gloss.SoftmaxCELoss()(nd.array(pred), nd.array(label), nd.ones((2, 6, 1)))


def test_gluoncv_imports_private_helpers():
    """GluonCV imports _apply_weighting and _reshape_like from the loss module."""
    import inspect
    for name in ("_apply_weighting", "_reshape_like"):
        ours, theirs = getattr(gloss, name), getattr(mloss, name)
        assert list(inspect.signature(ours).parameters) == \
            list(inspect.signature(theirs).parameters)
    rng = np.random.RandomState(8)
    loss, w = nd.array(rng.standard_normal((3, 4))), nd.array(rng.uniform(size=(3, 1)))
    for args in ((), (2.0,), (None, w), (0.5, w)):
        close(gloss._apply_weighting(nd, loss, *args).asnumpy(),
              mloss._apply_weighting(nd, loss, *args).asnumpy())
    x = nd.arange(12)
    assert gloss._reshape_like(nd, x, loss).shape == mloss._reshape_like(nd, x, loss).shape
    sym = gloss._reshape_like(mx.sym, mx.sym.var("x"), mx.sym.var("y"))
    assert sym.infer_shape(x=(12,), y=(3, 4))[1] == [(3, 4)]


# --------------------------------------------------------- more real patterns
def test_ctc_labels_padded_with_minus_one_on_two_contexts():
    """A CTC recogniser's step with split_and_load over two contexts, labels
    padded with -1 (MXNet's convention)."""
    rng = np.random.RandomState(9)
    x = rng.standard_normal((4, 8, 3)).astype(np.float32)
    label = np.array([[1, 2, -1], [0, -1, -1], [2, 2, 1], [1, -1, -1]], np.float32)
    ctxs = [mx.cpu(0), mx.cpu(1)]
    results = []
    for module in (mloss, gloss):
        mx.random.seed(0)
        net = gluon.nn.Dense(5, flatten=False)
        net.initialize(mx.init.Xavier(), ctx=ctxs)
        net.hybridize()
        loss = module.CTCLoss()
        trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
        curve = []
        for _ in range(2):
            xs = gluon.utils.split_and_load(nd.array(x), ctxs)
            ys = gluon.utils.split_and_load(nd.array(label), ctxs)
            with autograd.record():
                losses = [loss(net(a), b) for a, b in zip(xs, ys)]
            autograd.backward(losses)
            trainer.step(4)
            curve.append(np.concatenate([v.asnumpy() for v in losses]))
        results.append((np.array(curve), net.weight.data(ctxs[0]).asnumpy()))
    close(results[1][0], results[0][0], "per-step CTC losses")
    close(results[1][1], results[0][1], "final parameters")


def test_kldiv_distillation(tmp_path):
    rng = np.random.RandomState(10)
    student = rng.standard_normal((5, 6)).astype(np.float32)
    teacher = rng.standard_normal((5, 6)).astype(np.float32)
    soft = np.exp(teacher / 2) / np.exp(teacher / 2).sum(-1, keepdims=True)
    compare_with_mxnet(lambda m: (lambda: m.KLDivLoss(from_logits=False)),
                       [student / 2, soft.astype(np.float32)], tmp_path)


@pytest.mark.parametrize("hybridize", [False, True])
def test_export_of_a_hybrid_forward_subclass(hybridize, tmp_path):
    loss = nlp_masked_ce(gloss)()
    if hybridize:
        loss.hybridize()
    rng = np.random.RandomState(11)
    args = [nd.array(rng.standard_normal((2, 3, 4))), nd.array(rng.randint(0, 4, (2, 3))),
            nd.array([3, 1])]
    want = loss(*args).asnumpy()
    loss.export(str(tmp_path / "masked"))
    back = gluon.SymbolBlock.imports(str(tmp_path / "masked-symbol.json"),
                                     ["data0", "data1", "data2"])
    close(back(*args).asnumpy(), want)


# ----------------------------------------------------------------- Estimator
def test_gluonx_losses_are_mxnet_losses():
    for name in mloss.__all__:
        ours = getattr(gloss, name)()  if name not in ("Loss",) else None
        if ours is not None:
            assert isinstance(ours, mloss.Loss) and isinstance(ours, getattr(mloss, name)), name


def _fit_with_estimator(module):
    from mxnet.gluon.contrib.estimator import (Estimator, BatchProcessor, EarlyStoppingHandler,
                                               LoggingHandler, StoppingHandler)
    rng = np.random.RandomState(12)
    x = rng.standard_normal((32, 4)).astype(np.float32)
    y = rng.randint(0, 3, 32).astype(np.float32)
    data = gluon.data.DataLoader(gluon.data.ArrayDataset(x, y), batch_size=8)
    mx.random.seed(0)
    net = gluon.nn.Dense(3)
    net.initialize(mx.init.Xavier())
    est = Estimator(net, module.SoftmaxCrossEntropyLoss(),
                    trainer=gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1}),
                    batch_processor=BatchProcessor())
    # the suggested metric of a softmax CE loss is accuracy, as with mxnet's loss
    assert any(isinstance(m, mx.metric.Accuracy) for m in est.train_metrics)
    est.fit(train_data=data, epochs=2,
            event_handlers=[StoppingHandler(max_epoch=2), LoggingHandler(),
                            EarlyStoppingHandler(monitor=est.train_metrics[0], patience=5)])
    est.evaluate(val_data=data)
    return [m.get()[1] for m in est.train_metrics + est.val_metrics], net.weight.data().asnumpy()


def test_estimator_fit_and_evaluate():
    """mxnet.gluon.contrib.estimator with a gluonx loss: fit, evaluate, the
    batch processor and the event handlers, as MXNet's own tests use them."""
    (want, want_weight), (got, got_weight) = (_fit_with_estimator(m) for m in (mloss, gloss))
    close(np.array(got), np.array(want), "metrics")
    close(got_weight, want_weight, "final parameters")


def test_hybrid_forward_subclass_binds_its_arguments_by_keyword():
    rng = np.random.RandomState(13)
    pred, label = nd.array(rng.standard_normal((2, 3, 4))), nd.array(rng.randint(0, 4, (2, 3)))
    lengths = nd.array([3, 1])
    for hybridize in (False, True):
        ours, theirs = nlp_masked_ce(gloss)(), nlp_masked_ce(mloss)()
        if hybridize:
            ours.hybridize()
        close(ours(pred, label, valid_length=lengths).asnumpy(),
              theirs(pred, label, lengths).asnumpy())
        close(ours(pred, label=label, valid_length=lengths).asnumpy(),
              theirs(pred, label, lengths).asnumpy())
