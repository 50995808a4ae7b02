#!/usr/bin/env bash
# run_gpu_check.sh - the GPU check, in one go, within about 8 minutes, on a machine with an
# NVIDIA GPU, a CUDA PyTorch (torch 2.11 + CUDA 13 on the lent machines), CMake, a C/C++
# compiler and nvcc, but no Debian -dev packages and no network:
#   1. builds the project against that machine's own PyTorch, with the C libraries carried
#      in tests/gpu/carry/ (made here by tests/gpu/make_carry.sh; ignored by git);
#   2. runs the CUDA path test (tests/test_cuda_path.c);
#   3. trains ResNet-50 at 224 px (bf16 autocast, channels-last) on generated JPEGs with
#      build/bin/train, and PyTorch eager's ResNet-50 on the same GPU beside it
#      (tests/gpu/eager_resnet50.py: pinned memory, non-blocking copies);
#   4. serves the trained ResNet-50 on the GPU (one replica per GPU) and loads it with 1 and 32
#      clients;
#   5. prints one table (also written to $OUT/gpu_check.md, with every log under $OUT).
#
#   tests/gpu/run_gpu_check.sh        (env: PYTHON=python3, OUT=/tmp/gpu_check, BATCH=128,
#                                      GPU_CHECK_BUILD_ONLY=1 to build only, without a GPU,
#                                      GPU_CHECK_DRY_RUN=1 to try the later steps on the CPU)
#
# Exit status: 0 every step passed; 1 a step failed (the table says which; logs in $OUT);
# 2 something the check needs is missing (the message says what); 77 no NVIDIA GPU here.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
PYTHON=${PYTHON:-python3}
OUT=${OUT:-/tmp/gpu_check}
BATCH=${BATCH:-128}
CLASSES=10
TRAIN_PER_CLASS=${TRAIN_PER_CLASS:-256}
# GPU_CHECK_DRY_RUN=1: the steps after the build, on the CPU with build/ and a small model,
# to try the script itself on a machine without a GPU (the figures mean nothing there).
DRY=${GPU_CHECK_DRY_RUN:-}
MODEL=resnet50 SIZE=224 EAGER_DEVICE=cuda EPOCHS=3 VAL_PER_CLASS=8
if [ -n "$DRY" ]; then
    BATCH=4 CLASSES=2 TRAIN_PER_CLASS=8 VAL_PER_CLASS=2 MODEL=lenet SIZE=32 EAGER_DEVICE=cpu EPOCHS=2
fi
START=$(date +%s)
CARRY=$ROOT/tests/gpu/carry/prefix
USR=$CARRY/usr
LIB=$USR/lib/x86_64-linux-gnu
BUILD=$ROOT/build-gpu
mkdir -p "$OUT"
ROWS=()
FAILED=0

say() { printf '[gpu-check %3ds] %s\n' $(($(date +%s) - START)) "$*" >&2; }
need() { say "cannot run: $*"; exit 2; }
row() { ROWS+=("| $1 | $2 | $3 |"); }
fail() { FAILED=1; row "$1" "FAILED" "$2"; say "FAILED: $1: $2"; }

print_table() {
    {
        echo "| check | result | detail |"
        echo "| --- | --- | --- |"
        printf '%s\n' "${ROWS[@]}"
        echo
        echo "total $(($(date +%s) - START)) s; logs in $OUT"
    } | tee "$OUT/gpu_check.md"
}

# ---- 0. what the check needs, before touching anything ----
for tool in cmake gcc g++; do
    command -v "$tool" >/dev/null || need "$tool is not installed"
done
command -v make >/dev/null || command -v ninja >/dev/null || need "neither make nor ninja is installed"
[ -f "$LIB/libmicrohttpd.so" ] && [ -x "$USR/bin/pkgconf" ] ||
    need "the carried libraries are missing: run tests/gpu/make_carry.sh on the Debian machine and carry tests/gpu/carry"

# ---- 1. is there a GPU at all (GPU_CHECK_BUILD_ONLY=1: only build, to try the carry) ----
if [ -z "${GPU_CHECK_BUILD_ONLY:-}$DRY" ] && ! ls /dev/nvidia[0-9]* >/dev/null 2>&1 && ! { command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; }; then
    say "no NVIDIA GPU on this machine (no /dev/nvidia0..., nvidia-smi finds none): nothing to check; exit 77"
    exit 77
fi
GPU=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -n 1)
say "GPU: ${GPU:-unknown (no nvidia-smi)}"
"$PYTHON" -c 'import torch, os; assert torch.cuda.is_available() or os.environ.get("GPU_CHECK_BUILD_ONLY") or os.environ.get("GPU_CHECK_DRY_RUN"), "torch.cuda.is_available() is False"' 2>"$OUT/torch.log" ||
    need "$PYTHON has no CUDA PyTorch: $(tail -n 1 "$OUT/torch.log") (set PYTHON=...)"
TORCH=$("$PYTHON" -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)')
TORCH_PREFIX=$("$PYTHON" -c 'import torch; print(torch.utils.cmake_prefix_path)')
row "machine" "${GPU:-GPU}" "torch $TORCH, $(nproc) cores"

# ---- 2. build against this machine's PyTorch and the carried libraries ----
cat >"$OUT/pkg-config" <<PKG
#!/bin/sh
LD_LIBRARY_PATH="$LIB\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$USR/bin/pkgconf" "\$@"
PKG
chmod +x "$OUT/pkg-config"
export PKG_CONFIG_LIBDIR=$LIB/pkgconfig:$USR/share/pkgconfig PKG_CONFIG_SYSROOT_DIR=$CARRY
[ -z "$DRY" ] && say "building into $BUILD (log: $OUT/build.log)"
t0=$(date +%s)
if [ -n "$DRY" ]; then
    BUILD=$ROOT/build
    row "build" "skipped (dry run)" "using $BUILD"
elif timeout 300 cmake -S . -B "$BUILD" -DWERROR=OFF \
    -DCMAKE_PREFIX_PATH="$TORCH_PREFIX;$USR" -DPython3_EXECUTABLE="$(command -v "$PYTHON")" \
    -DPKG_CONFIG_EXECUTABLE="$OUT/pkg-config" \
    -DJPEG_INCLUDE_DIR="$USR/include" -DJPEG_LIBRARY="$LIB/libjpeg.so" \
    -DPNG_PNG_INCLUDE_DIR="$USR/include" -DPNG_LIBRARY="$LIB/libpng16.so" \
    -DZLIB_INCLUDE_DIR="$USR/include" -DZLIB_LIBRARY="$LIB/libz.so" \
    -DCMAKE_C_FLAGS="-isystem $USR/include/x86_64-linux-gnu" \
    -DCMAKE_CXX_FLAGS="-isystem $USR/include -isystem $USR/include/x86_64-linux-gnu" \
    -DCMAKE_EXE_LINKER_FLAGS="-Wl,-rpath-link,$LIB" -DCMAKE_SHARED_LINKER_FLAGS="-Wl,-rpath-link,$LIB" \
    >"$OUT/build.log" 2>&1 &&
    timeout "${BUILD_TIMEOUT:-300}" cmake --build "$BUILD" -j "$(nproc)" --target train serve test_cuda_path >>"$OUT/build.log" 2>&1; then
    row "build" "ok" "$(($(date +%s) - t0)) s against torch $TORCH"
else
    rc=$?
    [ $rc -eq 124 ] && why="timed out (BUILD_TIMEOUT)" || why=$(grep -m1 -E 'error:|CMake Error|Error [0-9]|not found' "$OUT/build.log" | cut -c1-200)
    fail "build" "exit $rc, see $OUT/build.log: $why"
    print_table
    exit 1
fi
# Shared objects this machine lacks come from the carry (and only those).
mkdir -p "$OUT/lib"
for round in 1 2 3 4; do
    missing=$(LD_LIBRARY_PATH="$OUT/lib" ldd "$BUILD/bin/train" "$BUILD/bin/serve" 2>/dev/null |
        awk '/not found/ {print $1}' | sort -u)
    [ -z "$missing" ] && break
    for so in $missing; do
        [ -e "$LIB/$so" ] && ln -sf "$LIB/$so" "$OUT/lib/$so"
    done
done
export LD_LIBRARY_PATH="$OUT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
say "carried shared objects used: $(ls "$OUT/lib" | tr '\n' ' ')"
if [ -n "${GPU_CHECK_BUILD_ONLY:-}" ]; then
    print_table
    exit $FAILED
fi

# ---- 3. the CUDA path test ----
timeout 120 "$BUILD/bin/test_cuda_path" "$OUT" >"$OUT/cuda_path.log" 2>&1
rc=$?
if [ $rc -eq 0 ]; then
    row "CUDA path test" "passed" "$(grep -c '^ok' "$OUT/cuda_path.log") comparisons within tolerance"
elif [ $rc -eq 77 ] && [ -n "$DRY" ]; then
    row "CUDA path test" "skipped (dry run)" "no CUDA device"
else
    fail "CUDA path test" "exit $rc: $(grep -m2 -E 'FAIL|REQUIRE|error' "$OUT/cuda_path.log" | tr '\n' ' ' | cut -c1-300)"
fi

# ---- 4. ResNet-50 training: ours, then PyTorch eager, on the same generated JPEGs ----
DATA=$OUT/opt_ml/input/data
rm -rf "$OUT/opt_ml" && mkdir -p "$OUT/opt_ml/input/config" "$DATA"
gcc -std=c11 -D_DEFAULT_SOURCE -O2 tests/gpu/make_jpegs.c -o "$OUT/make_jpegs" \
    -isystem "$USR/include" -isystem "$USR/include/x86_64-linux-gnu" "$LIB/libjpeg.so" \
    -Wl,-rpath,"$LIB" || need "cannot compile tests/gpu/make_jpegs.c"
"$OUT/make_jpegs" "$DATA" $CLASSES "$TRAIN_PER_CLASS" $VAL_PER_CLASS || need "cannot write the JPEGs"
say "data: $((CLASSES * TRAIN_PER_CLASS)) train + $((CLASSES * VAL_PER_CLASS)) validation JPEGs, 500x375"
cp opt_ml_layout/input/config/resourceconfig.json "$OUT/opt_ml/input/config/"
cat >"$OUT/opt_ml/input/config/inputdataconfig.json" <<'CH'
{"train": {"ContentType": "application/x-image", "TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"},
 "validation": {"ContentType": "application/x-image", "TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}}
CH
cat >"$OUT/opt_ml/input/config/hyperparameters.json" <<HP
{"model": "$MODEL", "epochs": "$EPOCHS", "batch_size": "$BATCH", "lr": "0.01", "seed": "1", "image_size": "$SIZE"}
HP
t0=$(date +%s)
if OPT_ML=$OUT/opt_ml timeout 200 "$BUILD/bin/train" >"$OUT/train.log" 2>&1; then
    rates=$(sed -n 's/.*images_per_sec=\([0-9.]*\).*/\1/p' "$OUT/train.log" | tr '\n' ' ')
    best=$(echo "$rates" | tr ' ' '\n' | tail -n +2 | sort -g | tail -n 1)
    row "train $MODEL, ours (build/bin/train)" "${best:-?} images/s" \
        "$SIZE px, batch $BATCH; epochs: $rates; $(grep -m1 -o 'device: .*' "$OUT/train.log")"
else
    fail "train $MODEL, ours" "exit $? after $(($(date +%s) - t0)) s: $(tail -n 2 "$OUT/train.log" | tr '\n' ' ' | cut -c1-300)"
fi
timeout 150 "$PYTHON" tests/gpu/eager_resnet50.py --data "$DATA/train" --classes $CLASSES \
    --batch "$BATCH" --size "$SIZE" --device "$EAGER_DEVICE" >"$OUT/eager.json" 2>"$OUT/eager.log"
rc=$?
if [ $rc -eq 0 ]; then
    e=$(tail -n 1 "$OUT/eager.json")
    field() { "$PYTHON" -c 'import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2]))' "$e" "$1"; }
    row "train ResNet-50, PyTorch eager, decoded in DataLoader" "$(field pipeline_images_per_s) images/s" \
        "torchvision ImageFolder, $(nproc) workers, pin_memory, non_blocking $(field pipeline_note | sed 's/^None$//')"
    row "train ResNet-50, PyTorch eager, compute only" "$(field compute_images_per_s) images/s" \
        "uint8 batch in pinned memory, normalised on the GPU: the GPU's limit"
else
    fail "train ResNet-50, PyTorch eager" "exit $rc$([ $rc -eq 124 ] && echo ' (timed out)'): $(tail -n 2 "$OUT/eager.log" | tr '\n' ' ' | cut -c1-300)"
fi

# ---- 5. serving the trained model on the GPU, 1 and 32 clients ----
if [ -f "$OUT/opt_ml/model/model.pth" ]; then
    PORT=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    t0=$(date +%s.%N)
    OPT_ML=$OUT/opt_ml SAGEMAKER_BIND_TO_PORT=$PORT "$BUILD/bin/serve" >"$OUT/serve.log" 2>&1 &
    SERVER=$!
    ready=""
    for _ in $(seq 1 300); do
        if "$PYTHON" -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:$PORT/ping', timeout=1).status == 200 else 1)" 2>/dev/null; then
            ready=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
            break
        fi
        kill -0 $SERVER 2>/dev/null || break
        sleep 0.1
    done
    if [ -n "$ready" ]; then
        IMAGE=$(ls "$DATA"/validation/class_00/*.jpg | head -n 1)
        for clients in 1 32; do
            if r=$(timeout 60 "$PYTHON" tests/gpu/http_load.py "$PORT" "$IMAGE" $clients 10 2>>"$OUT/serve.log"); then
                row "serve $MODEL on the GPU, $clients client(s)" \
                    "$("$PYTHON" -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["req_per_s"], "req/s")' "$r")" \
                    "$("$PYTHON" -c 'import json,sys; d=json.loads(sys.argv[1]); print("p50", d["p50_ms"], "ms, p99", d["p99_ms"], "ms,", d["errors"], "errors")' "$r"); 500x375 JPEG, keep-alive"
            else
                fail "serve, $clients client(s)" "the load generator failed (see $OUT/serve.log)"
            fi
        done
        row "serve: start to /ping 200" "${ready} s" "$(grep -m1 -io 'cuda[^ ,]*' "$OUT/serve.log" || echo 'device not logged')"
    else
        fail "serve" "not ready: $(tail -n 2 "$OUT/serve.log" | tr '\n' ' ' | cut -c1-300)"
    fi
    kill -TERM $SERVER 2>/dev/null
    wait $SERVER 2>/dev/null
    # One replica per GPU: how many served, on which devices, and each one's share of the
    # requests (from the ready line and the shutdown log).
    if [ -n "$ready" ]; then
        row "serve: replicas" \
            "$(grep -m1 -o '[0-9]* replicas\? on [^(]*' "$OUT/serve.log" | sed 's/ *$//' || true)" \
            "requests served: $(sed -n 's/.*replica [0-9]* on \([^ ]*\) served \([0-9]*\) requests.*/\1 \2/p' "$OUT/serve.log" | paste -sd, - | sed 's/,/, /g')"
    fi
else
    fail "serve" "no trained model to serve"
fi

print_table
exit $FAILED
