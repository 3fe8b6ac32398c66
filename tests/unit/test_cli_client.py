"""The REST client turns every failure into one readable message, and the CLI into exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler

import httpx
import pytest
from typer.testing import CliRunner

from agent_orchestrator.cli import app
from agent_orchestrator.cli_commands.workflows import parse_params
from agent_orchestrator.client import AgentClient, ApiError, ClientConfigError
from tests.testbed.loopback_server import LoopbackServer
from tests.testbed.service import free_port

Handler = Callable[[httpx.Request], httpx.Response]
APPROVAL_ID = "2fb613d0-9ff5-56c0-ad26-0f1b5f09e456"


def client_for(handler: Handler, *, api_key: str = "demo-operator-key") -> AgentClient:
    return AgentClient(
        base_url="http://agent.test", api_key=api_key, transport=httpx.MockTransport(handler)
    )


def refusal(error: ApiError | BaseException) -> str:
    assert isinstance(error, ApiError)
    return str(error)


def test_a_refusal_names_the_status_and_the_servers_detail() -> None:
    detail = "'alice' requested this work; someone else must approve it"
    client = client_for(lambda _: httpx.Response(403, json={"detail": detail}))
    with pytest.raises(ApiError) as caught:
        client.approve(APPROVAL_ID, reason="ok")
    assert str(caught.value) == f"403 Forbidden: {detail}"
    assert caught.value.status_code == 403


def test_validation_errors_are_listed_by_field() -> None:
    body = {
        "detail": [
            {"loc": ["path", "approval_id"], "msg": "Input should be a valid UUID", "type": "x"},
            {"loc": ["body", "reason"], "msg": "String should have at least 1 character"},
        ]
    }
    client = client_for(lambda _: httpx.Response(422, json=body))
    with pytest.raises(ApiError) as caught:
        client.reject("nope", reason="x")
    assert str(caught.value) == (
        "422 Unprocessable Entity: path.approval_id: Input should be a valid UUID; "
        "reason: String should have at least 1 character"
    )


def test_a_reply_that_is_not_json_is_quoted_not_parsed() -> None:
    client = client_for(lambda _: httpx.Response(502, text="<html>bad\n gateway</html>"))
    with pytest.raises(ApiError, match=r"^502 Bad Gateway: <html>bad gateway</html>$"):
        client.workflow("wf-1")
    ok_but_html = client_for(lambda _: httpx.Response(200, text="<html>"))
    with pytest.raises(ApiError, match="reply is not JSON"):
        ok_but_html.workflow("wf-1")


def test_an_unreachable_service_says_where_it_looked_and_what_to_do() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    with pytest.raises(ApiError) as caught:
        client_for(refuse).pending_approvals()
    message = str(caught.value)
    assert "cannot reach the service at http://agent.test" in message
    assert "AGENT_URL" in message
    assert caught.value.status_code is None


def test_a_timeout_is_an_api_error() -> None:
    def stall(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(ApiError, match=r"no answer from http://agent\.test"):
        client_for(stall).expire_approvals()


def test_requests_carry_the_key_and_ids_stay_one_path_segment() -> None:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "x"} if request.method == "GET" else [])

    client_for(record, api_key=" demo-approver-key ").approval("../approve/x")
    assert seen[0].headers["Authorization"] == "Bearer demo-approver-key"
    assert seen[0].url.raw_path == b"/approvals/..%2Fapprove%2Fx"


def test_pending_filters_become_query_parameters() -> None:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[])

    assert client_for(record).pending_approvals(role="approver", risk_level="high") == []
    assert dict(seen[0].url.params) == {"role": "approver", "risk_level": "high", "limit": "500"}


def test_pending_approvals_follow_the_next_cursor_to_the_last_page() -> None:
    pending = [{"id": f"a{index:03d}"} for index in range(105)]
    seen: list[dict[str, str]] = []

    def page(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        seen.append(params)
        return keyset_page(pending, params)

    found = client_for(page).pending_approvals(role="approver", page_size=40)
    assert [item["id"] for item in found] == [item["id"] for item in pending]
    assert [p.get("after") for p in seen] == [None, "40", "80"]
    assert all(p["role"] == "approver" and p["limit"] == "40" for p in seen)


def test_a_cursor_the_service_repeats_is_an_error_not_a_loop() -> None:
    def same(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[{"id": "a"}], headers={"X-Next-Cursor": "c"})

    with pytest.raises(ApiError, match="repeated cursor"):
        client_for(same).pending_approvals(page_size=1)


def keyset_page(pending: list[dict[str, str]], params: dict[str, str]) -> httpx.Response:
    """What GET /approvals/pending answers (approvals/routes.py): `limit` rows (100 unless
    given, at most 1000) after the cursor, oldest first; X-Next-Cursor on a full page only."""
    limit = int(params.get("limit", "100"))
    if limit > 1000:
        return httpx.Response(422, json={"detail": "limit: at most 1000"})
    start = int(params.get("after", "0"))
    rows = pending[start : start + limit]
    full = len(rows) == limit
    headers = {"X-Next-Cursor": str(start + limit)} if full else {}
    return httpx.Response(200, json=rows, headers=headers)


@pytest.fixture
def pending_service() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A stand-in service on loopback holding 105 pending approvals."""
    pending = [{"id": f"{index:08d}-0000-4000-8000-000000000000"} for index in range(105)]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = httpx.URL(self.path)
            reply = keyset_page(pending, dict(url.params))
            self.send_response(reply.status_code)
            for name in ("Content-Type", "X-Next-Cursor"):
                if name in reply.headers:
                    self.send_header(name, reply.headers[name])
            self.send_header("Content-Length", str(len(reply.content)))
            self.end_headers()
            self.wfile.write(reply.content)

        def log_message(self, format: str, *args: object) -> None:
            return

    with LoopbackServer(Handler, name="pending-approvals") as server:
        yield server.url, pending


def test_approvals_list_shows_every_pending_approval_not_the_first_page(
    pending_service: tuple[str, list[dict[str, str]]],
) -> None:
    url, pending = pending_service
    as_json = runner.invoke(
        app, ["approvals", "list", "--json", "--url", url, "--api-key", "demo-approver-key"]
    )
    assert as_json.exit_code == 0, as_json.output
    assert [item["id"] for item in json.loads(as_json.stdout)] == [p["id"] for p in pending]
    table = runner.invoke(
        app, ["approvals", "list", "--url", url, "--api-key", "demo-approver-key"]
    )
    assert table.exit_code == 0, table.output
    assert pending[-1]["id"] in table.stdout  # the newest, past the service's first page


@pytest.mark.parametrize(
    ("url", "key", "problem"),
    [
        ("http://127.0.0.1:8080", None, "no API key"),
        ("http://127.0.0.1:8080", "  ", "no API key"),
        ("127.0.0.1:8080", "k", r"is not http\(s\)"),
    ],
)
def test_bad_client_settings_are_refused_up_front(url: str, key: str | None, problem: str) -> None:
    with pytest.raises(ClientConfigError, match=problem):
        AgentClient(base_url=url, api_key=key)


def test_params_are_text_unless_a_json_list() -> None:
    assert parse_params(["tail=50", 'cmd=["ls", "-l"]', "note=a=b"]) == {
        "tail": "50",
        "cmd": ["ls", "-l"],
        "note": "a=b",
    }


runner = CliRunner()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["approvals", "reject", APPROVAL_ID], "--reason"),
        (["approvals", "reject", APPROVAL_ID, "--reason", " "], "--reason"),
        (["approvals", "list", "--risk-level", "huge"], "--risk-level"),
        (["workflows", "start"], "give either TEXT"),
        (["workflows", "start", "restart web", "--operation", "restart"], "give either TEXT"),
        (["workflows", "start", "--operation", "restart"], "--operation needs --target"),
        (["workflows", "start", "x", "--param", "tail=5"], "go with --operation"),
        (["workflows", "start", "--operation", "logs", "--target", "web", "--param", "t"], "k=v"),
        (["approvals", "list"], "no API key"),
        (["approvals", "list", "--api-key", "k", "--url", "ftp://x"], "is not http(s)"),
    ],
)
def test_usage_and_config_errors_exit_2(
    argv: list[str], needle: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AGENT_API_KEY", raising=False)
    monkeypatch.delenv("AGENT_URL", raising=False)
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert needle in " ".join(result.stderr.replace("│", " ").split())  # unwrap Rich's panel
    assert "Traceback" not in result.stderr


def test_an_unreachable_service_exits_1_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("AGENT_API_KEY", "demo-operator-key")
    result = runner.invoke(app, ["workflows", "status", "wf-1", "--url", url])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot reach the service at {url}")
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("argv", "env", "line"),
    [
        (
            ["--url", "http://host:abc", "--api-key", "k"],
            {},
            "error: service URL 'http://host:abc' (--url or AGENT_URL) is not a valid URL: "
            "Invalid port: 'abc'; use e.g. --url http://127.0.0.1:8080",
        ),
        (
            [],
            {"AGENT_URL": "http://:8080", "AGENT_API_KEY": "k"},
            "error: service URL 'http://:8080' (--url or AGENT_URL) names no host; "
            "use e.g. --url http://127.0.0.1:8080",
        ),
        (
            [],
            {"AGENT_API_KEY": "clé-demo"},
            "error: the API key (--api-key or AGENT_API_KEY) holds a character an HTTP header "
            "cannot carry (non-ASCII or a control character); copy the key again, as plain text",
        ),
    ],
)
def test_a_url_or_key_httpx_cannot_use_exits_2_with_one_line(
    argv: list[str], env: dict[str, str], line: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AGENT_API_KEY", raising=False)
    monkeypatch.delenv("AGENT_URL", raising=False)
    result = runner.invoke(app, ["approvals", "list", *argv], env=env)
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.stderr == line + "\n"
    assert result.stdout == ""
