"""A small typed client for the agent's REST API, used by the CLI (and handy in scripts).

Every failure (a refusal, an unreachable service, a reply that is not JSON) becomes an
`ApiError` whose message a person can act on; no httpx exception leaks out.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT_S = 30.0
PAGE_SIZE = 500  # approvals per request when listing; the service allows up to 1000

JsonObject = dict[str, Any]


class ClientConfigError(Exception):
    """The client cannot be built: no API key, or a URL that is not http(s)."""


class ApiError(Exception):
    """The service refused a request, could not be reached, or answered nonsense."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class AgentClient:
    """One connection pool to the service, authenticated with one API key."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = _checked_url(base_url)
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {_checked_key(api_key)}"},
            timeout=timeout_s,
            transport=transport,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def pending_approvals(
        self,
        *,
        role: str | None = None,
        risk_level: str | None = None,
        page_size: int = PAGE_SIZE,
    ) -> list[JsonObject]:
        """Every pending approval (GET /approvals/pending, page after page by the
        `X-Next-Cursor` header), oldest first, optionally for one role or one risk level."""
        params: dict[str, str | int] = {
            k: v for k, v in {"role": role, "risk_level": risk_level}.items() if v
        }
        params["limit"] = page_size
        found: list[JsonObject] = []
        seen: set[str] = set()
        while True:
            response = self._send("GET", "/approvals/pending", params=params)
            found += self._checked_list("GET", "/approvals/pending", _json(response))
            cursor = response.headers.get("X-Next-Cursor")
            if not cursor:
                return found
            if cursor in seen:
                raise ApiError(f"GET /approvals/pending: the service repeated cursor {cursor!r}")
            seen.add(cursor)
            params["after"] = cursor

    def approval(self, approval_id: str) -> JsonObject:
        return self._object("GET", f"/approvals/{_segment(approval_id)}")

    def approve(
        self, approval_id: str, *, reason: str | None = None, plan_hash: str | None = None
    ) -> JsonObject:
        body = {k: v for k, v in {"reason": reason, "plan_hash": plan_hash}.items() if v}
        return self._object("POST", f"/approve/{_segment(approval_id)}", json=body)

    def reject(self, approval_id: str, *, reason: str) -> JsonObject:
        return self._object("POST", f"/reject/{_segment(approval_id)}", json={"reason": reason})

    def expire_approvals(self) -> JsonObject:
        """POST /approvals/expire: resolve approvals past their TTL now (ops-lead or admin)."""
        return self._object("POST", "/approvals/expire")

    def workflow(self, workflow_id: str) -> JsonObject:
        return self._object("GET", f"/workflows/{_segment(workflow_id)}")

    def my_workflows(self, *, limit: int = 20) -> list[JsonObject]:
        """GET /workflows: the caller's own most recent workflows."""
        return self._list("GET", "/workflows", params={"limit": limit})

    def me(self) -> JsonObject:
        """GET /me: the principal this key belongs to, and where approvals are decided."""
        return self._object("GET", "/me")

    def catalog(self) -> JsonObject:
        return self._object("GET", "/catalog")

    def targets(self) -> list[JsonObject]:
        return self._list("GET", "/targets")

    def start_workflow(self, body: JsonObject) -> JsonObject:
        """POST /orchestrate with plain text (`request`) or one structured operation."""
        return self._object("POST", "/orchestrate", json=body)

    def status(self) -> JsonObject:
        """GET /status: every component's state, latency and last error."""
        return self._object("GET", "/status")

    def _object(self, method: str, path: str, **kwargs: Any) -> JsonObject:
        reply = self._request(method, path, **kwargs)
        if not isinstance(reply, dict):
            raise ApiError(f"{method} {path}: expected a JSON object, got {type(reply).__name__}")
        return reply

    def _list(self, method: str, path: str, **kwargs: Any) -> list[JsonObject]:
        return self._checked_list(method, path, self._request(method, path, **kwargs))

    @staticmethod
    def _checked_list(method: str, path: str, reply: Any) -> list[JsonObject]:
        if not isinstance(reply, list):
            raise ApiError(f"{method} {path}: expected a JSON list, got {type(reply).__name__}")
        return reply

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        return _json(self._send(method, path, **kwargs))

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The service's successful reply; anything else becomes an ApiError."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise ApiError(
                f"{method} {path}: no answer from {self.base_url} within "
                f"{self._http.timeout.read}s; is the service overloaded or stuck?"
            ) from None
        except httpx.TransportError as error:
            raise ApiError(
                f"cannot reach the service at {self.base_url} ({type(error).__name__}: {error}); "
                "start it with 'devops-agent serve' or point --url / AGENT_URL at it"
            ) from None
        if response.is_error:
            raise ApiError(describe_error(response), status_code=response.status_code)
        return response


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        request = response.request
        raise ApiError(
            f"{request.method} {request.url.path}: {response.status_code} reply is not JSON: "
            f"{_excerpt(response.text)}"
        ) from None


def describe_error(response: httpx.Response) -> str:
    """`403 Forbidden: <the server's detail>`, from any error reply FastAPI can give."""
    return f"{response.status_code} {response.reason_phrase}: {_detail(response)}"


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return _excerpt(response.text) or "(empty reply)"
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):  # FastAPI's request validation errors
        return "; ".join(_validation_problem(item) for item in detail)
    return _excerpt(str(detail))


def _validation_problem(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    location = ".".join(str(part) for part in item.get("loc", []) if part != "body")
    message = str(item.get("msg", item))
    return f"{location}: {message}" if location else message


def _excerpt(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def _segment(identifier: str) -> str:
    """An id as one path segment: `../x` or `a/b` cannot reach another endpoint."""
    return quote(identifier, safe="")


def _checked_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ClientConfigError(
            f"service URL {url!r} is not http(s); use e.g. --url {DEFAULT_URL} (or AGENT_URL)"
        )
    try:
        host = httpx.URL(url).host
    except httpx.InvalidURL as error:
        raise ClientConfigError(
            f"service URL {url!r} (--url or AGENT_URL) is not a valid URL: {error}; use e.g. "
            f"--url {DEFAULT_URL}"
        ) from None
    if not host:
        raise ClientConfigError(
            f"service URL {url!r} (--url or AGENT_URL) names no host; use e.g. --url {DEFAULT_URL}"
        )
    return url


def _checked_key(key: str | None) -> str:
    if key is None or not key.strip():
        raise ClientConfigError(
            "no API key; pass --api-key or set AGENT_API_KEY (keys are listed, hashed, in "
            "config/hitl/principals.yml)"
        )
    key = key.strip()
    if not (key.isascii() and key.isprintable()):
        raise ClientConfigError(
            "the API key (--api-key or AGENT_API_KEY) holds a character an HTTP header cannot "
            "carry (non-ASCII or a control character); copy the key again, as plain text"
        )
    return key
