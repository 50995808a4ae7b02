#!/usr/bin/env bash
# tests/container/smoke.sh - the image's smoke test: build the CPU flavour of ./Dockerfile
# (unchanged) and use it as SageMaker does. Inside the image: `train` on a copy of
# opt_ml_layout/ mounted as /opt/ml, then `serve` on the model it wrote; from outside:
# /ping, every test JPEG to /invocations (tests/container/query_server.py), then SIGTERM, after
# which the server must exit 0. Then the SageMaker Python SDK v2's local mode against the image
# (tests/container/sdk_local_mode.py: fit with train/validation/test, deploy, predict with three
# serializers, a batch transform), with podman and podman-compose standing in for Docker where
# there is none; where containers cannot run at all it says why and skips that part
# (SMOKE_SDK=0 skips it on purpose). Any failure stops it with a non-zero status and the reason.
#
#   tests/container/smoke.sh            (./build.sh smoke runs it; .ci/run too)
#
# Engines: Docker when `docker info` works; otherwise buildah with --isolation chroot (no
# daemon; installed with podman and debootstrap when missing; needs root). With buildah the
# base image is Debian 12 made by debootstrap (tests/container/debian_base.sh), imported into a
# private store under ~/.cache/sagemaker-ic-c/containers; the store keeps the layer cache
# between runs (delete that folder to reclaim its space). The host's CA bundle (for a
# TLS-inspecting proxy) and pip cache (to spare downloads where pip can cache) are mounted into
# the build; the Dockerfile itself needs neither.
#
# Environment: SMOKE_ENGINE (docker | buildah; default: docker if it works), SMOKE_IMAGE (the
# tag, default localhost/sagemaker-ic:cpu-smoke), SMOKE_PORT (default: a free port),
# CACHE_DIR (~/.cache/sagemaker-ic-c).
set -euo pipefail
cd "$(dirname "$0")/../.."

log() { printf '[smoke] %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

IMAGE=${SMOKE_IMAGE:-localhost/sagemaker-ic:cpu-smoke}
CACHE=${CACHE_DIR:-$HOME/.cache/sagemaker-ic-c}
BASE_IMAGE=localhost/sagemaker-ic-base:bookworm
BUILD_STAGE_IMAGE=localhost/sagemaker-ic-build-stage:cpu-smoke
STORE=$CACHE/containers
NAME=sagemaker-ic-smoke-$$ # prefix of every container this run makes
started=$SECONDS

[[ "$IMAGE" =~ ^[a-z0-9./:_-]+$ ]] || die "SMOKE_IMAGE '$IMAGE' is not an image name"
command -v python3 >/dev/null || die "python3 is needed (it queries the server)"

engine=${SMOKE_ENGINE:-}
if [ -z "$engine" ]; then
    if command -v docker >/dev/null && docker info >/dev/null 2>&1; then engine=docker; else engine=buildah; fi
fi
case "$engine" in
docker) command -v docker >/dev/null || die "SMOKE_ENGINE=docker but there is no docker" ;;
buildah) [ "$(id -u)" -eq 0 ] || die "the buildah path needs root (debootstrap, chroot isolation)" ;;
*) die "SMOKE_ENGINE must be docker or buildah, not '$engine'" ;;
esac

# The image must build the libtorch that build.sh (and so every test) uses.
want=$(sed -n 's/^TORCH_VERSION=//p' build.sh)
have=$(sed -n 's/^ARG TORCH_VERSION=//p' Dockerfile)
[ -n "$want" ] && [ "$want" = "$have" ] ||
    die "Dockerfile's TORCH_VERSION ($have) differs from build.sh's ($want)"

# ... and the Debian packages build.sh installs to build it.
build_stage=$(sed -n '/^FROM .* AS build$/,/^FROM /p' Dockerfile)
apt_packages=$(sed -n '/^APT_PACKAGES=(/,/)/p' build.sh | sed 's/^APT_PACKAGES=//' | tr -d '()')
[ -n "$apt_packages" ] || die "found no APT_PACKAGES=(...) in build.sh"
for package in $apt_packages; do
    grep -q -w -- "$package" <<<"$build_stage" ||
        die "build.sh installs $package, the Dockerfile's build stage does not"
done

# ---- buildah: tools, private store, Debian base ----
B=() P=()
install_tools() {
    local missing=() tool
    for tool in buildah podman debootstrap; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    [ ${#missing[@]} -eq 0 ] && return
    log "installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

use_driver() {
    B=(buildah --root "$STORE/storage" --runroot "$STORE/run" --storage-driver "$1")
    P=(podman --root "$STORE/storage" --runroot "$STORE/run" --storage-driver "$1")
}

import_base() { # TARBALL
    local tarball=$1
    "${P[@]}" import -q \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' "$tarball" "$BASE_IMAGE" >/dev/null &&
        touch -r "$tarball" "$STORE/base.stamp"
}

# overlay where the kernel and file system allow it (fast, shares layers), else vfs (copies).
pick_driver() { # TARBALL
    if [ -s "$STORE/driver" ]; then
        use_driver "$(cat "$STORE/driver")"
        return
    fi
    local driver
    for driver in overlay vfs; do
        rm -rf "$STORE" && mkdir -p "$STORE"
        use_driver "$driver"
        if import_base "$1" >/dev/null 2>&1 &&
            "${B[@]}" from --pull=never --name "$NAME-probe" "$BASE_IMAGE" >/dev/null 2>&1 &&
            "${B[@]}" run --isolation chroot "$NAME-probe" -- true >/dev/null 2>&1; then
            "${B[@]}" rm "$NAME-probe" >/dev/null
            echo "$driver" >"$STORE/driver"
            log "container storage: $driver driver in $STORE"
            return
        fi
        "${B[@]}" rm "$NAME-probe" >/dev/null 2>&1 || true
    done
    die "buildah cannot run containers here with the overlay or the vfs driver"
}

prepare_buildah() {
    install_tools
    local tarball
    tarball=$(tests/container/debian_base.sh) || die "could not make the Debian base image"
    mkdir -p "$STORE"
    pick_driver "$tarball"
    if ! "${B[@]}" inspect --type image "$BASE_IMAGE" >/dev/null 2>&1 ||
        [ "$tarball" -nt "$STORE/base.stamp" ]; then
        log "importing $tarball as $BASE_IMAGE"
        import_base "$tarball" || die "could not import $tarball"
    fi
}

# pip in the build trusts what the host's pip trusts (a host behind a TLS-inspecting proxy has
# its CA only there): the host's CA bundle and a pip.conf naming it, mounted for the build.
host_ca=()
trust_host_ca() {
    local bundle
    bundle=$(python3 -c 'import ssl; print(ssl.get_default_verify_paths().cafile or "")')
    [ -n "$bundle" ] && [ -s "$bundle" ] || return 0
    printf '[global]\ncert = /etc/ssl/host-ca-certificates.crt\n' >"$work/pip.conf"
    host_ca=(-v "$bundle:/etc/ssl/host-ca-certificates.crt:ro" -v "$work/pip.conf:/etc/pip.conf:ro")
}

# ---- the three engine-specific steps: build, run to completion, run in the background ----
build_image() {
    if [ "$engine" = docker ]; then
        docker build --build-arg FLAVOUR=cpu -t "$IMAGE" .
    else
        mkdir -p "$HOME/.cache/pip"
        local bud=("${B[@]}" bud --isolation chroot --layers --force-rm --pull=never
            --build-arg FLAVOUR=cpu --build-arg BASE="$BASE_IMAGE"
            -v "$HOME/.cache/pip:/root/.cache/pip" "${host_ca[@]}" -f Dockerfile)
        # The build stage gets a tag of its own, so that pruning what older builds left keeps
        # its layers (the runtime image only copies from it) as the next build's cache.
        "${bud[@]}" --target build -t "$BUILD_STAGE_IMAGE" . || return 1
        "${bud[@]}" -t "$IMAGE" . || return 1
        "${P[@]}" image prune -f >/dev/null
    fi
}

inspect_image() {
    if [ "$engine" = docker ]; then docker image inspect "$IMAGE"; else "${P[@]}" image inspect "$IMAGE"; fi
}

# new_container NAME: (buildah) a working container from the image, removed at exit.
new_container() {
    [ "$engine" = buildah ] || return 0
    "${B[@]}" from --pull=never --name "$1" "$IMAGE" >/dev/null
    containers+=("$1")
}

# run_in_image NAME COMMAND [ENV=VALUE...]: COMMAND in container NAME (made by new_container
# for buildah) with $work/opt_ml as /opt/ml, in the foreground; its exit status is ours.
run_in_image() {
    local name=$1 command=$2 env=() kv
    shift 2
    for kv in "$@"; do env+=(-e "$kv"); done
    if [ "$engine" = docker ]; then
        docker run --rm --name "$name" --user "$(id -u):$(id -g)" "${env[@]}" \
            -v "$work/opt_ml:/opt/ml" "$IMAGE" "$command"
    else
        "${B[@]}" run --isolation chroot "${env[@]}" -v "$work/opt_ml:/opt/ml" "$name" -- "$command"
    fi
}

# The server process itself: with buildah it is a descendant of `buildah run` (which does not
# forward SIGTERM); with docker, `docker stop` signals it.
serve_pid() {
    ps -e -o pid=,ppid=,comm= | awk -v root="$runner" '
        { parent[$1] = $2; name[$1] = $3 }
        END {
            for (p in name) if (name[p] == "serve") {
                for (q = p; q in parent && q != root && q > 1; q = parent[q]) ;
                if (q == root) { print p; exit }
            }
        }'
}

stop_server() { # sends SIGTERM to serve; prints nothing, fails if it cannot find it
    if [ "$engine" = docker ]; then
        docker kill --signal TERM "$NAME-serve" >/dev/null
    else
        local pid
        pid=$(serve_pid)
        [ -n "$pid" ] || return 1
        kill -TERM "$pid"
    fi
}

# ---- the SDK's local mode: sagemaker<3 in a venv of its own, podman standing in for docker ----
# Local mode drives `docker` and `docker compose` / `docker-compose`. With buildah, shims on PATH
# make those podman (on the smoke test's own store) and podman-compose, with runc as the runtime
# (crun cannot run containers on this kind of host: "cgroups in hybrid mode not supported") and
# ulimits no higher than this host's hard limits (podman's defaults fail with "setrlimit ...
# Operation not permitted" inside a container).
sdk_result="not run"
skip_sdk() {
    sdk_result="SKIPPED: $*"
    log "SDK local mode SKIPPED: $*"
}

sdk_local_mode() {
    if [ "${SMOKE_SDK:-1}" = 0 ]; then skip_sdk "SMOKE_SDK=0"; return 0; fi
    local venv=$CACHE/sdk-venv bin=$work/sdk-bin
    if ! "$venv/bin/python" -c 'import sagemaker, podman_compose, PIL, numpy' >/dev/null 2>&1; then
        log "installing sagemaker<3 and podman-compose into $venv (not the shared venv)"
        rm -rf "$venv"
        python3 -m venv "$venv" &&
            "$venv/bin/pip" install -q "sagemaker<3" podman-compose pillow numpy ||
            die "could not install the SageMaker SDK into $venv"
    fi
    mkdir -p "$bin"
    if [ "$engine" = buildah ]; then
        command -v runc >/dev/null || {
            as_root apt-get update -qq
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends runc >/dev/null
        } || die "could not install runc"
        printf '[storage]\ndriver = "%s"\ngraphroot = "%s"\nrunroot = "%s"\n' \
            "$(cat "$STORE/driver")" "$STORE/storage" "$STORE/run" >"$work/storage.conf"
        # 4096 each, or the host's hard limit where that is lower: runc refused RLIMIT_NPROC at
        # this host's own hard limit (96365) and took 4096.
        local nofile nproc
        nofile=$(ulimit -Hn) nproc=$(ulimit -Hu)
        { [ "$nofile" = unlimited ] || [ "$nofile" -gt 4096 ]; } && nofile=4096
        { [ "$nproc" = unlimited ] || [ "$nproc" -gt 4096 ]; } && nproc=4096
        printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' \
            "$nofile" "$nofile" "$nproc" "$nproc" >"$work/containers.conf"
        export CONTAINERS_STORAGE_CONF=$work/storage.conf CONTAINERS_CONF=$work/containers.conf
        # podman answers `docker context inspect` with [], which the SDK indexes: the default
        # local context instead.
        cat >"$bin/docker" <<'SHIM'
#!/bin/sh
if [ "$1" = context ] && [ "$2" = inspect ]; then
    echo '[{"Name": "default", "Endpoints": {"docker": {"Host": "unix:///run/podman/podman.sock"}}}]'
    exit 0
fi
exec podman "$@"
SHIM
        printf '#!/bin/sh\nexec "%s" "$@"\n' "$venv/bin/podman-compose" >"$bin/docker-compose"
        chmod +x "$bin/docker" "$bin/docker-compose"
        local why
        if ! why=$(podman run --rm --pull=never --network=none "$IMAGE" true 2>&1); then
            skip_sdk "podman cannot run a container here: $(tail -n 3 <<<"$why" | tr '\n' ' ')"
            return 0
        fi
    elif ! docker compose version 2>/dev/null | grep -q v2 && ! command -v docker-compose >/dev/null; then
        skip_sdk "Docker has neither 'docker compose' v2 nor docker-compose"
        return 0
    fi
    local sdk_port
    sdk_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    log "SDK local mode: fit, deploy, predict, transform through sagemaker $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("sagemaker"))')"
    local status=0
    PATH="$bin:$venv/bin:$PATH" "$venv/bin/python" tests/container/sdk_local_mode.py --image "$IMAGE" \
        --data opt_ml_layout/input/data --work "$work/sdk" --port "$sdk_port" >"$work/sdk.log" 2>&1 ||
        status=$?
    grep -E '^\[sdk\]' "$work/sdk.log" >&2 || true
    # The containers the SDK made (it names them at random) go, whatever happened.
    PATH="$bin:$PATH" docker ps -a -q --filter "ancestor=$IMAGE" | xargs -r env PATH="$bin:$PATH" docker rm -f >/dev/null 2>&1 || true
    [ "$status" -eq 0 ] || { tail -n 40 "$work/sdk.log" >&2; die "the SDK's local mode failed"; }
    sdk_result="passed"
}

containers=() runner= work=
cleanup() {
    local status=$?
    if [ -n "$runner" ] && kill -0 "$runner" 2>/dev/null; then
        stop_server 2>/dev/null || true
        sleep 2
        kill -KILL "$runner" 2>/dev/null || true
    fi
    local c
    for c in "${containers[@]}"; do "${B[@]}" rm "$c" >/dev/null 2>&1 || true; done
    [ "$engine" = docker ] && docker rm -f "$NAME-train" "$NAME-serve" >/dev/null 2>&1
    if [ $status -ne 0 ] && [ -s "$work/serve.log" ]; then
        log "serve's log:"
        tail -n 40 "$work/serve.log" >&2
    fi
    [ -n "$work" ] && rm -rf "$work"
    return $status
}
trap cleanup EXIT

# ---- 1. the image ----
t=$SECONDS
work=$(mktemp -d)
trust_host_ca
if [ "$engine" = buildah ]; then prepare_buildah; fi
prepare_s=$((SECONDS - t))
t=$SECONDS
log "building the CPU flavour of Dockerfile as $IMAGE with $engine"
build_image || die "the image build failed"
build_s=$((SECONDS - t))
size=$(inspect_image | python3 -c '
import json, sys
img = json.load(sys.stdin)[0]
cfg = img.get("Config") or {}
problems = []
if (cfg.get("Labels") or {}).get("com.amazonaws.sagemaker.capabilities.accept-bind-to-port") != "true":
    problems.append("label accept-bind-to-port=true missing")
if (cfg.get("Labels") or {}).get("com.amazonaws.sagemaker.capabilities.multi-models") != "true":
    problems.append("label multi-models=true missing")
if "8080/tcp" not in (cfg.get("ExposedPorts") or {}):
    problems.append("port 8080 not exposed")
if cfg.get("Entrypoint"):
    problems.append("an ENTRYPOINT is set: %r" % cfg["Entrypoint"])
if problems:
    sys.exit("image config: " + "; ".join(problems))
print(img["Size"])') || die "the image's configuration is wrong"
log "image $IMAGE: $(((size + 500000) / 1000000)) MB, built in ${build_s} s"

# ---- 2. train, as `docker run IMAGE train` ----
cp -r opt_ml_layout "$work/opt_ml"
chmod -R a+rwX "$work/opt_ml"
t=$SECONDS
log "train (inside the image, /opt/ml = a copy of opt_ml_layout/)"
new_container "$NAME-train"
run_in_image "$NAME-train" train 2>&1 | tee "$work/train.log" || die "train failed (exit status above)"
train_s=$((SECONDS - t))
[ ! -e "$work/opt_ml/output/failure" ] || die "train wrote output/failure: $(cat "$work/opt_ml/output/failure")"
for f in model/model.pth model/metadata.json output/data/metrics.json; do
    [ -s "$work/opt_ml/$f" ] || die "train did not write /opt/ml/$f"
done
grep -q -E '^test_loss=[0-9.]+ test_acc=[0-9.]+$' "$work/train.log" ||
    die "train printed no test_loss=... test_acc=... line"

# ---- 3. serve, as `docker run IMAGE serve`, queried from outside ----
port=${SMOKE_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
[[ "$port" =~ ^[0-9]+$ ]] || die "SMOKE_PORT '$port' is not a port number"
t=$SECONDS
log "serve (inside the image) on port $port"
if [ "$engine" = docker ]; then
    # Docker maps the port; the server listens on its default 8080 inside.
    docker run -d --name "$NAME-serve" --user "$(id -u):$(id -g)" -p "127.0.0.1:$port:8080" \
        -v "$work/opt_ml:/opt/ml" "$IMAGE" serve >/dev/null
    docker logs -f "$NAME-serve" >"$work/serve.log" 2>&1 &
    runner=$!
else
    # chroot isolation shares the host's network: the server takes the port SageMaker's way.
    new_container "$NAME-serve"
    run_in_image "$NAME-serve" serve SAGEMAKER_BIND_TO_PORT="$port" >"$work/serve.log" 2>&1 &
    runner=$!
fi
python3 tests/container/query_server.py --url "http://127.0.0.1:$port" \
    --images "$work/opt_ml/input/data/test" --pid "$runner" || die "serving answered wrong"

log "SIGTERM to serve"
stop_server || die "could not find the serve process to stop"
for _ in $(seq 1 300); do kill -0 "$runner" 2>/dev/null || break; sleep 0.1; done
kill -0 "$runner" 2>/dev/null && die "serve did not stop within 30 s of SIGTERM"
if [ "$engine" = docker ]; then
    status=$(docker inspect -f '{{.State.ExitCode}}' "$NAME-serve")
    wait "$runner" || true
else
    status=0
    wait "$runner" || status=$?
fi
runner=
[ "$status" -eq 0 ] || die "serve exited with status $status after SIGTERM, not 0"
grep -q 'stopped' "$work/serve.log" || die "serve's log does not say it stopped"
serve_s=$((SECONDS - t))

# ---- 4. the SageMaker Python SDK's local mode against the image ----
t=$SECONDS
sdk_local_mode
sdk_s=$((SECONDS - t))

log "PASS: image $(((size + 500000) / 1000000)) MB; tools and base ${prepare_s} s, build ${build_s} s, train ${train_s} s, serve ${serve_s} s, SDK local mode ${sdk_s} s ($sdk_result); total $((SECONDS - started)) s"
