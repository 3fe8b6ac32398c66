"""How the pool's connections turn JSON and JSONB values into text and back: orjson, with the
json module for what orjson refuses, so every value converts as it did with the json module
alone (psycopg's default), several times faster on the checkpoints and records each workflow
writes and reads (docs/benchmarks.md)."""

from __future__ import annotations

import json
from typing import Any

import orjson
from psycopg import AsyncConnection
from psycopg.types.json import set_json_dumps, set_json_loads


def dumps(value: Any) -> bytes | str:
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError: integers past 64 bits, keys that are not strings
        return json.dumps(value)


def loads(data: str | bytes) -> Any:
    try:
        return orjson.loads(data)
    except ValueError:  # orjson.JSONDecodeError: integers past 64 bits
        return json.loads(data)


async def use_fast_json(conn: AsyncConnection[Any]) -> None:
    """The pool's `configure`: this connection's JSON and JSONB values go through `dumps` and
    `loads`."""
    set_json_dumps(dumps, conn)
    set_json_loads(loads, conn)
