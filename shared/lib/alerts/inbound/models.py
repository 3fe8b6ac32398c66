"""What an inbound delivery is once verified, what it says, and the webhook's reply."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel

from shared.lib.alerts.models import WebhookReply, time_problem
from shared.lib.alerts.store import AlertNotice
from shared.lib.errors import DomainError
from shared.lib.safe_input import text_problem
from shared.lib.targets import TargetResolver

InboundSource = Literal["sentry", "github"]
InboundOutcome = Literal["accepted", "duplicate", "ignored", "pong"]


class DeliveryRejectedError(DomainError):
    """A bad or missing signature, a stale or unnamed delivery: 401, and recorded."""

    status_code = 401


class SourceDisabledError(DomainError):
    status_code = 404  # off until its secret is set: nothing to reach, not a server fault


class MalformedDeliveryError(DomainError):
    status_code = 422


@dataclass(frozen=True)
class Signal:
    """One alert notice and whether it fires or resolves."""

    status: Literal["firing", "resolved"]
    notice: AlertNotice
    only_if_firing: bool = False
    """A success that resolves only what is firing: a green CI run is not itself an alert."""


@dataclass(frozen=True)
class Reading:
    """What a verified delivery says: signals, or why it is ignored, or a ping."""

    event: str
    principal: str
    signals: list[Signal] = field(default_factory=list)
    ignored: str | None = None
    pong: bool = False


class InboundReply(BaseModel):
    source: InboundSource
    event: str
    delivery_id: str
    outcome: InboundOutcome
    reason: str | None = None
    alerts: WebhookReply | None = None


def fingerprint(source: str, *parts: object) -> str:
    """A stable alert fingerprint from the parts that name one incident at its source."""
    digest = hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).hexdigest()
    return f"{source}:{digest[:24]}"


def target_labels(
    resolver: TargetResolver,
    *,
    repository: str | None = None,
    sentry_project: str | None = None,
    environment: str | None = None,
) -> dict[str, str]:
    """`service` (and `environment` when only one fits) of the configured service that names
    this repository or Sentry project in environments.yml; nothing when none or several do."""
    pairs = resolver.services_from(repository=repository, sentry_project=sentry_project)
    labels: dict[str, str] = {}
    if environment:
        labels["environment"] = environment
    names = {name for _, name in pairs}
    if len(names) == 1:
        labels["service"] = names.pop()
        environments = {env for env, _ in pairs}
        if not environment and len(environments) == 1:
            labels["environment"] = environments.pop()
    return labels


def clean(labels: Mapping[str, str | None]) -> dict[str, str]:
    """Labels without the empty ones; the values come from `text_at`, so they are storable."""
    return {key: value for key, value in labels.items() if value}


# Senders' payloads are JSON of any shape: a field of the wrong type answers 422 naming its path
# (the sender's fault, not a server error), and text Postgres cannot store is refused here too.


def object_at(payload: Mapping[str, Any], path: str) -> dict[str, Any]:
    """The object at a dotted `path`; {} when it or a parent is absent or null."""
    value = _at(payload, path)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedDeliveryError(f"{path} must be an object")
    return value


def list_at(payload: Mapping[str, Any], path: str) -> list[Any]:
    """The list at a dotted `path`; [] when it or a parent is absent or null."""
    value = _at(payload, path)
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedDeliveryError(f"{path} must be a list")
    return value


def text_at(payload: Mapping[str, Any], path: str) -> str | None:
    """The text at a dotted `path` (a number, such as an id, as its text); None when empty."""
    return as_text(_at(payload, path), path)


def as_text(value: object, where: str) -> str | None:
    """`value` as storable text, None when absent or empty, or 422 naming `where`."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise MalformedDeliveryError(f"{where} must be a string")
    text = str(value)
    problem = text_problem(text)
    if problem:
        raise MalformedDeliveryError(f"{where} {problem}")
    return text


def time_at(payload: Mapping[str, Any], path: str) -> datetime | None:
    """The ISO 8601 time at `path` (UTC when it names no offset); None when absent, unreadable
    or outside what the store reads back: a sender's clock is no reason to lose the alert."""
    text = text_at(payload, path)
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None if time_problem(parsed) else parsed


def _at(payload: Mapping[str, Any], path: str) -> object:
    value: object = payload
    walked: list[str] = []
    for key in path.split("."):
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise MalformedDeliveryError(f"{'.'.join(walked)} must be an object")
        value = value.get(key)
        walked.append(key)
    return value
