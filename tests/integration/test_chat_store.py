"""ChatStore on real Postgres: sessions belong to their principal, messages come back in the
order they were written, `last` keeps the newest ones, and context round-trips."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from shared.lib.chat.store import ChatStore
from shared.lib.db.database import Database
from shared.lib.errors import NotFoundError


@pytest.fixture
def store(database: Database) -> ChatStore:
    return ChatStore(database.pool)


async def test_a_session_is_found_by_its_principal_only(store: ChatStore) -> None:
    opened = await store.create_session(principal="alice")
    found = await store.session(session_id=opened.id, principal="alice")
    assert (found.id, found.principal, found.context) == (opened.id, "alice", {})
    with pytest.raises(NotFoundError, match=f"chat session '{opened.id}' not found for 'bob'"):
        await store.session(session_id=opened.id, principal="bob")
    with pytest.raises(NotFoundError, match="leave out session_id"):
        await store.session(session_id=uuid.uuid4(), principal="alice")


async def test_messages_round_trip_in_the_order_written(store: ChatStore) -> None:
    session = await store.create_session(principal="alice")
    approval_id = uuid.uuid4()
    written = [
        await store.add_message(session_id=session.id, role="user", content="restart web on dev"),
        await store.add_message(
            session_id=session.id,
            role="assistant",
            content="restart of dev/web needs an approval",
            workflow_id="wf-123",
            approval_id=approval_id,
        ),
        await store.add_message(session_id=session.id, role="system", content="approved by bob"),
    ]
    read = await store.messages(session_id=session.id)
    assert read == written
    assert [(m.role, m.workflow_id, m.approval_id) for m in read] == [
        ("user", None, None),
        ("assistant", "wf-123", approval_id),
        ("system", None, None),
    ]
    assert [m.id for m in read] == sorted(m.id for m in read)


async def test_last_keeps_the_newest_messages_oldest_first(store: ChatStore) -> None:
    session = await store.create_session(principal="alice")
    for n in range(5):
        await store.add_message(session_id=session.id, role="user", content=f"message {n}")
    last_two = await store.messages(session_id=session.id, last=2)
    assert [m.content for m in last_two] == ["message 3", "message 4"]
    everything = await store.messages(session_id=session.id, last=50)
    assert [m.content for m in everything] == [f"message {n}" for n in range(5)]
    assert await store.messages(session_id=session.id, last=0) == []


async def test_sessions_do_not_share_messages(store: ChatStore) -> None:
    mine = await store.create_session(principal="alice")
    theirs = await store.create_session(principal="carol")
    await store.add_message(session_id=mine.id, role="user", content="mine")
    await store.add_message(session_id=theirs.id, role="user", content="theirs")
    assert [m.content for m in await store.messages(session_id=mine.id)] == ["mine"]
    assert [m.content for m in await store.messages(session_id=theirs.id)] == ["theirs"]
    assert await store.messages(session_id=uuid.uuid4()) == []


async def test_context_round_trips_and_moves_updated_at(store: ChatStore) -> None:
    session = await store.create_session(principal="alice")
    context = {"last_target": "web", "last_environment": "dev", "turns": [1, 2]}
    await store.set_context(session_id=session.id, context=context)
    found = await store.session(session_id=session.id, principal="alice")
    assert found.context == context
    assert found.updated_at >= session.updated_at
    assert found.created_at == session.created_at


async def test_a_message_needs_an_existing_session_and_a_known_role(store: ChatStore) -> None:
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        await store.add_message(session_id=uuid.uuid4(), role="user", content="orphan")
    session = await store.create_session(principal="alice")
    with pytest.raises(psycopg.errors.CheckViolation):
        await store.add_message(session_id=session.id, role="tool", content="x")  # type: ignore[arg-type]
