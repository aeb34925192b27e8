"""Start an MXNet parameter-server job (``kvstore='dist_sync'``) on this machine.

MXNet's distributed kvstore needs one scheduler, one or more servers and the
workers, each a process with ``DMLC_*`` variables in its environment. This
launcher starts all of them on this machine, bound to the loopback address,
waits for the workers with a time limit and cleans up every process it
started, also when a worker fails or the time runs out::

    python -m gluonx.dist -n 2 -- python train.py --kvstore dist_sync

or from Python::

    from gluonx.dist import launch
    launch([sys.executable, "train.py"], num_workers=2, timeout=120)

In a worker, ``mx.kv.create('dist_sync')`` connects to the scheduler; take the
worker's share of the data by ``kv.rank`` (given out by the scheduler, not in
launch order) and pass the *global* batch size to ``trainer.step``. See
``docs/distributed.md`` for launching on several machines.

(MXNet 1.9.1's own ``tools/launch.py`` fails on Python >= 3.9 and binds to
the machine's external address, hence this module.)
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import time

LOOPBACK = "127.0.0.1"

# Scheduler and server only need to import mxnet: with DMLC_ROLE set to
# "scheduler" or "server", mxnet runs that role at import and exits when the
# workers are done. gluonx is imported first so that mxnet imports on new numpys.
_PS_PROCESS = ("import sys; sys.path.insert(0, %r); import gluonx._compat"
               % os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class LaunchError(RuntimeError):
    """A process of the job failed, or the job ran out of time."""


def free_port(host=LOOPBACK):
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def job_env(role, port, num_workers, num_servers, host=LOOPBACK, base=None):
    """The environment of one process of the job."""
    env = dict(os.environ if base is None else base)
    env.update({
        "DMLC_ROLE": role,
        "DMLC_PS_ROOT_URI": host,         # the scheduler's address
        "DMLC_PS_ROOT_PORT": str(port),
        "DMLC_NUM_WORKER": str(num_workers),
        "DMLC_NUM_SERVER": str(num_servers),
        "DMLC_NODE_HOST": host,           # the address this process binds to and announces
    })
    if host == LOOPBACK:
        env["DMLC_INTERFACE"] = "lo"
    env.setdefault("PS_VERBOSE", "0")
    return env


def _kill(procs, grace=3.0):
    """Terminate, then kill, the process groups of ``procs`` (each started in its own session)."""
    alive = [p for p in procs if p.poll() is None]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in alive:
            try:
                os.killpg(p.pid, sig)  # the group was created for this process alone
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(p.poll() is None for p in alive):
            time.sleep(0.05)
        alive = [p for p in alive if p.poll() is None]
        if not alive:
            break
    for p in procs:
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:  # pragma: no cover - unkillable process
            pass


def launch(command, num_workers=2, num_servers=1, timeout=300.0, log_dir=None, env=None,
           port=None, host=LOOPBACK, python=sys.executable):
    """Run ``command`` (a list) as ``num_workers`` workers of a ``dist_sync`` job.

    Starts the scheduler and ``num_servers`` servers as ``python -c 'import
    mxnet'`` processes, then the workers, all with the ``DMLC_*`` variables and
    bound to ``host`` (loopback by default). Waits at most ``timeout`` seconds
    for the whole job. With ``log_dir``, each process writes its output to
    ``log_dir/<role>-<i>.log``; otherwise output goes to this process's.

    Returns the workers' exit codes (all 0). Raises :class:`LaunchError` when
    a process fails or the time runs out; every process started here is then
    terminated (its whole process group), and no other process is touched.
    """
    if num_workers < 1 or num_servers < 1:
        raise ValueError("num_workers and num_servers must be >= 1")
    port = port or free_port(host)
    procs, roles, files = [], [], []
    deadline = time.monotonic() + timeout

    def start(role, index, argv):
        out = None
        if log_dir is not None:
            os.makedirs(log_dir, exist_ok=True)
            out = open(os.path.join(log_dir, f"{role}-{index}.log"), "wb")
            files.append(out)
        proc = subprocess.Popen(argv, env=job_env(role, port, num_workers, num_servers, host, env),
                                stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT if out else None,
                                start_new_session=True)
        procs.append(proc)
        roles.append(f"{role} {index}")
        return proc

    try:
        start("scheduler", 0, [python, "-c", _PS_PROCESS])
        for i in range(num_servers):
            start("server", i, [python, "-c", _PS_PROCESS])
        workers = [start("worker", i, list(command)) for i in range(num_workers)]
        # wait for the workers; any failure ends the job
        while True:
            codes = [w.poll() for w in workers]
            failed = [(roles[procs.index(w)], c) for w, c in zip(workers, codes) if c not in (None, 0)]
            if failed:
                raise LaunchError(f"worker failed: {failed}" + _log_hint(log_dir))
            for p, r in zip(procs, roles):
                if r.startswith(("scheduler", "server")) and p.poll() not in (None, 0):
                    raise LaunchError(f"{r} exited with {p.returncode}" + _log_hint(log_dir))
            if all(c == 0 for c in codes):
                break
            if time.monotonic() > deadline:
                raise LaunchError(f"timed out after {timeout:g} s; still running: "
                                  f"{[r for p, r in zip(procs, roles) if p.poll() is None]}"
                                  + _log_hint(log_dir))
            time.sleep(0.05)
        # the scheduler and servers stop once every worker has finalised its kvstore
        for p, r in zip(procs, roles):
            remaining = max(0.0, min(10.0, deadline - time.monotonic()))
            try:
                p.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                pass  # cleaned up below; the workers' results stand
        return codes
    finally:
        _kill(procs)
        for f in files:
            f.close()


def _log_hint(log_dir):
    return f" (logs in {log_dir})" if log_dir else ""


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m gluonx.dist",
        description="Run COMMAND as the workers of an MXNet dist_sync job on this machine "
                    "(scheduler, servers and workers bound to 127.0.0.1).",
        epilog="example: python -m gluonx.dist -n 2 -- python train.py --kvstore dist_sync")
    parser.add_argument("-n", "--num-workers", type=int, default=2)
    parser.add_argument("-s", "--num-servers", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds for the whole job")
    parser.add_argument("--log-dir", default=None, help="write each process's output to a file here")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the worker command (after --)")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no worker command given")
    try:
        launch(command, args.num_workers, args.num_servers, args.timeout, args.log_dir)
    except LaunchError as err:
        print(f"gluonx.dist: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
