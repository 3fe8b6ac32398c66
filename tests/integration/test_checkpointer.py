"""PooledPostgresSaver on real Postgres: a graph pauses and resumes through it, its checkpoint
queries do not wait on one another, and a run's driver and LangGraph read the latest checkpoint
from Postgres once between them."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from langgraph.checkpoint.base import CheckpointTuple
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.types import Command

from shared.lib.db.checkpointer import PooledPostgresSaver, reusing_latest_read
from shared.lib.db.pool import Pool, open_pool
from tests.integration.checkpointer_support import (
    gate_graph,
    new_thread,
    stored_rows,
    stored_writes,
)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[Pool]:
    pool = await open_pool(database_url, max_size=4, name="test-checkpointer")
    await AsyncPostgresSaver(conn=pool).setup()
    yield pool
    await pool.close()


async def test_interrupt_and_resume_round_trip_through_postgres(pool: Pool) -> None:
    config = new_thread()
    graph = gate_graph().compile(checkpointer=PooledPostgresSaver(pool))
    paused = await graph.ainvoke({}, config, durability="sync")
    assert paused["__interrupt__"][0].value == {"plan": "restart web"}

    # A fresh saver and graph, as after a restart: the pause must come from Postgres.
    resumed_graph = gate_graph().compile(checkpointer=PooledPostgresSaver(pool))
    snapshot = await resumed_graph.aget_state(config)
    assert snapshot.next == ("gate",)
    done = await resumed_graph.ainvoke(
        Command(resume={"outcome": "approved"}), config, durability="sync"
    )
    assert done == {
        "plan": "restart web",
        "evidence": {"healthy": False},
        "notes": ["5xx rising"],
        "decision": {"outcome": "approved"},
        "ran": True,
    }
    async with pool.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT count(*) AS n FROM checkpoints WHERE thread_id = %s",
                (config["configurable"]["thread_id"],),
            )
        ).fetchone()
    assert row is not None and row["n"] >= 4


async def test_a_checkpoint_is_stored_as_the_stock_saver_stores_it(pool: Pool) -> None:
    """The one-statement write keeps upstream's layout: primitive values inline in the JSON,
    others (the decision, a dict) as blobs; a stock saver reads ours back."""
    ours, stock = new_thread(), new_thread()
    for saver, config in ((PooledPostgresSaver(pool), ours), (AsyncPostgresSaver(pool), stock)):
        graph = gate_graph().compile(checkpointer=saver)
        await graph.ainvoke({}, config, durability="sync")
        await graph.ainvoke(Command(resume={"outcome": "approved"}), config, durability="sync")
    ours_rows = await stored_rows(pool, ours["configurable"]["thread_id"])
    stock_rows = await stored_rows(pool, stock["configurable"]["thread_id"])
    assert len(ours_rows["checkpoints"]) == len(stock_rows["checkpoints"]) >= 4
    assert [body for body, _ in ours_rows["checkpoints"]] == [
        body for body, _ in stock_rows["checkpoints"]
    ]
    assert ours_rows["blobs"] == stock_rows["blobs"]
    assert {"decision", "evidence", "notes"} <= {channel for channel, _, _ in ours_rows["blobs"]}
    read_back = await gate_graph().compile(checkpointer=AsyncPostgresSaver(pool)).aget_state(ours)
    assert read_back.values == {
        "plan": "restart web",
        "evidence": {"healthy": False},
        "notes": ["5xx rising"],
        "decision": {"outcome": "approved"},
        "ran": True,
    }


# LangGraph's special channels (`WRITES_IDX_MAP`): a write to one replaces, others keep the first.
ERROR, INTERRUPT = "__error__", "__interrupt__"


@pytest.mark.parametrize(
    "batches",
    [
        [[("plan", "a"), ("ran", True)], [("plan", "b")]],  # a repeat keeps the first
        [[(INTERRUPT, "first"), (INTERRUPT, "second")], [(INTERRUPT, "third")]],  # the last
        [[("plan", "a"), (ERROR, "e1"), (ERROR, "e2")]],  # mixed: the first of each index
    ],
)
async def test_a_tasks_writes_are_stored_as_the_stock_saver_stores_them(
    pool: Pool, batches: list[list[tuple[str, Any]]]
) -> None:
    """One statement per task instead of one INSERT per write: the same rows, including
    which of two writes with the same index is kept."""
    stored = []
    for saver in (PooledPostgresSaver(pool), AsyncPostgresSaver(pool)):
        config = new_thread()
        graph = gate_graph().compile(checkpointer=saver)
        await graph.ainvoke({}, config, durability="sync")
        latest = await saver.aget_tuple(config)
        assert latest is not None
        for batch in batches:
            await saver.aput_writes(latest.config, batch, task_id="task-1", task_path="p")
        stored.append(await stored_writes(pool, config["configurable"]["thread_id"]))
    ours, stock = stored
    assert [row for row in ours if row[0] == "task-1"] == [
        row for row in stock if row[0] == "task-1"
    ]
    assert any(row[0] == "task-1" for row in ours)


async def test_a_query_does_not_wait_for_another_in_flight(pool: Pool) -> None:
    # alist() keeps its cursor (and, upstream, the instance lock) while it yields; a read made
    # during that iteration deadlocks the stock saver and must go through on ours.
    saver = PooledPostgresSaver(pool)
    config = new_thread()
    await gate_graph().compile(checkpointer=saver).ainvoke({}, config, durability="sync")
    async for _ in saver.alist(config, limit=1):
        inner = await asyncio.wait_for(saver.aget_tuple(config), timeout=5)
        assert inner is not None


async def test_a_single_connection_is_refused(database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        with pytest.raises(TypeError, match="needs an AsyncConnectionPool"):
            PooledPostgresSaver(conn)  # type: ignore[arg-type]


async def _newer_checkpoint(saver: PooledPostgresSaver, latest: CheckpointTuple) -> str:
    """What another writer would add to the thread: a copy of its latest checkpoint, newer
    (checkpoint ids sort by time; this one sorts after every real one)."""
    newer = {**latest.checkpoint, "id": "f" + latest.checkpoint["id"][1:]}
    written = await saver.aput(latest.config, newer, latest.metadata, {})  # type: ignore[arg-type]
    return str(written["configurable"]["checkpoint_id"])


async def test_within_a_held_thread_the_next_latest_read_is_served_from_the_first(
    pool: Pool,
) -> None:
    saver, config = PooledPostgresSaver(pool), new_thread()
    await gate_graph().compile(checkpointer=saver).ainvoke({}, config, durability="sync")
    with reusing_latest_read():
        first = await saver.aget_tuple(config)
        assert first is not None
        newer = await _newer_checkpoint(saver, first)  # only the thread's lock keeps this out
        second = await saver.aget_tuple(config)
        third = await saver.aget_tuple(config)
    assert second is not None and third is not None
    assert second.config == first.config  # from the first read's row, not Postgres
    assert second.pending_writes == first.pending_writes
    assert third.config["configurable"]["checkpoint_id"] == newer  # once only
    first.checkpoint["channel_versions"]["plan"] = "changed by a reader"
    assert second.checkpoint["channel_versions"]["plan"] != "changed by a reader"


async def test_outside_the_block_every_read_goes_to_postgres(pool: Pool) -> None:
    saver, config = PooledPostgresSaver(pool), new_thread()
    await gate_graph().compile(checkpointer=saver).ainvoke({}, config, durability="sync")
    first = await saver.aget_tuple(config)
    assert first is not None
    newer = await _newer_checkpoint(saver, first)
    latest = await saver.aget_tuple(config)
    assert latest is not None and latest.config["configurable"]["checkpoint_id"] == newer


async def test_a_thread_without_a_checkpoint_keeps_nothing_for_later_reads(pool: Pool) -> None:
    # A new thread: the block's first read finds nothing, the run then writes; a read after
    # that must see the run's checkpoints, and the one after it too.
    saver, config = PooledPostgresSaver(pool), new_thread()
    graph = gate_graph().compile(checkpointer=saver)
    with reusing_latest_read():
        assert await saver.aget_tuple(config) is None
        await graph.ainvoke({}, config, durability="sync")
        after_run = await saver.aget_tuple(config)
        assert after_run is not None
        newer = await _newer_checkpoint(saver, after_run)
        latest = await saver.aget_tuple(config)
    assert latest is not None and latest.config["configurable"]["checkpoint_id"] == newer


async def test_within_a_held_thread_a_first_read_of_nothing_answers_the_next(
    pool: Pool,
) -> None:
    # A run starting a new thread reads it twice (its driver, then LangGraph): one query.
    saver, config = PooledPostgresSaver(pool), new_thread()
    graph = gate_graph().compile(checkpointer=saver)
    with reusing_latest_read():
        assert await saver.aget_tuple(config) is None
        # What only the thread's lock keeps out: another writer, outside this block.
        await asyncio.create_task(
            graph.ainvoke({}, config, durability="sync"), context=contextvars.Context()
        )
        second = await saver.aget_tuple(config)
        third = await saver.aget_tuple(config)
    assert second is None  # answered from the first read, not Postgres
    assert third is not None  # once only
    assert third.checkpoint == (await saver.aget_tuple(config)).checkpoint  # type: ignore[union-attr]


async def test_the_latest_pointer_names_the_checkpoint_the_state_reads(pool: Pool) -> None:
    """A decision records where the thread paused from this light read; it must name the same
    checkpoint (and its metadata) as LangGraph's full state read."""
    saver = PooledPostgresSaver(pool)
    config = new_thread()
    config["metadata"] = {"trace_id": "trace-1"}
    graph = gate_graph().compile(checkpointer=saver)
    assert await saver.latest_pointer(config["configurable"]["thread_id"]) == (None, {})
    await graph.ainvoke({}, config, durability="sync")

    checkpoint_id, metadata = await saver.latest_pointer(config["configurable"]["thread_id"])
    snapshot = await graph.aget_state(config)
    assert checkpoint_id == snapshot.config["configurable"]["checkpoint_id"]
    assert metadata["trace_id"] == "trace-1" == (snapshot.metadata or {})["trace_id"]
    assert metadata["step"] == (snapshot.metadata or {})["step"]
