"""A local stand-in for an OpenAI-compatible chat-completions API: replies come from a script
(tool calls, plain messages, HTTP errors, delays) and every request it got is kept, so tests
drive the real ChatOpenAI client and assert what the model was sent."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.testbed.loopback_server import LoopbackServer

COMPLETION_PATHS = ("/v1/chat/completions", "/chat/completions")


@dataclass(frozen=True)
class ScriptedCompletion:
    """One scripted answer: an assistant message (tool calls and/or text), or an HTTP error."""

    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    content: str | None = None
    status: int = 200
    error: str | None = None
    delay_s: float = 0.0


class OpenAIStub(LoopbackServer):
    """An HTTP server on 127.0.0.1 (a free port) in a thread. Unscripted requests get a 500."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._script: deque[ScriptedCompletion] = deque()
        self._requests: list[dict[str, Any]] = []
        self._calls = 0
        super().__init__(_handler_for(self), name="openai-stub")

    @property
    def base_url(self) -> str:
        """What LLM_BASE_URL should be: the server's /v1, as OpenAI's own URL has it."""
        return f"{self.url}/v1"

    # -- scripting -------------------------------------------------------------------------

    def reply_tool_call(
        self, name: str, arguments: dict[str, Any] | str, *, delay_s: float = 0.0
    ) -> None:
        """Answer the next request with one call of function `name` (a dict or raw JSON)."""
        raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
        self._push(
            ScriptedCompletion(tool_calls=[{"name": name, "arguments": raw}], delay_s=delay_s)
        )

    def reply_text(self, content: str) -> None:
        """Answer the next request with a plain assistant message and no tool call."""
        self._push(ScriptedCompletion(content=content))

    def reply_error(self, status: int = 500, message: str = "scripted failure") -> None:
        self._push(ScriptedCompletion(status=status, error=message))

    def clear_script(self) -> None:
        """Drop scripted replies not used yet (one evaluation case must not feed the next)."""
        with self._lock:
            self._script.clear()

    def _push(self, completion: ScriptedCompletion) -> None:
        with self._lock:
            self._script.append(completion)

    # -- what happened ---------------------------------------------------------------------

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The JSON bodies received, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def pending(self) -> int:
        """Scripted replies not used yet."""
        with self._lock:
            return len(self._script)

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
        with self._lock:
            self._requests.append(body)
            self._calls += 1
            number = self._calls
            scripted = self._script.popleft() if self._script else None
        if scripted is None:
            return 500, _error("the stub has no scripted reply left"), 0.0
        if scripted.error is not None:
            return scripted.status, _error(scripted.error), scripted.delay_s
        return 200, _completion(scripted, body, number), scripted.delay_s


def _completion(scripted: ScriptedCompletion, body: dict[str, Any], number: int) -> dict[str, Any]:
    tool_calls = [
        {
            "id": f"call_{number}_{index}",
            "type": "function",
            "function": {"name": call["name"], "arguments": call["arguments"]},
        }
        for index, call in enumerate(scripted.tool_calls)
    ]
    message: dict[str, Any] = {"role": "assistant", "content": scripted.content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": f"chatcmpl-stub-{number}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "stub"),
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if tool_calls else "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _error(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "stub_error", "code": None}}


@contextmanager
def openai_stub() -> Iterator[OpenAIStub]:
    with OpenAIStub() as stub:
        yield stub


def _handler_for(stub: OpenAIStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = self.path.split("?", 1)[0]
            if path not in COMPLETION_PATHS:
                self._reply(404, _error(f"no route {path}; use /v1/chat/completions"))
                return
            try:
                request = json.loads(body or b"{}")
            except json.JSONDecodeError as error:
                self._reply(400, _error(f"body is not JSON: {error}"))
                return
            if request.get("stream"):
                self._reply(400, _error("the stub does not stream; send stream=false"))
                return
            status, payload, delay_s = stub.answer(request)
            if delay_s:
                time.sleep(delay_s)
            self._reply(status, payload)

        def _reply(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                return  # the client gave up (a timeout test); nothing to tell it

        def log_message(self, format: str, *args: Any) -> None:
            return  # keep test output quiet

    return Handler
