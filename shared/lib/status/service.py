"""Probe every component at once, each under its own deadline, so the report comes back in
bounded time whatever is down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from shared.lib.approvals.store import ApprovalStore
from shared.lib.db.migrations import Migration
from shared.lib.db.pool import Pool
from shared.lib.notifications.dispatcher import NotificationDispatcher
from shared.lib.settings import Settings
from shared.lib.status import probes
from shared.lib.status.models import Component, ComponentState, StatusReport, SweepRecord
from shared.lib.targets.resolver import TargetResolver
from shared.lib.workflows.store import WorkflowStore

# Each probe gets this long; all run at once, so the whole report takes about as long.
PROBE_TIMEOUT_S = 1.5

# Workflows that are doing something now (not waiting on a person, not finished).
RUNNING_STATUSES = ("planning", "running")


@dataclass(frozen=True)
class _Probe:
    name: str
    kind: str
    run: Callable[[], Awaitable[probes.Detail]]


class StatusService:
    def __init__(
        self,
        *,
        settings: Settings,
        pool: Pool,
        migrations: list[Migration],
        targets: TargetResolver,
        notifications: NotificationDispatcher,
        sweeps: SweepRecord,
        approvals: ApprovalStore,
        workflows: WorkflowStore,
        ssh_probe: probes.SshProbe | None,
        probe_timeout_s: float = PROBE_TIMEOUT_S,
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._migrations = migrations
        self._targets = targets
        self._notifications = notifications
        self._sweeps = sweeps
        self._approvals = approvals
        self._workflows = workflows
        self._ssh_probe = ssh_probe
        self._timeout_s = probe_timeout_s

    async def report(self) -> StatusReport:
        started = time.perf_counter()
        components = await asyncio.gather(*(self._bounded(p) for p in self._probes()))
        work = next(c for c in components if c.name == "work")
        return StatusReport(
            state="degraded" if any(c.state == "down" for c in components) else "up",
            checked_at=datetime.now(UTC),
            elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
            probe_timeout_s=self._timeout_s,
            pending_approvals=work.detail.get("pending_approvals"),
            running_workflows=work.detail.get("running_workflows"),
            components=list(components),
        )

    def _probes(self) -> list[_Probe]:
        settings, timeout_s = self._settings, self._timeout_s
        found = [
            _Probe("database", "database", lambda: probes.database(self._pool)),
            _Probe(
                "migrations", "migrations", lambda: probes.migrations(self._pool, self._migrations)
            ),
        ]
        for environment, host, url in self._targets.docker_hosts():
            found.append(
                _Probe(
                    f"docker:{environment}/{host}",
                    "docker_host",
                    partial(probes.docker_engine, url, timeout_s),
                )
            )
        for target in self._targets.ssh_hosts():
            found.append(
                _Probe(
                    f"ssh:{target.environment}/{target.name}",
                    "ssh_host",
                    partial(probes.ssh_host, target, self._ssh_probe),
                )
            )
        found.append(_Probe("llm", "llm", lambda: probes.llm(settings, timeout_s)))
        found.append(_Probe("tracing", "tracing", _now(lambda: probes.tracing(settings))))
        last = self._notifications.last_deliveries()
        for receiver in self._notifications.config.receivers:
            found.append(
                _Probe(
                    f"notify:{receiver.name}",
                    "notification_receiver",
                    _now(
                        partial(
                            probes.receiver, receiver.name, receiver.url, last.get(receiver.name)
                        )
                    ),
                )
            )
        found.append(
            _Probe(
                "sweeper",
                "sweeper",
                _now(lambda: probes.sweeper(self._sweeps, settings.sweep_interval_s)),
            )
        )
        found.append(_Probe("work", "counts", self._counts))
        return found

    async def _bounded(self, probe: _Probe) -> Component:
        started = time.perf_counter()
        state: ComponentState = "up"
        error: str | None = None
        detail: probes.Detail = {}
        try:
            detail = await asyncio.wait_for(probe.run(), timeout=self._timeout_s)
        except probes.Unconfigured as reason:
            state, error = "unconfigured", str(reason)
        except TimeoutError:
            state, error = "down", f"no answer within {self._timeout_s:g} s"
        except Exception as failure:  # any failure is the component's state, never a 500
            state, error = "down", str(failure) or type(failure).__name__
        return Component(
            name=probe.name,
            kind=probe.kind,
            state=state,
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
            error=error,
            detail=detail,
        )

    async def _counts(self) -> probes.Detail:
        by_tier = await self._approvals.pending_by_tier()
        active = await self._workflows.active_counts()
        return {
            "pending_approvals": sum(by_tier.values()),
            "pending_by_tier": by_tier,
            "running_workflows": sum(active.get(s, 0) for s in RUNNING_STATUSES),
            "active_workflows": active,
        }


def _now(check: Callable[[], probes.Detail]) -> Callable[[], Awaitable[probes.Detail]]:
    """A check that needs no I/O, as a probe."""

    async def run() -> probes.Detail:
        return check()

    return run
