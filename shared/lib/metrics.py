"""Domain metrics, exposed beside the HTTP metrics on /metrics.

Metric objects are process-wide by nature of the Prometheus client (one default registry);
they hold counts only, no connections, so defining them at import is safe.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

APPROVAL_REQUESTS = Counter(
    "orchestrator_approval_requests_total",
    "Approval requests created, by risk level.",
    ["risk_level"],
)
APPROVALS_PENDING = Gauge(
    "orchestrator_approvals_pending",
    "Approval requests waiting for a decision now, by risk level (the whole database's count, "
    "refreshed by every replica's sweeper: aggregate replicas with max, not sum).",
    ["risk_level"],
    multiprocess_mode="max",
)
APPROVAL_WAIT = Histogram(
    "orchestrator_approval_wait_seconds",
    "Time from an approval request to its resolution.",
    ["risk_level"],
    buckets=(1, 5, 15, 30, 60, 300, 900, 1800, 3600, 14400, 86400),
)
APPROVAL_DECISIONS = Counter(
    "orchestrator_approval_decisions_total",
    "Decisions recorded on approval requests.",
    ["decision", "risk_level"],
)
APPROVAL_EXPIRATIONS = Counter(
    "orchestrator_approval_expirations_total",
    "Approval requests resolved by their TTL.",
    ["risk_level"],
)
EXECUTIONS = Counter(
    "orchestrator_executions_total",
    "Operations executed, by executor, operation and status.",
    ["executor", "operation", "status"],
)
WORKFLOW_DURATION = Histogram(
    "orchestrator_workflow_duration_seconds",
    "Time from a workflow's request to its terminal status.",
    ["status"],
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 14400, 86400),
)
WORKFLOWS = Counter(
    "orchestrator_workflows_total",
    "Workflows that reached a terminal status.",
    ["status"],
)
NOTIFICATIONS = Counter(
    "orchestrator_notifications_total",
    "Webhook notification deliveries by receiver (channel), event and outcome: delivered, "
    "retried (one per retry), failed, dropped (queue full) or error (could not be built).",
    ["channel", "event", "status"],
)
AUTH_FAILURES = Counter(
    "orchestrator_auth_failures_total",
    "Requests refused for a wrong credential (rejected) or for too many of them (throttled), "
    "by credential: api_key, webhook_token or metrics_token.",
    ["credential", "outcome"],
)
MCP_TOOL_CALLS = Histogram(
    "orchestrator_mcp_tool_call_seconds",
    "MCP tool calls by tool and outcome (ok, refused, error), with their duration.",
    ["tool", "outcome"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 600),
)
PLANNING_QUEUE = Gauge(
    "orchestrator_workflows_waiting_to_plan",
    "New workflows waiting for a planning slot (AGENT_PLANNING_SLOTS), summed over live workers.",
    multiprocess_mode="livesum",
)
