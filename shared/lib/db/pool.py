"""The one async connection pool a process uses (checkpointer, approvals, ledger, chat)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from psycopg import AsyncConnection, Error, pq
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

Pool = AsyncConnectionPool[AsyncConnection[DictRow]]
PREPARE_AFTER = 5  # psycopg's default prepare_threshold
CONNECT_TIMEOUT_S = 5  # the first connection: a wrong URL is reported at once, not after 30 s
_PASSWORD_PARAM = re.compile(r"(password=)([^&]*)", re.IGNORECASE)


class DatabaseConnectionError(Exception):
    """The database a URL names cannot be reached, or refuses the connection."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        for secret in _passwords(url):  # libpq may quote a token it could not parse
            reason = reason.replace(secret, "***")
        self.reason = reason
        super().__init__(f"cannot connect to {mask_password(url)}: {reason}")

    def describe(self, variable: str) -> str:
        """One line for a person: the variable, the URL (password masked), why, what to do."""
        return f"{variable}: {self}; {self.fix(variable)}"

    def fix(self, variable: str) -> str:
        reason = self.reason.lower()
        if re.search(r'database ".*" does not exist', reason):
            return f"create that database, or correct the name at the end of {variable}"
        if any(word in reason for word in ("password", "authentication", "role", "pg_hba")):
            return f"correct the user or password in {variable}, or let that role connect"
        return (
            f"check that Postgres runs at the host and port in {variable} and is reachable "
            "from here (firewall, DNS, TLS)"
        )


def mask_password(url: str) -> str:
    """`url` with its password, in the user part or a `password=` parameter, as `***`."""
    scheme, _, rest = url.partition("://")
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
    tail = rest[len(netloc) :]
    user, at, hosts = netloc.rpartition("@")
    if at and ":" in user:
        netloc = f"{user.split(':', 1)[0]}:***@{hosts}"
    tail = _PASSWORD_PARAM.sub(r"\1***", tail)
    return f"{scheme}://{netloc}{tail}"


def _passwords(url: str) -> list[str]:
    user = urlsplit(url).netloc.rpartition("@")[0]
    found = [user.split(":", 1)[1]] if ":" in user else []
    found += [match[2] for match in _PASSWORD_PARAM.finditer(urlsplit(url).query)]
    return [secret for secret in found if len(secret) >= 3]  # shorter would garble the text


async def check_connection(url: str, *, timeout_s: int = CONNECT_TIMEOUT_S) -> None:
    """Connect once and hang up, or raise DatabaseConnectionError saying why."""
    try:
        conn = await AsyncConnection.connect(url, connect_timeout=timeout_s)
    except Error as error:
        reason = " ".join(str(error).split()).removeprefix("connection failed: ")
        raise DatabaseConnectionError(url, reason or type(error).__name__) from None
    await conn.close()


async def open_pool(
    url: str,
    *,
    max_size: int = 20,
    name: str = "devops-agent",
    timeout_s: float = 30.0,
    prepare: bool = True,
) -> Pool:
    """Open a pool whose connections suit both our queries and LangGraph's saver.

    The Postgres saver needs autocommit and dict rows, so every connection is configured that
    way. With `prepare` (DB_PREPARED_STATEMENTS) a query is prepared on a connection after
    psycopg's default of `PREPARE_AFTER` runs there: Postgres then skips parsing and planning
    it (a third of its CPU per workflow, docs/benchmarks.md). Queries name their columns
    (`columns.py`): a prepared `SELECT *` would fail once another session's migration adds one.
    Transaction poolers may not carry prepared statements (docs/upstream-limits.md).
    `timeout_s` bounds the wait for a connection, so a database outage answers fast. A URL
    that cannot connect at all (no such database, host or port, a wrong password) raises
    DatabaseConnectionError within `CONNECT_TIMEOUT_S` rather than the pool's 30 s timeout.
    """
    await check_connection(url)
    pool: Pool = AsyncConnectionPool(
        url,
        min_size=1,
        max_size=max_size,
        name=name,
        timeout=timeout_s,
        open=False,
        kwargs={
            "autocommit": True,
            "prepare_threshold": PREPARE_AFTER if prepare else None,
            "row_factory": dict_row,
        },
        connection_class=AsyncConnection[DictRow],
    )
    await pool.open(wait=True, timeout=30)
    return pool


@asynccontextmanager
async def implicit_transaction(pool: Pool) -> AsyncIterator[AsyncConnection[DictRow]]:
    """A pooled connection whose statements form one transaction with no BEGIN or COMMIT
    statement: in pipeline mode they run in Postgres's implicit transaction, which only the
    Sync sent as the block ends commits: two statements fewer than `conn.transaction()`, and
    one round trip fewer outside a pipeline (BEGIN's).

    Fetching a result sends a flush, not a Sync, so each statement runs in order, with its own
    snapshot, after the locks the ones before it took, as in an explicit transaction; a
    statement whose result is not fetched is sent with the next fetch or the Sync, and its
    error, if any, is raised there. An exception in the block rolls everything back (a
    ROLLBACK ahead of the Sync), and a process killed inside it leaves nothing: the server
    never sees the Sync. Not for blocks that read `rowcount` without fetching or nest
    `transaction()`."""
    async with pool.connection() as conn, conn.pipeline():
        try:
            yield conn
        except BaseException:
            if conn.pgconn.pipeline_status != pq.PipelineStatus.ABORTED:  # else the Sync ends it
                await conn.execute("ROLLBACK")
            raise
