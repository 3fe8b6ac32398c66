"""What an escalation carries for the person it reaches: the alert as its sender sent it, what
triage concluded, and what an investigation read (each output cut, the ledger keeps it all)."""

from __future__ import annotations

from typing import Any

from shared.lib.alerts.models import RecoveryDecision
from shared.lib.alerts.store import AlertNotice

FINDING_OUTPUT_CHARS = 4000


def finding(result: dict[str, Any]) -> dict[str, Any]:
    output = str(result.get("stdout") or "")
    return {
        "operation": result.get("operation"),
        "target": result.get("target"),
        "status": result.get("status"),
        "reason": result.get("reason"),
        "output": output[-FINDING_OUTPUT_CHARS:],
        "truncated": bool(result.get("truncated")) or len(output) > FINDING_OUTPUT_CHARS,
        "data": result.get("data") or {},
    }


def escalation_evidence(alert: AlertNotice, decision: RecoveryDecision) -> dict[str, Any]:
    """What the person escalated to should see: the alert as Alertmanager sent it, and what
    triage concluded."""
    return {
        "alertname": alert.alertname,
        "fingerprint": alert.fingerprint,
        "labels": alert.labels,
        "annotations": alert.annotations,
        "starts_at": alert.starts_at.isoformat(),
        "strategy": decision.strategy,
        "target": decision.target,
        "environment": decision.environment,
    }
