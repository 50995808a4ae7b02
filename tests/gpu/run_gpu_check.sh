#!/usr/bin/env bash
# run_gpu_check.sh - the GPU check, in one go, within about 8 minutes, on a machine with an
# NVIDIA GPU, a CUDA PyTorch (torch 2.11 + CUDA 13 on the lent machines), CMake, a C/C++
# compiler and nvcc, but no Debian -dev packages and no network:
#   1. builds the project against that machine's own PyTorch, with the C libraries carried
#      in tests/gpu/carry/ (made here by tests/gpu/make_carry.sh; ignored by git);
#   2. runs the CUDA path test (tests/test_cuda_path.c) and serve's staging test;
#   3. trains ResNet-50 at 224 px (bf16 autocast, channels-last) on generated JPEGs with
#      build/bin/train, and PyTorch eager's ResNet-50 on the same GPU beside it
#      (tests/gpu/eager_resnet50.py: pinned memory, non-blocking copies);
#   4. the input path: our training at batch 32 and 256 with and without device_prefetch
#      (images/s, host waits for the GPU a step, optimizer GPU time, GPU utilisation sampled
#      by nvidia-smi), and a SIGTERM in the middle of an epoch then a resume;
#   5. serves the trained ResNet-50 on the GPU (one replica per GPU): the first request at each batch size, then
#      1 and 32 clients;
#   6. prints one table (also written to $OUT/gpu_check.md, with every log under $OUT).
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
TRAIN_PER_CLASS=${TRAIN_PER_CLASS:-512}
# GPU_CHECK_DRY_RUN=1: the steps after the build, on the CPU with build/ and a small model,
# to try the script itself on a machine without a GPU (the figures mean nothing there).
DRY=${GPU_CHECK_DRY_RUN:-}
MODEL=resnet50 SIZE=224 EAGER_DEVICE=cuda EPOCHS=3 VAL_PER_CLASS=8 MATRIX_BATCHES="32 256"
if [ -n "$DRY" ]; then
    BATCH=4 CLASSES=2 TRAIN_PER_CLASS=8 VAL_PER_CLASS=2 MODEL=lenet SIZE=32 EAGER_DEVICE=cpu EPOCHS=2
    MATRIX_BATCHES="4 8"
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
    timeout "${BUILD_TIMEOUT:-300}" cmake --build "$BUILD" -j "$(nproc)" --target train serve test_cuda_path test_serve_staging >>"$OUT/build.log" 2>&1; then
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

# serve's batch staging: page-locked host memory, a non-blocking copy to cuda:0, one read-back
timeout 60 "$BUILD/bin/test_serve_staging" >"$OUT/serve_staging.log" 2>&1
rc=$?
if [ $rc -eq 0 ]; then
    row "serve staging test" "passed" "$(tail -n 1 "$OUT/serve_staging.log")"
else
    fail "serve staging test" "exit $rc: $(grep -m2 -E 'FAIL|REQUIRE|error' "$OUT/serve_staging.log" | tr '\n' ' ' | cut -c1-300)"
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

# A training run's /opt/ml tree in DIR on the generated JPEGs, with these hyperparameters:
#   run_dir DIR EPOCHS BATCH [more "key": "value" JSON members]
run_dir() {
    local dir=$1
    rm -rf "$dir" && mkdir -p "$dir/input/config" "$dir/input/data"
    ln -s "$DATA/train" "$dir/input/data/train" && ln -s "$DATA/validation" "$dir/input/data/validation"
    cp "$OUT/opt_ml/input/config/"{resourceconfig,inputdataconfig}.json "$dir/input/config/"
    echo "{\"model\": \"$MODEL\", \"epochs\": \"$2\", \"batch_size\": \"$3\", \"lr\": \"0.01\", \"seed\": \"1\", \"image_size\": \"$SIZE\"${4:-}}" \
        >"$dir/input/config/hyperparameters.json"
}

# ---- 4b. the input path, batch by batch: with and without device_prefetch ----
# One training run of 2 epochs on the same JPEGs; the second epoch's figures.
#   matrix_run NAME BATCH PREFETCH
matrix_run() {
    local name=$1 batch=$2 prefetch=$3 dir=$OUT/matrix/$1
    run_dir "$dir" 2 "$batch" ", \"device_prefetch\": \"$prefetch\""
    local sampler=""
    if command -v nvidia-smi >/dev/null && [ -z "$DRY" ]; then
        nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -lms 100 >"$dir/gpu_util.txt" 2>/dev/null &
        sampler=$!
    fi
    OPT_ML=$dir timeout 150 "$BUILD/bin/train" >"$dir/train.log" 2>&1
    local rc=$?
    [ -n "$sampler" ] && kill $sampler 2>/dev/null && wait $sampler 2>/dev/null
    if [ $rc -ne 0 ]; then
        fail "train, $name" "exit $rc: $(tail -n 2 "$dir/train.log" | tr '\n' ' ' | cut -c1-300)"
        return
    fi
    local rate waits opt util=""
    rate=$(sed -n 's/^epoch=2\/2 .*images_per_sec=\([0-9.]*\).*/\1/p' "$dir/train.log")
    waits=$(sed -n 's/.*epoch 2: the host waited for the GPU .*(\([0-9.]*\) a step).*/\1/p' "$dir/train.log")
    opt=$(sed -n 's/.*epoch 2, per step: .*optimizer \([0-9.]*\) ms.*GPU busy \([0-9]*\)%.*/optimizer \1 ms a step (GPU time), GPU busy \2% of the loop (events)/p' "$dir/train.log")
    [ -s "$dir/gpu_util.txt" ] && util=$(awk '{ s += $1; n++ } END { if (n) printf "nvidia-smi utilisation mean %.0f%% over %d samples", s / n, n }' "$dir/gpu_util.txt")
    row "train $MODEL, $name" "${rate:-?} images/s" "host waits a step: ${waits:-not logged}; ${opt:-no profile line}; ${util:-no nvidia-smi samples}"
}
for batch in $MATRIX_BATCHES; do
    matrix_run "batch $batch, device_prefetch" "$batch" true
    matrix_run "batch $batch, no prefetch (fp32 copies)" "$batch" false
done

# ---- 4c. SIGTERM in the middle of an epoch, then a resume (what a spot interruption does) ----
dir=$OUT/matrix/sigterm
SIGTERM_EPOCHS=3
[ -n "$DRY" ] && SIGTERM_EPOCHS=40 # the dry run's epochs last a tenth of a second (over a second on a busy machine)
run_dir "$dir" "$SIGTERM_EPOCHS" "$BATCH"
OPT_ML=$dir timeout 150 "$BUILD/bin/train" >"$dir/first.log" 2>&1 &
TRAINER=$!
for _ in $(seq 1 1200); do
    grep -q "^epoch=1/$SIGTERM_EPOCHS" "$dir/first.log" && break
    kill -0 $TRAINER 2>/dev/null || break
    sleep 0.1
done
sleep 0.3
t0=$(date +%s.%N)
kill -TERM $TRAINER 2>/dev/null
wait $TRAINER
rc=$?
stop_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
if [ $rc -eq 143 ] && OPT_ML=$dir timeout 150 "$BUILD/bin/train" >"$dir/resume.log" 2>&1 &&
    grep -q 'resumed from the checkpoint' "$dir/resume.log"; then
    row "SIGTERM mid-epoch, then resume" "ok" "stopped in $stop_s s with exit 143; $(grep -m1 -o 'resumed from the checkpoint[^;]*' "$dir/resume.log" | cut -c1-120); epochs after the resume: $(grep -c "^epoch=[0-9]*/$SIGTERM_EPOCHS " "$dir/resume.log")"
else
    fail "SIGTERM mid-epoch, then resume" "first run exit $rc after the signal (143 expected) in $stop_s s; resume: $(tail -n 2 "$dir/resume.log" 2>/dev/null | tr '\n' ' ' | cut -c1-200)"
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
        if r=$(timeout 120 "$PYTHON" tests/gpu/first_requests.py "$PORT" "$SIZE" 2>>"$OUT/serve.log"); then
            row "serve: first request at each batch size" "$("$PYTHON" -c 'import json,sys; d=json.loads(sys.argv[1]); print(max(d["first_ms"]), "ms at most")' "$r")" \
                "$("$PYTHON" -c 'import json,sys; d=json.loads(sys.argv[1]); print("; ".join(f"{n}: {a} ms then {b} ms" for n, a, b in zip(d["sizes"], d["first_ms"], d["second_ms"])))' "$r") (one NPY request of N images)"
        else
            fail "serve: first requests" "see $OUT/serve.log"
        fi
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
