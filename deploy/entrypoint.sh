#!/bin/sh
# Bring the schema up to date, then run the service. `db init` applies what is pending as
# MIGRATION_DATABASE_URL's role when set (the schema owner), else as DATABASE_URL's; with a
# current schema it only reads, so the agent's DML-only role passes it. Any other command
# (`devops-agent approvals list`, ...) runs as given.
set -eu
if [ "${1:-}" = "serve" ] && [ "${AGENT_MIGRATE_AT_START:-true}" = "true" ]; then
    devops-agent db init
fi
exec devops-agent "$@"
