#!/bin/sh
# Make deploy/secrets/ for compose.yml: random passwords and token, and the two database URLs
# that use them (the owner's for migrations, the agent's for the service). Existing files are
# kept, so running it again never changes a password the database already has.
# The operators' Slack webhook (Alertmanager's route for alerts about the agent) is yours:
#   OPERATOR_SLACK_WEBHOOK_URL=https://hooks.slack.com/services/... deploy/make-secrets.sh
set -eu
cd "$(dirname "$0")"
if [ -f .env ]; then . ./.env; else . ./.env.example; fi
dir=secrets
umask 077
mkdir -p "$dir"
chmod 700 "$dir"   # the folder guards the files; the files stay readable for the containers'
                   # own users (postgres, the agent's uid 10001, grafana, nobody)

random() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }
put() {   # put NAME VALUE: write once, world-readable inside the private folder
    if [ ! -s "$dir/$1" ]; then printf '%s' "$2" > "$dir/$1"; fi
    chmod 644 "$dir/$1"
}
put postgres_password "$(random)"
put db_owner_password "$(random)"
put db_agent_password "$(random)"
put agent_alert_webhook_token "$(random)"
put metrics_token "$(random)"
put grafana_admin_password "$(random)"
host=postgres:5432
put db_owner_url "postgresql://$AGENT_DB_OWNER:$(cat "$dir/db_owner_password")@$host/$AGENT_DB_NAME"
put db_agent_url "postgresql://$AGENT_DB_USER:$(cat "$dir/db_agent_password")@$host/$AGENT_DB_NAME"
if [ -n "${OPERATOR_SLACK_WEBHOOK_URL:-}" ]; then
    put operator_slack_webhook "$OPERATOR_SLACK_WEBHOOK_URL"
elif [ ! -s "$dir/operator_slack_webhook" ]; then
    echo "make-secrets: set OPERATOR_SLACK_WEBHOOK_URL and run again: alerts about the agent" \
        "go to people through it (deploy/secrets/operator_slack_webhook)" >&2
    exit 1
fi
echo "secrets in deploy/$dir; the Docker socket's group id for .env: DOCKER_GID=$(stat -c %g /var/run/docker.sock 2>/dev/null || echo '?')"
