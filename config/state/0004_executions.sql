-- The execution ledger: a row is written before a mutating operation runs, keyed for idempotency.
CREATE TABLE executions (
    id              bigserial PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    workflow_id     text NOT NULL,
    step            integer NOT NULL,
    operation       text NOT NULL,
    target          text NOT NULL,
    environment     text,
    executor        text,
    params          jsonb NOT NULL DEFAULT '{}'::jsonb,
    status          text NOT NULL DEFAULT 'started'
        CHECK (status IN ('started', 'ok', 'failed', 'timeout', 'refused', 'unreachable',
                          'outcome_unknown')),
    result          jsonb,
    owner           text,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);

CREATE INDEX executions_workflow ON executions (workflow_id, step);
CREATE INDEX executions_target_recent ON executions (target, started_at DESC);
