"""Deliver notifications to webhooks from a bounded queue, off the workflow's path.

`publish` never waits and never raises: a full queue drops the delivery (logged, counted).
Workers post each delivery with retries and backoff; a receiver that is slow, failing or
gone costs a worker's time, never a workflow's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from shared.lib.metrics import NOTIFICATIONS
from shared.lib.notifications.formats import render, signed_headers
from shared.lib.notifications.models import (
    DeliveryPolicy,
    Notification,
    NotificationsConfig,
    Receiver,
)

log = logging.getLogger(__name__)

# Answers worth trying again; any other non-2xx (a bad URL, a refused signature) is final.
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Delivery:
    receiver: Receiver
    notification: Notification


@dataclass(frozen=True)
class AttemptOutcome:
    delivered: bool
    retryable: bool
    detail: str


@dataclass(frozen=True)
class LastDelivery:
    """What happened to the latest delivery to one receiver (shown by GET /status)."""

    delivered: bool
    detail: str
    event: str
    at: datetime


class NotificationDispatcher:
    """Owns the queue, the workers and the HTTP client; `start` and `aclose` bound its life."""

    def __init__(
        self, config: NotificationsConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._config = config
        self._policy = config.delivery
        self._transport = transport
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue(maxsize=config.delivery.queue_size)
        self._workers: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None
        self._last: dict[str, LastDelivery] = {}

    @property
    def config(self) -> NotificationsConfig:
        return self._config

    def last_deliveries(self) -> dict[str, LastDelivery]:
        """The latest delivery outcome per receiver name; receivers not tried yet are absent."""
        return dict(self._last)

    def _remember(self, delivery: Delivery, *, delivered: bool, detail: str) -> None:
        self._last[delivery.receiver.name] = LastDelivery(
            delivered=delivered,
            detail=detail,
            event=delivery.notification.event.value,
            at=datetime.now(UTC),
        )

    async def start(self) -> None:
        """Start the workers; with no receivers there is nothing to start."""
        if not self._config.receivers or self._workers:
            return
        self._client = httpx.AsyncClient(
            transport=self._transport, timeout=self._policy.timeout_s, follow_redirects=False
        )
        self._workers = [
            asyncio.create_task(self._work(), name=f"notifications-{index}")
            for index in range(self._policy.concurrency)
        ]
        names = [receiver.name for receiver in self._config.receivers]
        log.info("notifications on", extra={"receivers": names})

    def publish(self, notification: Notification) -> int:
        """Queue `notification` for every receiver that wants it; how many were queued."""
        queued = 0
        for receiver in self._config.receivers:
            if not receiver.accepts(notification.event):
                continue
            delivery = Delivery(receiver, notification)
            try:
                self._queue.put_nowait(delivery)
                queued += 1
            except asyncio.QueueFull:
                _count(receiver, notification, "dropped")
                self._remember(delivery, delivered=False, detail="dropped: the queue was full")
                log.warning(
                    "notification dropped: the delivery queue is full",
                    extra=_fields(receiver, notification, queue_size=self._policy.queue_size),
                )
        return queued

    async def aclose(self, *, timeout_s: float = 5.0) -> None:
        """Give queued deliveries `timeout_s` to finish, then stop the workers."""
        if self._workers:
            try:
                await asyncio.wait_for(self._queue.join(), timeout=timeout_s)
            except TimeoutError:
                log.warning(
                    "stopping with notifications undelivered",
                    extra={"pending": self._queue.qsize(), "timeout_s": timeout_s},
                )
            for worker in self._workers:
                worker.cancel()
            for worker in self._workers:
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
            self._workers = []
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def deliver(self, delivery: Delivery) -> bool:
        """Post one delivery, retrying what may succeed later; whether it arrived."""
        receiver, notification = delivery.receiver, delivery.notification
        body = render(notification, receiver.format)
        outcome = AttemptOutcome(delivered=False, retryable=False, detail="not attempted")
        for attempt in range(1, self._policy.attempts + 1):
            outcome = await self._attempt(receiver, notification, body)
            if outcome.delivered:
                _count(receiver, notification, "delivered")
                self._remember(delivery, delivered=True, detail=outcome.detail)
                log.info(
                    "notification delivered", extra=_fields(receiver, notification, attempt=attempt)
                )
                return True
            if not outcome.retryable or attempt == self._policy.attempts:
                break
            _count(receiver, notification, "retried")
            delay = backoff_delay(self._policy, attempt)
            log.info(
                "notification attempt failed; retrying",
                extra=_fields(
                    receiver, notification, attempt=attempt, error=outcome.detail, retry_in_s=delay
                ),
            )
            await asyncio.sleep(delay)
        _count(receiver, notification, "failed")
        self._remember(
            delivery, delivered=False, detail=f"failed after {attempt} attempts: {outcome.detail}"
        )
        log.warning(
            "notification delivery failed",
            extra=_fields(receiver, notification, attempts=attempt, error=outcome.detail),
        )
        return False

    async def _attempt(
        self, receiver: Receiver, notification: Notification, body: bytes
    ) -> AttemptOutcome:
        assert self._client is not None, "start() the dispatcher before delivering"
        headers = signed_headers(secret=receiver.secret, body=body, notification=notification)
        try:
            async with asyncio.timeout(self._policy.timeout_s):
                response = await self._client.post(receiver.url, content=body, headers=headers)
        except TimeoutError:
            return AttemptOutcome(False, True, f"no answer within {self._policy.timeout_s}s")
        except httpx.HTTPError as error:
            return AttemptOutcome(False, True, f"{type(error).__name__}: {error}")
        if response.is_success:
            return AttemptOutcome(True, False, f"HTTP {response.status_code}")
        detail = f"HTTP {response.status_code}: {response.text[:200]}"
        return AttemptOutcome(False, response.status_code in RETRYABLE_STATUS, detail)

    async def _work(self) -> None:
        while True:
            delivery = await self._queue.get()
            try:
                await self.deliver(delivery)
            except Exception:  # a bug here must not stop the worker for everyone else
                _count(delivery.receiver, delivery.notification, "error")
                log.exception(
                    "notification delivery crashed",
                    extra=_fields(delivery.receiver, delivery.notification),
                )
            finally:
                self._queue.task_done()


def backoff_delay(policy: DeliveryPolicy, attempt: int) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based): exponential, capped,
    with "equal jitter" (between half and all of it) so receivers are not hit in step."""
    ceiling = min(policy.backoff_s * 2.0 ** (attempt - 1), policy.max_backoff_s)
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def _count(receiver: Receiver, notification: Notification, status: str) -> None:
    NOTIFICATIONS.labels(channel=receiver.name, event=notification.event.value, status=status).inc()


def _fields(receiver: Receiver, notification: Notification, **extra: object) -> dict[str, object]:
    return {
        "receiver": receiver.name,
        "notification_event": notification.event.value,
        "delivery_id": str(notification.id),
        "workflow_id": notification.workflow_id,
        **extra,
    }
