"""The reference libraries some tests compare against, imported without their
side effects. Each returns None when the library is not installed (the tests
then ``pytest.skip``; CI's Python 3.11 environment installs them)."""
import importlib.util
import os
import sys


def gluoncv_loss():
    """GluonCV 0.10's ``gluoncv/loss.py`` (it only needs mxnet). Loaded from its
    file: ``import gluoncv`` itself refuses to import next to torch >= 2."""
    if "_gluoncv_loss" in sys.modules:
        return sys.modules["_gluoncv_loss"]
    spec = importlib.util.find_spec("gluoncv")
    if spec is None or spec.origin is None:
        return None
    path = os.path.join(os.path.dirname(spec.origin), "loss.py")
    loader = importlib.util.spec_from_file_location("_gluoncv_loss", path)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    sys.modules["_gluoncv_loss"] = module
    return module


def gluonnlp_loss():
    """``gluonnlp.loss`` of GluonNLP 0.10."""
    if importlib.util.find_spec("gluonnlp") is None:
        return None
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import gluonnlp
    return gluonnlp.loss
