#!/usr/bin/env bash
# STIA-Kit set-up and the two README commands. Needs only Python >= 3.10 on the machine.
#   bash bootstrap.sh quickstart   # venv + install + kernel + SynthActions + execute notebooks/00_quickstart.ipynb
#   bash bootstrap.sh test         # venv + install + kernel + the test suite
#   bash bootstrap.sh setup        # only the environment (.venv), e.g. before opening JupyterLab
# Environment variables: PYTHON (interpreter used to create the venv, default python3),
# STIA_VENV (venv location, default .venv), STIA_RUNS (output folder, default runs).
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
VENV=${STIA_VENV:-.venv}
RUNS=${STIA_RUNS:-runs}

setup() {
    "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "STIA-Kit needs Python >= 3.10, found " + sys.version.split()[0])'
    if [ ! -x "$VENV/bin/python" ]; then
        echo "[stia] creating virtual environment $VENV"
        "$PYTHON" -m venv "$VENV"
    fi
    echo "[stia] installing pinned dependencies (requirements/constraints.txt) and stia_kit"
    # torch==2.13.0 is pinned: an unpinned torch would pull a multi-GB CUDA build.
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c requirements/constraints.txt -e '.[test,course,cluster]'
    echo "[stia] registering the Jupyter kernel 'stia-kit' inside $VENV"
    # --sys-prefix, not --user: a per-user kernel would point at whichever clone ran bootstrap last
    # (a CI clone once redirected everyone's 'stia-kit' kernel to its own, since-deleted venv).
    "$VENV/bin/python" -m ipykernel install --sys-prefix --name stia-kit --display-name "Python (STIA-Kit)" >/dev/null
    # A user-level 'stia-kit' kernel (older bootstraps) shadows this one: drop it when its python is gone.
    "$VENV/bin/python" - <<'PY'
import json, os, shutil
from jupyter_core.paths import jupyter_data_dir
spec = os.path.join(jupyter_data_dir(), "kernels", "stia-kit")
try:
    exe = json.load(open(os.path.join(spec, "kernel.json")))["argv"][0]
except (OSError, ValueError, KeyError, IndexError):
    exe = None
if os.path.isdir(spec) and (exe is None or not os.access(exe, os.X_OK)):
    shutil.rmtree(spec)
    print(f"[stia] removed the stale user kernel {spec} (its python {exe} no longer exists)")
elif exe is not None:
    print(f"[stia] note: the user kernel {spec} (python {exe}) shadows this venv's 'stia-kit' kernel")
PY
}

case "${1:-}" in
    setup)
        setup
        ;;
    quickstart)
        setup
        shift
        "$VENV/bin/stia" quickstart --out "$RUNS/quickstart" --data data/synth --kernel stia-kit "$@"
        ;;
    test)
        setup
        shift
        "$VENV/bin/python" -m pytest "$@"
        ;;
    *)
        echo "usage: bash bootstrap.sh {quickstart|test|setup} [extra args]" >&2
        exit 2
        ;;
esac
