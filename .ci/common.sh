# Shared by .ci/run and .ci/demo (sourced, not run). Bash, set -euo pipefail by the caller.
# Everything is installed into virtual environments inside the checkout (.venv-*/, git-ignored),
# so a fresh machine needs only a CPython 3.11 (and 3.12 for CI) with venv.

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_PROGRESS_BAR=off
export PYTHONDONTWRITEBYTECODE=1 MPLBACKEND=Agg
# torch==2.13.0 (CPU, cp311) lies in /opt/wheels on the project's machines; elsewhere pip gets it from PyPI.
if [ -d /opt/wheels ]; then export PIP_FIND_LINKS="/opt/wheels${PIP_FIND_LINKS:+ $PIP_FIND_LINKS}"; fi

log() { printf '\n=== %s  [%s]\n' "$*" "$(date -u +%H:%M:%S)"; }

# find_python 3.11 -> path of a python3.11 interpreter (PATH first, then pyenv, then /usr/bin).
find_python() {
    local v=$1 cand
    for cand in "$(command -v "python$v" 2>/dev/null || true)" \
                "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$v"*/bin/"python$v" \
                /usr/local/bin/"python$v" /usr/bin/"python$v"; do
        if [ -n "$cand" ] && [ -x "$cand" ] && "$cand" -c 'import venv, ensurepip' >/dev/null 2>&1; then
            echo "$cand"; return 0
        fi
    done
    # `python3` itself may be the wanted version
    if command -v python3 >/dev/null && python3 -c "import sys; sys.exit(sys.version[:len('$v')] != '$v')"; then
        command -v python3; return 0
    fi
    echo "error: no Python $v with venv found (looked on PATH and in pyenv)" >&2
    return 1
}

# make_venv DIR PYTHON: (re)create a virtual environment unless it is already there and working.
make_venv() {
    local dir=$1 py=$2
    if [ ! -x "$dir/bin/python" ] || ! "$dir/bin/python" -c 'import pip' >/dev/null 2>&1; then
        rm -rf "$dir"
        "$py" -m venv "$dir"
    fi
    "$dir/bin/python" -m pip install -q --upgrade "pip>=23" "setuptools>=68" wheel
}
