"""LangGraph's Postgres checkpointer without its instance-wide lock when it runs on a pool, and
without reading a thread's latest checkpoint twice when a run starts.

`AsyncPostgresSaver` wraps every query in one `asyncio.Lock` per instance (langgraph issue
#7259), so a saver on a pool still runs one checkpoint query at a time. The lock is needed for a
single shared connection, not for a pool: each query borrows its own connection. See
docs/upstream-limits.md for the evidence; drop that part once upstream ships the fix (#7269).

Its writes and reads (de)serialize inline rather than in a worker thread (`asyncio.to_thread`
upstream): a few hundred bytes of msgpack take microseconds, while each hop to a thread cost
the event loop its GIL under load (docs/upstream-limits.md).

A run's driver re-reads the thread's checkpoint under the thread's lock before it runs (what
interrupt is pending, is the run finished), and LangGraph then reads the same checkpoint again
as the run starts. Within `reusing_latest_read()` the second read is served from the first
one's row (or its absence, for a thread never checkpointed): nobody else writes the thread while
its lock is held, and the row is decoded again, so the two readers share no mutable object.

Within `task_writes_sent_with_checkpoints()` a task's ordinary writes travel with the checkpoint
that follows them: held in memory, then sent ahead of it in one pipeline and one round trip,
each write committed by a Sync of its own before the checkpoint's statement runs, so what
Postgres holds goes through the same states in the same order, only the writes land later.
Nothing runs in between: with `durability="sync"` the next step starts once that checkpoint is
saved, so a process that dies first reruns the task, as it would have a moment earlier. Writes
to a special channel (an interrupt, an error, a resume) are sent at once, with any held.
"""

from __future__ import annotations

import asyncio
import copy
import functools
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any, Literal, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.types import _DeltaSnapshot
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from shared.lib.db.pool import Pool

_READING = object()  # a read of the latest checkpoint is under way: keep its row
_NONE_YET = object()  # the read under way found no checkpoint: the next read is answered so
_SERVED = object()  # the kept answer was used once: later reads go to Postgres
# A checkpoint and the blobs it introduces in one statement (upstream: two, in a pipeline). The
# blobs' INSERT runs as a data-modifying CTE, so both land or neither does. Rows are spelled
# out as VALUES, one statement text per row count (see `_values`), not passed as arrays.
_CHECKPOINT_SQL = """
    INSERT INTO checkpoints
        (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata)
    VALUES (%(thread_id)s, %(checkpoint_ns)s, %(checkpoint_id)s, %(parent_id)s,
            %(checkpoint)s, %(metadata)s)
    ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id)
    DO UPDATE SET checkpoint = EXCLUDED.checkpoint, metadata = EXCLUDED.metadata
"""
_BLOBS_CTE = """
    WITH blobs AS (
        INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob)
        VALUES {rows}
        ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING
    )
"""
_BLOB_ROW = ("thread_id", "checkpoint_ns", "channel_{i}", "version_{i}", "type_{i}", "blob_{i}")
# A task's writes in one statement (upstream: one INSERT per write, `executemany` in a
# pipeline). On a conflict the special channels (errors, interrupts, resumes) replace what was
# there, other writes keep the first; see `aput_writes`.
_WRITES_SQL = """
    INSERT INTO checkpoint_writes
        (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, blob)
    VALUES {rows}
    ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO {on_conflict}
"""
_WRITE_ROW = (
    *("thread_id", "checkpoint_ns", "checkpoint_id", "task_id", "task_path"),
    *("idx_{i}", "channel_{i}", "type_{i}", "blob_{i}"),
)
_REPLACE = "UPDATE SET channel = EXCLUDED.channel, type = EXCLUDED.type, blob = EXCLUDED.blob"


@functools.cache
def _values(row: tuple[str, ...], count: int) -> str:
    """`count` VALUES rows of `row`'s named parameters ({i}: the row's number). One statement
    text per count, each prepared once: psycopg adapts a list parameter in Python on every
    execute (4.9 % of the service's CPU when these rows went as arrays: docs/upstream-limits.md)."""
    rows = ("(" + ", ".join(f"%({name})s" for name in row) + ")" for _ in range(count))
    return ", ".join(text.format(i=i) for i, text in enumerate(rows))


@functools.cache
def _checkpoint_sql(blobs: int) -> str:
    return (_BLOBS_CTE.format(rows=_values(_BLOB_ROW, blobs)) if blobs else "") + _CHECKPOINT_SQL


@functools.cache
def _writes_sql(writes: int, *, replace: bool) -> str:
    on_conflict = _REPLACE if replace else "NOTHING"
    return _WRITES_SQL.format(rows=_values(_WRITE_ROW, writes), on_conflict=on_conflict)


def _numbered(**columns: Sequence[Any]) -> dict[str, Any]:
    """{"channel": ["a", "b"]} -> {"channel_0": "a", "channel_1": "b"}, for `_values` rows."""
    return {
        f"{name}_{i}": value for name, values in columns.items() for i, value in enumerate(values)
    }


_LATEST_READS: ContextVar[dict[tuple[str, str], Any] | None] = ContextVar(
    "latest_checkpoint_reads", default=None
)
Statement = tuple[str, dict[str, Any]]
_HELD_WRITES: ContextVar[dict[tuple[str, str], list[Statement]] | None] = ContextVar(
    "held_task_writes", default=None
)


@contextmanager
def reusing_latest_read() -> Iterator[None]:
    """For a caller that holds the thread's lock: within this block, the first read of a
    thread's latest checkpoint goes to Postgres and the next one is served from its row, once."""
    token = _LATEST_READS.set({})
    try:
        yield
    finally:
        _LATEST_READS.reset(token)


@asynccontextmanager
async def task_writes_sent_with_checkpoints(saver: object) -> AsyncIterator[None]:
    """For one run on a `PooledPostgresSaver` (else nothing): its tasks' ordinary writes go
    with the next checkpoint (see the module). Writes still held when the run returns are sent
    then; after an exception they are dropped, as a process dying there would lose them."""
    if not isinstance(saver, PooledPostgresSaver):
        yield
        return
    held: dict[tuple[str, str], list[Statement]] = {}
    token = _HELD_WRITES.set(held)
    try:
        yield
        for key in list(held):
            await saver._send(key, None)
    finally:
        _HELD_WRITES.reset(token)


class _NoLock(asyncio.Lock):
    """Stands in for the saver's lock: acquiring it never waits (each query has its own
    connection, so there is nothing to serialize)."""

    async def acquire(self) -> Literal[True]:
        return True

    def release(self) -> None:
        return None


class PooledPostgresSaver(AsyncPostgresSaver):
    """An `AsyncPostgresSaver` whose checkpoint queries run concurrently, one pool connection
    each; concurrency is bounded by the pool's `max_size`, not by a lock. A drop-in for
    `AsyncPostgresSaver(conn=pool)`."""

    def __init__(self, conn: Pool, *, serde: SerializerProtocol | None = None) -> None:
        if not isinstance(conn, AsyncConnectionPool):
            raise TypeError(
                f"PooledPostgresSaver needs an AsyncConnectionPool, not {type(conn).__name__}; "
                "for one shared connection use AsyncPostgresSaver, whose lock keeps it safe"
            )
        super().__init__(conn=conn, serde=serde)
        self.lock = _NoLock()

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        reads = _LATEST_READS.get()
        if reads is None or get_checkpoint_id(config):
            return await super().aget_tuple(config)
        configurable = config["configurable"]
        key = (str(configurable["thread_id"]), str(configurable.get("checkpoint_ns", "")))
        kept = reads.get(key)
        if isinstance(kept, dict):
            reads[key] = _SERVED
            return await self._load_checkpoint_tuple(kept)
        if kept is _NONE_YET:
            reads[key] = _SERVED
            return None
        if kept is _SERVED:
            return await super().aget_tuple(config)
        reads[key] = _READING
        try:
            found = await super().aget_tuple(config)
        except BaseException:
            reads[key] = _SERVED
            raise
        if found is None and reads.get(key) is _READING:
            # A new thread: the run's own first read is answered "none" without a query. Only
            # the block's first read is kept, so a read after the run's writes is never stale.
            reads[key] = _NONE_YET
        return found

    async def latest_pointer(self, thread_id: str) -> tuple[str | None, dict[str, Any]]:
        """The id and metadata of the thread's latest checkpoint (None, {} before the first),
        without loading its values and pending writes as `aget_tuple` does."""
        async with self._cursor() as cur:
            await cur.execute(
                "SELECT checkpoint_id, metadata FROM checkpoints"
                " WHERE thread_id = %s AND checkpoint_ns = ''"
                " ORDER BY checkpoint_id DESC LIMIT 1",
                (thread_id,),
            )
            row = await cur.fetchone()
        return (row["checkpoint_id"], row["metadata"] or {}) if row else (None, {})

    async def _load_checkpoint_tuple(self, value: Any) -> CheckpointTuple:
        """Upstream's, with the pending writes decoded inline (langgraph-checkpoint-postgres
        3.2.0, `aio.py`); keeps the row of a latest read under way (see the module)."""
        reads = _LATEST_READS.get()
        if reads is not None:
            key = (str(value["thread_id"]), str(value["checkpoint_ns"]))
            if reads.get(key) is _READING:
                # The JSON columns are decoded to dicts that readers may change; keep copies.
                reads[key] = {
                    **value,
                    "checkpoint": copy.deepcopy(value["checkpoint"]),
                    "metadata": copy.deepcopy(value["metadata"]),
                }
        thread = {"thread_id": value["thread_id"], "checkpoint_ns": value["checkpoint_ns"]}
        parent = value["parent_checkpoint_id"]
        inline = value["checkpoint"].get("channel_values") or {}
        checkpoint = cast(
            Checkpoint,
            {
                **value["checkpoint"],
                "channel_values": {**inline, **self._load_blobs(value["channel_values"])},
            },
        )
        return CheckpointTuple(
            {"configurable": {**thread, "checkpoint_id": value["checkpoint_id"]}},
            checkpoint,
            value["metadata"],
            {"configurable": {**thread, "checkpoint_id": parent}} if parent else None,
            self._load_writes(value["pending_writes"]),
        )

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Upstream's (3.2.0, `aio.py`) in one statement, its blobs encoded inline: primitive
        channel values stay in the checkpoint's JSON, the others go to `checkpoint_blobs`."""
        configurable = config["configurable"]
        thread_id, checkpoint_ns = configurable["thread_id"], configurable["checkpoint_ns"]
        inline = dict(checkpoint["channel_values"])
        blob_values: dict[str, Any] = {}
        for name, value in checkpoint["channel_values"].items():
            if isinstance(value, _DeltaSnapshot):
                blob_values[name] = inline.pop(name)
                inline[name] = True
            elif not (value is None or isinstance(value, str | int | float | bool)):
                blob_values[name] = inline.pop(name)
        versions = {k: v for k, v in new_versions.items() if k in blob_values}
        blobs = self._dump_blobs(thread_id, checkpoint_ns, blob_values, versions)
        await self._send(
            (thread_id, checkpoint_ns),
            (
                _checkpoint_sql(len(blobs)),
                {
                    "thread_id": thread_id,
                    "checkpoint_ns": checkpoint_ns,
                    "checkpoint_id": checkpoint["id"],
                    "parent_id": configurable.get("checkpoint_id"),
                    "checkpoint": Jsonb({**checkpoint, "channel_values": inline}),
                    "metadata": Jsonb(get_serializable_checkpoint_metadata(config, metadata)),
                    **_numbered(
                        channel=[blob[2] for blob in blobs],
                        version=[blob[3] for blob in blobs],
                        type=[blob[4] for blob in blobs],
                        blob=[blob[5] for blob in blobs],
                    ),
                },
            ),
        )
        thread = {"thread_id": thread_id, "checkpoint_ns": checkpoint_ns}
        return {"configurable": {**thread, "checkpoint_id": checkpoint["id"]}}

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Upstream's (3.2.0, `aio.py`) in one statement, the writes encoded inline. Upstream
        upserts row by row, so when every write is to a special channel the last of two with
        the same index wins, and otherwise the first: kept here (one INSERT may not update a
        row twice, so only the last of each index is sent when replacing)."""
        special = [w[0] in WRITES_IDX_MAP for w in writes]
        replace = all(special)
        configurable = config["configurable"]
        rows = self._dump_writes(
            configurable["thread_id"],
            configurable["checkpoint_ns"],
            configurable["checkpoint_id"],
            task_id,
            task_path,
            writes,
        )
        if not rows:
            return  # nothing to write (upstream's executemany of none sends nothing either)
        if replace:
            rows = list({row[5]: row for row in rows}.values())
        statement = (
            _writes_sql(len(rows), replace=replace),
            {
                "thread_id": configurable["thread_id"],
                "checkpoint_ns": configurable["checkpoint_ns"],
                "checkpoint_id": configurable["checkpoint_id"],
                "task_id": task_id,
                "task_path": task_path,
                **_numbered(
                    idx=[row[5] for row in rows],
                    channel=[row[6] for row in rows],
                    type=[row[7] for row in rows],
                    blob=[row[8] for row in rows],
                ),
            },
        )
        key = (str(configurable["thread_id"]), str(configurable["checkpoint_ns"]))
        held = _HELD_WRITES.get()
        if held is not None and not any(special):
            held.setdefault(key, []).append(statement)  # sent with the next checkpoint
            return
        await self._send(key, statement)

    async def _send(self, key: tuple[str, str], statement: Statement | None) -> None:
        """The thread's held writes, then `statement`, in one round trip: a Sync after each
        write commits it before the next statement runs (psycopg has no public call to queue a
        Sync without waiting for it: docs/upstream-limits.md)."""
        held = _HELD_WRITES.get()
        queued = held.pop(key, []) if held is not None else []
        if not queued:
            if statement is not None:
                async with self._cursor() as cur:
                    await cur.execute(*statement)
            return
        async with (
            self._cursor() as cur,
            cur.connection.pipeline() as pipeline,
        ):
            for write in queued:
                await cur.execute(*write)
                pipeline._enqueue_sync()  # private in psycopg 3.3: the pinned version has it
            if statement is not None:
                await cur.execute(*statement)
