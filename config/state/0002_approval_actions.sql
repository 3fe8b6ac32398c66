-- Approval actions: the append-only audit of every request, decision, expiry and withdrawal.
CREATE TABLE approval_actions (
    id          bigserial PRIMARY KEY,
    approval_id uuid NOT NULL REFERENCES approval_requests (id),
    workflow_id text NOT NULL,
    action      text NOT NULL
        CHECK (action IN ('requested', 'approve', 'reject', 'edit', 'expire', 'withdraw', 'resume')),
    actor       text NOT NULL,
    role        text,
    reason      text,
    plan_hash   text,
    details     jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX approval_actions_approval ON approval_actions (approval_id, created_at);

-- One approver counts once per approval request.
CREATE UNIQUE INDEX approval_actions_one_vote
    ON approval_actions (approval_id, actor) WHERE action IN ('approve', 'reject');

CREATE FUNCTION approval_actions_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'approval_actions is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER approval_actions_append_only
    BEFORE UPDATE OR DELETE ON approval_actions
    FOR EACH ROW EXECUTE FUNCTION approval_actions_refuse_change();

CREATE TRIGGER approval_actions_no_truncate
    BEFORE TRUNCATE ON approval_actions
    FOR EACH STATEMENT EXECUTE FUNCTION approval_actions_refuse_change();
