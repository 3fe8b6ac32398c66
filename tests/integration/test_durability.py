"""Durability under crashes and replicas, on the real service processes and one Postgres.

(a) kill -9 while 20 workflows await approval and 5 restarts are in flight on real containers:
    a new process still serves the 20, and none of the 5 restarts runs a second time.
(b) two replicas on one database, every approval sent to both at once: each workflow resumes
    once and each step runs once.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
import yaml
from docker.models.containers import Container

from tests.helpers import auth, wait_for
from tests.integration.durability_support import (
    all_terminal,
    approve_everywhere,
    container_events,
    duplicate_executions,
    events_per_workflow,
    ledger_rows,
    orchestrate_all,
    orchestrate_spread,
    per_container,
    query,
    service_process,
    stop_together,
    workflow_statuses,
    write_environments,
)
from tests.testbed.docker_fixtures import ContainerFactory
from tests.testbed.service import ServiceProcess

pytestmark = pytest.mark.slow

RESTARTS, PENDING = 5, 20
# PID 1 without a SIGTERM handler ignores SIGTERM, so `docker restart -t 20` waits the whole
# grace period before SIGKILL: a 20-second window in which the restart is mid-execution.
RESTART_GRACE_S = 20
IGNORES_SIGTERM = ["sleep", "3600"]
PENDING_CONTAINERS = 4
REPLICA_WORKFLOWS = 200


def started_at(container: Container) -> str:
    container.reload()
    return str(container.attrs["State"]["StartedAt"])


def approve(http: httpx.Client, approval_id: str) -> dict[str, Any]:
    response = http.post(f"/approve/{approval_id}", json={"reason": "durability test"})
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.docker
def test_kill_9_keeps_pending_approvals_and_never_repeats_a_started_restart(
    container_factory: ContainerFactory,
    docker_client: docker.DockerClient,
    docker_url: str,
    empty_database_url: str,
    tmp_path: Path,
) -> None:
    db = empty_database_url
    restarted = [container_factory(f"dur-c{i}", command=IGNORES_SIGTERM) for i in range(RESTARTS)]
    idle = [container_factory(f"dur-p{i}") for i in range(PENDING_CONTAINERS)]
    restart_names = {str(c.name) for c in restarted}
    services = {f"c{i}": str(c.name) for i, c in enumerate(restarted)}
    services |= {f"p{i}": str(idle[i % PENDING_CONTAINERS].name) for i in range(PENDING)}
    environments = write_environments(
        tmp_path / "environments.yml", docker_url=docker_url, containers=services
    )
    since = datetime.now()
    before = {c.name: started_at(c) for c in restarted}

    first = service_process(
        tmp_path=tmp_path,
        replica_id="replica-1",
        database_url=db,
        environments_file=environments,
        dry_run=False,
    ).start()
    second: ServiceProcess | None = None
    try:
        restart_bodies = [
            {
                "operation": "restart",
                "target": f"c{i}",
                "environment": "dev",
                "params": {"timeout": RESTART_GRACE_S},
            }
            for i in range(RESTARTS)
        ]
        # `start` on a running container changes nothing, yet it mutates, so dev gates it.
        pending_bodies = [
            {"operation": "start", "target": f"p{i}", "environment": "dev"} for i in range(PENDING)
        ]
        created = orchestrate_all(first.base_url, restart_bodies + pending_bodies)
        assert [w["status"] for w in created] == ["awaiting_approval"] * (RESTARTS + PENDING)
        assert {w["risk"]["tier"] for w in created} == {"medium"}
        restarts, pending = created[:RESTARTS], created[RESTARTS:]
        restart_ids = [w["workflow_id"] for w in restarts]
        pending_ids = [w["workflow_id"] for w in pending]

        with httpx.Client(base_url=first.base_url, headers=auth("bob"), timeout=60) as http:
            for workflow in restarts:
                assert approve(http, workflow["approval_id"])["resumed"] is True
        wait_for(
            lambda: [r["status"] for r in ledger_rows(db, restart_ids)],
            until=lambda s: s == ["started"] * RESTARTS,
            timeout_s=30,
            what="the 5 restarts' ledger rows to be written",
        )
        # The engine has sent SIGTERM to every container: each restart is mid-execution.
        wait_for(
            lambda: per_container(
                container_events(docker_client, names=restart_names, since=since, action="kill")
            ),
            until=lambda counts: set(counts) == restart_names,
            timeout_s=15,
            what="the engine to begin stopping the 5 containers",
        )
        killed_at = time.monotonic()
        first.kill()
        assert [r["status"] for r in ledger_rows(db, restart_ids)] == ["started"] * RESTARTS
        assert {c.name: started_at(c) for c in restarted} == before, "restart finished too early"

        second = service_process(
            tmp_path=tmp_path,
            replica_id="replica-2",
            database_url=db,
            environments_file=environments,
            dry_run=False,
        ).start()
        recovered_in = time.monotonic() - killed_at
        with httpx.Client(base_url=second.base_url, headers=auth("bob"), timeout=60) as http:
            listed = http.get("/approvals/pending", params={"limit": 1000})
            assert listed.status_code == 200, listed.text
            assert {a["workflow_id"] for a in listed.json()} == set(pending_ids)
            for workflow in pending:
                assert approve(http, workflow["approval_id"])["resumed"] is True

        statuses = wait_for(
            lambda: workflow_statuses(db, restart_ids + pending_ids),
            until=all_terminal,
            timeout_s=60,
            what="all 25 workflows to finish",
        )
        assert [statuses[w] for w in pending_ids] == ["completed"] * PENDING
        assert [statuses[w] for w in restart_ids] == ["failed"] * RESTARTS

        # Let the engine finish (or drop) the one restart it was asked for before the crash.
        def settled(container: Container) -> bool:
            container.reload()
            state = container.attrs["State"]
            return not state["Running"] or state["StartedAt"] != before[container.name]

        wait_for(
            lambda: [settled(c) for c in restarted],
            until=all,
            timeout_s=RESTART_GRACE_S + 20,
            what="the engine to end the interrupted restarts",
        )
        after_engine = {c.name: started_at(c) for c in restarted}
        restart_window = time.monotonic() - killed_at

        ledger = ledger_rows(db, restart_ids + pending_ids)
        assert duplicate_executions(db) == []
        by_workflow = {row["workflow_id"]: row for row in ledger}
        assert len(ledger) == len(by_workflow) == RESTARTS + PENDING
        for workflow_id in restart_ids:
            row = by_workflow[workflow_id]
            assert (row["operation"], row["status"]) == ("restart", "outcome_unknown"), row
            assert row["owner"] == "replica-1"  # written before the crash, never re-begun
        assert {by_workflow[w]["status"] for w in pending_ids} == {"ok"}
        details = [
            httpx.get(f"{second.base_url}/workflows/{w}", headers=auth("alice")).json()
            for w in restart_ids
        ]
        assert all("outcome_unknown" in (d["error"] or "") for d in details), details

        # One stop was ever begun per container (one SIGTERM), and at most one restart ended.
        terms = [
            e
            for e in container_events(
                docker_client, names=restart_names, since=since, action="kill"
            )
            if e["Actor"]["Attributes"].get("signal") == "15"
        ]
        assert per_container(terms) == dict.fromkeys(restart_names, 1)
        ended = per_container(
            container_events(docker_client, names=restart_names, since=since, action="restart")
        )
        assert all(n <= 1 for n in ended.values()), ended
        assert {c.name: started_at(c) for c in restarted} == after_engine
        print(
            f"\nkill -9 -> second replica ready in {recovered_in:.1f}s; interrupted restarts "
            f"ended {restart_window:.1f}s after the kill; restarts completed by the engine: "
            f"{sum(ended.values())}/{RESTARTS}"
        )
    finally:
        first.kill()
        if second is not None:
            second.stop()


def many_services(path: Path, count: int) -> Path:
    """An environment of `count` Docker services: one target per workflow, since requests to
    restart the same target merge into one (one owner per target)."""
    services = {
        f"svc{i}": {"kind": "docker", "docker_host": "local", "container": f"svc{i}"}
        for i in range(count)
    }
    environment = {"docker_hosts": {"local": "unix:///var/run/docker.sock"}, "services": services}
    path.write_text(yaml.safe_dump({"version": 1, "environments": {"dev": environment}}))
    return path


async def test_two_replicas_resume_each_approval_exactly_once(
    empty_database_url: str, tmp_path: Path
) -> None:
    db = empty_database_url
    environments = many_services(tmp_path / "environments.yml", REPLICA_WORKFLOWS)
    replicas = [
        service_process(
            tmp_path=tmp_path,
            replica_id=f"replica-{name}",
            database_url=db,
            environments_file=environments,
            dry_run=True,
        )
        for name in ("a", "b")
    ]
    try:
        for replica in replicas:
            replica.start()
        urls = [replica.base_url for replica in replicas]
        bodies = [
            {"operation": "restart", "target": f"svc{i}", "environment": "dev"}
            for i in range(REPLICA_WORKFLOWS)
        ]
        started = time.monotonic()
        created = await orchestrate_spread(urls, bodies)
        created_in = time.monotonic() - started
        assert {w["status"] for w in created} == {"awaiting_approval"}
        workflow_ids = [w["workflow_id"] for w in created]
        approval_ids = [w["approval_id"] for w in created]
        assert len(set(approval_ids)) == REPLICA_WORKFLOWS

        started = time.monotonic()
        answers = await approve_everywhere(urls, approval_ids)
        approved_in = time.monotonic() - started
        winners = {0: 0, 1: 0}
        for approval_id, pair in zip(approval_ids, answers, strict=True):
            codes = sorted(r.status_code for r in pair)
            assert codes == [202, 409], (approval_id, [(r.status_code, r.text) for r in pair])
            winner = next(i for i, r in enumerate(pair) if r.status_code == 202)
            assert pair[winner].json()["resumed"] is True, pair[winner].text
            winners[winner] += 1
        assert all(winners.values()), f"one replica won every race: {winners}"

        statuses = wait_for(
            lambda: workflow_statuses(db, workflow_ids),
            until=all_terminal,
            timeout_s=90,
            interval_s=0.2,
            what="all 200 workflows to finish",
        )
        finished_in = time.monotonic() - started
        assert set(statuses.values()) == {"completed"}, statuses

        assert duplicate_executions(db) == []
        ledger = ledger_rows(db, workflow_ids)
        assert len(ledger) == REPLICA_WORKFLOWS
        assert {row["workflow_id"] for row in ledger} == set(workflow_ids)
        assert {row["status"] for row in ledger} == {"ok"}
        assert events_per_workflow(db, "executing") == dict.fromkeys(workflow_ids, 1)
        votes = query(
            db,
            "SELECT r.id, count(a.id) AS approvals FROM approval_requests r"
            " LEFT JOIN approval_actions a ON a.approval_id = r.id AND a.action = 'approve'"
            " GROUP BY r.id",
        )
        assert len(votes) == REPLICA_WORKFLOWS
        assert {row["approvals"] for row in votes} == {1}
        owners = {row["owner"] for row in ledger}
        assert owners <= {"replica-a", "replica-b"}
        print(
            f"\n{REPLICA_WORKFLOWS} workflows created in {created_in:.1f}s; approvals raced in "
            f"{approved_in:.1f}s (wins a/b: {winners[0]}/{winners[1]}); all completed "
            f"{finished_in:.1f}s after the first approval"
        )
    finally:
        stop_together(replicas)
