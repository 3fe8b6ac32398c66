"""The HTTP executor: `http_check` probes a URL and reports the status as data."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from shared.lib.execution.models import (
    ExecutionResult,
    ExecutionStatus,
    Invocation,
    OperationCall,
)

SUPPORTED = frozenset({"http_check"})


@dataclass
class _Probe:
    status: ExecutionStatus
    reason: str | None = None
    body: str = ""
    truncated: bool = False
    data: dict[str, Any] = field(default_factory=dict)


class HttpExecutor:
    """GETs URLs with one shared client; never follows redirects, so a 301 is reported as one."""

    kind = "http"

    def __init__(self, *, client: httpx.AsyncClient | None = None) -> None:
        self._client = client or httpx.AsyncClient(follow_redirects=False)

    def supports(self, operation: str) -> bool:
        return operation in SUPPORTED

    async def aclose(self) -> None:
        await self._client.aclose()

    async def execute(self, call: OperationCall) -> ExecutionResult:
        started = time.perf_counter()
        url = str(call.params.get("url", ""))
        if not self.supports(call.operation):
            probe = _Probe(
                ExecutionStatus.REFUSED,
                reason=f"the http executor does not implement '{call.operation}'",
            )
        else:
            probe = await self._probe(call, url)
        return ExecutionResult(
            status=probe.status,
            operation=call.operation,
            target=call.target.name,
            invocation=Invocation(kind="http", endpoint=_origin(url), call=f"GET {url}"),
            stdout=probe.body,
            truncated=probe.truncated,
            duration_ms=(time.perf_counter() - started) * 1000,
            reason=probe.reason,
            data=probe.data,
        )

    async def _probe(self, call: OperationCall, url: str) -> _Probe:
        limit = min(float(call.params.get("timeout_s", call.timeout_s)), call.timeout_s)
        expected = int(call.params.get("expected_status", 200))
        try:
            # httpx times each phase separately; the outer bound caps a server that trickles.
            async with asyncio.timeout(limit):
                return await self._get(url, expected=expected, limit=limit, cap=call.output_cap)
        except (TimeoutError, httpx.TimeoutException) as exc:
            if isinstance(exc, httpx.ConnectTimeout):
                return _Probe(ExecutionStatus.UNREACHABLE, reason=f"connecting to {url} timed out")
            return _Probe(ExecutionStatus.TIMEOUT, reason=f"no response within {limit:g}s")
        except httpx.TransportError as exc:
            return _Probe(ExecutionStatus.UNREACHABLE, reason=f"{type(exc).__name__}: {exc}")

    async def _get(self, url: str, *, expected: int, limit: float, cap: int) -> _Probe:
        async with self._client.stream("GET", url, timeout=limit) as response:
            body, truncated = await _read_capped(response, cap)
        data = {"url": url, "status_code": response.status_code, "expected_status": expected}
        if response.status_code != expected:
            reason = f"expected HTTP {expected}, got {response.status_code}"
            return _Probe(ExecutionStatus.FAILED, reason, body, truncated, data)
        return _Probe(ExecutionStatus.OK, None, body, truncated, data)


async def _read_capped(response: httpx.Response, cap: int) -> tuple[str, bool]:
    # Stop reading at the cap: a health endpoint that streams forever must not fill memory.
    text = ""
    async for chunk in response.aiter_text():
        text += chunk
        if len(text) > cap:
            return text[:cap], True
    return text, False


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme else url
