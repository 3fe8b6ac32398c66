"""A local server speaking the three trackers' wire formats, enough for their real clients:
GitHub REST (PyGithub), Linear GraphQL, Jira REST v3 (the `jira` package). It keeps what it
was told: issues, their comments and whether they are closed."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class FakeIssue:
    key: str
    title: str
    body: Any
    comments: list[Any] = field(default_factory=list)
    closed: bool = False


class TrackerServer:
    def __init__(self, port: int = 0) -> None:
        self.issues: list[FakeIssue] = []
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> TrackerServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def issue(self, key: str) -> FakeIssue:
        return next(i for i in self.issues if i.key == key)

    def _new(self, title: str, body: Any, key: str) -> FakeIssue:
        issue = FakeIssue(key=key, title=title, body=body)
        self.issues.append(issue)
        return issue

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return

            def _answer(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                return json.loads(raw) if raw else {}

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

            def do_PATCH(self) -> None:
                self._route("PATCH")

            def _route(self, method: str) -> None:
                path = self.path.split("?")[0]
                body = self._body() if method != "GET" else {}
                with server._lock:
                    server.requests.append((method, path))
                    status, payload = _dispatch(server, method, path, body, self.headers)
                self._answer(status, payload)

        return Handler


def _github_issue(server: TrackerServer, issue: FakeIssue, repo: str) -> dict[str, Any]:
    number = int(issue.key)
    return {
        "id": 1000 + number,
        "number": number,
        "title": issue.title,
        "body": issue.body,
        "state": "closed" if issue.closed else "open",
        "html_url": f"https://github.example/{repo}/issues/{number}",
        "url": f"{server.url}/repos/{repo}/issues/{number}",
    }


def _dispatch(
    server: TrackerServer, method: str, path: str, body: Any, headers: Any
) -> tuple[int, Any]:
    github = re.fullmatch(r"/repos/([^/]+/[^/]+)/issues(?:/(\d+))?(/comments)?", path)
    if github:
        repo, number, comments = github.groups()
        if method == "POST" and number is None:
            issue = server._new(body["title"], body.get("body"), str(len(server.issues) + 1))
            return 201, _github_issue(server, issue, repo)
        issue = server.issue(number)
        if comments and method == "POST":
            issue.comments.append(body["body"])
            return 201, {"id": len(issue.comments), "body": body["body"]}
        if method == "PATCH":
            issue.closed = body.get("state") == "closed"
        return 200, _github_issue(server, issue, repo)
    if path == "/graphql":
        return 200, _linear(server, body)
    jira = re.fullmatch(r"/rest/api/3/issue(?:/([A-Z]+-\d+))?(/comment|/transitions)?", path)
    if jira:
        key, sub = jira.groups()
        if key is None and method == "POST":
            fields = body["fields"]
            key = f"{fields['project']['key']}-{len(server.issues) + 1}"
            server._new(fields["summary"], fields.get("description"), key)
            return 201, {"id": "100", "key": key, "self": f"{server.url}/rest/api/3/issue/{key}"}
        issue = server.issue(str(key))
        if sub == "/comment":
            issue.comments.append(body["body"])
            return 201, {"id": str(len(issue.comments)), "body": body["body"]}
        if sub == "/transitions" and method == "GET":
            return 200, {"transitions": [{"id": "31", "name": "Done", "to": {"name": "Done"}}]}
        if sub == "/transitions":
            issue.closed = body["transition"]["id"] == "31"
            return 204, {}
        return 200, {"id": "100", "key": issue.key, "fields": {"summary": issue.title}}
    return 404, {"message": f"no route for {method} {path}"}


def _linear(server: TrackerServer, body: dict[str, Any]) -> dict[str, Any]:
    query, variables = body["query"], body.get("variables") or {}
    if "issueCreate" in query:
        data = variables["input"]
        issue = server._new(data["title"], data.get("description"), f"lin-{len(server.issues) + 1}")
        url = f"https://linear.example/issue/{issue.key}"
        return {
            "data": {
                "issueCreate": {
                    "success": True,
                    "issue": {"id": issue.key, "identifier": issue.key.upper(), "url": url},
                }
            }
        }
    if "commentCreate" in query:
        server.issue(variables["input"]["issueId"]).comments.append(variables["input"]["body"])
        return {"data": {"commentCreate": {"success": True}}}
    if "states" in query:
        nodes = [{"id": "st-todo", "type": "unstarted"}, {"id": "st-done", "type": "completed"}]
        return {"data": {"team": {"states": {"nodes": nodes}}}}
    if "issueUpdate" in query:
        server.issue(variables["id"]).closed = variables["input"]["stateId"] == "st-done"
        return {"data": {"issueUpdate": {"success": True}}}
    return {"errors": [{"message": "unknown query"}]}
