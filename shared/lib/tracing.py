"""LangSmith tracing through its standard environment variables; flushed on shutdown.

LangGraph traces every node of a run when tracing is on; the workflow engine puts the
workflow id, request id and approval id in each run's metadata so a workflow's traces group.
"""

from __future__ import annotations

import logging
import os

from shared.lib.settings import Settings

log = logging.getLogger(__name__)


def configure_tracing(settings: Settings) -> None:
    """Mirror our settings into the variables LangSmith reads (only those we were given)."""
    if not settings.langsmith_tracing:
        return
    os.environ["LANGSMITH_TRACING"] = "true"
    os.environ.setdefault("LANGSMITH_PROJECT", settings.langsmith_project)
    if settings.langsmith_endpoint:
        os.environ["LANGSMITH_ENDPOINT"] = settings.langsmith_endpoint
    _forget_cached_environment()


def flush_traces() -> None:
    """Wait for queued runs to be sent, so a shutdown does not drop the last traces."""
    try:
        from langchain_core.tracers.langchain import wait_for_all_tracers

        wait_for_all_tracers()
    except Exception:  # tracing must never stop a shutdown
        log.exception("flushing traces failed")


def _forget_cached_environment() -> None:
    # langsmith caches environment lookups; a change made after import must be seen.
    from langsmith import utils

    for cached in (utils.get_env_var, utils.get_tracer_project):
        clear = getattr(cached, "cache_clear", None)
        if clear is not None:
            clear()
