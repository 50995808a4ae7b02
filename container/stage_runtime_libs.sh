#!/usr/bin/env bash
# container/stage_runtime_libs.sh - build stage of the Dockerfile: copy the wheels' shared
# libraries that `train` and `serve` need into PREFIX, in the wheels' own layout
# (PREFIX/torch/lib, PREFIX/nvidia/<package>/lib), for the runtime stage to take as a whole.
#
#   stage_runtime_libs.sh cpu|gpu VENV PREFIX
#
# cpu: exactly what the programs load (ldd's closure): libtorch_cpu, libc10, the wheel's
#      libgomp, libcudart, libcupti.
# gpu: every library of torch and its NVIDIA wheels but Python's own (and libgfortran, which
#      none needs), because CUDA libraries load more with dlopen (cuDNN's engines, nvrtc's
#      builtins, cuSOLVER for linalg...).
# libtorch's libraries are stripped of their symbol tables (dynamic symbols stay): about 90 MB
# less for libtorch_cpu.so alone.
set -euo pipefail

die() { echo "stage_runtime_libs.sh: $*" >&2; exit 1; }

[ $# -eq 3 ] || die "usage: stage_runtime_libs.sh cpu|gpu VENV PREFIX"
flavour=$1 venv=$2 prefix=$3
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
[ -x "$prefix/bin/train" ] && [ -x "$prefix/bin/serve" ] || die "no programs in $prefix/bin"

copy_from_site() {
    install -D -m 755 "$1" "$prefix/${1#"$site"/}"
}

if [ "$flavour" = cpu ]; then
    search=$site/torch/lib
    for dir in "$site"/nvidia/*/lib; do search+=:$dir; done
    mapfile -t libs < <(LD_LIBRARY_PATH=$search ldd "$prefix"/bin/* "$prefix"/lib/*.so |
        awk -v site="$site/" '$2 == "=>" && index($3, site) == 1 { print $3 }' | sort -u)
    [ ${#libs[@]} -gt 0 ] || die "ldd found no library from $site: is this the right venv?"
    for lib in "${libs[@]}"; do copy_from_site "$lib"; done
else
    for lib in "$site"/torch/lib/*.so* "$site"/nvidia/*/lib/*.so*; do
        [ -L "$lib" ] && continue # versioned names only; the unversioned links are build-time
        case "$(basename "$lib")" in
        libtorch_python.so | libshm.so | libtorch_global_deps.so) continue ;; # Python's own
        libgfortran.so.*) continue ;; # in the wheel, needed by none of its libraries
        esac
        copy_from_site "$lib"
    done
fi
strip --strip-unneeded "$prefix"/torch/lib/*.so*
echo "stage_runtime_libs.sh: $(find "$prefix" -type f | wc -l) files, $(du -sh "$prefix" | cut -f1) in $prefix"
