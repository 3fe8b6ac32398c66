"""Alert storms through the real app and Postgres: one delivery of 500 `ServiceDown` alerts on
3 configured containers is recorded and answered before any workflow starts, makes at most one
approval per container (the rest merged through the target's lease), a retry of the delivery
repeats nothing, and after a kill -9 mid-processing every alert is accounted for."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.rows import dict_row

from agent_orchestrator.app import create_app
from shared.lib.executors.fake import FakeExecutor
from shared.lib.settings import load_settings
from tests.helpers import CONFIG_DIR, FIXTURES, wait_for
from tests.integration.alerts_support import TOKEN, alert, notification
from tests.integration.durability_support import service_process, write_environments
from tests.testbed.docker_fixtures import ContainerFactory

STORM = 500
# Three configured Docker containers of tests/fixtures/environments.yml.
TARGETS = [("dev", "web"), ("dev", "api"), ("prod", "web")]
# Three real containers, for the kill -9 test (its own environments file, `dev` only).
CONTAINERS = [("dev", "web"), ("dev", "api"), ("dev", "cache")]


def storm(targets: list[tuple[str, str]] = TARGETS) -> dict[str, Any]:
    alerts = [
        alert(fingerprint=f"storm{i:04d}", service=targets[i % 3][1], env=targets[i % 3][0])
        for i in range(STORM)
    ]
    return notification(*alerts)


def rows(database_url: str) -> list[dict[str, Any]]:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT a.id, a.action, a.reason, a.workflow_id, a.notes, w.status AS wf_status"
            " FROM alert_workflows a LEFT JOIN workflows w ON w.id = a.workflow_id"
            " WHERE a.fingerprint LIKE 'storm%%' ORDER BY a.id"
        ).fetchall()


def accounted(found: list[dict[str, Any]]) -> bool:
    """Started (its own workflow), merged (linked to the owner's), or recorded with a reason."""
    return len(found) == STORM and all(
        r["workflow_id"] is not None or (r["action"] != "workflow" and r["reason"]) for r in found
    )


def pending(database_url: str) -> list[str]:
    with psycopg.connect(database_url) as conn:
        found = conn.execute(
            "SELECT workflow_id FROM approval_requests WHERE status = 'pending'"
        ).fetchall()
    return [row[0] for row in found]


@contextmanager
def _agent(database_url: str, tmp_path: Path, *, down: Sequence[str]) -> Iterator[TestClient]:
    fakes = {kind: FakeExecutor(kind=kind) for kind in ("docker", "ssh", "http")}
    for name in down:
        fakes["docker"].target(name).running = False
    settings = load_settings(
        DATABASE_URL=database_url,
        AGENT_CONFIG_DIR=CONFIG_DIR,
        AGENT_DATA_DIR=tmp_path,
        AGENT_ENVIRONMENTS_FILE=FIXTURES / "environments.yml",
        AGENT_ALERT_WEBHOOK_TOKEN=TOKEN,
        AGENT_SWEEP_INTERVAL_S=0.5,
    )
    with TestClient(create_app(settings, executors=fakes)) as client:
        yield client


@pytest.fixture
def api(empty_database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The targets are down, as the alerts say: the strategy's restart is asked for."""
    with _agent(empty_database_url, tmp_path, down=[name for _, name in TARGETS]) as client:
        yield client


def test_500_alerts_on_3_containers_make_3_approvals_and_a_retry_repeats_nothing(
    api: TestClient, empty_database_url: str
) -> None:
    body = json.dumps(storm())
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    began = time.perf_counter()
    response = api.post("/webhook/alerts", content=body, headers=headers)
    answered_in = time.perf_counter() - began
    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["received"] == STORM and reply["queued"] == STORM
    assert len(rows(empty_database_url)) == STORM  # every alert recorded before the answer

    found = wait_for(
        lambda: rows(empty_database_url),
        until=accounted,
        timeout_s=120,
        interval_s=0.2,
        what="every alert started or merged",
    )
    owners = sorted(pending(empty_database_url))
    assert len(owners) == 3, owners
    assert {r["workflow_id"] for r in found} == set(owners)  # the other 497 merged into them

    began = time.perf_counter()
    retry = api.post("/webhook/alerts", content=body, headers=headers)
    retried_in = time.perf_counter() - began
    assert retry.status_code == 200, retry.text
    assert retry.json()["duplicates"] == STORM
    assert sorted(pending(empty_database_url)) == owners
    with psycopg.connect(empty_database_url) as conn:
        workflows = conn.execute("SELECT count(*) FROM workflows").fetchone()
    assert workflows == (3,)
    print(
        f"\n{STORM} alerts answered in {answered_in * 1000:.0f} ms, the retry in "
        f"{retried_in * 1000:.0f} ms; {len(owners)} pending approvals"
    )


@pytest.fixture
def healthy_api(empty_database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The targets answer their health checks: a storm's recovery needs no restart, nor anyone's
    approval, and each workflow ends as soon as its reads are done."""
    with _agent(empty_database_url, tmp_path, down=[]) as client:
        yield client


def test_a_storm_whose_first_recovery_ends_at_once_starts_no_second_one(
    healthy_api: TestClient, empty_database_url: str
) -> None:
    """Without a pending approval there is no lease to merge into once the first workflow ended:
    every later alert of the delivery started its own (1000 alerts made 1000 workflows)."""
    alerts = [alert(fingerprint=f"storm{i:04d}", service="web", env="dev") for i in range(60)]
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    response = healthy_api.post(
        "/webhook/alerts", content=json.dumps(notification(*alerts)), headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["queued"] == 60
    found = wait_for(
        lambda: rows(empty_database_url),
        until=lambda found: len(found) == 60 and all(r["workflow_id"] for r in found),
        timeout_s=120,
        interval_s=0.2,
        what="every alert linked to a workflow",
    )
    assert len({r["workflow_id"] for r in found}) == 1, found[:3]
    assert found[0]["wf_status"] == "completed", found[0]
    with psycopg.connect(empty_database_url) as conn:
        assert conn.execute("SELECT count(*) FROM workflows").fetchone() == (1,)


def test_a_kill_9_mid_storm_loses_no_alert(
    empty_database_url: str, tmp_path: Path, container_factory: ContainerFactory, docker_url: str
) -> None:
    stopped = {}
    for _, service in CONTAINERS:  # down, as the alerts say
        container = container_factory(service)
        container.stop(timeout=1)
        stopped[service] = str(container.name)
    environments = write_environments(
        tmp_path / "environments.yml", docker_url=docker_url, containers=stopped
    )

    def agent(name: str) -> Any:
        process = service_process(
            tmp_path=tmp_path,
            replica_id=name,
            database_url=empty_database_url,
            environments_file=environments,
            dry_run=False,
            recovery_grace_s=1.0,
        )
        process.env["AGENT_ALERT_WEBHOOK_TOKEN"] = TOKEN
        return process

    first = agent("storm-1").start()
    try:
        response = httpx.post(
            f"{first.base_url}/webhook/alerts",
            json=storm(CONTAINERS),
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        wait_for(  # mid-processing: the background task has started or merged some
            lambda: sum(r["workflow_id"] is not None for r in rows(empty_database_url)),
            until=lambda n: n > 0,
            interval_s=0.02,
            what="the first alert processed",
        )
        first.kill()
    finally:
        first.kill()
    at_kill = rows(empty_database_url)
    assert len(at_kill) == STORM  # recorded before the answer, so none lost to the kill
    processed = sum(r["workflow_id"] is not None for r in at_kill)
    assert processed < STORM, "the kill came after all was processed; nothing to recover"
    second = agent("storm-2").start()
    try:
        found = wait_for(
            lambda: rows(empty_database_url),
            until=accounted,
            timeout_s=120,
            interval_s=0.5,
            what="the sweep to account for every alert",
        )
        assert 0 < len(pending(empty_database_url)) <= 3
        with psycopg.connect(empty_database_url) as conn:
            twice = conn.execute(
                "SELECT request->'alert'->>'alert_id', count(*) FROM workflows"
                " GROUP BY 1 HAVING count(*) > 1"
            ).fetchall()
        assert twice == []  # no alert started two workflows
        assert accounted(found)
        print(f"\nkill -9 mid-storm: {processed}/{STORM} processed; the rest recovered")
    finally:
        second.stop()
