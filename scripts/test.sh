#!/usr/bin/env bash
# Set up, provision the test bed, and run the whole suite (lint and types included).
# Postgres: DATABASE_URL names a server to make throwaway databases on; unset, an embedded one.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh"
"$ROOT/scripts/provision-testbed.sh"
# LangGraph Server (`langgraph dev`) for its test, in a virtualenv of its own (see pyproject.toml).
UV_PROJECT_ENVIRONMENT="$ROOT/.venv-langgraph" "$ROOT/.cache/bootstrap/bin/uv" sync \
    --project "$ROOT" --frozen --quiet --no-default-groups --group langgraph-server
cd "$ROOT"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
exec .venv/bin/pytest "$@"
