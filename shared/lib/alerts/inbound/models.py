"""What an inbound delivery is once verified, what it says, and the webhook's reply."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel

from shared.lib.alerts.models import WebhookReply
from shared.lib.alerts.store import AlertNotice
from shared.lib.errors import DomainError
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


def clean(labels: Mapping[str, object]) -> dict[str, str]:
    """Labels as strings, the empty ones left out."""
    return {key: str(value) for key, value in labels.items() if value not in (None, "")}
