"""JSON and JSONB values through the pool's connections (orjson, `shared/lib/db/jsonb.py`): what
Postgres stores and what comes back are what the json module made of them, including the values
orjson refuses."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Json, Jsonb

from shared.lib.db.pool import Pool
from tests.integration.pool_support import pool_with_table

VALUES: list[Any] = [
    {"plan": {"steps": [{"operation": "restart", "params": {}}]}, "n": 3, "ok": True, "x": None},
    {"big": 2**70, "negative": -(2**65)},  # past 64 bits: orjson refuses them
    {7: "seven", 2.5: "two and a half", None: "none", True: "yes"},  # keys that are not strings
    ["é", "☃", "\u0000 is not allowed in jsonb", 1.5e300],
]


DOCS = "CREATE TABLE docs (n int PRIMARY KEY, b jsonb, j json)"


@pytest.fixture
async def pool(empty_database_url: str) -> AsyncIterator[Pool]:
    async with pool_with_table(empty_database_url, DOCS) as pool:
        yield pool


def _stored(url: str) -> list[tuple[Any, Any]]:
    """What Postgres holds, read as text by a plain connection (the json module's parse)."""
    with psycopg.connect(url) as other:
        rows = other.execute("SELECT b::text, j::text FROM docs ORDER BY n").fetchall()
    return [(json.loads(b) if b else None, json.loads(j)) for b, j in rows]


async def test_values_are_stored_and_read_back_as_the_json_module_makes_them(
    pool: Pool, empty_database_url: str
) -> None:
    expected = [json.loads(json.dumps(value)) for value in VALUES]
    async with pool.connection() as conn:
        for n, value in enumerate(VALUES):
            jsonb = None if n == 3 else Jsonb(value)  # a NUL character is refused by jsonb only
            await conn.execute("INSERT INTO docs VALUES (%s, %s, %s)", (n, jsonb, Json(value)))
        read = await (await conn.execute("SELECT b, j FROM docs ORDER BY n")).fetchall()
    assert [row["j"] for row in read] == expected
    assert [row["b"] for row in read] == [*expected[:3], None]
    assert _stored(empty_database_url) == [(e, e) for e in expected[:3]] + [(None, expected[3])]
