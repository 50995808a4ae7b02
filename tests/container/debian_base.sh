#!/usr/bin/env bash
# tests/container/debian_base.sh - a Debian 12 (bookworm) root filesystem made with debootstrap,
# as a tarball to import as the image's BASE where no registry can be reached. Cached: only the
# first run downloads anything; delete the tarball to refresh it. Prints the tarball's path.
#
#   tests/container/debian_base.sh      ->  ~/.cache/sagemaker-ic-c/debian-bookworm-minbase.tar
#
# Environment: DEBIAN_MIRROR and DEBIAN_SECURITY_MIRROR (default: the ones this machine's apt
# uses, read from its sources by apt_mirrors.sh; without them and without the variables it stops
# and says so), APT_ETC (where those sources are, /etc/apt), CACHE_DIR (~/.cache/sagemaker-ic-c).
# Needs root (debootstrap) and debootstrap itself.
set -euo pipefail

log() { printf '[debian_base.sh] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

suite=bookworm
cache=${CACHE_DIR:-$HOME/.cache/sagemaker-ic-c}
tarball=$cache/debian-$suite-minbase.tar
if [ -s "$tarball" ]; then
    echo "$tarball"
    exit 0
fi

# The mirrors this machine's apt uses, so that the bootstrap goes where the network is known to
# reach; the variables override them.
detected=$("$(dirname "$0")/apt_mirrors.sh" "${APT_ETC:-/etc/apt}" || true)
mirror=${DEBIAN_MIRROR:-$(sed -n 's/^mirror //p' <<<"$detected")}
security=${DEBIAN_SECURITY_MIRROR:-$(sed -n 's/^security //p' <<<"$detected")}
[ -n "$mirror" ] || die "no Debian mirror found in ${APT_ETC:-/etc/apt}'s sources (sources.list," \
    "sources.list.d/*.list or *.sources): set DEBIAN_MIRROR to your Debian mirror's URL"
[ -n "$security" ] || die "no Debian security mirror found in ${APT_ETC:-/etc/apt}'s sources:" \
    "set DEBIAN_SECURITY_MIRROR to your Debian security mirror's URL"
[[ "$mirror" =~ ^https?://[A-Za-z0-9.:/_~%+-]+$ ]] || die "DEBIAN_MIRROR '$mirror' is not an http(s) URL"
[[ "$security" =~ ^https?://[A-Za-z0-9.:/_~%+-]+$ ]] ||
    die "DEBIAN_SECURITY_MIRROR '$security' is not an http(s) URL"

[ "$(id -u)" -eq 0 ] || die "debootstrap needs root"
command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"

mkdir -p "$cache"
rootfs=$(mktemp -d "$cache/debootstrap.XXXXXX")
trap 'rm -rf "$rootfs" "$tarball.partial"' EXIT
log "debootstrap --variant=minbase $suite from $mirror (once; cached as $tarball)"
debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 ||
    { tail -n 30 "$rootfs.log" >&2; rm -f "$rootfs.log"; die "debootstrap failed"; }
rm -f "$rootfs.log"

# Sources as debian:bookworm-slim has them (updates and security too), no package caches, no
# host name from this machine.
rm -f "$rootfs/etc/apt/sources.list"
cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/tmp/*
echo localhost >"$rootfs/etc/hostname"

tar --numeric-owner -C "$rootfs" -cf "$tarball.partial" .
mv "$tarball.partial" "$tarball"
log "made $tarball ($(du -h "$tarball" | cut -f1))"
echo "$tarball"
