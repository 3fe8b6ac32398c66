-- Refused decision attempts (403, 404, 409): who tried what on which approval, and why it was
-- refused. Append-only like approval_actions, which holds only decisions that took effect.
CREATE TABLE decision_refusals (
    id          bigserial PRIMARY KEY,
    approval_id text NOT NULL,
    actor       text NOT NULL,
    decision    text NOT NULL,
    status_code integer NOT NULL,
    reason      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX decision_refusals_approval ON decision_refusals (approval_id, created_at);

CREATE TRIGGER decision_refusals_append_only
    BEFORE UPDATE OR DELETE ON decision_refusals
    FOR EACH ROW EXECUTE FUNCTION approval_actions_refuse_change();

CREATE TRIGGER decision_refusals_no_truncate
    BEFORE TRUNCATE ON decision_refusals
    FOR EACH STATEMENT EXECUTE FUNCTION approval_actions_refuse_change();
