"""Every loss x five modes x fused kernels on/off: the same values and gradients
as the numpy reference (float32 and float64), on every context."""
import pytest

from cases import CASES, as_dtype, check_result, expected, ids
from conftest import MODES, run_mode


def run_and_check_modes(case, dtype, ctx, tmp_path, modes=MODES, reduction="sample", **extra):
    """Run ``case`` in each mode; fail listing every mode that disagrees."""
    exp = expected(case.id, dtype, reduction)
    inputs, _, head, _ = exp
    factory = case.factory(**extra) if reduction == "sample" else \
        case.factory(reduction=reduction, **extra)
    failures = []
    for mode in modes:
        try:
            result = run_mode(mode, factory, as_dtype(inputs, dtype), case.grad, ctx, head,
                              tmp_path)
            check_result(case, dtype, result, exp, "%s/%s" % (mode, reduction))
        except Exception as err:  # collect, so one report names every broken mode
            failures.append("[%s] %s: %s" % (mode, type(err).__name__, str(err)[:600]))
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_every_mode_matches_reference(case, dtype, kernels, ctx, tmp_path):
    run_and_check_modes(case, dtype, ctx, tmp_path)


REDUCED = [c for c in CASES if c.id in (
    "L2-weight-sw", "Huber-rho", "PoissonNLL-full", "SigmoidBCE-pos_weight", "SoftmaxCE-axis1",
    "SoftmaxCE-sw-weight", "Hinge-margin", "Logistic-binary", "KLDiv-sw", "Triplet-margin-sw",
    "CosineEmbedding-margin-sw", "SDML", "CTC-lengths")]


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("case", REDUCED, ids=ids(REDUCED))
def test_reductions_in_every_mode(case, reduction, ctx, tmp_path):
    run_and_check_modes(case, "float32", ctx, tmp_path, reduction=reduction)
