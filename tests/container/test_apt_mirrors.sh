#!/usr/bin/env bash
# tests/container/test_apt_mirrors.sh - apt_mirrors.sh and debian_base.sh find the image's Debian
# mirrors in sample apt sources (one-line and deb822: several entries, comments, options,
# disabled stanzas, third-party repositories), and debian_base.sh stops naming the variable to
# set when there are none. Mirror URLs here are made-up hosts under example.org; nothing is
# fetched (the failing case stops before debootstrap).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
passed=0

# expect NAME WANT: runs apt_mirrors.sh on $tmp/NAME, compares its whole output with WANT.
expect() {
    local got
    got=$("$here/apt_mirrors.sh" "$tmp/$1" 2>&1) || got="exit $?${got:+: $got}"
    if [ "$got" = "$2" ]; then
        passed=$((passed + 1))
    else
        printf 'FAIL %s\n  want: %s\n  got:  %s\n' "$1" "${2//$'\n'/ | }" "${got//$'\n'/ | }"
        failed=$((failed + 1))
    fi
}

# 1. One-line sources.list: a third-party repository first, comments, deb-src, options.
mkdir -p "$tmp/one_line/sources.list.d"
cat >"$tmp/one_line/sources.list" <<'EOF'
# deb http://commented.example.org/debian bookworm main
deb [signed-by=/usr/share/keyrings/node.gpg] https://node.example.org/node_20.x nodistro main
deb-src http://src.example.org/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example.org/debian/ bookworm main contrib
deb http://mirror.example.org/debian bookworm-updates main   # trailing comment
deb http://security.example.org/debian-security bookworm-security main
EOF
expect one_line $'mirror http://mirror.example.org/debian\nsecurity http://security.example.org/debian-security'

# 2. deb822: a disabled stanza first, comment lines inside a stanza, several URIs, Ubuntu's
#    suites passed over, field names in any case, a continued field.
mkdir -p "$tmp/deb822/sources.list.d"
cat >"$tmp/deb822/sources.list.d/debian.sources" <<'EOF'
Types: deb
URIs: http://disabled.example.org/debian
Suites: bookworm
Components: main
Enabled: no

# Ubuntu's archive: not a Debian suite
Types: deb
URIs: http://ubuntu.example.org/ubuntu
Suites: jammy jammy-updates
Components: main

Types: deb deb-src
# a comment line inside the stanza
URIs: https://fast.example.org/debian https://slow.example.org/debian
suites: trixie
 trixie-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: https://fast.example.org/debian-security/
Suites: trixie-security
Components: main
EOF
expect deb822 $'mirror https://fast.example.org/debian\nsecurity https://fast.example.org/debian-security'

# 3. Both formats at once: main in a .list file, security in a .sources file; deb-src only
#    entries do not count.
mkdir -p "$tmp/mixed/sources.list.d"
echo 'deb-src http://src-only.example.org/debian-security bookworm-security main' \
    >"$tmp/mixed/sources.list.d/src.list"
echo 'deb http://m.example.org/debian stable main' >"$tmp/mixed/sources.list.d/main.list"
printf 'Types: deb\nURIs: http://s.example.org/debian-security\nSuites: stable/updates\n' \
    >"$tmp/mixed/sources.list.d/security.sources"
expect mixed $'mirror http://m.example.org/debian\nsecurity http://s.example.org/debian-security'

# 4. No sources at all, only third-party ones, or no security entry: nothing printed, exit 1.
mkdir -p "$tmp/none"
expect none 'exit 1'
mkdir -p "$tmp/third_party/sources.list.d"
echo 'deb https://node.example.org/node_20.x nodistro main' >"$tmp/third_party/sources.list.d/n.list"
expect third_party 'exit 1'
mkdir -p "$tmp/no_security"
echo 'deb http://m.example.org/debian bookworm main' >"$tmp/no_security/sources.list"
expect no_security 'exit 1'

# 5. debian_base.sh with no mirror found and no variable set: a clear message naming the
#    variable, exit 1, before anything is bootstrapped. With the variables, it goes past the
#    mirror check (stopping later where debootstrap is missing or not root is irrelevant here:
#    the message must not be about mirrors).
check_base() { # NAME WANT_SUBSTRING [VAR=VALUE...]
    local name=$1 want=$2 out rc
    shift 2
    out=$(env CACHE_DIR="$tmp/cache" APT_ETC="$tmp/none" "$@" PATH="$tmp/nobin:$PATH" \
        timeout 20 "$here/debian_base.sh" 2>&1) && rc=0 || rc=$?
    if [[ "$out" == *"$want"* ]] && { [ "$rc" -ne 0 ] || [ "$want" = "" ]; }; then
        passed=$((passed + 1))
    else
        printf 'FAIL %s (exit %s)\n  want a message with: %s\n  got: %s\n' "$name" "$rc" "$want" "$out"
        failed=$((failed + 1))
    fi
}
# A debootstrap that refuses to run, so that the variable case can never bootstrap for real.
mkdir -p "$tmp/nobin"
printf '#!/bin/sh\necho "debootstrap stand-in: not run in this test" >&2\nexit 3\n' >"$tmp/nobin/debootstrap"
chmod +x "$tmp/nobin/debootstrap"
check_base base_no_mirror "set DEBIAN_MIRROR to your Debian mirror's URL"
check_base base_no_security "set DEBIAN_SECURITY_MIRROR" DEBIAN_MIRROR=http://m.example.org/debian
check_base base_bad_url "is not an http(s) URL" DEBIAN_MIRROR='ftp://m.example.org/debian' \
    DEBIAN_SECURITY_MIRROR=http://s.example.org/debian-security
if [ "$(id -u)" -eq 0 ]; then
    check_base base_variables "debootstrap failed" DEBIAN_MIRROR=http://m.example.org/debian \
        DEBIAN_SECURITY_MIRROR=http://s.example.org/debian-security
fi

echo "apt_mirrors: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
