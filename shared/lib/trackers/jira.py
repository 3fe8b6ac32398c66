"""Jira Cloud through the `jira` package (REST v3, so text goes as Atlassian Document Format);
its blocking calls run in a worker thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from jira import JIRA, JIRAError

from shared.lib.trackers.config import JiraTracker
from shared.lib.trackers.protocol import IssueRef, TrackerUnavailableError, failure_for

T = TypeVar("T")


def document(text: str) -> dict[str, Any]:
    """Plain text as an ADF document: one paragraph per line."""
    paragraphs = [
        {"type": "paragraph", "content": [{"type": "text", "text": line}]}
        for line in text.splitlines()
        if line.strip()
    ]
    return {"type": "doc", "version": 1, "content": paragraphs}


class JiraIssues:
    name = "jira"

    def __init__(self, spec: JiraTracker, *, token: str, timeout_s: float) -> None:
        self._spec = spec
        self._token = token
        self._timeout_s = timeout_s
        self._client: JIRA | None = None

    def _jira(self) -> JIRA:
        if self._client is None:
            self._client = JIRA(
                server=self._spec.server,
                basic_auth=(self._spec.email, self._token),
                options={"rest_api_version": "3"},
                get_server_info=False,
                max_retries=0,
                timeout=self._timeout_s,
            )
        return self._client

    async def open_issue(self, *, title: str, body: str) -> IssueRef:
        def create() -> IssueRef:
            fields = {
                "project": {"key": self._spec.project_key},
                "issuetype": {"name": self._spec.issue_type},
                "summary": title[:250],
                "description": document(body),
            }
            issue = self._jira().create_issue(fields=fields, prefetch=False)
            key = str(issue.raw["key"])
            return IssueRef(key=key, url=f"{self._spec.server.rstrip('/')}/browse/{key}")

        return await self._call(create)

    async def comment(self, ref: IssueRef, *, body: str) -> None:
        await self._call(lambda: self._jira().add_comment(ref.key, document(body)))

    async def close(self, ref: IssueRef, *, body: str) -> None:
        def close() -> None:
            self._jira().add_comment(ref.key, document(body))
            self._jira().transition_issue(ref.key, self._spec.done_transition)

        await self._call(close)

    async def aclose(self) -> None:
        if self._client is not None:
            await asyncio.to_thread(self._client.close)

    async def _call(self, work: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(work)
        except JIRAError as error:
            raise failure_for(
                error.status_code, f"Jira answered {error.status_code}: {error.text}"
            ) from None
        except requests.RequestException as error:
            raise TrackerUnavailableError(f"Jira unreachable: {type(error).__name__}") from None
