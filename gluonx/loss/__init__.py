"""Hybridizable loss blocks: a drop-in superset of ``mxnet.gluon.loss``."""
from ._base import Loss, LossInputError
from .regression import L2Loss, L1Loss, HuberLoss, PoissonNLLLoss
from .classification import (SigmoidBinaryCrossEntropyLoss, SigmoidBCELoss,
                             SoftmaxCrossEntropyLoss, SoftmaxCELoss, HingeLoss,
                             SquaredHingeLoss, LogisticLoss)
from .divergence import KLDivLoss
from .embedding import TripletLoss, CosineEmbeddingLoss, SDMLLoss
from .sequence import CTCLoss
from .generative import VAELoss, WGANGPLoss, critic_input_gradient, CriticInputGradient
from .sampling import NCELoss
from . import numpy_ml  # noqa: F401  (numpy-ml's names: gluonx.loss.numpy_ml.SquaredError, ...)

__all__ = ["Loss", "LossInputError", "L2Loss", "L1Loss", "HuberLoss", "PoissonNLLLoss",
           "SigmoidBinaryCrossEntropyLoss", "SigmoidBCELoss", "SoftmaxCrossEntropyLoss",
           "SoftmaxCELoss", "HingeLoss", "SquaredHingeLoss", "LogisticLoss", "KLDivLoss",
           "TripletLoss", "CosineEmbeddingLoss", "SDMLLoss", "CTCLoss", "VAELoss", "WGANGPLoss",
           "critic_input_gradient", "CriticInputGradient", "NCELoss"]
