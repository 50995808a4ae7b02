#!/usr/bin/env bash
# tests/notebooks/run_notebooks.sh - the notebooks' test (./build.sh notebooks; .ci/run):
# executes notebooks/local_train_serve.ipynb with `jupyter nbconvert --execute` (a failing cell
# fails the test) and checks both notebooks with check_notebooks.py (the SageMaker one needs AWS,
# so it is validated, not run). Installs nbconvert, nbclient, ipykernel, matplotlib and
# nbformat into the build's Python environment when they are missing (pip).
#
#   tests/notebooks/run_notebooks.sh            (after ./build.sh: it uses build/bin/train, serve)
#
# Environment: VENV (~/.cache/sagemaker-ic-c/venv, as build.sh), NOTEBOOK_TIMEOUT (600 s a cell).
set -euo pipefail
cd "$(dirname "$0")/../.."

log() { printf '[notebooks] %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

venv=${VENV:-$HOME/.cache/sagemaker-ic-c/venv}
timeout=${NOTEBOOK_TIMEOUT:-600}
[[ "$timeout" =~ ^[0-9]+$ ]] || die "NOTEBOOK_TIMEOUT '$timeout' is not a number of seconds"
[ -x "$venv/bin/python" ] || die "no Python environment at $venv: run ./build.sh first"
for program in build/bin/train build/bin/serve; do
    [ -x "$program" ] || die "$program is missing: run ./build.sh first"
done

if ! "$venv/bin/python" -c 'import nbconvert, nbclient, ipykernel, matplotlib, nbformat, numpy' 2>/dev/null; then
    log "installing nbconvert, nbclient, ipykernel, matplotlib and nbformat into $venv"
    "$venv/bin/pip" install -q nbconvert nbclient ipykernel matplotlib nbformat ||
        die "pip could not install the notebook packages"
fi

started=$SECONDS
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
log "executing notebooks/local_train_serve.ipynb"
# An empty Jupyter data folder: the kernel is this environment's own python3, whatever kernels
# the user has installed elsewhere. Plots go to the notebook, no display needed.
(cd notebooks && JUPYTER_DATA_DIR="$out/jupyter" MPLBACKEND=module://matplotlib_inline.backend_inline \
    "$venv/bin/jupyter" nbconvert --to notebook --execute --ExecutePreprocessor.kernel_name=python3 \
    --ExecutePreprocessor.timeout="$timeout" --output-dir "$out" local_train_serve.ipynb) ||
    die "notebooks/local_train_serve.ipynb failed (the failing cell's traceback is above)"
executed=$SECONDS

"$venv/bin/python" tests/notebooks/check_notebooks.py --readme README.md \
    --local notebooks/local_train_serve.ipynb --sagemaker notebooks/sagemaker_byoc.ipynb ||
    die "the notebooks' checks failed"
log "PASS: local notebook executed in $((executed - started)) s; both notebooks checked"
