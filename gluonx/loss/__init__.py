"""Hybridizable loss blocks: a drop-in superset of ``mxnet.gluon.loss``."""
from ._base import Loss, LossInputError, _apply_weighting, _reshape_like  # noqa: F401
from .regression import (L2Loss, L1Loss, HuberLoss, PoissonNLLLoss, MSELoss, SmoothL1Loss,
                         GaussianNLLLoss)
from .classification import (SigmoidBinaryCrossEntropyLoss, SigmoidBCELoss,
                             SoftmaxCrossEntropyLoss, SoftmaxCELoss, HingeLoss,
                             SquaredHingeLoss, LogisticLoss, NLLLoss,
                             MultiLabelSoftMarginLoss)
from .margin import MultiMarginLoss, MultiLabelMarginLoss, SoftMarginLoss
from .divergence import KLDivLoss
from .embedding import (TripletLoss, CosineEmbeddingLoss, SDMLLoss, MarginRankingLoss,
                        HingeEmbeddingLoss, TripletMarginLoss, TripletMarginWithDistanceLoss)
from .sequence import CTCLoss
# PyTorch's loss classes with PyTorch's conventions: gluonx.loss.torch (not in __all__)
from . import torch  # noqa: E402  (gluonx.loss.torch; never shadows the torch package)

__all__ = ["Loss", "LossInputError", "L2Loss", "L1Loss", "HuberLoss", "PoissonNLLLoss",
           "SigmoidBinaryCrossEntropyLoss", "SigmoidBCELoss", "SoftmaxCrossEntropyLoss",
           "SoftmaxCELoss", "HingeLoss", "SquaredHingeLoss", "LogisticLoss", "KLDivLoss",
           "TripletLoss", "CosineEmbeddingLoss", "SDMLLoss", "CTCLoss",
           # from torch.nn, Gluon-style (issue 10)
           "MSELoss", "SmoothL1Loss", "GaussianNLLLoss", "NLLLoss", "MultiLabelSoftMarginLoss",
           "MultiMarginLoss", "MultiLabelMarginLoss", "SoftMarginLoss", "MarginRankingLoss",
           "HingeEmbeddingLoss", "TripletMarginLoss", "TripletMarginWithDistanceLoss"]
