#!/usr/bin/env bash
# build.sh - set up, build and test the project; the one script for people and CI alike.
#
#   ./build.sh          install what is missing, then configure and build into build/
#   ./build.sh test     the same, run every test, then build into build-asan/ with
#                       AddressSanitizer + UndefinedBehaviorSanitizer and run them again
#   ./build.sh asan     only the sanitizer build and its tests
#   ./build.sh demo     build, train on the bundled sample (opt_ml_layout/), serve the model and
#                       classify a test image (DEMO_PORT, default 8080)
#   ./build.sh deps     only install what is missing
#   ./build.sh smoke    build the CPU flavour of the container image (buildah, or docker) and
#                       run train and serve inside it (tests/container/smoke.sh)
#   ./build.sh notebooks  build, execute notebooks/local_train_serve.ipynb and check both
#                       notebooks (tests/notebooks/run_notebooks.sh)
#
# Environment:
#   LIBTORCH=/path      use an unpacked official libtorch archive instead of the torch wheel
#   VENV=/path          where the Python environment lives (default ~/.cache/sagemaker-ic-c/venv;
#                       the tests need torch and torchvision there even with LIBTORCH)
#   JOBS=N              parallel build jobs (default: all cores)
set -euo pipefail
cd "$(dirname "$0")"

VENV=${VENV:-$HOME/.cache/sagemaker-ic-c/venv}
JOBS=${JOBS:-$(nproc)}
TORCH_VERSION=2.15.0
TORCHVISION_VERSION=0.29.2
APT_PACKAGES=(cmake make g++ pkg-config python3-venv libjpeg62-turbo-dev libpng-dev
              libmicrohttpd-dev libcjson-dev libarchive-dev zlib1g-dev libgloo-dev)
# Needed by tests only, not to build (so not in the Dockerfile's build stage, which
# tests/container/smoke.sh checks against APT_PACKAGES): test_report.py renders report.html
# in headless Chromium.
TEST_APT_PACKAGES=(chromium)

log() { printf '[build.sh] %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_debian_packages() {
    local missing=()
    for p in "${APT_PACKAGES[@]}" "${TEST_APT_PACKAGES[@]}"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    # python3-venv is only needed when the interpreter on PATH cannot make a venv itself.
    if [ ${#missing[@]} -eq 1 ] && [ "${missing[0]}" = python3-venv ] &&
        python3 -c 'import venv, ensurepip' 2>/dev/null; then
        return
    fi
    [ ${#missing[@]} -eq 0 ] && return
    log "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}"
}

install_python_env() {
    local want="$TORCH_VERSION $TORCHVISION_VERSION"
    if [ -x "$VENV/bin/python" ] && [ "$("$VENV/bin/python" -c \
        'import torch, torchvision, numpy, pytest, tensorboard; print(torch.__version__.split("+")[0], torchvision.__version__.split("+")[0])' \
        2>/dev/null)" = "$want" ]; then
        return
    fi
    log "installing torch $TORCH_VERSION and torchvision $TORCHVISION_VERSION into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION" numpy pytest \
        tensorboard # tensorboard: its event reader checks our event files (test_report.py)
}

torch_cmake_prefix() {
    if [ -n "${LIBTORCH:-}" ]; then
        [ -f "$LIBTORCH/share/cmake/Torch/TorchConfig.cmake" ] ||
            { log "LIBTORCH=$LIBTORCH holds no share/cmake/Torch/TorchConfig.cmake"; exit 1; }
        echo "$LIBTORCH"
    else
        "$VENV/bin/python" -c 'import torch; print(torch.utils.cmake_prefix_path)'
    fi
}

deps() {
    install_debian_packages
    install_python_env
}

build_into() {
    local dir=$1
    shift
    mkdir -p "$dir"
    cmake -S . -B "$dir" -DCMAKE_PREFIX_PATH="$(torch_cmake_prefix)" \
        -DPython3_EXECUTABLE="$VENV/bin/python" "$@" >"$dir/configure.log" 2>&1 ||
        { cat "$dir/configure.log"; exit 1; }
    cmake --build "$dir" -j "$JOBS"
}

run_tests() {
    local dir=$1
    ctest --test-dir "$dir" --output-on-failure --timeout 900
}

sanitizer_tests() {
    build_into build-asan -DSANITIZE=ON
    # protect_shadow_gap=0: CUDA's driver maps memory where ASan's shadow gap would be.
    # quarantine_size_mb=32: keeps freed memory from inflating the resident-memory checks.
    # tests/lsan.supp lists (and explains) the leaks libtorch itself leaves at exit.
    ASAN_OPTIONS=protect_shadow_gap=0:detect_leaks=1:quarantine_size_mb=32 \
        LSAN_OPTIONS=suppressions="$PWD/tests/lsan.supp":print_suppressions=0 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run_tests build-asan
}

mkdir -p build
case "${1:-build}" in
deps) deps ;;
build) deps && build_into build ;;
test)
    deps
    build_into build
    run_tests build
    sanitizer_tests
    ;;
asan) deps && sanitizer_tests ;;
smoke) tests/container/smoke.sh ;;
notebooks)
    deps
    build_into build
    VENV="$VENV" tests/notebooks/run_notebooks.sh
    ;;
demo)
    # The main job on the bundled sample: train on opt_ml_layout/ (copied, so that the
    # outputs stay out of the source tree), then serve the model and classify a test image.
    deps
    build_into build
    demo=build/demo/opt_ml
    rm -rf "$demo" && mkdir -p "$(dirname "$demo")" && cp -r opt_ml_layout "$demo"
    OPT_ML="$demo" build/bin/train
    port=${DEMO_PORT:-8080}
    OPT_ML="$demo" SAGEMAKER_BIND_TO_PORT=$port build/bin/serve &
    server=$!
    trap 'kill -TERM $server 2>/dev/null' EXIT
    image=$(ls "$demo"/input/data/test/triangle/*.jpg | head -n 1)
    "$VENV/bin/python" - "$port" "$image" <<'PY'
import json, sys, time, urllib.request
port, image = sys.argv[1], sys.argv[2]
base = f"http://127.0.0.1:{port}"
for _ in range(500):
    try:
        if urllib.request.urlopen(base + "/ping", timeout=2).status == 200:
            break
    except OSError:
        time.sleep(0.02)
req = urllib.request.Request(base + "/invocations", data=open(image, "rb").read(),
                             headers={"Content-Type": "image/jpeg"})
pred = json.load(urllib.request.urlopen(req, timeout=30))["predictions"][0]
top = ", ".join(f"{t['label']} {t['probability']:.3f}" for t in pred["top_k"])
print(f"{image}: {pred['predicted_label']} ({top})")
PY
    log "demo done: model in $demo/model, metrics in $demo/output/data/metrics.json"
    ;;
*)
    sed -n '2,/^set -euo pipefail/p' "$0" | grep '^#'
    exit 2
    ;;
esac
