"""An alert's recovery never asks anyone, nor changes anything, once its alert has resolved, even
when the webhook's own withdrawal could not reach it: lost with its process (the thread's lock
held past the resume's wait, then the service restarted on the same database), or the workflow
still planning or making its approval request when the resolution came. Real Postgres, the
service in process, in-memory executors; planning and probes held by the test, never a sleep."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

import agent_orchestrator.runtime as runtime_module
import shared.lib.workflows.engine as engine_module
from shared.lib.alerts import AlertNotice, AlertStore
from shared.lib.db.pool import open_pool
from shared.lib.execution.models import ExecutionResult, OperationCall
from shared.lib.executors.fake import FakeExecutor
from shared.lib.workflows.locks import lock_key
from shared.lib.workflows.models import WorkRequest
from tests.helpers import auth, orchestrate, wait_for, workflow
from tests.integration.alerts_support import TOKEN, alert, delivered, restarts
from tests.integration.service_support import agent_api, fake_executors

DEADLINE_S = 30.0
# Where an alert's recovery stops: ended, or asking someone (what must not happen).
SETTLED = ("withdrawn", "awaiting_approval", "completed", "failed", "rejected")


def _settled(api: Any, workflow_id: str) -> dict[str, Any]:
    return wait_for(
        lambda: workflow(api, workflow_id),
        until=lambda w: w["status"] in SETTLED,
        what=f"workflow {workflow_id} ending or asking",
    )


def _status_in_db(database_url: str, workflow_id: str) -> str:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT status FROM workflows WHERE id = %s", (workflow_id,)).fetchone()
    assert row is not None
    return str(row[0])


def test_a_withdrawal_lost_with_its_process_still_ends_the_waiting_recovery(
    empty_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator's `stop dev/api` waits for approval; an alert's recovery of dev/api waits for
    the target; the alert resolves and the reply says withdrawn, but the resume carrying the
    withdrawal finds the thread's lock taken past its wait (scaled down from 30 s) and the
    process is gone before anyone retries. Before: the operator's request rejected, the alert's
    recovery went on and asked for approval. Now it ends `withdrawn`, asking nobody."""
    monkeypatch.setattr(engine_module, "RESUME_LOCK_WAIT_S", 0.2)
    fakes = fake_executors()
    fakes["docker"].target("api").running = False  # down, as the alert says
    holder = psycopg.connect(empty_database_url, autocommit=True)
    try:
        with agent_api(
            empty_database_url, tmp_path, executors=fakes, AGENT_ALERT_WEBHOOK_TOKEN=TOKEN
        ) as first:
            stop = orchestrate(first, {"operation": "stop", "target": "api", "environment": "dev"})
            assert stop["status"] == "awaiting_approval", stop
            fired = delivered(first, alert(service="api", env="dev", fingerprint="fp-api-lost"))
            waiter = fired["alerts"][0]["workflow_id"]
            wait_for(
                lambda: workflow(first, waiter),
                until=lambda w: w["status"] == "waiting_for_target",
                what="the alert's recovery waiting behind the stop",
            )
            # Taken once the waiter's run let go of it at its pause.
            holder.execute("SELECT pg_advisory_lock(%s)", (lock_key(waiter),))
            ended = alert("resolved", service="api", env="dev", fingerprint="fp-api-lost")
            resolved = delivered(first, ended)
            assert resolved["withdrawn"] == 1, resolved
        # The service stopped after its resume gave up on the lock (it drains its tasks).
        assert _status_in_db(empty_database_url, waiter) == "waiting_for_target"
    finally:
        holder.close()  # and with it the lock

    with agent_api(
        empty_database_url, tmp_path, executors=fakes, AGENT_ALERT_WEBHOOK_TOKEN=TOKEN
    ) as second:
        rejected = second.post(
            f"/reject/{stop['approval_id']}", json={"reason": "not now"}, headers=auth("bob")
        )
        assert rejected.status_code == 202, rejected.text
        done = _settled(second, waiter)
        assert done["status"] == "withdrawn", done
        assert "resolved while its recovery waited" in done["error"]
        assert done["approvals"] == []  # it never asked
        assert second.get("/approvals/pending", headers=auth("bob")).json() == []
    assert restarts(fakes) == []


def test_the_senders_retry_withdraws_what_a_delivery_cut_short_left_pending(
    empty_database_url: str, tmp_path: Path
) -> None:
    """The delivery that resolved the alert died after committing the resolution and before
    withdrawing the approval; Alertmanager's retry of it used to be a plain duplicate, leaving
    the approval pending for an alert that had cleared."""
    fakes = fake_executors()
    fakes["docker"].target("web").running = False
    with agent_api(
        empty_database_url, tmp_path, executors=fakes, AGENT_ALERT_WEBHOOK_TOKEN=TOKEN
    ) as api:
        fired = delivered(api, alert(service="web", env="dev", fingerprint="fp-cut"))
        started = workflow(api, fired["alerts"][0]["workflow_id"])
        assert started["status"] == "awaiting_approval", started
        ended = alert("resolved", service="web", env="dev", fingerprint="fp-cut")
        asyncio.run(_commit_resolution(empty_database_url, ended))  # what the dead one did
        retry = delivered(api, ended)["alerts"][0]
        assert retry["outcome"] == "duplicate", retry
        approval = api.get(f"/approvals/{started['approval_id']}", headers=auth("bob")).json()
        assert approval["status"] == "withdrawn", retry  # before: still pending
        assert approval["actions"][-1]["actor"] == "alertmanager"
        done = wait_for(
            lambda: workflow(api, started["workflow_id"]),
            until=lambda w: w["status"] != "awaiting_approval",
            what="the withdrawn approval's workflow ending",
        )
        assert done["status"] == "withdrawn", done
    assert restarts(fakes) == []


async def _commit_resolution(database_url: str, sent: dict[str, Any]) -> None:
    pool = await open_pool(database_url, max_size=2)
    try:
        notice = AlertNotice(
            fingerprint=sent["fingerprint"],
            alertname=sent["labels"]["alertname"],
            labels=sent["labels"],
            annotations={},
            starts_at=datetime.fromisoformat(sent["startsAt"]),
            ends_at=datetime.fromisoformat(sent["endsAt"]),
        )
        assert (await AlertStore(pool).record_resolved(notice)).fresh
    finally:
        await pool.close()


class HeldPlanner:
    """The service's planner (`wrap`ped when the app starts), holding the plan of an alert's
    request until the test lets go: a planner slower than the webhook's wait for it."""

    def __init__(self) -> None:
        self._planner: Any = None
        self.holding = threading.Event()
        self.release = threading.Event()

    def wrap(self, planner: Any) -> HeldPlanner:
        self._planner = planner
        return self

    async def plan(self, request: WorkRequest) -> Any:
        if request.source == "alert":
            self.holding.set()
            await asyncio.to_thread(self.release.wait, DEADLINE_S)
        return await self._planner.plan(request)

    def __getattr__(self, name: str) -> Any:  # the rest of the planner, as it is
        return getattr(self._planner, name)


class HeldProbe(FakeExecutor):
    """Holds the `nth` health probe of prod/web until the test lets go."""

    def __init__(self, nth: int) -> None:
        super().__init__(kind="docker")
        self._nth, self._seen = nth, 0
        self.holding = threading.Event()
        self.release = threading.Event()

    async def execute(self, call: OperationCall) -> ExecutionResult:
        if call.operation == "health" and call.target.name == "web":
            self._seen += 1
            if self._seen == self._nth:
                self.holding.set()
                await asyncio.to_thread(self.release.wait, DEADLINE_S)
        return await super().execute(call)


def _resolved_meanwhile(
    database_url: str,
    tmp_path: Path,
    fakes: dict[str, FakeExecutor],
    holding: threading.Event,
    release: threading.Event,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fire prod/web's alert, resolve it while the test holds the workflow at `holding`, let
    go; the resolution's reply and the workflow once it ends or asks."""
    with agent_api(database_url, tmp_path, executors=fakes, AGENT_ALERT_WEBHOOK_TOKEN=TOKEN) as api:
        try:
            fired = delivered(api, alert(service="web", env="prod", fingerprint="fp-slow"))
            started = fired["alerts"][0]
            assert started["workflow_status"] == "planning", started
            assert holding.wait(DEADLINE_S), "the workflow never got to the held point"
            ended = alert("resolved", service="web", env="prod", fingerprint="fp-slow")
            resolved = delivered(api, ended)["alerts"][0]
        finally:
            release.set()
        done = _settled(api, started["workflow_id"])
        assert api.get("/approvals/pending", headers=auth("bob")).json() == []
        return resolved, done


def test_an_alert_resolved_while_its_recovery_plans_ends_it_before_it_asks(
    empty_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: "is planning; it is left to finish", then an approval request for prod/web that
    an approver could approve, restarting a service whose alert had cleared."""
    monkeypatch.setattr(engine_module, "START_WAIT_S", 0.2)  # the webhook answers mid-planning
    planner, real = HeldPlanner(), runtime_module.conversation_planner
    monkeypatch.setattr(
        runtime_module,
        "conversation_planner",
        lambda *args, **kwargs: planner.wrap(real(*args, **kwargs)),
    )
    fakes = fake_executors()
    fakes["docker"].target("web").running = False
    resolved, done = _resolved_meanwhile(
        empty_database_url, tmp_path, fakes, planner.holding, planner.release
    )
    assert done["status"] == "withdrawn", done
    assert "resolved before anything was changed" in done["error"]
    assert done["approvals"] == []
    assert "withdrawn" in [event["event"] for event in done["timeline"]]
    assert restarts(fakes) == []
    assert "it sees the alert resolved and ends withdrawn" in resolved["reason"], resolved


@pytest.mark.parametrize(
    ("nth", "asked"),
    [
        pytest.param(1, False, id="resolved-during-the-reads-before-the-gate"),
        pytest.param(2, True, id="resolved-while-the-approval-request-is-made"),
    ],
)
def test_an_alert_resolved_while_its_recovery_makes_its_request_ends_it(
    empty_database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    nth: int,
    asked: bool,
) -> None:
    """The 1st probe of prod/web is the investigation's, the 2nd the one the approval request
    shows its approver. An approval already made when the resolution is seen is withdrawn by
    alertmanager, before the workflow ever says it awaits approval; nobody is notified of it."""
    monkeypatch.setattr(engine_module, "START_WAIT_S", 0.2)
    probe = HeldProbe(nth)
    probe.target("web").running = False
    fakes = {**fake_executors(), "docker": probe}
    _, done = _resolved_meanwhile(empty_database_url, tmp_path, fakes, probe.holding, probe.release)
    assert done["status"] == "withdrawn", done
    assert "before anyone was asked to approve" in done["error"]
    events = [event["event"] for event in done["timeline"]]
    assert "approval_requested" not in events
    if asked:
        (approval,) = done["approvals"]
        assert approval["status"] == "withdrawn"
        actions = [(a["action"], a["actor"]) for a in approval["actions"]]
        assert actions == [("requested", "alertmanager"), ("withdraw", "alertmanager")]
    else:
        assert done["approvals"] == []
    assert restarts(fakes) == []
