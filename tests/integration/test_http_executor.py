"""The HTTP executor against a real HTTP server on 127.0.0.1, including the conformance suite."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shared.lib.execution.models import ExecutionStatus, OperationCall
from shared.lib.executors.http import HttpExecutor
from shared.lib.targets.models import HttpTarget
from tests.conformance.contract import ConformanceCase, ExecutorContract

BIG_BODY = b"x" * 200_000
TARGET = HttpTarget(name="web", environment="dev")


class _Handler(BaseHTTPRequestHandler):
    release: threading.Event  # set on the server class per fixture

    def do_GET(self) -> None:
        if self.path == "/slow":
            # Held until the module's tests are over: a timeout is the client's only way out.
            self.release.wait(timeout=30)
        routes = {
            "/health": (200, b"ok"),
            "/slow": (200, b"late"),
            "/big": (200, BIG_BODY),
            "/down": (503, b"maintenance"),
            "/moved": (301, b""),
        }
        status, body = routes.get(self.path, (404, b"not found"))
        # The client gives up on /slow after its timeout, as the tests intend.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._reply(status, body)

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        if status == 301:
            self.send_header("Location", "/health")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output clean


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    release = threading.Event()
    handler = type("Handler", (_Handler,), {"release": release})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    release.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def closed_url() -> Iterator[str]:
    # Bound but never listening: connections are refused, and no one else can take the port.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/health"
    sock.close()


@pytest.fixture
async def executor() -> AsyncIterator[HttpExecutor]:
    http = HttpExecutor()
    yield http
    await http.aclose()


def _check(url: str, **params: object) -> OperationCall:
    return OperationCall(operation="http_check", target=TARGET, params={"url": url, **params})


@pytest.fixture
def case(executor: HttpExecutor, base_url: str, closed_url: str) -> ConformanceCase:
    return ConformanceCase(
        executor=executor,
        read_call=_check(f"{base_url}/health"),
        unreachable_call=_check(closed_url),
        big_output_call=_check(f"{base_url}/big").model_copy(update={"output_cap": 1000}),
        slow_call=_check(f"{base_url}/slow", timeout_s=0.3),
        failing_call=_check(f"{base_url}/down"),
    )


class TestHttpConformance(ExecutorContract):
    pass


async def test_ok_carries_status_body_and_invocation(executor: HttpExecutor, base_url: str) -> None:
    result = await executor.execute(_check(f"{base_url}/health"))
    assert result.ok and result.stdout == "ok"
    assert result.data == {
        "url": f"{base_url}/health",
        "status_code": 200,
        "expected_status": 200,
    }
    assert result.invocation.kind == "http"
    assert result.invocation.call == f"GET {base_url}/health"
    assert result.invocation.endpoint == base_url


async def test_unexpected_status_fails_with_the_status(
    executor: HttpExecutor, base_url: str
) -> None:
    result = await executor.execute(_check(f"{base_url}/down"))
    assert result.status is ExecutionStatus.FAILED
    assert result.data["status_code"] == 503 and result.stdout == "maintenance"
    assert result.reason == "expected HTTP 200, got 503"


async def test_expected_status_other_than_200(executor: HttpExecutor, base_url: str) -> None:
    result = await executor.execute(_check(f"{base_url}/down", expected_status=503))
    assert result.ok


async def test_redirects_are_reported_not_followed(executor: HttpExecutor, base_url: str) -> None:
    result = await executor.execute(_check(f"{base_url}/moved"))
    assert result.status is ExecutionStatus.FAILED and result.data["status_code"] == 301


async def test_big_body_is_capped(executor: HttpExecutor, base_url: str) -> None:
    call = _check(f"{base_url}/big").model_copy(update={"output_cap": 4096})
    result = await executor.execute(call)
    assert result.ok and result.truncated and len(result.stdout) == 4096


async def test_call_budget_bounds_a_longer_probe_timeout(
    executor: HttpExecutor, base_url: str
) -> None:
    call = _check(f"{base_url}/slow", timeout_s=30).model_copy(update={"timeout_s": 0.3})
    result = await executor.execute(call)
    assert result.status is ExecutionStatus.TIMEOUT and result.duration_ms < 5000
