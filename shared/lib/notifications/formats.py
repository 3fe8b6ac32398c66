"""Notification bodies (generic JSON and Slack's `text` + `blocks`) and their HMAC signature.

The signature is HMAC-SHA256, keyed with the receiver's secret, over the bytes
`<X-Agent-Timestamp>.<raw body>`; it travels as `X-Agent-Signature: sha256=<hex>`. Binding
the timestamp lets a receiver refuse a replayed delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from shared.lib.notifications.models import Notification, NotificationEvent, ReceiverFormat

SIGNATURE_HEADER = "X-Agent-Signature"
TIMESTAMP_HEADER = "X-Agent-Timestamp"
EVENT_HEADER = "X-Agent-Event"
DELIVERY_HEADER = "X-Agent-Delivery"
SIGNATURE_PREFIX = "sha256="

# How far a receiver should let a delivery's timestamp drift from its own clock.
DEFAULT_TOLERANCE_S = 300

_MAX_SUMMARY_STEPS = 5
_SLACK_TEXT_LIMIT = 2900  # a section's text may hold 3000 characters


def render(notification: Notification, format: ReceiverFormat) -> bytes:
    """The exact body sent to a receiver of `format`; these are the bytes that get signed."""
    payload = (
        notification.model_dump(mode="json") if format == "json" else slack_message(notification)
    )
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def plan_summary(steps: list[dict[str, Any]] | None) -> str:
    """One line naming every step, such as `restart web (prod); logs api (prod)`."""
    if not steps:
        return "no plan"
    parts = [
        f"{step.get('operation', '?')} {step.get('target', '?')}"
        + (f" ({step['environment']})" if step.get("environment") else "")
        for step in steps[:_MAX_SUMMARY_STEPS]
    ]
    more = len(steps) - _MAX_SUMMARY_STEPS
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def slack_message(notification: Notification) -> dict[str, Any]:
    """A message for a Slack incoming webhook: plain `text` for previews, `blocks` to show."""
    n = notification
    links = f"<{n.approval_url}|Open approval>  " if n.approval_url else ""
    links += f"<{n.workflow_url}|Open workflow>" if n.workflow_url else ""
    links += f"<{n.inbox_url}|Open inbox>" if n.inbox_url and not n.workflow_url else ""
    summary = _escape(n.plan_summary)[:_SLACK_TEXT_LIMIT]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": n.title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*Plan:* {summary}"}},
        {"type": "section", "fields": [_field(k, v) for k, v in _facts(n)]},
    ]
    if n.reason or n.error:
        detail = _escape(n.reason or n.error or "")[:_SLACK_TEXT_LIMIT]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"> {detail}"}})
    if n.evidence:
        evidence = _escape(json.dumps(n.evidence, indent=1, default=str))[:_SLACK_TEXT_LIMIT]
        text = f"*Evidence:*\n```{evidence}```"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": links}]})
    if n.event is NotificationEvent.APPROVAL_REQUESTED and n.approval_id is not None:
        blocks.append(decision_buttons(str(n.approval_id), n.shown_hash))
    text = f"{_escape(n.title)}: {summary} <{n.link}|open>"
    return {"text": text, "blocks": blocks}


APPROVE_ACTION = "approval_approve"
REJECT_ACTION = "approval_reject"


def decision_buttons(approval_id: str, shown_hash: str | None) -> dict[str, Any]:
    """Approve / Reject buttons; their value names the approval and the view they were shown
    with, and POST /slack/interactivity acts on the click."""
    value = json.dumps({"approval_id": approval_id, "shown": shown_hash}, separators=(",", ":"))
    return {
        "type": "actions",
        "block_id": f"decide:{approval_id}"[:255],
        "elements": [
            {
                "type": "button",
                "action_id": APPROVE_ACTION,
                "text": {"type": "plain_text", "text": "Approve"},
                "style": "primary",
                "value": value,
            },
            {
                "type": "button",
                "action_id": REJECT_ACTION,
                "text": {"type": "plain_text", "text": "Reject"},
                "style": "danger",
                "value": value,
            },
        ],
    }


def sign(*, secret: str, timestamp: str, body: bytes) -> str:
    """The X-Agent-Signature value for `body` sent at `timestamp` (unix seconds)."""
    digest = hmac.new(secret.encode("utf-8"), signed_material(timestamp, body), hashlib.sha256)
    return SIGNATURE_PREFIX + digest.hexdigest()


def signed_material(timestamp: str, body: bytes) -> bytes:
    return timestamp.encode("ascii") + b"." + body


def signed_headers(*, secret: str, body: bytes, notification: Notification) -> dict[str, str]:
    """Every header a delivery carries, signature included, stamped with the current time."""
    timestamp = str(int(time.time()))
    return {
        "Content-Type": "application/json",
        "User-Agent": "devops-agent-notifications/1",
        EVENT_HEADER: notification.event.value,
        DELIVERY_HEADER: str(notification.id),
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(secret=secret, timestamp=timestamp, body=body),
    }


def verify_signature(
    *,
    secret: str,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """What a receiver does: recompute the HMAC, compare in constant time, check the clock."""
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance_s:
        return False
    expected = sign(secret=secret, timestamp=timestamp, body=body)
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii", "replace"))


def title(
    event: NotificationEvent,
    *,
    tier: str | None,
    status: str,
    decision: str | None = None,
    actor: str | None = None,
) -> str:
    if event is NotificationEvent.APPROVAL_REQUESTED:
        return f"Approval needed ({tier or 'unknown'} risk)"
    if event is NotificationEvent.APPROVAL_DECIDED:
        done = {"approve": "approved", "reject": "rejected", "edit": "edited"}.get(
            decision or "", decision or "decided"
        )
        return f"Approval {done} by {actor or 'someone'}"
    if event is NotificationEvent.APPROVAL_EXPIRED:
        return "Approval expired without a decision"
    if event is NotificationEvent.APPROVAL_WITHDRAWN:
        return "Approval withdrawn"
    if event is NotificationEvent.ESCALATED:
        return "Escalated: a person must look at this alert"
    return f"Workflow {status}"


def _facts(n: Notification) -> list[tuple[str, str]]:
    facts = [("Tier", n.tier or "-")]
    if n.workflow_id is not None:
        facts.append(("Workflow", f"`{n.workflow_id}` ({n.workflow_status})"))
    if n.approval_id is not None:
        facts.append(("Approval", f"`{n.approval_id}` ({n.approval_status})"))
    if n.required_approvals is not None:
        facts.append(("Approvals", f"{n.approvals_received or 0} of {n.required_approvals}"))
    if n.requester:
        facts.append(("Requested by", n.requester))
    if n.actor:
        facts.append(("By", n.actor))
    if n.expires_at is not None and n.event is NotificationEvent.APPROVAL_REQUESTED:
        facts.append(("Expires", n.expires_at.isoformat(timespec="seconds")))
    return facts


def _field(name: str, value: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": f"*{name}:*\n{_escape(value)}"}


def _escape(text: str) -> str:
    """Slack's three control characters in mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
