"""gluonx: hybridizable loss blocks for Apache MXNet Gluon."""
from . import _compat  # noqa: F401  (must run before anything imports mxnet)
from . import config
from . import loss

__version__ = "0.1.0"
__all__ = ["config", "loss", "__version__"]
