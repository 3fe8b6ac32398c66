"""Every query of ours names its columns: a prepared statement that read `*` would fail once
another replica's migration adds a column (docs/upstream-limits.md); the check runs on the
string constants of the product's source and on the column lists built from the row models."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from shared.lib.db.columns import columns, with_columns

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("agent_orchestrator", "graphs", "shared")
STAR = re.compile(
    r"\b(?:SELECT|RETURNING|DISTINCT ON \([^)]*\))\s+\*|,\s*\*\s*(?:,|FROM)|\b\w+\.\*"
)
SQL = re.compile(r"^\s*(?:SELECT|INSERT|UPDATE|DELETE|WITH)\b|\b(?:FROM|RETURNING)\b")
# A star over a CTE of the same query whose own columns are named.
OVER_NAMED_CTE = {("shared/lib/approvals/listing.py", "page.*")}


def _star_projections() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = str(path.relative_to(ROOT))
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and SQL.search(node.value)
                ):
                    for match in STAR.finditer(node.value):
                        if (relative, match.group(0)) not in OVER_NAMED_CTE:
                            found.append((relative, match.group(0)))
    return found


def test_no_query_in_the_product_reads_star() -> None:
    assert _star_projections() == []


def test_the_scan_finds_star_projections() -> None:
    assert not SQL.search("a regular expression: because.*$")
    for query in (
        "SELECT * FROM workflows",
        "UPDATE t SET a = 1 RETURNING *",
        "SELECT r.*, 1 FROM r",
        "SELECT DISTINCT ON (a.f) * FROM a",
    ):
        assert SQL.search(query), query
        assert STAR.search(query), query
    assert not STAR.search("SELECT count(*) AS n FROM workflows")


class _Row(BaseModel):
    id: int
    status: str
    votes: int = 0


def test_a_column_list_names_the_model_fields_in_order() -> None:
    assert columns(_Row) == "id, status, votes"
    assert columns(_Row, alias="r", omit=("votes",)) == "r.id, r.status"
    assert (
        with_columns("SELECT {row} FROM t WHERE id = %s", row=columns(_Row, omit=["votes"]))
        == "SELECT id, status FROM t WHERE id = %s"
    )


def test_omitting_a_field_the_model_lacks_is_an_error() -> None:
    with pytest.raises(ValueError, match="no fields \\['vote'\\]"):
        columns(_Row, omit=("vote",))
