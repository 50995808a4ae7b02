# Dockerfile - the SageMaker image: `docker run IMAGE train` trains, `docker run IMAGE serve`
# serves (README.md, "The container image").
#
#   docker build -t sagemaker-ic:gpu .                          GPU (default): CUDA libtorch,
#                                                               cuDNN, NCCL; no NVIDIA driver
#   docker build --build-arg FLAVOUR=cpu -t sagemaker-ic:cpu .  CPU only
#
# Build arguments: FLAVOUR (gpu | cpu), BASE (the Debian 12 image both stages start from;
# tests/container/smoke.sh passes one it made with debootstrap), TORCH_VERSION (keep equal to
# build.sh's; the smoke test checks). libtorch comes from the torch wheel on PyPI, so the build
# needs network access to Debian's mirrors and PyPI. No -march flags: the image runs anywhere.
ARG BASE=debian:bookworm-slim
ARG FLAVOUR=gpu

# ---- build: compile train and serve, stage exactly the libraries they need ----
FROM ${BASE} AS build
ARG FLAVOUR
ARG TORCH_VERSION=2.15.0
# build.sh's APT_PACKAGES and a few more (the smoke test checks that none is missing here).
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates cmake make g++ pkg-config binutils python3 python3-venv \
        libjpeg62-turbo-dev libpng-dev libmicrohttpd-dev libcjson-dev libarchive-dev zlib1g-dev \
        libgloo-dev libcurl4-openssl-dev \
    && rm -rf /var/lib/apt/lists/*
COPY container/install_libtorch.sh /usr/local/lib/sagemaker-ic/
RUN /usr/local/lib/sagemaker-ic/install_libtorch.sh "$FLAVOUR" "$TORCH_VERSION" /opt/torch-venv
COPY . /src
RUN /src/container/build_programs.sh "$FLAVOUR" /opt/torch-venv /src /opt/sagemaker-ic \
    && /src/container/stage_runtime_libs.sh "$FLAVOUR" /opt/torch-venv /opt/sagemaker-ic

# ---- runtime: Debian's image libraries, our two programs, the staged libtorch ----
FROM ${BASE} AS runtime
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libjpeg62-turbo libpng16-16 libmicrohttpd12 libcjson1 libarchive13 libcurl4 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/sagemaker-ic /opt/sagemaker-ic
COPY container/train container/serve /usr/local/bin/
COPY container/check_runtime.sh /usr/local/lib/sagemaker-ic/
RUN /usr/local/lib/sagemaker-ic/check_runtime.sh /opt/sagemaker-ic
# serve listens on 8080, or on SAGEMAKER_BIND_TO_PORT when SageMaker sets it.
LABEL com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true
# With SAGEMAKER_MULTI_MODEL=true, serve is a multi-model endpoint (POST /models ...).
LABEL com.amazonaws.sagemaker.capabilities.multi-models=true
EXPOSE 8080
# SageMaker runs `docker run IMAGE train` or `... serve`: the word replaces CMD and is found on
# PATH. No ENTRYPOINT, so the program is PID 1 and gets SIGTERM itself.
CMD ["serve"]

FROM runtime AS runtime-cpu
LABEL org.opencontainers.image.description="SageMaker image classification in C (CPU)"

FROM runtime AS runtime-gpu
# What the NVIDIA container runtime looks for to mount the host's driver and devices.
ENV NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility
LABEL org.opencontainers.image.description="SageMaker image classification in C (CUDA)"

FROM runtime-${FLAVOUR}
