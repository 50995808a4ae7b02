#!/usr/bin/env bash
# container/build_programs.sh - build stage of the Dockerfile: compile `train`, `serve` and
# libtorchc against the venv's libtorch and install them as PREFIX/bin/{train,serve} and
# PREFIX/lib/libtorchc.so.
#
#   build_programs.sh cpu|gpu VENV SRC PREFIX
#
# At run time they find libtorch through $ORIGIN rpaths into PREFIX/torch/lib and
# PREFIX/nvidia/*/lib, where stage_runtime_libs.sh copies the wheels' libraries in the wheels'
# own layout (so libtorch's own $ORIGIN/../../nvidia rpaths keep working): no LD_LIBRARY_PATH.
# No -march flags: the image is built on one machine and runs on whatever CPU the instance has.
set -euo pipefail

die() { echo "build_programs.sh: $*" >&2; exit 1; }

[ $# -eq 4 ] || die "usage: build_programs.sh cpu|gpu VENV SRC PREFIX"
flavour=$1 venv=$2 src=$3 prefix=$4
[ -f "$src/CMakeLists.txt" ] || die "$src has no CMakeLists.txt"
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
[ -d "$site/torch/share/cmake" ] || die "no torch in $venv (run install_libtorch.sh first)"

# One rpath for the programs (PREFIX/bin) and libtorchc (PREFIX/lib): both sit one level down.
# The build tree then has no rpath to the venv, so the linker is told where libtorch is now.
rpath='$ORIGIN/../lib;$ORIGIN/../torch/lib'
rpath_link=-Wl,-rpath-link,$site/torch/lib
for dir in "$site"/nvidia/*/lib; do
    [ -d "$dir" ] || continue
    rpath+=";\$ORIGIN/../nvidia/$(basename "$(dirname "$dir")")/lib"
    rpath_link+=,-rpath-link,$dir
done

build=$(mktemp -d)
args=(-S "$src" -B "$build" -DCMAKE_PREFIX_PATH="$site/torch/share/cmake"
      -DPython3_EXECUTABLE="$venv/bin/python"
      -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON "-DCMAKE_INSTALL_RPATH=$rpath"
      "-DCMAKE_EXE_LINKER_FLAGS=$rpath_link" "-DCMAKE_SHARED_LINKER_FLAGS=$rpath_link")
if [ "$flavour" = cpu ]; then
    args+=(-DTORCHC_CPU_ONLY=ON)
else
    # The CUDA toolkit pip installed (install_libtorch.sh): nvcc, headers and libraries in one
    # tree. Its libraries carry only versioned names; CMake's finders look for libX.so.
    nvcc=$(ls "$site"/nvidia/*/bin/nvcc 2>/dev/null | head -n 1)
    [ -n "$nvcc" ] || die "no nvcc under $site/nvidia/*/bin (run install_libtorch.sh gpu)"
    cuda=${nvcc%/bin/nvcc}
    for lib in "$cuda"/lib/lib*.so.[0-9]*; do
        base=${lib%%.so.*}.so
        [ -e "$base" ] || ln -s "$(basename "$lib")" "$base"
    done
    args+=(-DCUDA_TOOLKIT_ROOT_DIR="$cuda" -DCUDAToolkit_ROOT="$cuda" -DCMAKE_CUDA_COMPILER="$nvcc")
    # We compile no CUDA code; this only keeps libtorch's config from probing for a GPU.
    export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-"7.5;8.0;8.6;9.0;10.0;12.0"}
fi

cmake "${args[@]}" >"$build/configure.log" 2>&1 || { cat "$build/configure.log"; die "cmake configure failed"; }
cmake --build "$build" -j "${JOBS:-$(nproc)}" --target train serve

install -d "$prefix/bin" "$prefix/lib"
install -m 755 "$build/bin/train" "$build/bin/serve" "$prefix/bin/"
install -m 755 "$build/libtorchc.so" "$prefix/lib/"
strip --strip-debug "$prefix/bin/train" "$prefix/bin/serve" "$prefix/lib/libtorchc.so"
rm -rf "$build"
echo "build_programs.sh: train, serve and libtorchc.so ($flavour) in $prefix"
