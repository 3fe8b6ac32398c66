"""The workflow request an alert becomes, whichever path starts it (one delivery, or a storm
worked off the request path): the strategy's steps and the alert's identity, no free text."""

from __future__ import annotations

from typing import Any

from shared.lib.alerts.models import RecoveryDecision
from shared.lib.alerts.store import AlertNotice
from shared.lib.workflows.models import WorkRequest

REQUESTER = "alertmanager"
"""Who asks for alert-driven work; not a principal, so it can never approve anything."""
SOURCE = "alert"
"""The source of every workflow an alert starts, whichever system sent the alert."""


def work_request(
    notice: AlertNotice, decision: RecoveryDecision, *, alert_id: int, request_id: str | None
) -> WorkRequest:
    """An LLM could later add a summary for approvers here, as data beside the plan; the
    steps stay the strategy's."""
    context: dict[str, Any] = {
        "alert_id": alert_id,
        "fingerprint": notice.fingerprint,
        "alertname": notice.alertname,
        "labels": notice.labels,
        "starts_at": notice.starts_at.isoformat(),
        "strategy": decision.strategy,
        "source": notice.source,
    }
    return WorkRequest(
        source=SOURCE,
        requester=REQUESTER,
        steps=list(decision.steps),
        environment=decision.environment,
        alert=context,
        request_id=request_id,
    )
