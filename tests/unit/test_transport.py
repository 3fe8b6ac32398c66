"""With several workers uvicorn binds the listening socket itself (proto 0), and asyncio then
leaves Nagle's algorithm on; the service's HTTP protocol turns it off on every connection."""

from __future__ import annotations

import asyncio
import socket

import pytest
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from agent_orchestrator.system.transport import NoDelayH11Protocol

DEADLINE_S = 10.0


async def _app(scope: object, receive: object, send: object) -> None:  # never called
    raise AssertionError("no request is sent")


async def _nodelay_of_accepted(protocol: type[H11Protocol]) -> int:
    config = Config(_app, host="127.0.0.1", port=0, http=protocol, log_config=None)
    listener = config.bind_socket()  # what the multi-worker supervisor hands each worker
    state, connected = ServerState(), asyncio.Event()

    def accept() -> H11Protocol:
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


@pytest.mark.parametrize(("protocol", "expected"), [(H11Protocol, 0), (NoDelayH11Protocol, 1)])
async def test_a_connection_on_a_worker_socket_has_nagle_off_only_with_our_protocol(
    protocol: type[H11Protocol], expected: int
) -> None:
    """The stock protocol row documents the upstream limit (uvicorn #3149): if it ever reads 1,
    uvicorn fixed it and `NoDelayH11Protocol` can go."""
    assert await _nodelay_of_accepted(protocol) == expected
