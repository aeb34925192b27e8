"""Hybridizable loss blocks: a drop-in superset of ``mxnet.gluon.loss``."""
from ._base import Loss, LossInputError, _apply_weighting, _reshape_like  # noqa: F401
from .regression import (L2Loss, L1Loss, HuberLoss, PoissonNLLLoss, LogCoshLoss, MAPELoss, MSLELoss,
                         MSELoss, SmoothL1Loss, GaussianNLLLoss)
from .classification import (SigmoidBinaryCrossEntropyLoss, SigmoidBCELoss,
                             SoftmaxCrossEntropyLoss, SoftmaxCELoss, HingeLoss,
                             SquaredHingeLoss, LogisticLoss, CategoricalHingeLoss,
                             GeneralizedCELoss, NLLLoss, MultiLabelSoftMarginLoss)
from .margin import MultiMarginLoss, MultiLabelMarginLoss, SoftMarginLoss
from .divergence import KLDivLoss
from .embedding import (TripletLoss, CosineEmbeddingLoss, SDMLLoss, CircleLoss, MarginRankingLoss,
                        HingeEmbeddingLoss, TripletMarginLoss, TripletMarginWithDistanceLoss)
from .detection import SigmoidFocalLoss, SoftmaxFocalLoss
from .segmentation import DiceLoss, TverskyLoss
from .sequence import CTCLoss
from .distillation import DistillationLoss
from .language import (MaskedSoftmaxCrossEntropyLoss, MaskedSoftmaxCELoss, LabelSmoothing,
                       ActivationRegularizationLoss, TemporalActivationRegularizationLoss)
from .pixelwise import MixSoftmaxCrossEntropyLoss, MixSoftmaxCELoss
# PyTorch's loss classes with PyTorch's conventions: gluonx.loss.torch (not in __all__)
from . import torch  # noqa: E402  (gluonx.loss.torch; never shadows the torch package)

__all__ = ["Loss", "LossInputError", "L2Loss", "L1Loss", "HuberLoss", "PoissonNLLLoss",
           "SigmoidBinaryCrossEntropyLoss", "SigmoidBCELoss", "SoftmaxCrossEntropyLoss",
           "SoftmaxCELoss", "HingeLoss", "SquaredHingeLoss", "LogisticLoss", "KLDivLoss",
           "TripletLoss", "CosineEmbeddingLoss", "SDMLLoss", "CTCLoss",
           "LogCoshLoss", "MAPELoss", "MSLELoss", "CategoricalHingeLoss", "GeneralizedCELoss",
           "CircleLoss", "SigmoidFocalLoss", "SoftmaxFocalLoss", "DiceLoss", "TverskyLoss",
           "DistillationLoss", "MaskedSoftmaxCrossEntropyLoss", "MaskedSoftmaxCELoss",
           "LabelSmoothing", "ActivationRegularizationLoss",
           "TemporalActivationRegularizationLoss", "MixSoftmaxCrossEntropyLoss",
           "MixSoftmaxCELoss",
           # from torch.nn, Gluon-style (issue 10)
           "MSELoss", "SmoothL1Loss", "GaussianNLLLoss", "NLLLoss", "MultiLabelSoftMarginLoss",
           "MultiMarginLoss", "MultiLabelMarginLoss", "SoftMarginLoss", "MarginRankingLoss",
           "HingeEmbeddingLoss", "TripletMarginLoss", "TripletMarginWithDistanceLoss"]
