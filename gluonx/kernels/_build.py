"""Compile the kernel sources into a shared library and cache it.

The library is built against the header of the *installed* mxnet
(``<mxnet>/include/mxnet/lib_api.h`` and ``<mxnet>/src/lib_api.cc``, both in
the wheel), once per mxnet version, compiler, machine and source hash, in
``$GLUONX_CACHE_DIR`` or ``$XDG_CACHE_HOME/gluonx`` (default ``~/.cache/gluonx``).
"""
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile

import mxnet

LIBRARY_NAME = "libgluonx_kernels.so"
SOURCE_DIR = os.path.dirname(os.path.abspath(__file__))
# -fno-trapping-math lets GCC if-convert (so vectorise) the branch-free math;
# neither flag changes IEEE results (inf and nan still propagate).
CXX_FLAGS = ["-O3", "-std=c++17", "-fPIC", "-fopenmp", "-DNDEBUG", "-fno-trapping-math",
             "-fno-math-errno"]
GLUE_FLAGS = ["-O1", "-std=c++17", "-fPIC"]  # lib_api.cc: glue, not hot


class BuildError(RuntimeError):
    """The kernel library could not be built (no compiler, compile error, ...)."""


def mxnet_dir():
    return os.path.dirname(os.path.abspath(mxnet.__file__))


def _mxnet_files():
    root = mxnet_dir()
    header = os.path.join(root, "include", "mxnet", "lib_api.h")
    glue = os.path.join(root, "src", "lib_api.cc")
    for path in (header, glue):
        if not os.path.isfile(path):
            raise BuildError("the installed mxnet has no %s; it cannot load compiled "
                             "operators" % path)
    return os.path.join(root, "include"), glue


def sources():
    """The kernel sources: every *.cc and *.h next to this file, sorted."""
    names = sorted(n for n in os.listdir(SOURCE_DIR) if n.endswith((".cc", ".h")))
    return [os.path.join(SOURCE_DIR, n) for n in names]


def compiler():
    """The C++ compiler command ($CXX or g++/c++/clang++), or None. Starts no process."""
    for name in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if name and shutil.which(name):
            return name
    return None


_memo = {}


def _compiler_id(cxx):
    """e.g. 'g++-1a2b3c4d': the command's name and a hash of the binary it
    resolves to (real path, size, modification time). Starts no process, so
    that computing the cache key (at ``import gluonx``) stays cheap; a new
    or upgraded compiler gets a new key. Computed once per process and
    compiler."""
    key = ("cxx", cxx, os.environ.get("PATH"))
    if key not in _memo:
        found = shutil.which(cxx)
        identity = cxx
        if found:
            real = os.path.realpath(found)
            try:
                st = os.stat(real)
                identity = "%s:%d:%d" % (real, st.st_size, st.st_mtime_ns)
            except OSError:
                identity = real
        name = os.path.basename(cxx)
        _memo[key] = "".join(c if c.isalnum() or c in ".-+" else "_" for c in "%s-%s" % (
            name, hashlib.sha256(identity.encode()).hexdigest()[:8]))
    return _memo[key]


def _cpu_id():
    """What -march=native depends on: the machine and its CPU feature flags."""
    if "cpu" not in _memo:
        flags = ""
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith(("flags", "Features")):
                        flags = line
                        break
        except OSError:
            pass
        _memo["cpu"] = platform.machine() + flags
    return _memo["cpu"]


def cache_root():
    root = os.environ.get("GLUONX_CACHE_DIR")
    if root:
        return root
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "gluonx")


def _digest(paths):
    """Hash of the kernel sources, mxnet's extension header and glue, the
    flags and the CPU; once per process (per set of files and their mtimes)."""
    stamps = []
    for path in paths:
        try:
            stamps.append((path, os.stat(path).st_mtime_ns))
        except OSError:
            stamps.append((path, None))
    key = ("digest", tuple(stamps))
    if key not in _memo:
        digest = hashlib.sha256()
        for path in paths:
            digest.update(os.path.basename(path).encode())
            with open(path, "rb") as f:
                digest.update(f.read())
        digest.update(" ".join(CXX_FLAGS + GLUE_FLAGS).encode())
        digest.update(_cpu_id().encode())
        _memo[key] = digest.hexdigest()[:16]
    return _memo[key]


def library_path(cxx=None):
    """Where the library for this mxnet, compiler, machine and source lives.
    Starts no process."""
    cxx = cxx or compiler() or "none"
    include, glue = _mxnet_files()
    digest = _digest(sources() + [os.path.join(include, "mxnet", "lib_api.h"), glue])
    tag = "%s-%s-%s" % (mxnet.__version__, _compiler_id(cxx), digest)
    return os.path.join(cache_root(), tag, LIBRARY_NAME)


FAILURE_MARKER = "BUILD_FAILED"


def failure_marker(cxx=None):
    """The file that remembers a failed build of this cache key."""
    try:
        return os.path.join(os.path.dirname(library_path(cxx)), FAILURE_MARKER)
    except (BuildError, OSError):
        return None


def failure():
    """The error of an earlier failed build of this cache key (any process), or None."""
    marker = failure_marker()
    if marker is None or not os.path.isfile(marker):
        return None
    try:
        with open(marker) as f:
            return f.read().strip() or "unknown error"
    except OSError:
        return None


def _remember_failure(message, cxx):
    marker = failure_marker(cxx)
    if marker is None:
        return
    try:
        os.makedirs(os.path.dirname(marker), exist_ok=True)
        with open(marker, "w") as f:
            f.write(message[-2000:])
    except OSError:
        pass


def _run_parallel(commands, jobs):
    """Run compiler commands, at most `jobs` at a time; raise on the first failure."""
    pending = list(commands)
    running = []
    errors = []
    while pending or running:
        while pending and len(running) < jobs:
            cmd = pending.pop(0)
            running.append((cmd, subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                                  stderr=subprocess.STDOUT, text=True)))
        cmd, proc = running.pop(0)
        out, _ = proc.communicate()
        if proc.returncode != 0:
            errors.append("$ %s\n%s" % (" ".join(cmd), out))
    if errors:
        raise BuildError("compiling the gluonx kernels failed:\n" + "\n".join(errors)[-4000:])


def build(force=False, verbose=False):
    """Compile the library if it is not cached yet; return its path.

    Raises BuildError when there is no compiler or compilation fails, and
    leaves a marker (:func:`failure`) so that later processes do not retry
    until the cache key changes or ``build`` is called again.
    """
    cxx = compiler()
    marker = failure_marker(cxx)
    if marker is not None and os.path.isfile(marker):
        try:
            os.remove(marker)
        except OSError:
            pass
    try:
        return _build(cxx, force, verbose)
    except BuildError as err:
        _remember_failure(str(err), cxx)
        raise


def _build(cxx, force, verbose):
    if cxx is None:
        raise BuildError("no C++ compiler found (set $CXX, or install g++)")
    target = library_path(cxx)
    if os.path.isfile(target) and not force:
        return target
    include, glue = _mxnet_files()
    os.makedirs(os.path.dirname(target), exist_ok=True)
    work = tempfile.mkdtemp(prefix="build-", dir=os.path.dirname(target))
    try:
        march = ["-march=native"] if _accepts(cxx, "-march=native", work) else []
        if march and _accepts(cxx, "-mprefer-vector-width=512", work):
            march.append("-mprefer-vector-width=512")
        objects, commands = [], []
        for src in sources():
            if not src.endswith(".cc"):
                continue
            obj = os.path.join(work, os.path.basename(src)[:-3] + ".o")
            objects.append(obj)
            commands.append([cxx] + CXX_FLAGS + march + ["-I", include, "-I", SOURCE_DIR,
                                                         "-c", src, "-o", obj])
        glue_obj = os.path.join(work, "lib_api.o")
        objects.append(glue_obj)
        commands.append([cxx] + GLUE_FLAGS + ["-I", include, "-c", glue, "-o", glue_obj])
        if verbose:
            for cmd in commands:
                print(" ".join(cmd))
        _run_parallel(commands, jobs=max(1, os.cpu_count() or 1))
        tmp_lib = os.path.join(work, LIBRARY_NAME)
        link = [cxx, "-shared", "-fopenmp"] + objects + ["-o", tmp_lib]
        _run_parallel([link], jobs=1)
        os.replace(tmp_lib, target)  # atomic: concurrent builders never see half a file
    except OSError as err:
        raise BuildError("compiling the gluonx kernels failed: %s" % err) from err
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _accepts(cxx, flag, work):
    """Whether the compiler accepts `flag` (clang on some ARM Macs rejects -march=native)."""
    probe = os.path.join(work, "probe.cc")
    with open(probe, "w") as f:
        f.write("int main() { return 0; }\n")
    try:
        result = subprocess.run([cxx, flag, "-c", probe, "-o", probe + ".o"],
                                capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0
