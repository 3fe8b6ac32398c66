"""Who waits in this process for a workflow's next status change (a long poll), and waking them.

Each wait registers its own event for as long as it waits, so a workflow nobody waits for
anymore leaves nothing behind: a finished workflow's last long poll used to leave its event
in the engine for the life of the process."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager


class StatusChanges:
    def __init__(self) -> None:
        self._waiting: dict[str, set[asyncio.Event]] = {}

    def __len__(self) -> int:
        """How many workflows someone waits for."""
        return len(self._waiting)

    @contextmanager
    def watching(self, workflow_id: str) -> Iterator[asyncio.Event]:
        """An event the workflow's next change sets; forgotten when the block ends. Read the
        workflow inside the block, so a change right after the read is not missed."""
        event = asyncio.Event()
        self._waiting.setdefault(workflow_id, set()).add(event)
        try:
            yield event
        finally:
            events = self._waiting.get(workflow_id)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._waiting[workflow_id]

    def changed(self, workflow_id: str) -> None:
        """Wake everyone waiting for this workflow."""
        for event in self._waiting.pop(workflow_id, set()):
            event.set()
