"""A local stand-in for the LangSmith API: answers every GET with `{}` and records the runs that
tracing posts to it (multipart, batch or single), so tests can assert on names and metadata."""

from __future__ import annotations

import gzip
import io
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler
from typing import Any

import zstandard

from tests.testbed.loopback_server import LoopbackServer

RunDict = dict[str, Any]


class LangSmithCapture(LoopbackServer):
    """An HTTP server on 127.0.0.1 (a free port) in a thread; `runs()` is what it was sent."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._operations: list[tuple[str, RunDict]] = []  # ("post" | "patch", run fields)
        self.requests: list[tuple[str, str]] = []
        self.errors: list[str] = []
        super().__init__(_handler_for(self), name="langsmith-capture")

    def runs(self) -> dict[str, RunDict]:
        """Every run received, by id: its post merged with later patches (metadata unioned)."""
        with self._lock:
            operations = list(self._operations)
        merged: dict[str, RunDict] = {}
        for kind, fields in sorted(operations, key=lambda op: op[0] != "post"):
            run_id = str(fields.get("id"))
            run = merged.setdefault(run_id, {"id": run_id})
            for key, value in fields.items():
                if key == "extra" and isinstance(value, dict):
                    extra = run.setdefault("extra", {})
                    metadata = {**extra.get("metadata", {}), **value.get("metadata", {})}
                    extra.update(value)
                    extra["metadata"] = metadata
                elif value is not None or key not in run:
                    run[key] = value
            run.setdefault("_operations", []).append(kind)
        return merged

    def named(self, name: str) -> list[RunDict]:
        return [run for run in self.runs().values() if run.get("name") == name]

    def record(self, kind: str, fields: RunDict) -> None:
        with self._lock:
            self._operations.append((kind, fields))

    def handle_post(self, path: str, headers: Any, body: bytes) -> None:
        body = _decompressed(body, headers.get("Content-Encoding", ""))
        content_type = headers.get("Content-Type", "")
        if path.endswith("/runs/multipart"):
            for kind, fields in _multipart_operations(content_type, body):
                self.record(kind, fields)
        elif path.endswith("/runs/batch"):
            batch = json.loads(body or b"{}")
            for kind in ("post", "patch"):
                for fields in batch.get(kind) or []:
                    self.record(kind, fields)
        elif path.endswith("/runs"):
            self.record("post", json.loads(body))

    def handle_patch(self, path: str, headers: Any, body: bytes) -> None:
        # The legacy update: PATCH /runs/{id} with the changed fields.
        prefix, _, run_id = path.rpartition("/")
        if prefix.endswith("/runs") and run_id:
            fields = json.loads(_decompressed(body, headers.get("Content-Encoding", "")))
            self.record("patch", {**fields, "id": run_id})


@contextmanager
def langsmith_capture() -> Iterator[LangSmithCapture]:
    with LangSmithCapture() as capture:
        yield capture


def _handler_for(capture: LangSmithCapture) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            capture.requests.append(("GET", self.path))
            self._reply(200)

        def do_POST(self) -> None:
            self._receive(capture.handle_post)

        def do_PATCH(self) -> None:
            self._receive(capture.handle_patch)

        def _receive(self, handle: Any) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = self.path.split("?", 1)[0]
            capture.requests.append((self.command, path))
            try:
                handle(path, self.headers, body)
            except Exception as error:  # a body we cannot read is a test failure, not a crash
                capture.errors.append(f"{self.command} {path}: {error!r}")
                self._reply(400)
                return
            self._reply(202 if path.endswith("/runs/multipart") else 200)

        def _reply(self, status: int) -> None:
            payload = b"{}"
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return  # keep test output quiet

    return Handler


def _decompressed(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding == "zstd":
        reader = zstandard.ZstdDecompressor().stream_reader(
            io.BytesIO(body), read_across_frames=True
        )
        return reader.read()
    if encoding == "gzip":
        return gzip.decompress(body)
    return body


def _multipart_operations(content_type: str, body: bytes) -> list[tuple[str, RunDict]]:
    """Parts are named `post.<id>` (the run minus big fields), `post.<id>.<field>` (inputs,
    outputs, extra...) and `attachment.<id>.<name>`; the same with `patch.`."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    by_run: dict[tuple[str, str], RunDict] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        kind, _, rest = name.partition(".")
        if kind not in ("post", "patch"):
            continue  # attachments and feedback are not runs
        run_id, _, field = rest.partition(".")
        raw = part.get_payload(decode=True)
        value = json.loads(raw) if isinstance(raw, bytes) and raw else None
        fields = by_run.setdefault((kind, run_id), {"id": run_id})
        if field:
            fields[field] = value
        elif isinstance(value, dict):
            fields.update(value)
    return [(kind, fields) for (kind, _), fields in by_run.items()]
