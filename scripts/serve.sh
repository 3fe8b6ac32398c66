#!/usr/bin/env bash
# Set up, then run the service (embedded Postgres unless DATABASE_URL is set).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
exec "$ROOT/.venv/bin/devops-agent" serve "$@"
