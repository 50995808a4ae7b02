#!/usr/bin/env bash
# container/check_runtime.sh - last step of the Dockerfile: fail the image build when `train`
# or `serve` could not start in it: a shared library that does not resolve (only the NVIDIA
# driver's own may be missing: the host mounts them into GPU containers), or the entrypoints
# not being what PATH finds.
#
#   check_runtime.sh PREFIX
set -euo pipefail

die() { echo "check_runtime.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: check_runtime.sh PREFIX"
prefix=$1
missing=$(ldd "$prefix"/bin/train "$prefix"/bin/serve "$prefix"/lib/*.so "$prefix"/torch/lib/*.so* |
    grep 'not found' | grep -v -E '^\s*lib(cuda|nvidia-ml)\.so\.1 ' | sort -u || true)
[ -z "$missing" ] || die "libraries missing from the image:
$missing"
for program in train serve; do
    [ "$(command -v "$program")" = "/usr/local/bin/$program" ] ||
        die "'$program' on PATH is '$(command -v "$program" || true)', not /usr/local/bin/$program"
done
echo "check_runtime.sh: train and serve resolve all their libraries"
