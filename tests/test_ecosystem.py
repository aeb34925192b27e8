"""Installation and import behaviour of gluonx (issue 5, item 2).

* ``gluonx._compat`` restores only what mxnet 1.9.1 needs on new numpys and
  Pythons, and turns a missing mxnet into a clear ImportError;
* the package metadata never requires ``mxnet`` outside the ``cpu`` extra, so
  ``pip install gluonx`` leaves a user's ``mxnet-cu112``/``mxnet-mkl`` in place
  (checked for real: a wheel of gluonx installed with pip next to a fake
  ``mxnet-cu112`` distribution, with no package index at all).
"""
import email.parser
import os
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_python(code, *args, env=None, python=sys.executable):
    return subprocess.run([python, *args, "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=300, env=env)


def test_compat_restores_numpy_aliases_and_imports_mxnet():
    proc = run_python(f"""
        import sys
        sys.path.insert(0, {REPO!r})
        import gluonx._compat
        import numpy as np, mxnet as mx
        assert np.bool is bool, np.bool
        assert mx.nd.array([1, 2]).sum().asscalar() == 3
        print("ok", np.__version__, mx.__version__)
        """)
    assert proc.returncode == 0, proc.stderr
    assert "ok" in proc.stdout


@pytest.mark.skipif(sys.version_info < (3, 12), reason="distutils is only gone on Python >= 3.12")
def test_compat_provides_distutils_on_312():
    proc = run_python(f"""
        import sys
        sys.path.insert(0, {REPO!r})
        import gluonx._compat
        import distutils.version
        print("ok")
        """)
    assert proc.returncode == 0, proc.stderr


def test_missing_mxnet_gives_clear_import_error(tmp_path):
    # An interpreter that sees numpy and gluonx but no mxnet at all.
    os.symlink(os.path.dirname(np.__file__), tmp_path / "numpy")
    proc = run_python(f"""
        import sys
        sys.path[:0] = [{str(tmp_path)!r}, {REPO!r}]
        try:
            import gluonx
        except ImportError as err:
            print("IMPORTERROR:", err)
        else:
            raise SystemExit("gluonx imported without mxnet")
        """, "-I", "-S")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "IMPORTERROR:" in out
    assert "no importable 'mxnet'" in out
    assert "pip install gluonx[cpu]" in out and "mxnet-cu" in out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "--no-index", "-q", "-w", str(out), REPO],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 and "No module named" in proc.stderr and "setuptools" in proc.stderr:
        pytest.skip("setuptools is not installed here")  # pragma: no cover
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (path,) = out.glob("gluonx-*.whl")
    return path


def wheel_metadata(path):
    with zipfile.ZipFile(path) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        return email.parser.Parser().parsestr(zf.read(name).decode()), zf.namelist()


def test_metadata_requires_numpy_only(wheel):
    meta, names = wheel_metadata(wheel)
    requires = meta.get_all("Requires-Dist")
    base = [r for r in requires if "extra ==" not in r]
    assert [r.split(">")[0].split("<")[0].split("=")[0].strip() for r in base] == ["numpy"], base
    mx_reqs = [r for r in requires if r.lower().startswith("mxnet")]
    assert mx_reqs and all("extra == \"cpu\"" in r for r in mx_reqs), mx_reqs
    assert {"cpu", "test", "docs", "demo"} <= set(meta.get_all("Provides-Extra"))
    assert not any(r.startswith("torch") for r in requires)
    assert "gluonx/__init__.py" in names and "gluonx/_compat.py" in names


def _fake_dist(site, name, version, package=None):
    """Register an installed distribution the way pip does (a .dist-info folder)."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "INSTALLER").write_text("pip\n")
    files = [f"{info.name}/METADATA", f"{info.name}/INSTALLER", f"{info.name}/RECORD"]
    if package:
        (site / package).mkdir()
        (site / package / "__init__.py").write_text(f"__version__ = '{version}'\nBUILD = '{name}'\n")
        files.append(f"{package}/__init__.py")
    (info / "RECORD").write_text("".join(f"{f},,\n" for f in files))


def test_pip_install_keeps_users_mxnet_build(wheel, tmp_path):
    """pip install gluonx beside mxnet-cu112: nothing to download, mxnet-cu112 stays."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = next((venv / "lib").glob("python3*/site-packages"))
    _fake_dist(site, "mxnet-cu112", "1.9.1", package="mxnet")
    _fake_dist(site, "numpy", "1.23.5")
    # --no-index: pip may not fetch anything, so any mxnet requirement would fail to resolve
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-index",
                           "--no-cache-dir", str(wheel)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PIP_FIND_LINKS": "", "PIP_CONSTRAINT": "",
                               "PIP_CONFIG_FILE": os.devnull})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    listing = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "list", "--format=freeze"],
                             capture_output=True, text=True, timeout=120, check=True).stdout
    assert "mxnet-cu112==1.9.1" in listing and "gluonx==" in listing, listing
    assert "\nmxnet==" not in "\n" + listing, listing
    out = subprocess.run([str(py), "-S", "-c",
                          f"import sys; sys.path.append({str(site)!r}); import mxnet; print(mxnet.BUILD)"],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "mxnet-cu112", out.stdout + out.stderr


def test_readme_commands_and_links_exist():
    """The README's set-up commands, modules and links point at things that exist."""
    import re

    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    scripts = re.findall(r"^bash (\S+)", readme, re.M)
    assert scripts[:2] == [".ci/demo", ".ci/run"], scripts
    for script in scripts:
        path = os.path.join(REPO, script)
        assert os.path.isfile(path), script
        proc = subprocess.run(["bash", "-n", path], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
    for module in set(re.findall(r"python -m (gluonx\.\w+)", readme)):
        assert importlib_util_find(module), module
    for target in re.findall(r"\]\(([^)#:]+)\)", readme):
        assert os.path.exists(os.path.join(REPO, target)), target
    for path in re.findall(r"python (\S+\.py)", readme):
        assert os.path.isfile(os.path.join(REPO, path)), path


def importlib_util_find(name):
    import importlib.util

    sys.path.insert(0, REPO)
    try:
        return importlib.util.find_spec(name) is not None
    finally:
        sys.path.remove(REPO)
