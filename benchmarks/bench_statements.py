"""Postgres statements and round trips per approval workflow, server side, counted in process:
the service runs in this process (its lifespan, over an ASGI transport), every psycopg
`execute`/`executemany` is counted by kind, and an explicit transaction block counts two more
(BEGIN and COMMIT). Round trips are counted on the wire: the service reaches Postgres through a
TCP relay here that counts each time the server answers after the service sent something (a
pipeline's batch, a flush, a Sync or a lone statement: one round trip each).

Run with `python -m benchmarks.bench_statements [--workflows N]`; prints a table, most frequent
first. The client reads nothing: it starts a workflow (POST /orchestrate), approves it (POST
/approve) and waits for the engine to report `completed`, so only the service's own statements
(LangGraph's checkpoints included) are counted. Uses a throwaway database on DATABASE_URL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg

from benchmarks.bench_workflows import (
    DEFAULT_ADMIN_URL,
    RESTART_ON_PROD,
    _expect,
    _service_env,
    _web_targets,
)
from tests.helpers import auth
from tests.testbed.postgres import PostgresServer

WARM_UP = 5


class RoundTrips:
    """A TCP relay in front of Postgres counting, while `counting` is set, the server's answers
    that follow something the client sent (its turns)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self.url = url
        self.turns = 0
        self.counting = False

    async def start(self) -> str:
        """Listen on a free local port; the URL that reaches Postgres through the relay."""
        server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        parts = urlsplit(self.url)
        netloc = parts.netloc.rsplit("@", 1)
        user = f"{netloc[0]}@" if len(netloc) == 2 else ""
        return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{port}"))

    async def _relay(self, client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        server, to_server = await asyncio.open_connection(*self.upstream)
        sent = [False]  # the client spoke since the server last answered

        async def pump(
            source: asyncio.StreamReader, sink: asyncio.StreamWriter, *, from_client: bool
        ) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await source.read(65536):
                    if from_client:
                        sent[0] = True
                    elif sent[0]:
                        sent[0] = False
                        self.turns += self.counting
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(
            pump(client, to_server, from_client=True), pump(server, to_client, from_client=False)
        )


class StatementCount:
    """Counts the statements sent while `counting` is set, by their first words."""

    def __init__(self) -> None:
        self.kinds: Counter[str] = Counter()
        self.counting = False

    def add(self, query: Any, prefix: str = "") -> None:
        if not self.counting:
            return
        text = query.as_string(None) if hasattr(query, "as_string") else query
        text = text.decode() if isinstance(text, bytes) else str(text)
        self.kinds[prefix + re.sub(r"\(%s.*", "", " ".join(text.split())[:70])] += 1

    def install(self) -> None:
        execute, executemany = psycopg.AsyncCursor.execute, psycopg.AsyncCursor.executemany
        transaction = psycopg.AsyncConnection.transaction
        count = self

        async def counted_execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            count.add(query)
            return await execute(self, query, *args, **kwargs)

        async def counted_executemany(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            count.add(query, "executemany: ")
            return await executemany(self, query, *args, **kwargs)

        @contextlib.asynccontextmanager
        async def counted_transaction(self: Any, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            if count.counting:
                count.kinds["BEGIN + COMMIT of a transaction block"] += 2
            async with transaction(self, *args, **kwargs) as block:
                yield block

        psycopg.AsyncCursor.execute = counted_execute  # type: ignore[method-assign]
        psycopg.AsyncCursor.executemany = counted_executemany  # type: ignore[method-assign]
        psycopg.AsyncConnection.transaction = counted_transaction  # type: ignore[method-assign,assignment]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflows", type=int, default=20)
    args = parser.parse_args(argv)
    server = PostgresServer(admin_url=os.environ.get("DATABASE_URL") or DEFAULT_ADMIN_URL)
    url = server.create_database("bench")
    try:
        with tempfile.TemporaryDirectory(prefix="bench-statements-") as folder:
            targets = _web_targets(args.workflows + WARM_UP)
            env = _service_env(url, Path(folder), targets=targets)
            os.environ.update(env | {"AGENT_SWEEP_INTERVAL_S": "3600"})  # no sweep counted
            count = StatementCount()
            count.install()
            trips = RoundTrips(url)
            asyncio.run(_count(count, trips, targets, args.workflows))
    finally:
        server.drop_database(url)
    n = args.workflows
    for kind, times in count.kinds.most_common():
        print(f"| {times / n:.1f} | {kind} |")
    print(f"statements per workflow: {sum(count.kinds.values()) / n:.1f}")
    print(f"round trips per workflow: {trips.turns / n:.1f}")


async def _count(
    count: StatementCount, trips: RoundTrips, targets: list[str], workflows: int
) -> None:
    from agent_orchestrator.app import create_app
    from shared.lib.settings import load_settings
    from shared.lib.workflows.engine import WorkflowEngine

    completed: dict[str, asyncio.Event] = {}
    status_changed = WorkflowEngine.status_changed

    async def heard(self: WorkflowEngine, workflow_id: str, status: str, *record: Any) -> None:
        # `record` (the finished row) is passed on only if given: older engines take two.
        await status_changed(self, workflow_id, status, *record)
        if status == "completed" and workflow_id in completed:
            completed[workflow_id].set()

    WorkflowEngine.status_changed = heard  # type: ignore[method-assign]
    os.environ["DATABASE_URL"] = await trips.start()  # the service reaches Postgres through it
    app = create_app(load_settings())
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://bench") as client,
    ):
        for index, target in enumerate(targets):
            count.counting = trips.counting = index >= WARM_UP
            request = {**RESTART_ON_PROD, "target": target}
            started = _expect(
                await client.post("/orchestrate", json=request, headers=auth("alice")), 201
            )
            done = completed.setdefault(started["workflow_id"], asyncio.Event())
            approval = started["approval_id"]
            _expect(await client.post(f"/approve/{approval}", json={}, headers=auth("bob")), 202)
            await asyncio.wait_for(done.wait(), timeout=60)
            await asyncio.sleep(0.05)  # what the run's end spawned (lease re-assessment)
            count.counting = trips.counting = False
    assert len(targets) - WARM_UP == workflows


if __name__ == "__main__":
    main()
