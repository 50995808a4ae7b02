#!/usr/bin/env bash
# make_carry.sh - builds tests/gpu/carry/: the C libraries the project builds and runs with
# (libmicrohttpd, cJSON, libjpeg-turbo, libpng, libarchive, zlib, libcurl; Gloo's headers; pkgconf),
# headers and shared objects, with the shared objects they need in turn, as this machine's
# Debian packages unpacked into a prefix. The GPU machines have a CUDA PyTorch, CMake and
# nvcc but none of these and no network; run_gpu_check.sh builds against this prefix there.
# Run it here (Debian 12, with apt); the folder is ignored by git and carried to the device.
#
#   tests/gpu/make_carry.sh            (re)makes tests/gpu/carry/ (about 50 MiB, checked < 64)
set -euo pipefail
cd "$(dirname "$0")"
CARRY=$PWD/carry
LIMIT_MIB=60

# Build-time packages, then the shared objects that the runtime ones link to (a GPU image
# usually has most of them already; run_gpu_check.sh uses only the ones it lacks).
PACKAGES=(libmicrohttpd-dev libmicrohttpd12 libcjson-dev libcjson1 libjpeg62-turbo-dev
          libjpeg62-turbo libpng-dev libpng16-16 libarchive-dev libarchive13 zlib1g-dev zlib1g
          libgloo-dev pkgconf-bin libpkgconf3
          libgnutls30 libgmp10 libhogweed6 libnettle8 libidn2-0 libp11-kit0 libtasn1-6
          libunistring2 libffi8 libacl1 libbz2-1.0 liblz4-1 liblzma5 libxml2 libicu72 libzstd1
          libcurl4-openssl-dev libcurl4 libnghttp2-14 librtmp1 libssh2-1 libpsl5 libbrotli1
          libldap-2.5-0 libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0 libkeyutils1
          libcom-err2 libsasl2-2 libsasl2-modules-db libdb5.3 libssl3)

command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null ||
    { echo "make_carry.sh: needs apt-get and dpkg-deb (a Debian machine)" >&2; exit 1; }
rm -rf "$CARRY"
mkdir -p "$CARRY/debs" "$CARRY/prefix"
(cd "$CARRY/debs" && apt-get download -q "${PACKAGES[@]}" 2>&1 | grep -v "^W: Download is performed unsandboxed" || true)
n=$(ls "$CARRY/debs"/*.deb | wc -l)
[ "$n" -eq ${#PACKAGES[@]} ] ||
    { echo "make_carry.sh: downloaded $n of ${#PACKAGES[@]} packages" >&2; exit 1; }
for deb in "$CARRY/debs"/*.deb; do
    dpkg-deb -x "$deb" "$CARRY/prefix"
    dpkg-deb -f "$deb" Package Version | paste -sd' ' >>"$CARRY/PACKAGES"
done
# Only what a build and a run need: no documentation, manuals, static archives or debs.
rm -rf "$CARRY/debs" "$CARRY/prefix/usr/share/doc" "$CARRY/prefix/usr/share/man" \
    "$CARRY/prefix/usr/share/lintian" "$CARRY/prefix/usr/share/aclocal" \
    "$CARRY/prefix/usr/share/info" "$CARRY/prefix/usr/share/locale"
find "$CARRY/prefix" -name '*.a' -delete
# Some packages ship libraries under /lib (merged-usr on the target or not): keep one tree.
if [ -d "$CARRY/prefix/lib/x86_64-linux-gnu" ]; then
    mkdir -p "$CARRY/prefix/usr/lib/x86_64-linux-gnu"
    cp -a "$CARRY/prefix/lib/x86_64-linux-gnu/." "$CARRY/prefix/usr/lib/x86_64-linux-gnu/"
    rm -rf "$CARRY/prefix/lib"
fi
# Development links may point at /lib/...: make every link relative to the prefix.
find "$CARRY/prefix" -type l | while read -r link; do
    target=$(readlink "$link")
    case "$target" in
    /*) ln -sfn "$(basename "$target")" "$link" ;;
    esac
done
# Shared linking only: the private requirements (gnutls...) have no .pc file here.
sed -i '/^Requires.private:/d' "$CARRY"/prefix/usr/lib/x86_64-linux-gnu/pkgconfig/*.pc
size=$(du -sm "$CARRY" | cut -f1)
echo "make_carry.sh: $CARRY: ${#PACKAGES[@]} packages, ${size} MiB"
[ "$size" -le "$LIMIT_MIB" ] || { echo "make_carry.sh: over ${LIMIT_MIB} MiB" >&2; exit 1; }
