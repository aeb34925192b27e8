"""Make ``import mxnet`` (1.9.x) work on the Pythons and numpys gluonx supports.

MXNet 1.9.1 still uses numpy aliases that numpy 1.24 removed (``np.bool``)
and imports ``distutils``, which Python 3.12 no longer ships (setuptools
provides it).  This module restores exactly those names, nothing else, and
then imports mxnet, turning a missing mxnet into a clear message.
"""
import importlib.util
import sys

import numpy as _np

# numpy >= 1.24 removed these aliases; mxnet 1.9.1 still refers to np.bool.
for _alias, _builtin in (("bool", bool), ("int", int), ("float", float),
                         ("complex", complex), ("object", object), ("str", str)):
    if _alias not in _np.__dict__:
        setattr(_np, _alias, _builtin)

if sys.version_info >= (3, 12) and "distutils" not in sys.modules:
    try:  # setuptools ships a distutils shim; mxnet imports distutils.version
        import setuptools  # noqa: F401  (installs the distutils import hook)
        import distutils  # noqa: F401
    except ImportError:  # pragma: no cover - only without setuptools
        pass

MXNET_MISSING = (
    "gluonx needs MXNet 1.9.x, and no importable 'mxnet' was found. Install the "
    "build that fits your machine, for example `pip install gluonx[cpu]` "
    "(CPU wheel, mxnet==1.9.1) or `pip install mxnet-cu112==1.9.1` for CUDA 11.2."
)

if importlib.util.find_spec("mxnet") is None:
    raise ImportError(MXNET_MISSING)

import mxnet  # noqa: E402,F401  (after the aliases above)
