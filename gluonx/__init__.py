"""gluonx: hybridizable loss blocks for Apache MXNet Gluon."""
from . import _compat  # noqa: F401  (must run before anything imports mxnet)
from . import config
from . import loss
from . import kernels

# Load the fused-kernel library if it was built before (never compiles here):
# graphs exported with kernel operators then import in any process that
# imported gluonx. The first call that can use a kernel builds it if needed.
kernels.load()

__version__ = "0.1.0"
__all__ = ["config", "kernels", "loss", "__version__"]
