"""What the crash test shares: a bed of `serve` processes on one database, the rows and Docker
events it counts, a hold on LangGraph checkpoints that stretches a boundary, and the tally."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import httpx
import psycopg
from docker.models.containers import Container
from psycopg import sql

from shared.lib.workflows.store import TERMINAL_STATUSES
from tests.helpers import auth, wait_for
from tests.integration.durability_support import (
    container_events,
    duplicate_executions,
    ledger_rows,
    per_container,
    query,
    service_process,
    workflow_statuses,
)
from tests.testbed.service import ServiceProcess

RECOVERY_GRACE_S = 1.0
SWEEP_INTERVAL_S = 0.2
OUTCOME_DEADLINE_S = 120.0
# Carol (ops-lead) alone settles a medium request; dave (admin) is the second of a critical one.
APPROVERS = ("carol", "dave")
HOLD_KEY = 0x63726173685F74  # the advisory lock a held checkpoint waits for


@dataclass
class Tally:
    kill_point: str
    runs: int = 0
    at_boundary: int = 0
    completed: int = 0
    flagged: int = 0
    lost: int = 0
    duplicates: int = 0
    other: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


@dataclass
class Bed:
    """The database, the environments file and every service process started so far."""

    db: str
    tmp_path: Path
    environments: Path
    docker_client: docker.DockerClient
    processes: list[ServiceProcess] = field(default_factory=list)

    def start(self, name: str) -> ServiceProcess:
        process = service_process(
            tmp_path=self.tmp_path,
            replica_id=name,
            database_url=self.db,
            environments_file=self.environments,
            dry_run=False,
            sweep_interval_s=SWEEP_INTERVAL_S,
            recovery_grace_s=RECOVERY_GRACE_S,
        )
        self.processes.append(process)
        return process.start()


# --- rows ------------------------------------------------------------------------------------


def workflow_ids(db: str) -> set[str]:
    return {row["id"] for row in query(db, "SELECT id FROM workflows")}


def paused_threads(db: str, ids: Iterable[str]) -> set[str]:
    """Threads whose gate's interrupt is in the checkpoint."""
    rows = query(
        db,
        "SELECT DISTINCT thread_id FROM checkpoint_writes"
        " WHERE channel = '__interrupt__' AND thread_id = ANY(%s)",
        (list(ids),),
    )
    return {row["thread_id"] for row in rows}


def threads_with_write(db: str, ids: Iterable[str], channel: str) -> set[str]:
    """Threads with a saved task write to `channel` (e.g. `branch:to:gate`: the step before the
    gate has run)."""
    rows = query(
        db,
        "SELECT DISTINCT thread_id FROM checkpoint_writes WHERE channel = %s"
        " AND thread_id = ANY(%s)",
        (channel, list(ids)),
    )
    return {row["thread_id"] for row in rows}


def checkpointed_at_step(db: str, ids: Sequence[str], step: int) -> set[str]:
    rows = query(
        db,
        "SELECT DISTINCT thread_id FROM checkpoints WHERE metadata->>'step' = %s"
        " AND thread_id = ANY(%s)",
        (str(step), list(ids)),
    )
    return {row["thread_id"] for row in rows}


@contextmanager
def checkpoints_held(db: str, channel: str) -> Iterator[None]:
    """Hold every checkpoint that carries `channel` before it is written, until the block ends.

    A trigger on LangGraph's `checkpoints` table makes such an insert wait for an advisory lock
    this test holds: the run stops at a boundary that otherwise lasts microseconds. At the end
    (after the kill) the dead process's waiting backends are ended (what Postgres does itself
    when it next talks to the gone client), so none of the held checkpoints is written.
    """
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (HOLD_KEY,))
        conn.execute(
            sql.SQL(
                "CREATE OR REPLACE FUNCTION crash_test_hold() RETURNS trigger LANGUAGE plpgsql"
                " AS $$ BEGIN PERFORM pg_advisory_xact_lock_shared({}); RETURN NEW; END $$"
            ).format(sql.Literal(HOLD_KEY))
        )
        conn.execute(
            sql.SQL(
                "CREATE TRIGGER crash_test_hold BEFORE INSERT ON checkpoints FOR EACH ROW"
                " WHEN (NEW.checkpoint->'channel_versions' ? {}) EXECUTE FUNCTION crash_test_hold()"
            ).format(sql.Literal(channel))
        )
        try:
            yield
        finally:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event = 'advisory'"
            )
            conn.execute("DROP TRIGGER crash_test_hold ON checkpoints")
            conn.execute("SELECT pg_advisory_unlock(%s)", (HOLD_KEY,))


def approvals_of(db: str, ids: Sequence[str]) -> list[dict[str, Any]]:
    return query(
        db,
        "SELECT id, workflow_id, status, resumed_at FROM approval_requests"
        " WHERE workflow_id = ANY(%s)",
        (list(ids),),
    )


def ledger_by_workflow(db: str, ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = {w: [] for w in ids}
    for row in ledger_rows(db, ids):
        rows[row["workflow_id"]].append(row)
    return rows


def events_of(db: str, ids: Sequence[str], event: str) -> set[str]:
    rows = query(
        db,
        "SELECT DISTINCT workflow_id FROM workflow_events WHERE event = %s"
        " AND workflow_id = ANY(%s)",
        (event, list(ids)),
    )
    return {row["workflow_id"] for row in rows}


# --- Docker ----------------------------------------------------------------------------------


def sigterms(client: docker.DockerClient, names: Sequence[str], since: datetime) -> dict[str, int]:
    events = container_events(client, names=names, since=since, action="kill")
    return per_container(e for e in events if e["Actor"]["Attributes"].get("signal") == "15")


def restarts(client: docker.DockerClient, names: Sequence[str], since: datetime) -> dict[str, int]:
    return per_container(container_events(client, names=names, since=since, action="restart"))


def started_at(container: Container) -> str:
    container.reload()
    return str(container.attrs["State"]["StartedAt"])


def wait_settled(
    containers: Sequence[Container], before: dict[str, str], *, timeout_s: float
) -> None:
    """Wait until dockerd has ended every restart it was asked for (restarted, or left stopped)."""

    def settled(container: Container) -> bool:
        container.reload()
        state = container.attrs["State"]
        return not state["Running"] or state["StartedAt"] != before[str(container.name)]

    wait_for(
        lambda: [settled(c) for c in containers],
        until=all,
        timeout_s=timeout_s,
        what="dockerd to end the interrupted restarts",
    )


# --- HTTP ------------------------------------------------------------------------------------


def restart_bodies(targets: Sequence[str], grace_s: int | None = None) -> list[dict[str, Any]]:
    params = {} if grace_s is None else {"timeout": grace_s}
    return [
        {"operation": "restart", "target": t, "environment": "dev", "params": params}
        for t in targets
    ]


def approve_enough(base_url: str, approval_id: str) -> None:
    """Approve as carol, then as dave while the request still wants another approver."""
    for who in APPROVERS:
        response = httpx.post(
            f"{base_url}/approve/{approval_id}",
            json={"reason": "crash test"},
            headers=auth(who),
            timeout=60,
        )
        assert response.status_code == 202, response.text
        if response.json()["status"] != "pending":
            return
    raise AssertionError(f"approval {approval_id} still pending after {APPROVERS}")


def approve_pending(base_url: str, db: str, ids: Sequence[str], done: set[str]) -> None:
    for row in approvals_of(db, ids):
        approval_id = str(row["id"])
        if row["status"] == "pending" and approval_id not in done:
            approve_enough(base_url, approval_id)
            done.add(approval_id)


@contextmanager
def posting_in_background(base_url: str, bodies: Sequence[dict[str, Any]]) -> Iterator[None]:
    """POST /orchestrate for every body at once; answers (or broken connections) are ignored."""

    def post(body: dict[str, Any]) -> int:
        try:
            return httpx.post(
                f"{base_url}/orchestrate", json=body, headers=auth("alice"), timeout=60
            ).status_code
        except httpx.TransportError:
            return 0

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        futures: list[Future[int]] = [pool.submit(post, body) for body in bodies]
        yield
        for future in futures:
            future.result()


# --- one kill point --------------------------------------------------------------------------


def see_it_through(
    bed: Bed, service: ServiceProcess, ids: Sequence[str], approved: set[str]
) -> dict[str, str]:
    """Do the human steps left and wait (with a deadline) for every workflow to end."""
    deadline = time.monotonic() + OUTCOME_DEADLINE_S
    statuses = workflow_statuses(bed.db, ids)
    while time.monotonic() < deadline:
        approve_pending(service.base_url, bed.db, ids, approved)
        statuses = workflow_statuses(bed.db, ids)
        if all(s in TERMINAL_STATUSES for s in statuses.values()):
            break
        time.sleep(0.2)
    return statuses


def count(
    bed: Bed,
    tally: Tally,
    ids: Sequence[str],
    containers: dict[str, str],
    statuses: dict[str, str],
    since: datetime,
) -> None:
    """Add these workflows' outcomes to the tally. `containers` maps workflow -> container."""
    names = sorted(containers.values())
    terms = sigterms(bed.docker_client, names, since)
    ended = restarts(bed.docker_client, names, since)
    ledger = ledger_by_workflow(bed.db, ids)
    errors = {
        row["id"]: row["error"] or ""
        for row in query(bed.db, "SELECT id, error FROM workflows WHERE id = ANY(%s)", (list(ids),))
    }
    doubled_steps = {row["workflow_id"] for row in duplicate_executions(bed.db)}
    for workflow_id in ids:
        tally.runs += 1
        name, rows = containers[workflow_id], ledger[workflow_id]
        status = statuses.get(workflow_id, "missing")
        seen = f"{workflow_id} on {name}: {status}, ledger {[r['status'] for r in rows]}"
        seen += f", SIGTERM x{terms.get(name, 0)}, restart x{ended.get(name, 0)}"
        if workflow_id in doubled_steps or terms.get(name, 0) > 1 or ended.get(name, 0) > 1:
            tally.duplicates += 1
            tally.problems.append(f"duplicate: {seen}")
        unknown = [r for r in rows if r["status"] == "outcome_unknown"]
        if status == "failed" and unknown and "outcome_unknown" in errors[workflow_id]:
            tally.flagged += 1
        elif status == "completed" and [r["status"] for r in rows] == ["ok"]:
            tally.completed += 1
            if ended.get(name, 0) != 1:
                tally.problems.append(f"completed without exactly one restart: {seen}")
        elif status in TERMINAL_STATUSES:
            tally.other += 1
            tally.problems.append(f"neither completed nor flagged: {seen}")
        else:
            tally.lost += 1
            tally.problems.append(f"lost: {seen}")


def by_target(db: str, ids: Sequence[str], names: Sequence[str]) -> dict[str, str]:
    """workflow -> container, from each workflow's requested target (`q3` -> names[3])."""
    rows = query(db, "SELECT id, request FROM workflows WHERE id = ANY(%s)", (list(ids),))
    return {row["id"]: names[int(row["request"]["steps"][0]["target"][1:])] for row in rows}


def table(tallies: Sequence[Tally]) -> str:
    header = "kill point", "runs", "at boundary", "completed", "flagged", "lost", "duplicates"
    lines = ["| " + " | ".join([*header, "seconds"]) + " |", "|" + "---|" * (len(header) + 1)]
    for t in tallies:
        row = [t.kill_point, t.runs, t.at_boundary, t.completed, t.flagged, t.lost, t.duplicates]
        lines.append("| " + " | ".join([*map(str, row), f"{t.seconds:.0f}"]) + " |")
    return "\n".join(lines)
