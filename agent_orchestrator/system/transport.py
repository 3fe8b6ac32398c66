"""HTTP connections with Nagle's algorithm off, in every worker.

asyncio turns TCP_NODELAY on only for an accepted socket that reports `IPPROTO_TCP`; uvicorn's
multi-worker supervisor binds the listening socket with `proto` 0, so with `AGENT_WORKERS` > 1
each keep-alive response waited for the client's delayed ACK, about 45 ms per request on Linux
(uvicorn issue #3149, docs/upstream-limits.md). This protocol sets the option itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol


class NoDelayH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with TCP_NODELAY set on the connection's socket."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):  # a socket already closing keeps its options
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
