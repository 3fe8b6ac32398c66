"""The inbox's live Pending feed (`/inbox/events`, Server-Sent Events) on a real HTTP server:
it lists only what the reader may read, ends at sign-out, and ends cleanly when the database
goes away. (The test client waits for a whole response, so a stream needs uvicorn.)"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent_orchestrator.app import create_app
from shared.lib.executors.fake import FakeExecutor
from tests.helpers import KEYS, auth
from tests.integration.inbox_support import csrf_of, inbox_settings
from tests.integration.test_request_gate import block_database
from tests.testbed.live_app import served
from tests.testbed.postgres import PostgresServer

# Longer than one poll of the feed (1 s), shorter than its keep-alive ping (15 s): a stream
# that neither sends nor ends within it fails the test instead of hanging it.
READ_TIMEOUT_S = 8.0


@contextmanager
def live_inbox(database_url: str, tmp_path: Path) -> Iterator[str]:
    fakes = {kind: FakeExecutor(kind=kind) for kind in ("docker", "ssh", "http")}
    settings = inbox_settings(database_url, tmp_path, DB_POOL_TIMEOUT_S=1)
    with served(create_app(settings, executors=fakes)) as base_url:
        yield base_url


@contextmanager
def signed_in(base_url: str, who: str) -> Iterator[httpx.Client]:
    timeout = httpx.Timeout(30, read=READ_TIMEOUT_S)
    with httpx.Client(base_url=base_url, timeout=timeout) as client:
        token = csrf_of(client.get("/inbox").text)
        signed = client.post("/inbox/login", data={"csrf_token": token, "api_key": KEYS[who]})
        assert signed.status_code == 303, signed.text
        yield client


def paused(base_url: str, text: str, who: str) -> str:
    started = httpx.post(
        f"{base_url}/orchestrate", json={"request": text}, headers=auth(who), timeout=30
    )
    assert started.status_code == 201, started.text
    body: dict[str, Any] = started.json()
    assert body["status"] == "awaiting_approval", body
    return str(body["approval_id"])


def first_event(lines: Iterator[str]) -> str:
    """The data of the stream's first `pending` event (its data lines, joined)."""
    event, data = None, []
    for line in lines:
        if line.startswith("event:"):
            event = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data.append(line.removeprefix("data:"))
        elif not line and event == "pending" and data:
            return "\n".join(data)
        elif not line:
            event, data = None, []
    raise AssertionError("the stream ended before its first event")


def test_the_feed_lists_only_the_readers_own_and_ends_at_sign_out(
    database_url: str, tmp_path: Path
) -> None:
    """An operator's feed listed everyone's requests, and kept streaming after sign-out."""
    with live_inbox(database_url, tmp_path) as base_url:
        theirs = paused(base_url, "restart web on prod", "bob")
        own = paused(base_url, "restart orders-db on prod", "alice")
        with signed_in(base_url, "alice") as alice:
            token = csrf_of(alice.get("/inbox/pending").text)
            with alice.stream("GET", "/inbox/events") as events:
                assert events.status_code == 200
                lines = events.iter_lines()
                data = first_event(lines)
                assert own in data and theirs not in data
                out = alice.post("/inbox/logout", data={"csrf_token": token})
                assert out.status_code == 303
                rest = list(lines)  # ReadTimeout if the stream goes on
            assert not any(line.startswith("data:") for line in rest), rest


def test_a_database_outage_ends_the_feed_cleanly(
    database_url: str,
    tmp_path: Path,
    postgres_server: PostgresServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A database outage under an open stream was a traceback ('response already started')."""
    caplog.set_level(logging.INFO)
    with live_inbox(database_url, tmp_path) as base_url:
        approval_id = paused(base_url, "restart web on prod", "alice")
        with signed_in(base_url, "bob") as bob:
            with bob.stream("GET", "/inbox/events") as events:
                lines = events.iter_lines()
                assert approval_id in first_event(lines)
                block_database(postgres_server, database_url, blocked=True)
                try:
                    rest = list(lines)  # ends, neither cut short nor hanging
                finally:
                    block_database(postgres_server, database_url, blocked=False)
            assert not any(line.startswith("data:") for line in rest), rest
    messages = [record.getMessage() for record in caplog.records]
    assert messages.count("live pending feed ended: database unavailable") == 1
    request_errors = [  # background work (the sweeper) logs its own failures: not ours
        f"{record.name}: {record.getMessage()}"
        for record in caplog.records
        if record.name.startswith(("agent_orchestrator.access", "agent_orchestrator.inbox"))
        or record.name.startswith(("uvicorn", "sse_starlette"))
        if record.levelno >= logging.ERROR
    ]
    assert not request_errors
