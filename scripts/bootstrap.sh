#!/usr/bin/env bash
# Set up the project's virtualenv from the lock file; safe to run again (it only syncs).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
UV_VERSION="0.13.9"
BOOT="$ROOT/.cache/bootstrap"

find_python() {
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    echo "bootstrap: Python 3.11 or newer is required (install python3 >= 3.11)" >&2
    return 1
}

ensure_venv_module() {
    local python="$1"
    if "$python" -c 'import ensurepip, venv' 2>/dev/null; then
        return 0
    fi
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
        echo "bootstrap: installing python3-venv" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
    else
        echo "bootstrap: the venv module is missing; run: sudo apt-get install python3-venv" >&2
        return 1
    fi
}

PYTHON="$(find_python)"
if [ ! -x "$BOOT/bin/uv" ] || [ "$("$BOOT/bin/uv" --version 2>/dev/null | cut -d" " -f1,2)" != "uv $UV_VERSION" ]; then
    ensure_venv_module "$PYTHON"
    rm -rf "$BOOT"
    "$PYTHON" -m venv "$BOOT"
    "$BOOT/bin/pip" install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi
cd "$ROOT"
# Bytecode compiled once here: with PYTHONDONTWRITEBYTECODE set (as on these machines and in
# the image) Python would otherwise compile every module it imports again on each start, which
# doubled the service's start-up (docs/benchmarks.md, 10,000 paused workflows).
UV_PYTHON="$PYTHON" "$BOOT/bin/uv" sync --frozen --quiet --compile-bytecode
.venv/bin/python -m compileall -q agent_orchestrator graphs shared benchmarks tests >/dev/null
