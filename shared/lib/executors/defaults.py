"""The executors a process runs operations with: the real ones, or in-memory ones (dry run)."""

from __future__ import annotations

import logging

from shared.lib.execution.protocol import Executor
from shared.lib.executors.docker import DockerExecutor
from shared.lib.executors.fake import FakeExecutor
from shared.lib.executors.http import HttpExecutor
from shared.lib.executors.ssh import SshExecutor
from shared.lib.settings import Settings

log = logging.getLogger(__name__)


def default_executors(settings: Settings) -> dict[str, Executor]:
    if settings.dry_run:
        log.warning("dry run: operations go to in-memory executors; nothing real is touched")
        return {kind: FakeExecutor(kind=kind) for kind in ("docker", "ssh", "http")}
    return {"docker": DockerExecutor(), "ssh": SshExecutor(), "http": HttpExecutor()}
