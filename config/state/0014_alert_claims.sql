-- Alert storms: a delivery of many alerts is recorded first and processed by a background
-- task; `claimed_at` says when a task last took a row to start its workflow, so the recovery
-- sweep takes again only rows a dead process left (compare-and-set on this column).
ALTER TABLE alert_workflows ADD COLUMN IF NOT EXISTS claimed_at timestamptz;
CREATE INDEX IF NOT EXISTS alert_workflows_unprocessed ON alert_workflows (id)
    WHERE action = 'workflow' AND workflow_id IS NULL AND status = 'firing';
