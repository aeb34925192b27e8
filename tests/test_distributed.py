"""MXNet's parameter-server engine with a gluonx loss (issue 5, item 3).

One scheduler, one server and two workers run as separate processes, all bound
to 127.0.0.1, started by ``gluonx.dist.launch`` with a time limit. Training
``examples/dist_train.py`` with ``kvstore='dist_sync'`` must end with the same
parameters as local training on the same data. The launcher's failure paths
(a failing worker, a hanging job) must end every process it started.
"""
import os
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest

from gluonx import dist

import importlib.util

import mxnet as mx

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "dist_train.py")
_spec = importlib.util.spec_from_file_location("gluonx_example_dist_train", EXAMPLE)
example = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(example)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc to find processes")


def tagged_processes(tag):
    """pids of the processes whose environment holds GLUONX_TEST_TAG=tag."""
    needle = f"GLUONX_TEST_TAG={tag}".encode()
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    found.append(int(pid))
        except OSError:
            continue
    return found


@pytest.fixture
def tag_env():
    tag = uuid.uuid4().hex
    yield tag, {**os.environ, "GLUONX_TEST_TAG": tag}
    left = tagged_processes(tag)
    assert not left, f"processes left behind: {left}"


def test_job_env_is_loopback_only():
    env = dist.job_env("worker", 9000, 2, 1, base={})
    assert env["DMLC_PS_ROOT_URI"] == "127.0.0.1" and env["DMLC_NODE_HOST"] == "127.0.0.1"
    assert env["DMLC_ROLE"] == "worker" and env["DMLC_NUM_WORKER"] == "2" and env["DMLC_NUM_SERVER"] == "1"


@pytest.mark.parametrize("cpus", [1, 2], ids=["1cpu-per-worker", "2cpus-per-worker"])
def test_dist_sync_matches_local_training(tmp_path, tag_env, cpus):
    tag, env = tag_env
    out = tmp_path / "params"
    cmd = [sys.executable, EXAMPLE, "--kvstore", "dist_sync", "--cpus", str(cpus), "--out", str(out)]
    codes = dist.launch(cmd, num_workers=2, num_servers=1, timeout=120, log_dir=str(tmp_path / "logs"),
                        env=env)
    assert codes == [0, 0]
    local, _, _ = example.train("local", [mx.cpu()])
    start, _, _ = example.train("local", [mx.cpu()], steps=0)
    for rank in (0, 1):
        with np.load(out / f"params-{rank}.npz") as got:
            assert sorted(got.files) == sorted(local)
            for key in local:
                np.testing.assert_allclose(got[key], local[key], rtol=1e-5, atol=1e-6,
                                           err_msg=f"worker {rank}: {key}")
    assert max(float(np.abs(local[k] - start[k]).max()) for k in local) > 1e-3


def test_failing_worker_ends_the_job(tmp_path, tag_env):
    tag, env = tag_env
    tic = time.monotonic()
    with pytest.raises(dist.LaunchError, match="worker failed"):
        dist.launch([sys.executable, "-c", "import sys; sys.exit(3)"], num_workers=2, timeout=60,
                    log_dir=str(tmp_path), env=env)
    assert time.monotonic() - tic < 30


def test_hanging_job_times_out_and_is_cleaned_up(tmp_path, tag_env):
    tag, env = tag_env
    tic = time.monotonic()
    # one worker never connects, so the scheduler waits for it forever
    with pytest.raises(dist.LaunchError, match="timed out"):
        dist.launch([sys.executable, "-c", "import time; time.sleep(600)"], num_workers=2, timeout=3,
                    log_dir=str(tmp_path), env=env)
    assert time.monotonic() - tic < 30


def test_command_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "gluonx.dist", "-n", "2", "--timeout", "120", "--",
                           sys.executable, EXAMPLE, "--kvstore", "dist_sync", "--cpus", "1", "--steps", "2"],
                          capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "worker 0/2" in proc.stdout and "worker 1/2" in proc.stdout
