"""The README's main job (gluonx.demo) runs end to end, in a short form."""
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytest.importorskip("tqdm", reason="the demo extra (tqdm) is not installed")
pytest.importorskip("matplotlib", reason="the demo extra (matplotlib) is not installed")


def test_demo_runs_and_round_trips_exports(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "gluonx.demo", "--scale", "0.1", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600, cwd=REPO, stdin=subprocess.DEVNULL,
                          env={**os.environ, "MPLBACKEND": "Agg"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    for model in ("classifier", "sequence", "embedding"):
        assert f"\n{model} " in out, out
    assert "final loss mxnet" in out and "max|step diff|" in out, out
    # switching the loss module keeps the numbers: every per-step difference is tiny
    rows = [line.split("|") for line in out.splitlines()
            if line.split("|")[0].strip() in ("classifier", "sequence", "embedding")]
    assert len(rows) == 3 and all(float(r[4]) < 1e-4 for r in rows), out
    assert out.count("same loss") == 3
    assert (tmp_path / "loss_curves.png").stat().st_size > 10000
    for name in ("classifier", "recogniser", "embedder"):
        assert (tmp_path / f"{name}-symbol.json").exists()
        assert (tmp_path / f"{name}-0000.params").exists()
