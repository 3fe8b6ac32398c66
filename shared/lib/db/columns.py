"""Column lists for the rows a store reads, named from the model that holds them.

A query names its columns instead of `*`: a statement the pool has prepared keeps its result
type when another replica's migration adds a column ("cached plan must not change result
type" otherwise, docs/upstream-limits.md), and a row carries only what its model reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import LiteralString

from psycopg import sql
from pydantic import BaseModel


def columns(model: type[BaseModel], *, alias: str = "", omit: Iterable[str] = ()) -> str:
    """`model`'s fields as a comma-separated column list, each prefixed by `alias.` when given;
    `omit` names fields that are not columns of the table (computed by the query or added
    after it)."""
    left_out = set(omit)
    unknown = left_out - set(model.model_fields)
    if unknown:
        raise ValueError(f"{model.__name__} has no fields {sorted(unknown)}")
    prefix = f"{alias}." if alias else ""
    return ", ".join(f"{prefix}{name}" for name in model.model_fields if name not in left_out)


def with_columns(template: LiteralString, **lists: str) -> str:
    """`template` with each `{name}` replaced by the column list given for it; built once, at
    import, so a query stays a plain string (`{{` and `}}` stand for literal braces)."""
    parts = {name: sql.SQL(columns_) for name, columns_ in lists.items()}
    return sql.SQL(template).format(**parts).as_string()
