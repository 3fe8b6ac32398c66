-- Workflows: one row per request, the durable summary beside LangGraph's checkpoints, and
-- a timeline of what happened to it.
CREATE TABLE workflows (
    id           text PRIMARY KEY,
    status       text NOT NULL DEFAULT 'planning'
        CHECK (status IN ('planning', 'awaiting_approval', 'running', 'completed', 'failed',
                          'rejected', 'expired', 'withdrawn')),
    source       text NOT NULL,
    requester    text NOT NULL,
    request      jsonb NOT NULL,
    plan         jsonb,
    risk         jsonb,
    approval_id  uuid,
    results      jsonb NOT NULL DEFAULT '[]'::jsonb,
    verification jsonb NOT NULL DEFAULT '[]'::jsonb,
    error        text,
    request_id   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);

CREATE INDEX workflows_status ON workflows (status, updated_at);

CREATE TABLE workflow_events (
    id          bigserial PRIMARY KEY,
    workflow_id text NOT NULL REFERENCES workflows (id),
    event       text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX workflow_events_workflow ON workflow_events (workflow_id, id);

ALTER TABLE approval_requests ADD COLUMN round integer NOT NULL DEFAULT 1;
CREATE INDEX approval_requests_risk_pending ON approval_requests (risk_level, created_at)
    WHERE status = 'pending';

ALTER TABLE executions ADD COLUMN mutates boolean NOT NULL DEFAULT true;
