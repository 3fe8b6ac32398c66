-- Alerts from Alertmanager: one row per firing episode of an alert (its fingerprint and
-- startsAt), what the agent did about it (started a workflow, escalated to a human, or ignored
-- it, with the reason), how often Alertmanager repeated it, and when it resolved.
CREATE TABLE alert_workflows (
    id           bigserial PRIMARY KEY,
    fingerprint  text NOT NULL,
    alertname    text NOT NULL,
    status       text NOT NULL DEFAULT 'firing' CHECK (status IN ('firing', 'resolved')),
    action       text NOT NULL CHECK (action IN ('workflow', 'escalated', 'ignored')),
    reason       text,
    strategy     text,
    target       text,
    environment  text,
    labels       jsonb NOT NULL DEFAULT '{}'::jsonb,
    annotations  jsonb NOT NULL DEFAULT '{}'::jsonb,
    workflow_id  text REFERENCES workflows (id),
    approval_id  uuid,
    received     integer NOT NULL DEFAULT 1,
    starts_at    timestamptz NOT NULL,
    first_seen   timestamptz NOT NULL DEFAULT now(),
    last_seen    timestamptz NOT NULL DEFAULT now(),
    resolved_at  timestamptz,
    notes        jsonb NOT NULL DEFAULT '[]'::jsonb,
    UNIQUE (fingerprint, starts_at)
);

CREATE INDEX alert_workflows_latest ON alert_workflows (fingerprint, id DESC);
CREATE INDEX alert_workflows_workflow ON alert_workflows (workflow_id)
    WHERE workflow_id IS NOT NULL;
