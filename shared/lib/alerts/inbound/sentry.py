"""Sentry's integration-platform webhooks: issue alerts (`event_alert`), metric alerts
(`metric_alert`) and issue state changes (`issue`), signed with the integration's client
secret (`Sentry-Hook-Signature`: hex HMAC-SHA256 of the raw body)."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from shared.lib.alerts.inbound.models import (
    DeliveryRejectedError,
    MalformedDeliveryError,
    Reading,
    Signal,
    clean,
    fingerprint,
    target_labels,
)
from shared.lib.alerts.store import AlertNotice
from shared.lib.targets import TargetResolver

SIGNATURE_HEADER = "Sentry-Hook-Signature"
RESOURCE_HEADER = "Sentry-Hook-Resource"
TIMESTAMP_HEADER = "Sentry-Hook-Timestamp"
DELIVERY_HEADER = "Request-ID"

_FIRING_ISSUE_ACTIONS = frozenset({"created", "unresolved"})
_RESOLVED_ISSUE_ACTIONS = frozenset({"resolved", "archived", "ignored"})
_PROJECT_IN_URL = re.compile(r"/projects/[^/]+/([^/]+)/")


def verify(*, secret: str, body: bytes, headers: Mapping[str, str], max_age_s: float) -> None:
    """The signature over the raw body, and a timestamp within `max_age_s` of now."""
    presented = (headers.get(SIGNATURE_HEADER) or "").strip().lower()
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not presented or not hmac.compare_digest(presented.encode(), expected.encode()):
        raise DeliveryRejectedError(
            f"missing or wrong {SIGNATURE_HEADER}; Sentry signs the raw body with the "
            "integration's Client Secret, which must equal AGENT_SENTRY_CLIENT_SECRET"
        )
    stamp = headers.get(TIMESTAMP_HEADER)
    try:
        sent = float(stamp) if stamp else None
    except ValueError:
        sent = None
    if sent is None:
        raise DeliveryRejectedError(f"missing or unreadable {TIMESTAMP_HEADER}: {stamp!r}")
    age = abs(time.time() - sent)
    if age > max_age_s:
        raise DeliveryRejectedError(
            f"stale delivery: {TIMESTAMP_HEADER} is {age:.0f}s from now (at most "
            f"{max_age_s:.0f}s, AGENT_SENTRY_MAX_AGE_S); check both clocks"
        )


def read(resource: str, payload: dict[str, Any], *, resolver: TargetResolver) -> Reading:
    """The signals in one Sentry delivery; other resources are ignored with the reason."""
    principal = str((payload.get("installation") or {}).get("uuid") or "sentry")
    action = str(payload.get("action") or "")
    data = payload.get("data") or {}
    event = f"{resource}.{action}"
    if resource == "event_alert":
        return Reading(event, principal, signals=[_issue_alert(data, resolver)])
    if resource == "metric_alert":
        return Reading(event, principal, signals=[_metric_alert(action, data, resolver)])
    if resource == "issue" and action in _FIRING_ISSUE_ACTIONS | _RESOLVED_ISSUE_ACTIONS:
        return Reading(event, principal, signals=[_issue(action, data, resolver)])
    return Reading(event, principal, ignored=f"Sentry {event} is not an alert; nothing to do")


def _issue_alert(data: dict[str, Any], resolver: TargetResolver) -> Signal:
    event = data.get("event") or {}
    issue_id = _required(event, "issue_id", "data.event.issue_id")
    project = _project_from_url(str(event.get("url") or ""))
    environment = event.get("environment") or _tag(event, "environment")
    labels = clean(
        {
            "alertname": "SentryIssueAlert",
            "source": "sentry",
            "sentry_project": project,
            "sentry_issue": issue_id,
            "rule": data.get("triggered_rule"),
            "level": event.get("level"),
            **target_labels(resolver, sentry_project=project, environment=environment),
        }
    )
    notice = AlertNotice(
        fingerprint=fingerprint("sentry", "issue", issue_id),
        alertname="SentryIssueAlert",
        labels=labels,
        annotations=clean({"summary": event.get("title"), "culprit": event.get("culprit")}),
        starts_at=_time(event.get("datetime")),
        source="sentry",
        links=clean({"sentry": event.get("web_url"), "api": event.get("issue_url")}),
    )
    return Signal("firing", notice)


def _issue(action: str, data: dict[str, Any], resolver: TargetResolver) -> Signal:
    issue = data.get("issue") or {}
    issue_id = _required(issue, "id", "data.issue.id")
    project = str((issue.get("project") or {}).get("slug") or "") or None
    labels = clean(
        {
            "alertname": "SentryIssue",
            "source": "sentry",
            "sentry_project": project,
            "sentry_issue": issue_id,
            "level": issue.get("level"),
            "substatus": issue.get("substatus"),
            **target_labels(resolver, sentry_project=project),
        }
    )
    firing = action in _FIRING_ISSUE_ACTIONS
    started = issue.get("firstSeen") if action == "created" else issue.get("lastSeen")
    notice = AlertNotice(
        fingerprint=fingerprint("sentry", "issue", issue_id),
        alertname="SentryIssue",
        labels=labels,
        annotations=clean({"summary": issue.get("title"), "culprit": issue.get("culprit")}),
        starts_at=_time(started) if firing else datetime.now(UTC),
        source="sentry",
        links=clean({"sentry": issue.get("web_url") or issue.get("permalink")}),
    )
    return Signal("firing" if firing else "resolved", notice, only_if_firing=not firing)


def _metric_alert(action: str, data: dict[str, Any], resolver: TargetResolver) -> Signal:
    incident = data.get("metric_alert") or {}
    incident_id = _required(incident, "id", "data.metric_alert.id")
    rule = incident.get("alert_rule") or {}
    projects = incident.get("projects") or rule.get("projects") or []
    project = str(projects[0]) if projects else None
    environment = rule.get("environment")
    labels = clean(
        {
            "alertname": "SentryMetricAlert",
            "source": "sentry",
            "sentry_project": project,
            "rule": rule.get("name"),
            "severity": action if action != "resolved" else None,
            **target_labels(resolver, sentry_project=project, environment=environment),
        }
    )
    firing = action in {"critical", "warning"}
    notice = AlertNotice(
        fingerprint=fingerprint("sentry", "metric", incident_id),
        alertname="SentryMetricAlert",
        labels=labels,
        annotations=clean(
            {"summary": data.get("description_title"), "description": data.get("description_text")}
        ),
        starts_at=_time(incident.get("date_started") or incident.get("date_detected")),
        ends_at=_optional_time(incident.get("date_closed")),
        source="sentry",
        links=clean({"sentry": data.get("web_url")}),
    )
    return Signal("firing" if firing else "resolved", notice)


def _project_from_url(url: str) -> str | None:
    found = _PROJECT_IN_URL.search(url)
    return found.group(1) if found else None


def _tag(event: dict[str, Any], name: str) -> str | None:
    for pair in event.get("tags") or []:
        if isinstance(pair, list | tuple) and len(pair) == 2 and pair[0] == name:
            return str(pair[1])
    return None


def _required(data: dict[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if value in (None, ""):
        raise MalformedDeliveryError(f"the Sentry payload has no {where}; it names the alert")
    return str(value)


def _time(value: object) -> datetime:
    return _optional_time(value) or datetime.now(UTC)


def _optional_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
