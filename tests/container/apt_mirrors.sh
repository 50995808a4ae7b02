#!/usr/bin/env bash
# tests/container/apt_mirrors.sh - the Debian mirror and security mirror this machine's apt uses,
# read from its sources in both formats: one-line (`/etc/apt/sources.list`, `*.list`) and
# deb822 (`*.sources`). The image's Debian base is bootstrapped from them, so the repository
# never names a package registry's host: the machine that builds the image already knows where
# its packages come from.
#
#   tests/container/apt_mirrors.sh [ETC_APT]   (default /etc/apt)
#
# Prints two lines, `mirror URL` and `security URL`, for the first enabled `deb` entry of a
# Debian suite (bookworm, trixie, stable... and their -updates/-backports) and the first of a
# Debian security suite (`<suite>-security`, or the old `<suite>/updates`). Entries of other
# distributions or third-party repositories (suites such as `nodistro` or `jammy`) are passed
# over. Exits 1 without printing when either is missing. Only reads files: no network.
set -euo pipefail

etc_apt=${1:-/etc/apt}

# One entry per line on stdout: "<types>\t<uris>\t<suites>", lists space-separated.
one_line_entries() {
    # `deb [arch=amd64 signed-by=/k.gpg] http://m/debian bookworm main` -> deb, URI, suite.
    sed -e 's/#.*//' "$1" | awk '
        $1 != "deb" && $1 != "deb-src" { next }
        {
            type = $1; i = 2
            if ($i ~ /^\[/) {                  # options run to the field ending in "]"
                while (i <= NF && $i !~ /\]$/) i++
                i++
            }
            if (i + 1 <= NF) printf "%s\t%s\t%s\n", type, $i, $(i + 1)
        }'
}

deb822_entries() {
    # Stanzas are separated by blank lines; fields may continue on indented lines; a comment
    # is a whole line starting with "#" (dropped, not read as a blank line).
    sed -e '/^[[:space:]]*#/d' "$1" | awk '
        function flush() {
            if (types != "" && uris != "" && suites != "" && tolower(enabled) != "no")
                printf "%s\t%s\t%s\n", types, uris, suites
            types = uris = suites = enabled = ""; field = ""
        }
        /^[ \t]*$/ { flush(); next }
        /^[ \t]/ {                             # continuation of the previous field
            value = $0; sub(/^[ \t]+/, "", value)
            if (field == "types") types = types " " value
            else if (field == "uris") uris = uris " " value
            else if (field == "suites") suites = suites " " value
            next
        }
        {
            split($0, kv, ":"); field = tolower(kv[1])
            value = substr($0, length(kv[1]) + 2); gsub(/^[ \t]+|[ \t]+$/, "", value)
            if (field == "types") types = value
            else if (field == "uris") uris = value
            else if (field == "suites") suites = value
            else if (field == "enabled") enabled = value
        }
        END { flush() }'
}

all_entries() {
    local f
    for f in "$etc_apt/sources.list" "$etc_apt"/sources.list.d/*.list; do
        [ -f "$f" ] && one_line_entries "$f"
    done
    for f in "$etc_apt"/sources.list.d/*.sources; do
        [ -f "$f" ] && deb822_entries "$f"
    done
    return 0
}

debian_suite='(buster|bullseye|bookworm|trixie|forky|duke|sid|oldoldstable|oldstable|stable|testing|unstable)'
mirror=
security=
while IFS=$'\t' read -r types uris suites; do
    [[ " $types " == *" deb "* ]] || continue
    uri=${uris%% *}
    [[ "$uri" =~ ^https?://[A-Za-z0-9.:/_~%+-]+$ ]] || continue
    for s in $suites; do
        if [[ "$s" =~ ^$debian_suite(-security|/updates)$ ]]; then
            security=${security:-${uri%/}}
        elif [[ "$s" =~ ^$debian_suite(-updates|-backports|-proposed-updates)?$ ]]; then
            mirror=${mirror:-${uri%/}}
        fi
    done
done < <(all_entries)

[ -n "$mirror" ] && [ -n "$security" ] || exit 1
printf 'mirror %s\nsecurity %s\n' "$mirror" "$security"
