"""What the durability tests share: service processes on one database, the rows they check
(workflows, ledger, audit), Docker events, and HTTP fan-out, so each test reads as its scenario."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import docker
import httpx
import psycopg
import yaml
from psycopg.rows import dict_row

from shared.lib.workflows.store import TERMINAL_STATUSES
from tests.helpers import CONFIG_DIR, auth
from tests.testbed.service import ServiceProcess

HTTP_TIMEOUT_S = 60.0


def service_process(
    *,
    tmp_path: Path,
    replica_id: str,
    database_url: str,
    environments_file: Path,
    dry_run: bool,
    sweep_interval_s: float = 0.5,
    recovery_grace_s: float | None = None,
) -> ServiceProcess:
    """A `serve` process of its own (data dir, log file, port) on the shared database; call
    `start()` to run it."""
    data_dir = tmp_path / replica_id
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {
        "DATABASE_URL": database_url,
        "AGENT_CONFIG_DIR": str(CONFIG_DIR),
        "AGENT_DATA_DIR": str(data_dir),
        "AGENT_ENVIRONMENTS_FILE": str(environments_file),
        "AGENT_SWEEP_INTERVAL_S": str(sweep_interval_s),
        "AGENT_REPLICA_ID": replica_id,
        "AGENT_DRY_RUN": "true" if dry_run else "false",
    }
    if recovery_grace_s is not None:
        env["AGENT_RECOVERY_GRACE_S"] = str(recovery_grace_s)
    return ServiceProcess(env=env, log_path=tmp_path / f"{replica_id}.log")


def stop_together(processes: Sequence[ServiceProcess]) -> None:
    with ThreadPoolExecutor(max_workers=len(processes)) as pool:
        list(pool.map(ServiceProcess.stop, processes))


def write_environments(path: Path, *, docker_url: str, containers: Mapping[str, str]) -> Path:
    """An environments file whose `dev` holds one docker service per (service, container)."""
    services = {
        service: {"kind": "docker", "docker_host": "local", "container": container}
        for service, container in containers.items()
    }
    document = {
        "version": 1,
        "environments": {"dev": {"docker_hosts": {"local": docker_url}, "services": services}},
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


# --- rows ------------------------------------------------------------------------------------


def query(database_url: str, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        return conn.execute(sql.encode(), params).fetchall()


def workflow_statuses(database_url: str, workflow_ids: Iterable[str]) -> dict[str, str]:
    rows = query(
        database_url, "SELECT id, status FROM workflows WHERE id = ANY(%s)", (list(workflow_ids),)
    )
    return {row["id"]: row["status"] for row in rows}


def all_terminal(statuses: Mapping[str, str]) -> bool:
    return all(status in TERMINAL_STATUSES for status in statuses.values())


def ledger_rows(database_url: str, workflow_ids: Iterable[str]) -> list[dict[str, Any]]:
    return query(
        database_url,
        "SELECT workflow_id, step, operation, target, status, owner, result FROM executions"
        " WHERE workflow_id = ANY(%s) ORDER BY id",
        (list(workflow_ids),),
    )


def duplicate_executions(database_url: str) -> list[dict[str, Any]]:
    """(workflow, step) pairs with more than one ledger row: each would be a second run."""
    return query(
        database_url,
        "SELECT workflow_id, step, count(*) AS n FROM executions"
        " GROUP BY workflow_id, step HAVING count(*) > 1",
    )


def events_per_workflow(database_url: str, event: str) -> dict[str, int]:
    rows = query(
        database_url,
        "SELECT workflow_id, count(*) AS n FROM workflow_events WHERE event = %s"
        " GROUP BY workflow_id",
        (event,),
    )
    return {row["workflow_id"]: row["n"] for row in rows}


# --- docker ----------------------------------------------------------------------------------


def container_events(
    client: docker.DockerClient, *, names: Iterable[str], since: datetime, action: str
) -> list[dict[str, Any]]:
    """The engine's events of one action on these containers from `since` up to now."""
    # The engine takes fractional seconds (the SDK's types say int, and it floors a datetime to
    # the second, which would let in the events of the second before `since`).
    stream = client.events(
        since=cast(int, f"{since.timestamp():.6f}"),
        until=cast(int, f"{time.time():.6f}"),
        filters={"type": "container", "container": sorted(names), "event": action},
        decode=True,
    )
    try:
        return list(stream)
    finally:
        stream.close()


def per_container(events: Iterable[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for event in events:
        name = event["Actor"]["Attributes"]["name"]
        counts[name] = counts.get(name, 0) + 1
    return counts


# --- HTTP ------------------------------------------------------------------------------------


def orchestrate_all(base_url: str, bodies: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """POST /orchestrate for each body (a few at a time); every answer must be 201."""
    with httpx.Client(base_url=base_url, headers=auth("alice"), timeout=HTTP_TIMEOUT_S) as http:

        def post(body: dict[str, Any]) -> dict[str, Any]:
            response = http.post("/orchestrate", json=body)
            assert response.status_code == 201, response.text
            answer: dict[str, Any] = response.json()
            return answer

        with ThreadPoolExecutor(max_workers=6) as pool:
            return list(pool.map(post, bodies))


async def orchestrate_spread(
    base_urls: Sequence[str], bodies: Sequence[dict[str, Any]], *, concurrency: int = 8
) -> list[dict[str, Any]]:
    """POST /orchestrate round-robin over several replicas, `concurrency` requests in flight."""
    gate = asyncio.Semaphore(concurrency)
    clients = [
        httpx.AsyncClient(base_url=url, headers=auth("alice"), timeout=HTTP_TIMEOUT_S)
        for url in base_urls
    ]

    async def post(index: int, body: dict[str, Any]) -> dict[str, Any]:
        async with gate:
            response = await clients[index % len(clients)].post("/orchestrate", json=body)
        assert response.status_code == 201, response.text
        answer: dict[str, Any] = response.json()
        return answer

    try:
        return list(await asyncio.gather(*(post(i, body) for i, body in enumerate(bodies))))
    finally:
        for client in clients:
            await client.aclose()


async def approve_everywhere(
    base_urls: Sequence[str], approval_ids: Sequence[str], *, concurrency: int = 10
) -> list[list[httpx.Response]]:
    """Send each approval to every replica at the same moment; answers in `base_urls` order.

    The order the requests leave in rotates per approval, so no replica is always first.
    """
    gate = asyncio.Semaphore(concurrency)
    clients = [
        httpx.AsyncClient(base_url=url, headers=auth("bob"), timeout=HTTP_TIMEOUT_S)
        for url in base_urls
    ]

    async def race(index: int, approval_id: str) -> list[httpx.Response]:
        shift = index % len(clients)
        order = list(range(len(clients)))[shift:] + list(range(len(clients)))[:shift]
        body = {"reason": "race test"}
        async with gate:
            answers = await asyncio.gather(
                *(clients[i].post(f"/approve/{approval_id}", json=body) for i in order)
            )
        by_replica = dict(zip(order, answers, strict=True))
        return [by_replica[i] for i in range(len(clients))]

    try:
        return list(await asyncio.gather(*(race(i, a) for i, a in enumerate(approval_ids))))
    finally:
        for client in clients:
            await client.aclose()
