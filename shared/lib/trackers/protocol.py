"""The one small interface every tracker implements, and the two ways it can fail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class IssueRef:
    key: str
    """The tracker's own handle: an issue number (GitHub), an id (Linear), a key (Jira)."""
    url: str | None = None


class TrackerUnavailableError(Exception):
    """Down, slow, rate limited or failing (5xx): worth trying again later."""


class TrackerRefusedError(Exception):
    """The tracker said no (bad token, unknown project): retrying will not help."""


class IssueTracker(Protocol):
    name: str

    async def open_issue(self, *, title: str, body: str) -> IssueRef: ...

    async def comment(self, ref: IssueRef, *, body: str) -> None: ...

    async def close(self, ref: IssueRef, *, body: str) -> None: ...

    async def aclose(self) -> None: ...


def failure_for(status: int | None, detail: str) -> Exception:
    """A tracker's HTTP answer as one of the two failures."""
    if status is None or status in (408, 425, 429) or status >= 500:
        return TrackerUnavailableError(detail)
    return TrackerRefusedError(detail)
