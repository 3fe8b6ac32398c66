"""One probe per component. A probe returns what it found (the component is up), raises
`Unconfigured` when there is nothing to probe, and raises anything else when it is down;
`service.py` bounds each with a deadline and turns the outcome into a `Component`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import docker
import httpx
from docker.constants import MINIMUM_DOCKER_API_VERSION

from shared.lib.db.database import checkpoint_schema_is_current
from shared.lib.db.migrations import Migration, applied_versions
from shared.lib.db.pool import Pool
from shared.lib.notifications.dispatcher import LastDelivery
from shared.lib.settings import Settings
from shared.lib.status.models import SweepRecord
from shared.lib.targets.models import SshTarget

OPENAI_BASE_URL = "https://api.openai.com/v1"

Detail = dict[str, Any]
SshProbe = Callable[[SshTarget], Awaitable[str]]
"""Connects (through the executor's pool) and answers the server's version, or raises."""


class Unconfigured(Exception):
    """Nothing is configured to probe; the message says how to configure it."""


class Down(Exception):
    """The component answered, but not well enough to work with."""


async def database(pool: Pool) -> Detail:
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT version() AS v")).fetchone()
    return {"server": str(row["v"]).split(" on ")[0] if row else None}


async def migrations(pool: Pool, known: list[Migration]) -> Detail:
    async with pool.connection() as conn:
        applied = await applied_versions(conn)
        checkpoints = await checkpoint_schema_is_current(conn)
    pending = [f"{m.version:04d}_{m.name}" for m in known if m.version not in applied]
    detail = {
        "applied": len(applied),
        "known": len(known),
        "pending": pending,
        "checkpoints": "current" if checkpoints else "pending",
    }
    if pending or not checkpoints:
        missing = ", ".join(pending) or "LangGraph's checkpoint tables"
        raise Down(f"migrations not applied: {missing}; run 'devops-agent db init'")
    return detail


async def docker_engine(url: str, timeout_s: float) -> Detail:
    """Ping the engine and read its version on a worker thread (the SDK blocks)."""
    return await asyncio.to_thread(_docker_version, url, timeout_s)


def _docker_version(url: str, timeout_s: float) -> Detail:
    # A fixed, old API version: no "auto" round trip, and /_ping and /version are unversioned.
    client = docker.APIClient(
        base_url=url, version=MINIMUM_DOCKER_API_VERSION, timeout=max(1, round(timeout_s))
    )
    try:
        client.ping()
        version = client.version(api_version=False)
    except Exception as error:
        raise Down(f"docker engine at {url} did not answer: {_short(error)}") from None
    finally:
        client.close()
    return {
        "url": url,
        "engine_version": version.get("Version"),
        "api_version": version.get("ApiVersion"),
    }


async def ssh_host(target: SshTarget, probe: SshProbe | None) -> Detail:
    where = f"{target.user}@{target.host}:{target.port}"
    if probe is None:
        raise Unconfigured("no SSH executor (dry run): SSH hosts are not contacted")
    try:
        server = await probe(target)
    except Exception as error:
        raise Down(f"ssh {where}: {_short(error)}") from None
    return {"endpoint": where, "server_version": server}


async def llm(settings: Settings, timeout_s: float) -> Detail:
    if not settings.llm_configured:
        raise Unconfigured("no LLM endpoint: set LLM_BASE_URL (and LLM_API_KEY) to plan with one")
    base = settings.llm_base_url or OPENAI_BASE_URL
    headers = {"Authorization": f"Bearer {settings.llm_api_key}"} if settings.llm_api_key else {}
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        try:
            response = await client.get(f"{base}/models", headers=headers)
        except httpx.HTTPError as error:
            raise Down(f"LLM endpoint {base} unreachable: {_short(error)}") from None
    if not response.is_success:
        raise Down(f"LLM endpoint {base}/models answered HTTP {response.status_code}")
    try:
        models = sorted(str(m["id"]) for m in response.json().get("data", []))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise Down(f"LLM endpoint {base}/models did not answer a model list") from None
    detail = {"base_url": base, "model": settings.llm_model, "models": models}
    if settings.llm_model not in models:
        raise Down(
            f"model '{settings.llm_model}' is not served at {base} (it serves: "
            f"{', '.join(models) or 'none'}); set LLM_MODEL to one of them"
        )
    return detail


def tracing(settings: Settings) -> Detail:
    if not settings.langsmith_tracing:
        raise Unconfigured("tracing off: set LANGSMITH_TRACING=true and LANGSMITH_API_KEY")
    return {
        "project": settings.langsmith_project,
        "endpoint": settings.langsmith_endpoint or "https://api.smith.langchain.com",
    }


def receiver(name: str, url: str, last: LastDelivery | None) -> Detail:
    """A receiver is judged by its latest delivery; none yet counts as up."""
    if last is None:
        return {"url": url, "last_delivery": None}
    detail = {
        "url": url,
        "last_delivery": {
            "delivered": last.delivered,
            "event": last.event,
            "at": last.at.isoformat(),
            "detail": last.detail,
        },
    }
    if not last.delivered:
        raise Down(f"last delivery to '{name}' ({last.event}) {last.detail}")
    return detail


def sweeper(record: SweepRecord, interval_s: float) -> Detail:
    detail = {
        "runs": record.runs,
        "interval_s": interval_s,
        "last_finished": record.last_finished.isoformat() if record.last_finished else None,
        "last_duration_ms": record.last_duration_ms,
    }
    if record.last_error:
        raise Down(f"last sweep failed: {record.last_error}")
    # A sweep that has not finished for three intervals (and 30 s) is stuck.
    overdue_s = 3 * interval_s + 30
    since = record.last_finished or record.last_started
    if since is not None and (datetime.now(UTC) - since).total_seconds() > overdue_s:
        raise Down(f"no sweep finished for more than {overdue_s:g} s; see the service log")
    return detail


def _short(error: BaseException, limit: int = 300) -> str:
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return text if len(text) <= limit else text[:limit] + "…"
