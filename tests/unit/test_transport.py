"""With several workers uvicorn binds the listening socket itself (proto 0), and the stock asyncio
loop then leaves Nagle's algorithm on; uvloop (what `serve` runs on) turns it off, and so does the
service's HTTP protocol on every connection, whichever loop runs it."""

from __future__ import annotations

import asyncio
import socket

import pytest
import uvloop
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from agent_orchestrator.system.transport import NoDelayHttpToolsProtocol

DEADLINE_S = 10.0


async def _app(scope: object, receive: object, send: object) -> None:  # never called
    raise AssertionError("no request is sent")


async def _nodelay_of_accepted(protocol: type[HttpToolsProtocol]) -> int:
    config = Config(_app, host="127.0.0.1", port=0, http=protocol, log_config=None)
    listener = config.bind_socket()  # what the multi-worker supervisor hands each worker
    state, connected = ServerState(), asyncio.Event()

    def accept() -> HttpToolsProtocol:
        made = protocol(config=config, server_state=state, app_state={})
        made.connection_made = lambda transport: (  # type: ignore[method-assign]
            protocol.connection_made(made, transport),
            connected.set(),
        )
        return made

    server = await asyncio.get_running_loop().create_server(accept, sock=listener)
    try:
        _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
        await asyncio.wait_for(connected.wait(), timeout=DEADLINE_S)
        (accepted,) = state.connections
        sock = accepted.transport.get_extra_info("socket")  # type: ignore[union-attr]
        nodelay = int(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()
        return nodelay
    finally:
        server.close()


@pytest.mark.parametrize(
    ("protocol", "expected"), [(HttpToolsProtocol, 0), (NoDelayHttpToolsProtocol, 1)]
)
async def test_a_connection_on_a_worker_socket_has_nagle_off_only_with_our_protocol(
    protocol: type[HttpToolsProtocol], expected: int
) -> None:
    """The stock protocol row documents the upstream limit (uvicorn #3149): if it ever reads 1,
    uvicorn fixed it and `NoDelayHttpToolsProtocol` can go."""
    assert await _nodelay_of_accepted(protocol) == expected


@pytest.mark.parametrize("protocol", [HttpToolsProtocol, NoDelayHttpToolsProtocol])
def test_on_uvloop_every_connection_has_nagle_off(protocol: type[HttpToolsProtocol]) -> None:
    assert uvloop.run(_nodelay_of_accepted(protocol)) == 1
