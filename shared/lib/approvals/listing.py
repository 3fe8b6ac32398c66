"""Pages of pending approvals: keyset order `(created_at, id)`, an opaque cursor, and the votes
counted by one grouped join over the page instead of a sub-query per row.

The page is cut first (the partial index `(created_at, id) WHERE status = 'pending'` serves it
in order, so the last page costs what the first does), then its votes are counted in one
aggregate over `approval_actions` restricted to the page's ids.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection, sql
from psycopg.rows import DictRow
from pydantic import BaseModel

from shared.lib.approvals.rows import request_columns
from shared.lib.errors import InvalidRequestError

# Offset paging re-reads every row before the page; past this, use the cursor.
MAX_OFFSET = 10_000

# What a list shows; the item route (GET /approvals/{id}) has the rest.
_SUMMARY_COLUMNS = """r.id, r.workflow_id, r.status, r.risk_level, r.required_approvals,
       r.allowed_roles, r.requester, r.plan_hash, r.round, r.created_at, r.expires_at,
       (SELECT coalesce(array_agg(concat_ws(' ', s->>'operation', s->>'target')), '{}')
          FROM jsonb_array_elements(r.plan) s) AS steps"""

_RECORD_COLUMNS = request_columns("r")

_PAGE = sql.SQL("""
WITH page AS (
  SELECT {columns} FROM approval_requests r WHERE {where}
   ORDER BY r.created_at, r.id LIMIT %s OFFSET %s
), votes AS (
  SELECT a.approval_id, count(*) AS n FROM approval_actions a
   WHERE a.approval_id IN (SELECT id FROM page) AND a.action = 'approve'
   GROUP BY a.approval_id
)
SELECT page.*, coalesce(votes.n, 0) AS approvals_received
  FROM page LEFT JOIN votes ON votes.approval_id = page.id
 ORDER BY page.created_at, page.id""")


class ApprovalSummary(BaseModel):
    """One pending approval as a list shows it: who may decide, the risk, the votes so far,
    and each step as `operation target`."""

    id: UUID
    workflow_id: str
    status: str
    risk_level: str
    required_approvals: int
    approvals_received: int
    allowed_roles: list[str]
    requester: str
    steps: list[str]
    plan_hash: str
    round: int
    created_at: datetime
    expires_at: datetime


Cursor = tuple[datetime, UUID]


def encode_cursor(created_at: datetime, approval_id: UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(approval_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> Cursor:
    """The position a cursor names; a token this service did not hand out is a 422.

    Only what `encode_cursor` writes is read back: a JSON list of two strings, an ISO time
    with its offset and a UUID. Anything else (numbers, nulls, more items, a time without an
    offset) is not a cursor of this service, whatever it decodes to."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        decoded = json.loads(raw)
    except (binascii.Error, ValueError) as bad:  # a JSON or UTF-8 error is a ValueError
        raise _not_a_cursor(token) from bad
    if not (
        isinstance(decoded, list)
        and len(decoded) == 2
        and all(isinstance(part, str) for part in decoded)
    ):
        raise _not_a_cursor(token)
    try:
        created_at, approval_id = datetime.fromisoformat(decoded[0]), UUID(decoded[1])
    except ValueError as bad:
        raise _not_a_cursor(token) from bad
    if created_at.utcoffset() is None:  # every cursor handed out carries its offset
        raise _not_a_cursor(token)
    return created_at, approval_id


def _not_a_cursor(token: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"query field 'after' is not a cursor this service handed out ({token[:40]!r}); "
        "pass the X-Next-Cursor header of the previous page, or leave it out to start "
        "at the oldest"
    )


def pending_query(
    *,
    roles: set[str] | None,
    risk_level: str | None,
    after: Cursor | None,
    summary: bool,
    requester: str | None = None,
) -> tuple[sql.Composed, list[object]]:
    """The page query (its last two parameters are LIMIT and OFFSET) and its filter values;
    `requester` keeps only what that principal asked for."""
    clauses = ["r.status = 'pending'", "r.expires_at > now()"]
    args: list[object] = []
    if requester is not None:
        clauses.append("r.requester = %s")
        args.append(requester)
    if roles:
        clauses.append("r.allowed_roles && %s")
        args.append(sorted(roles))
    if risk_level:
        clauses.append("r.risk_level = %s")
        args.append(risk_level)
    if after is not None:
        clauses.append("(r.created_at, r.id) > (%s, %s)")
        args.extend(after)
    query = _PAGE.format(
        columns=sql.SQL(_SUMMARY_COLUMNS if summary else _RECORD_COLUMNS),
        where=sql.SQL(" AND ").join(sql.SQL(clause) for clause in clauses),
    )
    return query, args


async def pending_page(
    conn: AsyncConnection[DictRow],
    *,
    requester: str | None = None,
    roles: set[str] | None,
    risk_level: str | None,
    limit: int,
    offset: int = 0,
    after: Cursor | None = None,
    summary: bool = False,
) -> list[dict[str, Any]]:
    """Rows of one page in `(created_at, id)` order, each with `approvals_received`."""
    query, args = pending_query(
        roles=roles, risk_level=risk_level, after=after, summary=summary, requester=requester
    )
    cursor = await conn.execute(query, [*args, limit, offset])
    return await cursor.fetchall()


# Postgres writes the summary page's JSON itself and sends it as UTF-8 bytes (binary results):
# the service passes them through to the response as they are, with no model per row and no
# decoding and re-encoding of the text; the last row's key becomes the next cursor.
_AS_JSON = sql.SQL("""
SELECT convert_to(coalesce(json_agg(p ORDER BY p.created_at, p.id), '[]')::text, 'UTF8')
         AS items, count(*) AS n,
       (array_agg(p.created_at ORDER BY p.created_at DESC, p.id DESC))[1] AS last_at,
       (array_agg(p.id ORDER BY p.created_at DESC, p.id DESC))[1] AS last_id
  FROM ({page}) p""")


async def pending_summaries_json(
    conn: AsyncConnection[DictRow],
    *,
    requester: str | None = None,
    roles: set[str] | None,
    risk_level: str | None,
    limit: int,
    offset: int = 0,
    after: Cursor | None = None,
) -> tuple[bytes, int, Cursor | None]:
    """One summary page as a JSON array (`ApprovalSummary` fields) in UTF-8, its length, its
    last key."""
    query, args = pending_query(
        roles=roles, risk_level=risk_level, after=after, summary=True, requester=requester
    )
    page = _AS_JSON.format(page=query)
    cursor = await conn.execute(page, [*args, limit, offset], binary=True)
    row = await cursor.fetchone()
    assert row is not None  # an aggregate always answers one row
    last = (row["last_at"], row["last_id"]) if row["n"] else None
    return bytes(row["items"]), row["n"], last
