"""Planning inside a conversation: a chat message plus what was said before becomes a Proposal
(steps to run, or a question back), from the LLM or, without one, the offline planner."""

from __future__ import annotations

import re
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from shared.lib.catalog import Catalog
from shared.lib.commands import CommandPolicy
from shared.lib.planning.errors import ClarificationNeeded, PlanningError, PlanRejected
from shared.lib.planning.models import Plan, PlannedOperation, RequestFlag
from shared.lib.planning.offline import OfflinePlanner
from shared.lib.planning.vocabulary import Vocabulary
from shared.lib.targets import TargetResolver
from shared.lib.workflows.models import WorkRequest

ProposalIntent = Literal["read_only", "action", "question", "clarify", "rejected"]

# Words that point back at what the conversation was about ("now restart it").
_REFERENCE = re.compile(
    r"\b(it|its|that|this|them|the same|same one|the service|that service|again)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[a-z0-9][a-z0-9._-]*")
_ENVIRONMENT_ALIASES = {"production": "prod", "development": "dev"}


class ConversationTurn(BaseModel):
    """One earlier message of the conversation, as the planner sees it."""

    model_config = ConfigDict(frozen=True)

    role: Literal["user", "assistant"]
    content: str


class ConversationContext(BaseModel):
    """What the conversation is about: the last target and environment it named."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    last_target: str | None = None
    last_environment: str | None = None


class Proposal(BaseModel):
    """A planner's answer to one chat message: validated steps, or a question back.

    `intent` is derived from the steps (any mutating step makes it an action), never taken
    from the model; the risk tier is not here at all: policy decides it later. `rejected`
    carries the `rule` that refused the request; `flags` come from the user's text.
    """

    model_config = ConfigDict(frozen=True)

    intent: ProposalIntent
    steps: list[PlannedOperation] = Field(default_factory=list)
    rationale: str = ""
    question: str | None = None
    candidates: list[str] = Field(default_factory=list)
    planner: Literal["llm", "offline"]
    notes: list[str] = Field(default_factory=list)
    rule: str | None = None
    flags: list[RequestFlag] = Field(default_factory=list)

    def as_plan(self) -> Plan:
        """The steps as a Plan, or PlanRejected / ClarificationNeeded saying why not."""
        if self.intent == "rejected":
            raise PlanRejected(self.rule or "rejected", self.rationale or self.question or "")
        if not self.steps:
            raise ClarificationNeeded(
                self.question or self.rationale or "nothing to do", self.candidates
            )
        summary = summarize(self.steps)
        if self.planner == "llm" and self.rationale:  # the model's stated reason, shown as such
            summary = f"{summary}. The model's reason: {self.rationale}"
        return Plan(steps=self.steps, summary=summary, flags=self.flags)

    @classmethod
    def refused(cls, error: PlanRejected, *, planner: Literal["llm", "offline"]) -> Proposal:
        return cls(
            intent="rejected",
            rule=error.rule,
            rationale=error.reason,
            question=f"I will not do that: {error.message}",
            planner=planner,
        )


class ConversationPlanner(Protocol):
    """What the workflow graph and the chat both plan with."""

    async def plan(self, request: WorkRequest) -> Plan:
        """A validated plan for a workflow request, or PlanningError."""
        ...

    async def propose(
        self, *, text: str, history: list[ConversationTurn], context: ConversationContext
    ) -> Proposal:
        """Steps (validated against catalog and targets) or a question for one chat message."""
        ...


class OfflineConversationPlanner:
    """The offline planner made conversational: pronouns mean the session's last target."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        resolver: TargetResolver,
        vocabulary: Vocabulary | None = None,
        commands: CommandPolicy | None = None,
    ) -> None:
        self._offline = OfflinePlanner(
            catalog=catalog, resolver=resolver, vocabulary=vocabulary, commands=commands
        )
        self._catalog = catalog
        self._resolver = resolver

    @property
    def offline(self) -> OfflinePlanner:
        return self._offline

    async def plan(self, request: WorkRequest) -> Plan:
        return self._offline.plan(request)

    async def propose(
        self, *, text: str, history: list[ConversationTurn], context: ConversationContext
    ) -> Proposal:
        text, environment = self.with_context(text, context)
        try:
            plan = self._offline.plan(
                WorkRequest(source="chat", requester="chat", text=text, environment=environment),
                last_target=context.last_target,
            )
        except PlanRejected as error:
            return Proposal.refused(error, planner="offline")
        except PlanningError as error:
            return Proposal(
                intent="clarify",
                question=error.message,
                candidates=error.candidates,
                planner="offline",
            )
        return Proposal(
            intent=intent_of(plan.steps, self._catalog),
            steps=plan.steps,
            rationale=f"understood as: {plan.summary}",
            planner="offline",
            flags=plan.flags,
        )

    def with_context(self, text: str, context: ConversationContext) -> tuple[str, str | None]:
        """The text with the session's target filled in for "it", and the environment to use.

        A name the text does give is never replaced: an unknown name gets a question, not the
        last target (the planner fills in "it" itself, clause by clause).
        """
        words = [_ENVIRONMENT_ALIASES.get(word, word) for word in _WORD.findall(text.lower())]
        named = [name for name in self._resolver.names() if name.lower() in words]
        environment = context.last_environment
        if environment not in self._resolver.environments():
            environment = None
        if not named and context.last_target and _REFERENCE.search(text):
            named = [context.last_target]
        # The session's environment applies only where every named target exists in it.
        if environment is not None and not all(
            name in self._resolver.names(environment) for name in named
        ):
            environment = None
        return text, environment


def intent_of(steps: list[PlannedOperation], catalog: Catalog) -> ProposalIntent:
    """`action` when any step changes something (unknown operations count as changes)."""
    for step in steps:
        spec = catalog.operations.get(step.operation)
        if spec is None or spec.mutates:
            return "action"
    return "read_only"


def summarize(steps: list[PlannedOperation]) -> str:
    return "; ".join(f"{step.operation} {step.environment}/{step.target}" for step in steps)
