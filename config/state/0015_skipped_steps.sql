-- Conditional steps: a step whose condition on earlier results does not hold is recorded in
-- the ledger as `skipped`, with the reason in its result, and never run.
ALTER TABLE executions DROP CONSTRAINT IF EXISTS executions_status_check;
ALTER TABLE executions ADD CONSTRAINT executions_status_check
    CHECK (status IN ('started', 'ok', 'failed', 'timeout', 'refused', 'unreachable',
                      'outcome_unknown', 'skipped'));
