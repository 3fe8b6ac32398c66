"""Rate limits on the inbound webhooks, per source and per sender, with the `limits` library
(moving window, in this replica's memory). Kept apart from any other limiter so each can
change on its own."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from shared.lib.errors import DomainError


class RateLimitedError(DomainError):
    status_code = 429

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.headers = {"Retry-After": str(retry_after_s)}


class WebhookThrottle:
    def __init__(self, *, per_source: str, per_principal: str) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._per_source: RateLimitItem = parse(per_source)
        self._per_principal: RateLimitItem = parse(per_principal)

    async def source(self, source: str) -> None:
        """Before the signature is checked: a flood costs no HMAC and no database."""
        await self._hit(self._per_source, "source", source, setting="AGENT_WEBHOOK_RATE_LIMIT")

    async def principal(self, source: str, principal: str) -> None:
        """After it: one noisy installation or repository cannot starve the others."""
        await self._hit(
            self._per_principal,
            "principal",
            source,
            principal,
            setting="AGENT_WEBHOOK_PRINCIPAL_RATE_LIMIT",
        )

    async def _hit(self, item: RateLimitItem, *keys: str, setting: str) -> None:
        if await self._limiter.hit(item, *keys):
            return
        stats = await self._limiter.get_window_stats(item, *keys)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        who = " ".join(keys[1:])
        raise RateLimitedError(
            f"too many deliveries from {who} (limit {item}, {setting}); retry in {retry_after}s",
            retry_after_s=retry_after,
        )
