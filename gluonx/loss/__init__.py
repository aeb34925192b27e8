"""Hybridizable loss blocks: a drop-in superset of ``mxnet.gluon.loss``."""
from ._base import Loss, LossInputError, _apply_weighting, _reshape_like  # noqa: F401
from .regression import L2Loss, L1Loss, HuberLoss, PoissonNLLLoss, LogCoshLoss, MAPELoss, MSLELoss
from .classification import (SigmoidBinaryCrossEntropyLoss, SigmoidBCELoss,
                             SoftmaxCrossEntropyLoss, SoftmaxCELoss, HingeLoss,
                             SquaredHingeLoss, LogisticLoss, CategoricalHingeLoss,
                             GeneralizedCELoss, LinearSoftmaxCELoss)
from .divergence import KLDivLoss
from .embedding import TripletLoss, CosineEmbeddingLoss, SDMLLoss, CircleLoss
from .detection import SigmoidFocalLoss, SoftmaxFocalLoss
from .segmentation import DiceLoss, TverskyLoss
from .sequence import CTCLoss
from .distillation import DistillationLoss
from .language import (MaskedSoftmaxCrossEntropyLoss, MaskedSoftmaxCELoss, LabelSmoothing,
                       ActivationRegularizationLoss, TemporalActivationRegularizationLoss)
from .pixelwise import MixSoftmaxCrossEntropyLoss, MixSoftmaxCELoss

__all__ = ["Loss", "LossInputError", "L2Loss", "L1Loss", "HuberLoss", "PoissonNLLLoss",
           "SigmoidBinaryCrossEntropyLoss", "SigmoidBCELoss", "SoftmaxCrossEntropyLoss",
           "SoftmaxCELoss", "HingeLoss", "SquaredHingeLoss", "LogisticLoss", "KLDivLoss",
           "TripletLoss", "CosineEmbeddingLoss", "SDMLLoss", "CTCLoss",
           "LogCoshLoss", "MAPELoss", "MSLELoss", "CategoricalHingeLoss", "GeneralizedCELoss",
           "CircleLoss", "SigmoidFocalLoss", "SoftmaxFocalLoss", "DiceLoss", "TverskyLoss",
           "DistillationLoss", "MaskedSoftmaxCrossEntropyLoss", "MaskedSoftmaxCELoss",
           "LabelSmoothing", "ActivationRegularizationLoss",
           "TemporalActivationRegularizationLoss", "MixSoftmaxCrossEntropyLoss",
           "MixSoftmaxCELoss", "LinearSoftmaxCELoss"]
