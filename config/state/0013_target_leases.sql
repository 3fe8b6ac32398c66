-- One owner per target: a lease per (environment, target) held by the workflow whose plan
-- mutates it, from its gate until it ends (or the lease's time limit, recovered by the sweeper).
-- A second request with the same operation is merged into the owner; one with another
-- operation waits (`waiting_for_target`) and is re-assessed once the lease is released.
ALTER TABLE workflows DROP CONSTRAINT IF EXISTS workflows_status_check;
ALTER TABLE workflows ADD CONSTRAINT workflows_status_check
    CHECK (status IN ('planning', 'awaiting_approval', 'running', 'completed', 'failed',
                      'rejected', 'expired', 'withdrawn', 'needs_clarification', 'merged',
                      'waiting_for_target', 'rolled_back'));
ALTER TABLE workflows ADD COLUMN IF NOT EXISTS merged_into text REFERENCES workflows (id);

CREATE TABLE IF NOT EXISTS target_leases (
    environment text NOT NULL,
    target      text NOT NULL,
    workflow_id text NOT NULL REFERENCES workflows (id),
    operations  text NOT NULL,
    taken_at    timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (environment, target)
);
CREATE INDEX IF NOT EXISTS target_leases_owner ON target_leases (workflow_id);

CREATE TABLE IF NOT EXISTS workflow_merges (
    workflow_id text PRIMARY KEY REFERENCES workflows (id),
    owner_id    text NOT NULL REFERENCES workflows (id),
    requester   text NOT NULL,
    source      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS workflow_merges_owner ON workflow_merges (owner_id);

-- A merged request is recorded on the owner's approval, so the approver sees who else asked.
ALTER TABLE approval_actions DROP CONSTRAINT IF EXISTS approval_actions_action_check;
ALTER TABLE approval_actions ADD CONSTRAINT approval_actions_action_check
    CHECK (action IN ('requested', 'approve', 'reject', 'edit', 'expire', 'withdraw', 'resume',
                      'merged'));
