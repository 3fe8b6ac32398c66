-- A request the planner could not turn into a plan ends as a question back
-- (needs_clarification) or a refusal naming its rule (rejected), never as `failed`, which
-- means an error while running; `outcome` keeps the question, candidates or rule.
ALTER TABLE workflows DROP CONSTRAINT workflows_status_check;
ALTER TABLE workflows ADD CONSTRAINT workflows_status_check
    CHECK (status IN ('planning', 'awaiting_approval', 'running', 'completed', 'failed',
                      'rejected', 'expired', 'withdrawn', 'needs_clarification'));
ALTER TABLE workflows ADD COLUMN outcome jsonb;
