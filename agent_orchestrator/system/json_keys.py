"""JSON objects that give one key twice. The json module keeps the last value and says nothing,
so `{"plan": {...}, "plan": null}` would approve the plan as it stands and
`{"request": "logs of web", "request": "restart web"}` would restart: a body like that is
refused naming the key, wherever it is nested, instead of being read one way or the other."""

from __future__ import annotations

import json
from typing import Any

MAX_PROBLEMS = 10
NESTING_SUSPECT = 500
"""Brackets a body must hold before it is parsed to see whether it nests past the parser's
limit (about 1,000 levels, Python's recursion limit)."""
"""Repeated keys named in one answer; the first ones in the body."""


def unreadable(body: bytes) -> dict[str, Any] | None:
    """A problem in FastAPI's 422 shape (loc ["body"]) when the body cannot be read as JSON at
    all for a reason the parser would only answer with a bare 400: bytes that are not UTF-8,
    or nesting past the parser's limit. Broken syntax is left to the route's own 422."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        return {
            "type": "body_not_utf8",
            "loc": ("body",),
            "msg": f"the body is not UTF-8 (byte 0x{body[error.start]:02x} at offset "
            f"{error.start}); send JSON encoded as UTF-8",
            "input": body[max(0, error.start - 20) : error.start + 20],
        }
    if body.count(b"[") + body.count(b"{") < NESTING_SUSPECT:
        return None  # too few brackets to nest that deep: no second parse
    try:
        json.loads(text)
    except RecursionError:
        return {
            "type": "body_too_deep",
            "loc": ("body",),
            "msg": "the body nests objects or lists deeper than the JSON parser reads; send a "
            "flatter document",
            "input": text[:40],
        }
    except ValueError:
        return None  # broken JSON: the route says where
    return None


class _Repeated(dict[str, Any]):
    """An object that gave some keys more than once: each such key with all its values."""

    repeated: dict[str, list[Any]]


def repeated_keys(body: bytes) -> list[dict[str, Any]]:
    """A problem in FastAPI's 422 shape (loc from "body") for each key an object of the JSON
    `body` gives more than once; none when there is none, or when the body is not JSON at all
    (the route answers that as it always has)."""
    marked: list[_Repeated] = []

    def read_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        found = dict(pairs)
        if len(found) == len(pairs):  # the usual case, at the speed of a plain dict
            return found
        values: dict[str, list[Any]] = {}
        for key, value in pairs:
            values.setdefault(key, []).append(value)
        repeated = _Repeated(found)
        repeated.repeated = {key: given for key, given in values.items() if len(given) > 1}
        marked.append(repeated)
        return repeated

    try:
        document = json.loads(body, object_pairs_hook=read_object)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested past the limit
        return []
    if not marked:
        return []
    problems: list[dict[str, Any]] = []
    # Depth first in the body's order, without recursion: the parser accepted the nesting,
    # and walking it must not be what overflows.
    pending: list[tuple[tuple[str | int, ...], Any]] = [((), document)]
    while pending and len(problems) < MAX_PROBLEMS:
        path, value = pending.pop()
        if isinstance(value, _Repeated):
            problems.extend(_problem(path, key, given) for key, given in value.repeated.items())
        if isinstance(value, dict):
            pending.extend(((*path, key), item) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            pending.extend(((*path, index), value[index]) for index in reversed(range(len(value))))
    return problems[:MAX_PROBLEMS]


def _problem(path: tuple[str | int, ...], key: str, given: list[Any]) -> dict[str, Any]:
    return {
        "type": "duplicate_key",
        "loc": ("body", *path, key),
        "msg": f"key {key!r} is given {len(given)} times in one object, and only one value can "
        "count; send the key once, with the value you mean",
        "input": given,
    }
