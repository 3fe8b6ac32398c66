-- A requester's recent workflows (list_my_requests over MCP, GET /workflows) without a scan.
CREATE INDEX IF NOT EXISTS workflows_requester_created_idx
    ON workflows (requester, created_at DESC);
