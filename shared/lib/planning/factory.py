"""The planner a process plans with: the LLM one when an endpoint is configured."""

from __future__ import annotations

import logging

from shared.lib.config import AgentConfig
from shared.lib.planning.conversation import ConversationPlanner, OfflineConversationPlanner
from shared.lib.planning.llm_reads import Reader
from shared.lib.settings import Settings

log = logging.getLogger(__name__)


def conversation_planner(
    settings: Settings, config: AgentConfig, *, reader: Reader | None = None
) -> ConversationPlanner:
    """The LLM planner when an endpoint is configured, else the offline one (its fallback)."""
    offline = OfflineConversationPlanner(
        catalog=config.catalog,
        resolver=config.targets,
        vocabulary=config.vocabulary,
        commands=config.commands,
    )
    if not settings.llm_configured:
        return offline
    log.info("planning with an LLM", extra={"model": settings.llm_model})
    # Imported here: the OpenAI client takes about a second to import, and start-up pays it
    # only when an endpoint is configured.
    from shared.lib.planning.llm import LlmPlanner

    return LlmPlanner.from_settings(
        settings,
        catalog=config.catalog,
        resolver=config.targets,
        fallback=offline,
        reader=reader,
    )
