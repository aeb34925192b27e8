"""Global switches of gluonx, read at call time.

``check_values``
    Value checks (label ranges, lengths, negative rates, ...) synchronise with
    the device, so they cost time. They are on by default; set
    ``gluonx.config.check_values = False`` (or the environment variable
    ``GLUONX_CHECK_VALUES=0`` before import) to skip them. Shape, dtype and
    context checks are free and always run.
``use_kernels``
    Use the fused C++ kernels (``gluonx.kernels``) where they apply. On by
    default; ``gluonx.config.use_kernels = False`` or ``GLUONX_KERNELS=0``
    forces the portable stock-operator path.
"""
import os


def _env_flag(name, default):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() not in ("0", "false", "no", "off", "")


check_values = _env_flag("GLUONX_CHECK_VALUES", True)
use_kernels = _env_flag("GLUONX_KERNELS", True)
