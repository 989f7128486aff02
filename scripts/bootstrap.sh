#!/bin/sh
# Print the path of a usable uv, obtaining it first when missing, without ever installing into the system
# Python (PEP 668 refuses that on Debian 12 / Ubuntu 24.04, and --break-system-packages is never used):
#   1. uv on PATH, in ~/.local/bin or in .tools/bin (a previous run)
#   2. a private venv: python3 -m venv .tools && .tools/bin/pip install uv (apt-get installs python3-venv
#      first when the venv module is missing and we are root or have passwordless sudo)
#   3. pipx install uv (apt's pipx)
# A machine without Python >= 3.11 gets one line naming the package to install, exit 1.
# HULK_OPS_BOOTSTRAP_DRY_RUN=1 prints the commands it would run (to stderr, prefixed "would run:") instead.
# `bootstrap.sh --python` prints the Python >= 3.11 it found instead (for `uv sync --python`).
# `bootstrap.sh --find` prints the uv of step 1 and obtains none (exit 1 without one): what tests use.
# Diagnostics go to stderr; stdout is only the uv path.
set -eu

TOOLS="${HULK_OPS_TOOLS_DIR:-.tools}"
DRY="${HULK_OPS_BOOTSTRAP_DRY_RUN:-}"

say() { printf '%s\n' "$*" >&2; }
run() {
    if [ -n "$DRY" ]; then say "would run: $*"; else "$@"; fi
}

find_python() {
    for candidate in python3 python3.13 python3.12 python3.11; do
        path=$(command -v "$candidate" 2>/dev/null) || continue
        if "$path" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
            printf '%s\n' "$path"
            return 0
        fi
    done
    return 1
}

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo -n "$@"
    else return 1
    fi
}

apt_install() {
    command -v apt-get >/dev/null 2>&1 || return 1
    if [ -n "$DRY" ]; then say "would run: apt-get install -y $*"; return 0; fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2 \
        || { as_root apt-get update -q >&2 && as_root env DEBIAN_FRONTEND=noninteractive \
             apt-get install -y -q --no-install-recommends "$@" >&2; }
}

if [ "${1:-}" = "--python" ]; then
    find_python || { say "hulk-ops needs Python 3.11 or newer: install it (Debian/Ubuntu: sudo apt-get install python3)"; exit 1; }
    exit 0
fi

for existing in "$(command -v uv 2>/dev/null || true)" "$HOME/.local/bin/uv" "$TOOLS/bin/uv"; do
    if [ -n "$existing" ] && [ -x "$existing" ]; then printf '%s\n' "$existing"; exit 0; fi
done
if [ "${1:-}" = "--find" ]; then
    say "no uv on PATH, in ~/.local/bin or in $TOOLS/bin: run make venv (or scripts/bootstrap.sh) first"
    exit 1
fi

if ! PY=$(find_python); then
    say "hulk-ops needs Python 3.11 or newer: install it (Debian/Ubuntu: sudo apt-get install python3 python3-venv)"
    exit 1
fi

# the venv module is split out into python3-venv on Debian; ensurepip is what `venv` needs to seed pip
if ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then
    minor=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    apt_install "python$minor-venv" || apt_install python3-venv || true
fi

if [ -n "$DRY" ] || "$PY" -c 'import venv, ensurepip' 2>/dev/null; then
    say "getting uv into a private venv ($TOOLS)"
    run "$PY" -m venv "$TOOLS"
    run "$TOOLS/bin/python" -m pip install --quiet --disable-pip-version-check uv
    if [ -n "$DRY" ] || [ -x "$TOOLS/bin/uv" ]; then printf '%s\n' "$TOOLS/bin/uv"; exit 0; fi
fi

if command -v pipx >/dev/null 2>&1 || apt_install pipx; then
    say "getting uv with pipx"
    run pipx install uv
    printf '%s\n' "$HOME/.local/bin/uv"
    exit 0
fi

say "could not get uv: install python3-venv or pipx (sudo apt-get install python3-venv), or uv itself (https://docs.astral.sh/uv/)"
exit 1
