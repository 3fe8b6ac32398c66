"""GitHub Issues through PyGithub (REST v3); its blocking calls run in a worker thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

import requests
from github import Auth, Github, GithubException

from shared.lib.trackers.config import GitHubTracker
from shared.lib.trackers.protocol import IssueRef, TrackerUnavailableError, failure_for

T = TypeVar("T")


class GitHubIssues:
    name = "github"

    def __init__(self, spec: GitHubTracker, *, token: str, timeout_s: float) -> None:
        self._spec = spec
        # No retries inside PyGithub: the tracker service retries, and records each failure.
        self._client = Github(
            auth=Auth.Token(token),
            base_url=spec.api_url,
            timeout=int(timeout_s),
            retry=None,
            lazy=True,
        )

    async def open_issue(self, *, title: str, body: str) -> IssueRef:
        def create() -> IssueRef:
            repo = self._client.get_repo(self._spec.repository)
            issue = repo.create_issue(title=title, body=body, labels=list(self._spec.labels))
            return IssueRef(key=str(issue.number), url=issue.html_url)

        return await self._call(create)

    async def comment(self, ref: IssueRef, *, body: str) -> None:
        def add() -> None:
            repo = self._client.get_repo(self._spec.repository)
            repo.get_issue(int(ref.key)).create_comment(body)

        await self._call(add)

    async def close(self, ref: IssueRef, *, body: str) -> None:
        def close() -> None:
            repo = self._client.get_repo(self._spec.repository)
            issue = repo.get_issue(int(ref.key))
            issue.create_comment(body)
            issue.edit(state="closed", state_reason="completed")

        await self._call(close)

    async def aclose(self) -> None:
        await asyncio.to_thread(self._client.close)

    async def _call(self, work: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(work)
        except GithubException as error:
            raise failure_for(
                error.status, f"GitHub answered {error.status}: {error.data}"
            ) from None
        except requests.RequestException as error:
            raise TrackerUnavailableError(f"GitHub unreachable: {type(error).__name__}") from None
