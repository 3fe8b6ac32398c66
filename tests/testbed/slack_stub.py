"""A local stand-in for Slack: the Web API method `views.open` (as slack_sdk's WebClient calls
it) and the `response_url` webhooks a click's answers are posted to; it records every call."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

from tests.testbed.loopback_server import LoopbackServer


@dataclass
class SlackCall:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class SlackStub:
    calls: list[SlackCall] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                body = _decode(raw, self.headers.get("Content-Type", ""))
                with stub._lock:
                    stub.calls.append(SlackCall(self.path, dict(self.headers), body))
                if self.path.startswith("/api/"):
                    reply = stub._api(self.path.removeprefix("/api/"), body, self.headers)
                    self._answer(200, json.dumps(reply).encode(), "application/json")
                else:  # response_url: Slack answers a plain "ok"
                    self._answer(200, b"ok", "text/plain")

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = LoopbackServer(Handler, name="slack-stub")

    def _api(self, method: str, body: dict[str, Any], headers: Any) -> dict[str, Any]:
        if headers.get("Authorization") != "Bearer xoxb-test-token":
            return {"ok": False, "error": "invalid_auth"}
        if method == "views.open":
            if not body.get("trigger_id"):
                return {"ok": False, "error": "invalid_trigger_id"}
            return {"ok": True, "view": {"id": "V0TEST", **body.get("view", {})}}
        return {"ok": False, "error": "unknown_method"}

    @property
    def api_url(self) -> str:
        return self._server.url + "/api/"

    def response_url(self, name: str) -> str:
        return f"{self._server.url}/response/{name}"

    def posted(self, path_prefix: str) -> list[SlackCall]:
        with self._lock:
            return [call for call in self.calls if call.path.startswith(path_prefix)]

    def __enter__(self) -> SlackStub:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()


def _decode(raw: bytes, content_type: str) -> dict[str, Any]:
    if "application/json" in content_type:
        body: dict[str, Any] = json.loads(raw or b"{}")
        return body
    form = {key: values[0] for key, values in parse_qs(raw.decode()).items()}
    for key in ("view",):
        if key in form:
            form[key] = json.loads(form[key])
    return form
