"""One inbound delivery, whoever sent it: throttle, verify (a refusal is recorded), refuse a
replayed delivery id, read it into alert notices, and hand them to `AlertService`."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter

from shared.lib.alerts.inbound import github, sentry
from shared.lib.alerts.inbound.deliveries import DeliveryLog
from shared.lib.alerts.inbound.models import (
    DeliveryRejectedError,
    InboundReply,
    InboundSource,
    MalformedDeliveryError,
    Reading,
    SourceDisabledError,
)
from shared.lib.alerts.inbound.throttle import WebhookThrottle
from shared.lib.alerts.service import AlertService
from shared.lib.alerts.store import AlertNotice, AlertStore
from shared.lib.settings import Settings
from shared.lib.targets import TargetResolver

log = logging.getLogger(__name__)

INBOUND_DELIVERIES = Counter(
    "orchestrator_inbound_deliveries_total",
    "Deliveries on the Sentry and GitHub webhooks, by source and what became of them.",
    ["source", "outcome"],
)

_DELIVERY_HEADERS: dict[InboundSource, str] = {
    "sentry": sentry.DELIVERY_HEADER,
    "github": github.DELIVERY_HEADER,
}


class InboundService:
    def __init__(
        self,
        *,
        settings: Settings,
        alerts: AlertService,
        records: AlertStore,
        deliveries: DeliveryLog,
        throttle: WebhookThrottle,
        resolver: TargetResolver,
    ) -> None:
        self._settings = settings
        self._alerts = alerts
        self._records = records
        self._deliveries = deliveries
        self._throttle = throttle
        self._resolver = resolver

    async def receive(
        self,
        source: InboundSource,
        *,
        headers: Mapping[str, str],
        body: bytes,
        request_id: str | None,
    ) -> InboundReply:
        secret = self._secret(source)
        await self._throttle.source(source)
        delivery_id = (headers.get(_DELIVERY_HEADERS[source]) or "").strip()[:200] or None
        try:
            self._verify(source, secret, body, headers)
            if delivery_id is None:
                raise DeliveryRejectedError(
                    f"missing {_DELIVERY_HEADERS[source]}; every delivery needs its id, so a "
                    "replay can be told apart"
                )
        except DeliveryRejectedError as refusal:
            INBOUND_DELIVERIES.labels(source=source, outcome="rejected").inc()
            await self._deliveries.rejected(
                source=source, delivery_id=delivery_id, reason=str(refusal)
            )
            log.warning(
                "inbound delivery refused", extra={"source": source, "reason": str(refusal)}
            )
            raise
        reading = self._read(source, headers, body)
        await self._throttle.principal(source, reading.principal)
        fresh = await self._deliveries.first_time(
            source=source, delivery_id=delivery_id, event=reading.event
        )
        reply = InboundReply(
            source=source, event=reading.event, delivery_id=delivery_id, outcome="accepted"
        )
        if not fresh:
            reply = reply.model_copy(
                update={"outcome": "duplicate", "reason": "this delivery id was handled before"}
            )
        elif reading.pong:
            reply = reply.model_copy(update={"outcome": "pong", "reason": "the webhook is set up"})
        elif reading.ignored:
            reply = reply.model_copy(update={"outcome": "ignored", "reason": reading.ignored})
        else:
            reply = await self._hand_over(reply, reading, request_id=request_id)
        INBOUND_DELIVERIES.labels(source=source, outcome=reply.outcome).inc()
        return reply

    async def _hand_over(
        self, reply: InboundReply, reading: Reading, *, request_id: str | None
    ) -> InboundReply:
        signals: list[tuple[Any, AlertNotice]] = []
        for signal in reading.signals:
            if signal.only_if_firing and not await self._records.is_firing(
                signal.notice.fingerprint
            ):
                continue
            signals.append((signal.status, signal.notice))
        if not signals:
            reason = "a success with nothing firing for it; nothing to resolve"
            return reply.model_copy(update={"outcome": "ignored", "reason": reason})
        try:
            outcome = await self._alerts.receive_signals(signals, request_id=request_id)
        except Exception:
            await self._deliveries.forget(source=reply.source, delivery_id=reply.delivery_id)
            raise
        return reply.model_copy(update={"alerts": outcome})

    def _secret(self, source: InboundSource) -> str:
        if source == "sentry":
            value, variable = self._settings.sentry_client_secret, "AGENT_SENTRY_CLIENT_SECRET"
        else:
            value, variable = self._settings.github_webhook_secret, "AGENT_GITHUB_WEBHOOK_SECRET"
        if value is None:
            raise SourceDisabledError(
                f"the {source} webhook is off: set {variable} (docs/integrations.md)"
            )
        return value.get_secret_value()

    def _verify(
        self, source: InboundSource, secret: str, body: bytes, headers: Mapping[str, str]
    ) -> None:
        if source == "sentry":
            sentry.verify(
                secret=secret, body=body, headers=headers, max_age_s=self._settings.sentry_max_age_s
            )
        else:
            github.verify(secret=secret, body=body, headers=headers)

    def _read(self, source: InboundSource, headers: Mapping[str, str], body: bytes) -> Reading:
        try:
            payload = json.loads(body)
        except ValueError:
            raise MalformedDeliveryError(f"the {source} delivery is not JSON") from None
        if not isinstance(payload, dict):
            raise MalformedDeliveryError(f"the {source} delivery is not a JSON object")
        if source == "sentry":
            resource = headers.get(sentry.RESOURCE_HEADER) or ""
            if not resource:
                raise MalformedDeliveryError(f"missing {sentry.RESOURCE_HEADER} header")
            return sentry.read(resource, payload, resolver=self._resolver)
        event = headers.get(github.EVENT_HEADER) or ""
        if not event:
            raise MalformedDeliveryError(f"missing {github.EVENT_HEADER} header")
        return github.read(event, payload, resolver=self._resolver)
