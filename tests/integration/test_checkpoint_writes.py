"""A task's ordinary writes travel with the checkpoint after them
(`task_writes_sent_with_checkpoints`): held until it, committed before it runs, stored as
before; writes to a special channel go at once; what a run leaves held goes when it returns and
is dropped when it raises, as a process dying there would lose it."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from langgraph.checkpoint.base import CheckpointTuple
from langgraph.types import Command

from shared.lib.db.checkpointer import PooledPostgresSaver, task_writes_sent_with_checkpoints
from shared.lib.db.database import Database
from shared.lib.db.pool import Pool
from tests.helpers import wait_for
from tests.integration.checkpointer_support import gate_graph, new_thread, stored_writes
from tests.integration.crash_support import checkpoints_held, threads_with_write
from tests.integration.durability_support import query

ERROR, INTERRUPT = "__error__", "__interrupt__"


@pytest.fixture
def pool(database: Database) -> Pool:
    return database.pool


def _rows_of(writes: list[tuple[Any, ...]], task_id: str) -> list[tuple[Any, ...]]:
    return [row for row in writes if row[0] == task_id]


async def _paused(pool: Pool) -> tuple[PooledPostgresSaver, CheckpointTuple]:
    saver, config = PooledPostgresSaver(pool), new_thread()
    await gate_graph().compile(checkpointer=saver).ainvoke({}, config, durability="sync")
    latest = await saver.aget_tuple(config)
    assert latest is not None
    return saver, latest


async def test_a_run_stores_the_same_writes_and_state_as_without_the_block(pool: Pool) -> None:
    stored = []
    for held in (True, False):
        saver, config = PooledPostgresSaver(pool), new_thread()
        graph = gate_graph().compile(checkpointer=saver)
        for run_input in ({}, Command(resume={"outcome": "approved"})):
            if held:
                async with task_writes_sent_with_checkpoints(saver):
                    await graph.ainvoke(run_input, config, durability="sync")
            else:
                await graph.ainvoke(run_input, config, durability="sync")
        rows = await stored_writes(pool, config["configurable"]["thread_id"])
        # Task ids differ between threads, and so do the interrupts' ids in their values.
        stored.append(sorted((*row[1:5], None if row[3] == INTERRUPT else row[5]) for row in rows))
        assert (await graph.aget_state(config)).values["ran"] is True
    assert stored[0] == stored[1]
    assert any(row[2] == INTERRUPT for row in stored[0])


async def test_held_writes_go_with_the_next_checkpoint_special_ones_at_once(pool: Pool) -> None:
    saver, latest = await _paused(pool)
    thread_id = latest.config["configurable"]["thread_id"]
    async with task_writes_sent_with_checkpoints(saver):
        await saver.aput_writes(latest.config, [("plan", "b")], task_id="task-1")
        assert _rows_of(await stored_writes(pool, thread_id), "task-1") == []  # held
        await saver.aput_writes(latest.config, [(INTERRUPT, "stop")], task_id="task-2")
        sent = await stored_writes(pool, thread_id)
        assert [row[3] for row in _rows_of(sent, "task-1") + _rows_of(sent, "task-2")] == [
            "plan",
            INTERRUPT,
        ]  # the special write at once, the held one ahead of it

        await saver.aput_writes(latest.config, [("plan", "c"), (ERROR, "e")], task_id="task-6")
        sent = await stored_writes(pool, thread_id)
        assert {row[3] for row in _rows_of(sent, "task-6")} == {"plan", ERROR}  # one is enough

        await saver.aput_writes(latest.config, [("ran", True)], task_id="task-3")
        assert _rows_of(await stored_writes(pool, thread_id), "task-3") == []
        newer = {**latest.checkpoint, "id": "f" + latest.checkpoint["id"][1:]}
        await saver.aput(latest.config, newer, latest.metadata, {})  # type: ignore[arg-type]
        assert [row[3] for row in _rows_of(await stored_writes(pool, thread_id), "task-3")] == [
            "ran"
        ]
        newest = await saver.aget_tuple(new_thread() | {"configurable": {"thread_id": thread_id}})
        assert newest is not None and newest.checkpoint["id"] == newer["id"]


async def test_writes_left_held_go_when_the_run_returns_and_are_dropped_when_it_raises(
    pool: Pool,
) -> None:
    saver, latest = await _paused(pool)
    thread_id = latest.config["configurable"]["thread_id"]
    async with task_writes_sent_with_checkpoints(saver):
        await saver.aput_writes(latest.config, [("plan", "left")], task_id="task-4")
    assert [row[3] for row in _rows_of(await stored_writes(pool, thread_id), "task-4")] == ["plan"]
    with pytest.raises(RuntimeError, match="the run failed"):
        async with task_writes_sent_with_checkpoints(saver):
            await saver.aput_writes(latest.config, [("plan", "lost")], task_id="task-5")
            raise RuntimeError("the run failed")
    assert _rows_of(await stored_writes(pool, thread_id), "task-5") == []


async def test_a_tasks_writes_are_committed_while_the_checkpoint_after_them_waits(
    database: Database, database_url: str
) -> None:
    """The boundary the crash test kills at: the writes saved, the next checkpoint not yet.
    The crash test's hold keeps back the checkpoint after `plan` (the first carrying its
    channel); ending it ends the waiting session, as Postgres does for a killed process."""
    saver, config = PooledPostgresSaver(database.pool), new_thread()
    thread_id = config["configurable"]["thread_id"]
    graph = gate_graph().compile(checkpointer=saver)

    async def run() -> dict[str, Any]:
        async with task_writes_sent_with_checkpoints(saver):
            return await graph.ainvoke({}, config, durability="sync")

    with checkpoints_held(database_url, "plan"):
        running = asyncio.create_task(run())
        await asyncio.to_thread(
            wait_for,
            lambda: threads_with_write(database_url, [thread_id], "plan"),
            until=bool,
            what="plan's writes saved",
        )
        assert not running.done()  # its checkpoint waits on the hold
    with pytest.raises(psycopg.OperationalError):
        await asyncio.wait_for(running, timeout=30)
    carrying = query(
        database_url,
        "SELECT count(*) AS n FROM checkpoints WHERE thread_id = %s"
        " AND checkpoint->'channel_versions' ? 'plan'",
        (thread_id,),
    )
    assert carrying == [{"n": 0}]
    assert threads_with_write(database_url, [thread_id], "plan") == {thread_id}
