"""The agent's own database endpoints, as its self-protection sees them: a server by host and
port, the embedded server by its socket directory and port."""

from __future__ import annotations

import pytest

from shared.lib.config import database_endpoints


@pytest.mark.parametrize(
    ("url", "endpoints"),
    [
        ("postgresql://postgres@127.0.0.1:5432/postgres", {"127.0.0.1:5432"}),
        ("postgresql://agent:secret@db.internal/agent", {"db.internal:5432"}),
        ("postgresql://postgres:@/t_1?host=/tmp/pg-x/pgdata", {"/tmp/pg-x/pgdata:5432"}),
        ("postgresql://u@/agent?host=/run/postgresql&port=5433", {"/run/postgresql:5433"}),
        ("postgresql://u@h1:5433,h2:5434/agent", {"h1:5433", "h2:5434"}),
        ("postgresql://u@h1,h2:6000/agent", {"h1:5432", "h2:6000"}),
        ("postgresql://u@[::1]:5432/agent", {"[::1]:5432"}),
        ("postgresql:///agent", set()),
    ],
    ids=["server", "default-port", "embedded", "socket-port", "hosts", "one-port", "ipv6", "none"],
)
def test_database_endpoints(url: str, endpoints: set[str]) -> None:
    assert database_endpoints(url) == endpoints
