"""What "it" and "them" mean after a message about several targets.

The planners know one last target. After "show logs of web and api", "restart it" could mean
either: the planner is told of no last target, and when it asks which target, the question
names the ones the conversation was about. "Restart them (both)" means all of them: the
message goes to the planner with their names in place of "them", and the plan must cover
every one of them, or the user is asked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from shared.lib.chat.models import Mention, SessionContext
from shared.lib.planning.conversation import ConversationContext, Proposal
from shared.lib.planning.models import PlannedOperation

_SINGULAR = re.compile(
    r"\b(?:it|its|it's|that|this|that one|this one|the same|same one|the service|"
    r"that service|again)\b",
    re.IGNORECASE,
)
_PLURAL = re.compile(
    r"\b(?:(?:all|both|each)\s+of\s+)?(?:them|those|these)(?:\s+(?:both|all|two|three))?\b"
    r"|\bboth\b|\bthey\b",
    re.IGNORECASE,
)
_BACK = re.compile(rf"{_SINGULAR.pattern}|{_PLURAL.pattern}|\btheir\b", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9][a-z0-9._-]*")


@dataclass(frozen=True)
class Reading:
    """A message as the planner is given it, with what the conversation was about."""

    text: str
    context: ConversationContext
    several: list[Mention] = field(default_factory=list)
    """The targets the last plan named, when it named more than one."""
    all_of_them: bool = False
    """Whether "them" was replaced by the names of `several`."""


def read(message: str, context: SessionContext) -> Reading:
    several = context.last_targets if len(context.last_targets) > 1 else []
    if not several:
        return Reading(
            message,
            ConversationContext(
                last_target=context.last_target, last_environment=context.last_environment
            ),
        )
    environments = {mention.environment for mention in several}
    # No one last target, and no one last environment when they were in several.
    planner_context = ConversationContext(
        last_environment=context.last_environment if len(environments) == 1 else None
    )
    words = set(_WORD.findall(message.lower()))
    if (
        _PLURAL.search(message)
        and not _SINGULAR.search(message)
        and len(environments) == 1
        and not words & {mention.target.lower() for mention in several}
    ):
        names = _joined([mention.target for mention in several], "and")
        text = _PLURAL.sub(names, message)
        return Reading(text, planner_context, several, all_of_them=True)
    return Reading(message, planner_context, several)


def question(reading: Reading, proposal: Proposal) -> str | None:
    """What to ask instead of going ahead, when the message points back at several targets
    and the plan does not say which (or, for "them", does not cover them all)."""
    if not reading.several:
        return None
    wanted = {(mention.target, mention.environment) for mention in reading.several}
    if reading.all_of_them:
        planned = {(step.target, step.environment) for step in proposal.steps}
        return None if not proposal.steps or wanted <= planned else _which(reading.several)
    names = {mention.target for mention in reading.several}
    # The planner's question is which target (its candidates are targets, not environments).
    asks_for_a_target = proposal.intent == "clarify" and bool(names & set(proposal.candidates))
    if not proposal.steps and asks_for_a_target and _BACK.search(reading.text):
        return _which(reading.several)
    return None


def candidates(reading: Reading) -> list[str]:
    return list(dict.fromkeys(mention.target for mention in reading.several))


def remember(context: SessionContext, steps: list[PlannedOperation]) -> None:
    """What the next message may point back at: the last step's target, and every target."""
    context.last_target, context.last_environment = steps[-1].target, steps[-1].environment
    mentions = [Mention(target=step.target, environment=step.environment) for step in steps]
    context.last_targets = list(dict.fromkeys(mentions))


def _which(several: list[Mention]) -> str:
    environments = {mention.environment for mention in several}
    if len(environments) == 1 and None not in environments:
        names = _joined([mention.target for mention in several], "or")
        everything = "both" if len(several) == 2 else "all of them"
        return (
            f"That could mean {names} (in {several[0].environment}); which one? Name it, or "
            f"say '{everything}' to mean all of them. Nothing was run."
        )
    names = _joined([mention.text for mention in several], "or")
    return f"That could mean {names}; which one? Name it with its environment. Nothing was run."


def _joined(names: list[str], word: str) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {word} {names[-1]}"
