#!/bin/sh
# First start of the postgres container (/docker-entrypoint-initdb.d): make the agent's database
# with its two roles from roles.sql, passwords read from the mounted secrets.
set -eu
psql -X -q -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v owner="$AGENT_DB_OWNER" -v agent="$AGENT_DB_USER" -v db="$AGENT_DB_NAME" \
    -v owner_password="$(cat /run/secrets/db_owner_password)" \
    -v agent_password="$(cat /run/secrets/db_agent_password)" \
    -f /etc/devops-agent/roles.sql
