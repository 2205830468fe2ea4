#!/bin/sh
# Installs casty's Debian build dependencies when they are missing.
# Called by the Makefile before building; safe to run by hand. It only calls
# apt-get when pkg-config or one of the library headers is absent.
set -eu

PKGS="liburing-dev libck-dev libxxhash-dev libcriterion-dev libpcre2-dev libsodium-dev pkg-config"

have_all() {
    command -v pkg-config >/dev/null 2>&1 || return 1
    for h in liburing.h ck_pr.h xxhash.h criterion/criterion.h pcre2.h sodium.h; do
        [ -f "/usr/include/$h" ] || return 1
    done
    return 0
}

if have_all; then
    exit 0
fi

echo "casty: installing build dependencies: $PKGS" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "casty: missing build dependencies and not root; install: $PKGS" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || true
$SUDO apt-get install -y -qq $PKGS
have_all || { echo "casty: dependencies still missing after apt-get" >&2; exit 1; }
