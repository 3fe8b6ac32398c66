-- Approval requests: one row per pause of a workflow at an approval gate.
CREATE TABLE approval_requests (
    id                 uuid PRIMARY KEY,
    workflow_id        text NOT NULL,
    status             text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'approved', 'rejected', 'expired', 'withdrawn', 'superseded')),
    risk_level         text NOT NULL CHECK (risk_level IN ('low', 'medium', 'high', 'critical')),
    required_approvals integer NOT NULL CHECK (required_approvals >= 1),
    allowed_roles      text[] NOT NULL,
    requester          text NOT NULL,
    plan               jsonb NOT NULL,
    plan_hash          text NOT NULL,
    assessment         jsonb NOT NULL DEFAULT '{}'::jsonb,
    context            jsonb NOT NULL DEFAULT '{}'::jsonb,
    timeout_outcome    text NOT NULL DEFAULT 'reject' CHECK (timeout_outcome IN ('reject', 'expire')),
    created_at         timestamptz NOT NULL DEFAULT now(),
    expires_at         timestamptz NOT NULL,
    decided_at         timestamptz,
    resumed_at         timestamptz
);

CREATE INDEX approval_requests_workflow ON approval_requests (workflow_id);
CREATE INDEX approval_requests_pending ON approval_requests (expires_at) WHERE status = 'pending';
