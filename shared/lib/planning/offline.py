"""The planner used without an LLM: structured steps pass through validation, and plain text is
read clause by clause (shared/lib/planning/clauses.py) with the words of config/vocabulary.yml.
All or nothing: every clause must become catalog operations on named targets, or the whole
request gets a question (or a refusal naming its rule); a plan never holds a step nobody asked
for, and every plan passes the safety funnel before anyone sees it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from shared.lib.catalog import Catalog, InvalidParamsError, OperationSpec, UnknownOperationError
from shared.lib.commands import CommandPolicy
from shared.lib.planning.clauses import Clause, Reading, RequestReader, logs_params
from shared.lib.planning.errors import ClarificationNeeded, PlanningError, PlanOutcome, PlanRejected
from shared.lib.planning.funnel import SELF_TARGET_RULE, SafetyFunnel
from shared.lib.planning.mentions import TargetMentions
from shared.lib.planning.models import MAX_STEPS, Plan, PlannedOperation, RequestFlag
from shared.lib.planning.understanding import ClauseIntent, understand
from shared.lib.planning.vocabulary import Vocabulary, load_vocabulary
from shared.lib.targets import (
    AmbiguousTargetError,
    ConcreteTarget,
    TargetResolver,
    UnknownEnvironmentError,
    UnknownTargetError,
)
from shared.lib.workflows.models import WorkRequest

DEFAULT_CONFIG_DIR = Path(__file__).resolve().parents[3] / "config"
COMMAND_OPERATIONS = {"ssh": "run_command", "docker": "exec"}


@dataclass(frozen=True)
class AskedFor:
    """What a request names, to hold another planner's steps to: targets and operations."""

    targets: frozenset[str]
    operations: frozenset[str]
    flags: list[RequestFlag] = field(default_factory=list)


class OfflinePlanner:
    """Deterministic planning from the vocabulary and configured names; every plan validated."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        resolver: TargetResolver,
        vocabulary: Vocabulary | None = None,
        commands: CommandPolicy | None = None,
    ) -> None:
        vocabulary = vocabulary or load_vocabulary(config_dir=DEFAULT_CONFIG_DIR)
        missing = sorted(
            {c.operation for i in vocabulary.intents.values() for c in i.operations}
            - set(catalog.operations)
        )
        if missing:
            raise ValueError(f"the catalog lacks operations the planner uses: {', '.join(missing)}")
        self._catalog = catalog
        self._resolver = resolver
        self._vocabulary = vocabulary
        self._mentions = TargetMentions(resolver=resolver, vocabulary=vocabulary)
        self._reader = RequestReader(
            vocabulary=vocabulary, mentions=self._mentions, environments=resolver.environments()
        )
        self.funnel = SafetyFunnel(catalog=catalog, resolver=resolver, commands=commands)

    @property
    def vocabulary(self) -> Vocabulary:
        return self._vocabulary

    def plan(self, request: WorkRequest, *, last_target: str | None = None) -> Plan:
        """A validated plan, ClarificationNeeded (a question) or PlanRejected (a rule)."""
        flags = self.flags(request.text or "")
        if request.steps:
            steps = self._plan_steps(request.steps, environment=request.environment)
        elif request.text and request.text.strip():
            steps = self._plan_text(
                request.text, environment=request.environment, last_target=last_target
            )
        else:
            raise ClarificationNeeded(
                "the request has neither text nor steps; say what to do, for example "
                "'restart web on dev'",
                self.examples(),
            )
        if len(steps) > MAX_STEPS:
            raise ClarificationNeeded(
                f"the request asks for {len(steps)} steps; one plan holds at most {MAX_STEPS}, "
                "so split it into several requests",
                self.examples(),
            )
        self.funnel.check(steps)
        return Plan(steps=steps, summary=summary(steps), flags=flags)

    def outcome(self, request: WorkRequest, *, last_target: str | None = None) -> PlanOutcome:
        """The plan, question or refusal as data."""
        try:
            return PlanOutcome.planned(self.plan(request, last_target=last_target))
        except PlanningError as error:
            return PlanOutcome.from_error(error)

    def flags(self, text: str) -> list[RequestFlag]:
        """Text that tries to change the rules, for approvers and the risk policy."""
        return self._reader.read(text).flags if text.strip() else []

    def screen(self, text: str, *, last_target: str | None = None) -> PlanOutcome:
        """What this planner makes of the text; another planner must honour a refusal (the
        agent itself, refused words, protected targets, denied commands) whatever it thinks."""
        return self.outcome(WorkRequest(requester="screen", text=text), last_target=last_target)

    def asked_for(self, text: str, *, last_target: str | None = None) -> AskedFor:
        """The targets a request names and the operations its words can mean."""
        reading = self._reader.read(text)
        targets = {name for clause in reading.clauses for m in clause.mentions for name in m.names}
        if last_target and (any(c.pronoun for c in reading.clauses) or not targets):
            targets.add(last_target)
        operations: set[str] = set()
        for clause in reading.clauses:
            if clause.commands:
                operations |= set(COMMAND_OPERATIONS.values())
            for match in clause.of_kind("intent", "question", "hint"):
                intent = self._vocabulary.intents[match.name]
                operations |= {choice.operation for choice in intent.operations}
        return AskedFor(frozenset(targets), frozenset(operations), reading.flags)

    def examples(self) -> list[str]:
        return [intent.example for intent in self._vocabulary.intents.values()]

    # -- structured steps ---------------------------------------------------------------

    def _plan_steps(
        self, steps: list[PlannedOperation], *, environment: str | None
    ) -> list[PlannedOperation]:
        # A step's condition on earlier results is kept as given; the engine evaluates it.
        return [
            self._validated(
                self._operation(step.operation),
                self._resolve(step.target, step.environment or environment),
                step.params,
            ).model_copy(update={"when": step.when})
            for step in steps
        ]

    # -- plain text ---------------------------------------------------------------------

    def _plan_text(
        self, text: str, *, environment: str | None, last_target: str | None
    ) -> list[PlannedOperation]:
        reading = self._reader.read(text)
        _refuse_self(reading)
        for clause in reading.clauses:
            _refuse_words(clause, self._vocabulary)
        self._ask_about_reason(reading)
        environment = self._environment(reading, environment)
        understood = understand(
            reading,
            vocabulary=self._vocabulary,
            mentions=self._mentions,
            known=self._resolver.names(environment),
            last_target=last_target,
            examples=self.examples(),
            text=text,
        )
        for item in understood:
            self._hold_to_plain(item)
        steps: list[PlannedOperation] = []
        for item in understood:
            if item.url is not None and not item.targets:
                item.targets = [self._url_owner(item.url, environment)]
            for name in item.targets:
                step = self._step(item, self._resolve(name, environment))
                if step not in steps:
                    steps.append(step)
        return steps

    def _hold_to_plain(self, item: ClauseIntent) -> None:
        """A clause that changes something must ask for it plainly: "don't restart web",
        "should I restart web?", "restart web if it is unhealthy", "stop api for 10 minutes"
        get a question, never a plan that drops the words that mattered."""
        if not item.clause.hedges or not self._mutates(item):
            return
        hedge, words = item.clause.hedges[0]
        entry = next(entry for entry in self._vocabulary.hedges if entry.id == hedge)
        raise ClarificationNeeded(
            f"{item.clause.text!r} {entry.reason} ('{words}'); I plan a change only when it is "
            "asked for plainly. Say what to do now, for example 'restart web on dev', or ask "
            "for a read such as 'status of web'",
            self.examples(),
        )

    def _mutates(self, item: ClauseIntent) -> bool:
        if item.command is not None:
            return True  # a command's effect is the command policy's to judge, after planning
        if item.intent is None:
            return False
        choices = self._vocabulary.intents[item.intent].operations
        return any(self._catalog.get(choice.operation).mutates for choice in choices)

    def _ask_about_reason(self, reading: Reading) -> None:
        """ "restart api because it is stuck and stop payments": the reason is set aside whole,
        so a request inside it would be lost; ask for it on its own instead."""
        asked = self._reader.requests_in(reading.reason)
        if asked:
            raise ClarificationNeeded(
                f"{reading.reason!r} reads as a reason, but it also asks for {asked[0]!r}; put "
                "each request before its 'because', or send it on its own",
                self.examples(),
            )

    def _step(self, item: ClauseIntent, target: ConcreteTarget) -> PlannedOperation:
        if item.command is not None:
            operation = COMMAND_OPERATIONS.get(target.kind)
            if operation is None:
                raise ClarificationNeeded(f"{target.name} cannot run commands", [])
            return self._validated(self._operation(operation), target, {"argv": item.command})
        if item.url is not None:
            return self._validated(self._operation("http_check"), target, {"url": item.url})
        if item.intent is None:  # understand() returns only clauses that ask for something
            raise ClarificationNeeded(f"nothing asked in {item.clause.text!r}", self.examples())
        intent = self._vocabulary.intents[item.intent]
        for choice in intent.operations:
            spec = self._catalog.get(choice.operation)
            if target.kind in choice.kinds and _runs_on(spec, target):
                params = {**choice.params, **_params_for(spec, item.clause)}
                return self._validated(spec, target, params)
        able = [
            f"{candidate.environment}/{candidate.name}"
            for candidate in self._resolver.targets()
            if any(
                candidate.kind in c.kinds and _runs_on(self._catalog.get(c.operation), candidate)
                for c in intent.operations
            )
        ]
        raise ClarificationNeeded(
            f"'{item.intent}' cannot run on {target.environment}/{target.name} "
            f"({target.kind} target); it works on: {', '.join(able) or 'no configured target'}",
            able,
        )

    def _url_owner(self, url: str, environment: str | None) -> str:
        host = urlsplit(url).hostname or ""
        owners = [
            target.name
            for target in self._resolver.targets(environment)
            if host in (target.name, urlsplit(target.health_url or "").hostname)
        ]
        if len(set(owners)) == 1:
            return owners[0]
        known = self._resolver.names(environment)
        raise ClarificationNeeded(
            f"cannot tell which target {host or 'the URL'} belongs to; "
            f"say 'check <url> for <target>' with one of: {', '.join(known)}",
            known,
        )

    def _environment(self, reading: Reading, requested: str | None) -> str | None:
        known = self._resolver.environments()
        if reading.unknown_environments:
            word = sorted(reading.unknown_environments)[0]
            raise ClarificationNeeded(
                f"unknown environment '{word}' (known: {', '.join(known)}); name one of them",
                known,
            )
        if len(reading.environments) > 1:
            named = sorted(reading.environments)
            raise ClarificationNeeded(
                f"the request names several environments ({', '.join(named)}); "
                "ask for one environment at a time",
                named,
            )
        if reading.environments:
            return next(iter(reading.environments))
        if requested is not None and requested not in known:
            raise ClarificationNeeded(
                f"unknown environment '{requested}' (known: {', '.join(known)})", known
            )
        return requested

    def _operation(self, name: str) -> OperationSpec:
        try:
            return self._catalog.get(name)
        except UnknownOperationError as exc:
            raise ClarificationNeeded(str(exc), exc.known) from None

    def _validated(
        self, spec: OperationSpec, target: ConcreteTarget, params: dict[str, Any]
    ) -> PlannedOperation:
        if not _runs_on(spec, target):
            raise ClarificationNeeded(
                f"operation '{spec.name}' runs on {', '.join(spec.executors)} targets; "
                f"{target.environment}/{target.name} is a target of kind {target.kind}",
                [
                    name
                    for name, other in self._catalog.operations.items()
                    if _runs_on(other, target)
                ],
            )
        try:
            normalized = self._catalog.validate_params(spec.name, params)
        except InvalidParamsError as exc:
            raise ClarificationNeeded(str(exc), sorted(spec.params)) from None
        return PlannedOperation(
            operation=spec.name,
            target=target.name,
            environment=target.environment,
            params=normalized,
        )

    def _resolve(self, name: str, environment: str | None) -> ConcreteTarget:
        try:
            return self._resolver.resolve(name, environment)
        except AmbiguousTargetError as exc:
            raise ClarificationNeeded(str(exc), exc.environments) from None
        except UnknownEnvironmentError as exc:
            raise ClarificationNeeded(str(exc), self._resolver.environments()) from None
        except UnknownTargetError as exc:
            raise ClarificationNeeded(str(exc), self._resolver.names(environment)) from None


def _refuse_self(reading: Reading) -> None:
    if reading.self_words:
        raise PlanRejected(
            SELF_TARGET_RULE,
            f"the request is about the agent itself ({', '.join(reading.self_words)}); the "
            "agent never operates on its own containers, hosts or database, ask a person",
        )


def _refuse_words(clause: Clause, vocabulary: Vocabulary) -> None:
    for match in clause.of_kind("refusal"):
        entry = next(e for e in vocabulary.refusals if e.id == match.name)
        raise PlanRejected(entry.id, f"{entry.reason} (asked: {clause.text!r})")


def _params_for(spec: OperationSpec, clause: Clause) -> dict[str, Any]:
    found = logs_params(clause.text)
    if spec.name == "logs":
        return found
    if spec.name == "journal_tail" and "tail" in found:
        return {"lines": found["tail"]}
    return {}


def _runs_on(spec: OperationSpec, target: ConcreteTarget) -> bool:
    # HTTP operations probe a target's URL, so they suit a target of any kind.
    return target.kind in spec.executors or "http" in spec.executors


def summary(steps: list[PlannedOperation]) -> str:
    return "; ".join(f"{step.operation} {step.environment}/{step.target}" for step in steps)
