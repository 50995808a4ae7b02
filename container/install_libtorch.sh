#!/usr/bin/env bash
# container/install_libtorch.sh - build stage of the Dockerfile: libtorch from the torch wheel
# (the same version build.sh uses) in a virtual environment, as much of it as the flavour needs.
#
#   install_libtorch.sh cpu|gpu TORCH_VERSION VENV
#
# cpu: the torch wheel alone (--no-deps), plus the two CUDA runtime wheels libtorch_cpu.so is
#      linked against (libcudart, libcupti: they load without a GPU or a driver), at the exact
#      versions the torch wheel pins. No cuDNN, NCCL or cuBLAS.
# gpu: torch with all its NVIDIA wheels (cuDNN, NCCL, cuBLAS...), plus nvcc and the headers of
#      the same CUDA release from PyPI: libtorch's CMake config wants a CUDA toolkit.
# The pins come from pip's resolver run on metadata only, so nothing here repeats them.
set -euo pipefail

die() { echo "install_libtorch.sh: $*" >&2; exit 1; }

[ $# -eq 3 ] || die "usage: install_libtorch.sh cpu|gpu TORCH_VERSION VENV"
flavour=$1 version=$2 venv=$3
case "$flavour" in
cpu | gpu) ;;
*) die "FLAVOUR must be cpu or gpu, not '$flavour'" ;;
esac
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "TORCH_VERSION '$version' is not X.Y.Z"

python3 -m venv "$venv"
pip=("$venv/bin/pip" --disable-pip-version-check --quiet)

report=$(mktemp)
trap 'rm -f "$report"' EXIT
"${pip[@]}" install --dry-run --report "$report" "torch==$version" ||
    die "pip cannot resolve torch==$version (network? version?)"

# pinned NAME: the version pip would install NAME at together with torch.
pinned() {
    "$venv/bin/python" - "$report" "$1" <<'PY' || die "torch==$version does not depend on $1; update this script"
import json, re, sys
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
items = json.load(open(sys.argv[1]))["install"]
found = [i["metadata"]["version"] for i in items if norm(i["metadata"]["name"]) == norm(sys.argv[2])]
if not found:
    sys.exit(1)
print(found[0])
PY
}

if [ "$flavour" = cpu ]; then
    cudart=$(pinned nvidia-cuda-runtime)
    cupti=$(pinned nvidia-cuda-cupti)
    "${pip[@]}" install --no-deps "torch==$version" "nvidia-cuda-runtime==$cudart" \
        "nvidia-cuda-cupti==$cupti"
else
    toolkit=$(pinned cuda-toolkit)
    "${pip[@]}" install "torch==$version" "cuda-toolkit[nvcc]==$toolkit"
fi

site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
[ -f "$site/torch/lib/libtorch_cpu.so" ] || die "no libtorch_cpu.so in $site/torch/lib"
if [ "$flavour" = gpu ]; then
    [ -f "$site/torch/lib/libtorch_cuda.so" ] || die "the torch wheel has no libtorch_cuda.so"
    ls "$site"/nvidia/*/bin/nvcc >/dev/null 2>&1 || die "no nvcc under $site/nvidia/*/bin"
fi
echo "install_libtorch.sh: torch $version ($flavour) in $site"
