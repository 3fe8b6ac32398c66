"""Sentry's integration-platform webhooks: issue alerts (`event_alert`), metric alerts
(`metric_alert`) and issue state changes (`issue`), signed with the integration's client
secret (`Sentry-Hook-Signature`: hex HMAC-SHA256 of the raw body)."""

from __future__ import annotations

import hashlib
import hmac
import math
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
    as_text,
    clean,
    fingerprint,
    list_at,
    target_labels,
    text_at,
    time_at,
)
from shared.lib.alerts.store import AlertNotice
from shared.lib.targets import TargetResolver

SIGNATURE_HEADER = "Sentry-Hook-Signature"
RESOURCE_HEADER = "Sentry-Hook-Resource"
TIMESTAMP_HEADER = "Sentry-Hook-Timestamp"
DELIVERY_HEADER = "Request-ID"

_FIRING_ISSUE_ACTIONS = frozenset({"created", "unresolved"})
_RESOLVED_ISSUE_ACTIONS = frozenset({"resolved", "archived", "ignored"})
_FIRING_METRIC_ACTIONS = frozenset({"critical", "warning"})
_METRIC_ACTIONS = _FIRING_METRIC_ACTIONS | {"resolved"}
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
    if sent is None or not math.isfinite(sent):  # NaN is never "too old": refuse it here
        raise DeliveryRejectedError(f"missing or unreadable {TIMESTAMP_HEADER}: {stamp!r}")
    age = abs(time.time() - sent)
    if age > max_age_s:
        raise DeliveryRejectedError(
            f"stale delivery: {TIMESTAMP_HEADER} is {age:.0f}s from now (at most "
            f"{max_age_s:.0f}s, AGENT_SENTRY_MAX_AGE_S); check both clocks"
        )


def read(resource: str, payload: dict[str, Any], *, resolver: TargetResolver) -> Reading:
    """The signals in one Sentry delivery; other resources and actions are ignored with the
    reason: only `resolved` resolves, since a resolution may withdraw a pending approval."""
    principal = text_at(payload, "installation.uuid") or "sentry"
    action = text_at(payload, "action") or ""
    event = f"{resource}.{action}"
    if resource == "event_alert":
        return Reading(event, principal, signals=[_issue_alert(payload, resolver)])
    if resource == "metric_alert" and action in _METRIC_ACTIONS:
        return Reading(event, principal, signals=[_metric_alert(action, payload, resolver)])
    if resource == "issue" and action in _FIRING_ISSUE_ACTIONS | _RESOLVED_ISSUE_ACTIONS:
        return Reading(event, principal, signals=[_issue(action, payload, resolver)])
    return Reading(event, principal, ignored=f"Sentry {event} is not an alert; nothing to do")


def _issue_alert(payload: dict[str, Any], resolver: TargetResolver) -> Signal:
    issue_id = _required(payload, "data.event.issue_id")
    project = _project_from_url(text_at(payload, "data.event.url") or "")
    environment = text_at(payload, "data.event.environment") or _tag(
        payload, "data.event.tags", "environment"
    )
    labels = clean(
        {
            "alertname": "SentryIssueAlert",
            "source": "sentry",
            "sentry_project": project,
            "sentry_issue": issue_id,
            "rule": text_at(payload, "data.triggered_rule"),
            "level": text_at(payload, "data.event.level"),
            **target_labels(resolver, sentry_project=project, environment=environment),
        }
    )
    notice = AlertNotice(
        fingerprint=fingerprint("sentry", "issue", issue_id),
        alertname="SentryIssueAlert",
        labels=labels,
        annotations=clean(
            {
                "summary": text_at(payload, "data.event.title"),
                "culprit": text_at(payload, "data.event.culprit"),
            }
        ),
        starts_at=_time(payload, "data.event.datetime"),
        source="sentry",
        links=clean(
            {
                "sentry": text_at(payload, "data.event.web_url"),
                "api": text_at(payload, "data.event.issue_url"),
            }
        ),
    )
    return Signal("firing", notice)


def _issue(action: str, payload: dict[str, Any], resolver: TargetResolver) -> Signal:
    issue_id = _required(payload, "data.issue.id")
    project = text_at(payload, "data.issue.project.slug")
    labels = clean(
        {
            "alertname": "SentryIssue",
            "source": "sentry",
            "sentry_project": project,
            "sentry_issue": issue_id,
            "level": text_at(payload, "data.issue.level"),
            "substatus": text_at(payload, "data.issue.substatus"),
            **target_labels(resolver, sentry_project=project),
        }
    )
    firing = action in _FIRING_ISSUE_ACTIONS
    started = "data.issue.firstSeen" if action == "created" else "data.issue.lastSeen"
    link = text_at(payload, "data.issue.web_url") or text_at(payload, "data.issue.permalink")
    notice = AlertNotice(
        fingerprint=fingerprint("sentry", "issue", issue_id),
        alertname="SentryIssue",
        labels=labels,
        annotations=clean(
            {
                "summary": text_at(payload, "data.issue.title"),
                "culprit": text_at(payload, "data.issue.culprit"),
            }
        ),
        starts_at=_time(payload, started) if firing else datetime.now(UTC),
        source="sentry",
        links=clean({"sentry": link}),
    )
    return Signal("firing" if firing else "resolved", notice, only_if_firing=not firing)


def _metric_alert(action: str, payload: dict[str, Any], resolver: TargetResolver) -> Signal:
    incident_id = _required(payload, "data.metric_alert.id")
    project = _first(payload, "data.metric_alert.projects") or _first(
        payload, "data.metric_alert.alert_rule.projects"
    )
    environment = text_at(payload, "data.metric_alert.alert_rule.environment")
    firing = action in _FIRING_METRIC_ACTIONS
    labels = clean(
        {
            "alertname": "SentryMetricAlert",
            "source": "sentry",
            "sentry_project": project,
            "rule": text_at(payload, "data.metric_alert.alert_rule.name"),
            "severity": action if firing else None,
            **target_labels(resolver, sentry_project=project, environment=environment),
        }
    )
    notice = AlertNotice(
        fingerprint=fingerprint("sentry", "metric", incident_id),
        alertname="SentryMetricAlert",
        labels=labels,
        annotations=clean(
            {
                "summary": text_at(payload, "data.description_title"),
                "description": text_at(payload, "data.description_text"),
            }
        ),
        starts_at=time_at(payload, "data.metric_alert.date_started")
        or _time(payload, "data.metric_alert.date_detected"),
        ends_at=time_at(payload, "data.metric_alert.date_closed"),
        source="sentry",
        links=clean({"sentry": text_at(payload, "data.web_url")}),
    )
    return Signal("firing" if firing else "resolved", notice)


def _project_from_url(url: str) -> str | None:
    found = _PROJECT_IN_URL.search(url)
    return found.group(1) if found else None


def _first(payload: dict[str, Any], path: str) -> str | None:
    found = list_at(payload, path)
    return as_text(found[0], f"{path}[0]") if found else None


def _tag(payload: dict[str, Any], path: str, name: str) -> str | None:
    for index, pair in enumerate(list_at(payload, path)):
        if isinstance(pair, list | tuple) and len(pair) == 2 and pair[0] == name:
            return as_text(pair[1], f"{path}[{index}][1]")
    return None


def _required(payload: dict[str, Any], path: str) -> str:
    value = text_at(payload, path)
    if value is None:
        raise MalformedDeliveryError(f"the Sentry payload has no {path}; it names the alert")
    return value


def _time(payload: dict[str, Any], path: str) -> datetime:
    return time_at(payload, path) or datetime.now(UTC)
