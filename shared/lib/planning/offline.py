"""The planner used without an LLM: structured steps pass through validation, and common
plain-text intents ("restart web on prod", "logs for api last 50 lines") map to operations."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from shared.lib.catalog import Catalog, InvalidParamsError, OperationSpec, UnknownOperationError
from shared.lib.planning.errors import PlanningError
from shared.lib.planning.models import Plan, PlannedOperation
from shared.lib.targets import (
    AmbiguousTargetError,
    ConcreteTarget,
    TargetResolver,
    UnknownEnvironmentError,
    UnknownTargetError,
)
from shared.lib.workflows.models import WorkRequest

_URL = re.compile(r"https?://[^\s\"'<>]+", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9][a-z0-9._-]*")
_TAIL = re.compile(r"\b(?:last|tail)\s+(\d+)(?:\s+lines?)?\b|\b(\d+)\s+lines?\b")
_ENVIRONMENT_ALIASES = {"production": "prod", "development": "dev"}


@dataclass(frozen=True)
class Intent:
    """A phrase the offline planner understands and the operations it maps to.

    `operations` are tried in order; the first one the target's kind can run is chosen.
    """

    name: str
    example: str
    pattern: re.Pattern[str]
    operations: tuple[str, ...]


def _intent(name: str, example: str, pattern: str, *operations: str) -> Intent:
    return Intent(name, example, re.compile(pattern, re.IGNORECASE), operations)


# Order matters: the first intent whose pattern matches wins, so the URL check comes first.
INTENTS: tuple[Intent, ...] = (
    _intent("http_check", "check <url> [for <target>]", r"\bcheck\s+https?://", "http_check"),
    _intent("restart", "restart <target> [on <env>]", r"\brestart\b", "restart"),
    _intent("stop", "stop <target> [on <env>]", r"\bstop\b", "stop"),
    _intent("start", "start <target> [on <env>]", r"\bstart\b", "start"),
    _intent("logs", "logs of <target> [last N lines]", r"\blogs?\b", "logs"),
    _intent("stats", "stats for <target>", r"\bstats\b", "stats"),
    _intent("inspect", "inspect <target>", r"\binspect\b", "inspect", "service_status"),
    _intent("uptime", "uptime of <host>", r"\buptime\b", "uptime"),
    _intent("disk_usage", "disk usage on <host>", r"\bdisk\b|\bdf\b", "disk_usage"),
    _intent(
        "health",
        "status of <target> / is <target> healthy",
        r"\b(status|health|healthy)\b",
        "health",
    ),
)


class OfflinePlanner:
    """Deterministic planning from keywords and configured names; every plan is validated."""

    def __init__(self, *, catalog: Catalog, resolver: TargetResolver) -> None:
        missing = sorted(
            {name for intent in INTENTS for name in intent.operations} - set(catalog.operations)
        )
        if missing:
            raise ValueError(f"the catalog lacks operations the planner uses: {', '.join(missing)}")
        self._catalog = catalog
        self._resolver = resolver

    def plan(self, request: WorkRequest) -> Plan:
        """A validated plan for the request, or PlanningError saying what would work instead."""
        if request.steps:
            return self._plan_steps(request.steps, environment=request.environment)
        if request.text and request.text.strip():
            return self._plan_text(request.text, environment=request.environment)
        raise PlanningError(
            "the request has neither text nor steps; say what to do, for example "
            "'restart web on dev'",
            _examples(),
        )

    def _plan_steps(self, steps: list[PlannedOperation], *, environment: str | None) -> Plan:
        planned = [
            self._validated(
                self._operation(step.operation),
                self._resolve(step.target, step.environment or environment),
                step.params,
            )
            for step in steps
        ]
        return Plan(steps=planned, summary=_summary(planned))

    def _plan_text(self, text: str, *, environment: str | None) -> Plan:
        intent = _intent_of(text)
        environment = self._environment_in(text) or self._known_environment(environment)
        targets = self._targets_in(text, intent=intent, environment=environment)
        params = _params_from(text, intent=intent)
        steps = [
            self._validated(self._operation_for(intent, target), target, params)
            for target in targets
        ]
        return Plan(steps=steps, summary=_summary(steps))

    def _operation(self, name: str) -> OperationSpec:
        try:
            return self._catalog.get(name)
        except UnknownOperationError as exc:
            raise PlanningError(str(exc), exc.known) from None

    def _operation_for(self, intent: Intent, target: ConcreteTarget) -> OperationSpec:
        for name in intent.operations:
            spec = self._catalog.get(name)
            if _runs_on(spec, target):
                return spec
        able = [
            f"{candidate.environment}/{candidate.name}"
            for candidate in self._resolver.targets()
            if any(_runs_on(self._catalog.get(name), candidate) for name in intent.operations)
        ]
        raise PlanningError(
            f"'{intent.name}' cannot run on {target.environment}/{target.name} "
            f"({target.kind} target); it works on: {', '.join(able) or 'no configured target'}",
            able,
        )

    def _validated(
        self, spec: OperationSpec, target: ConcreteTarget, params: dict[str, Any]
    ) -> PlannedOperation:
        if not _runs_on(spec, target):
            raise PlanningError(
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
            raise PlanningError(str(exc), sorted(spec.params)) from None
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
            raise PlanningError(str(exc), exc.environments) from None
        except UnknownEnvironmentError as exc:
            raise PlanningError(str(exc), self._resolver.environments()) from None
        except UnknownTargetError as exc:
            raise PlanningError(str(exc), self._resolver.names(environment)) from None

    def _known_environment(self, environment: str | None) -> str | None:
        known = self._resolver.environments()
        if environment is not None and environment not in known:
            raise PlanningError(
                f"unknown environment '{environment}' (known: {', '.join(known)})", known
            )
        return environment

    def _environment_in(self, text: str) -> str | None:
        known = set(self._resolver.environments())
        named = {_ENVIRONMENT_ALIASES.get(word, word) for word in _words(text)} & known
        if len(named) > 1:
            raise PlanningError(
                f"the request names several environments ({', '.join(sorted(named))}); "
                "ask for one environment at a time",
                sorted(named),
            )
        return next(iter(named), None)

    def _targets_in(
        self, text: str, *, intent: Intent, environment: str | None
    ) -> list[ConcreteTarget]:
        # Names from every environment, so a name only another environment has gets a hint.
        names = _named(_words(text), known=self._resolver.names())
        if not names and intent.name == "http_check":
            return [self._target_of_url(text, environment=environment)]
        if not names:
            known = self._resolver.names(environment)
            where = f" in {environment}" if environment else ""
            raise PlanningError(
                f"no known target named in {text!r} (known{where}: {', '.join(known)}); "
                "name one of them",
                known,
            )
        return [self._resolve(name, environment) for name in names]

    def _target_of_url(self, text: str, *, environment: str | None) -> ConcreteTarget:
        url = _URL.search(text)
        host = (urlsplit(url.group(0)).hostname or "") if url else ""
        owners = [
            target
            for target in self._resolver.targets(environment)
            if host in (target.name, urlsplit(target.health_url or "").hostname)
        ]
        if len(owners) == 1:
            return owners[0]
        known = self._resolver.names(environment)
        raise PlanningError(
            f"cannot tell which target {host or 'the URL'} belongs to; "
            f"say 'check <url> for <target>' with one of: {', '.join(known)}",
            known,
        )


def _intent_of(text: str) -> Intent:
    for intent in INTENTS:
        haystack = text if intent.name == "http_check" else _URL.sub(" ", text)
        if intent.pattern.search(haystack):
            return intent
    raise PlanningError(
        f"cannot tell what to do from {text!r}; the offline planner understands: "
        f"{'; '.join(_examples())}",
        _examples(),
    )


def _params_from(text: str, *, intent: Intent) -> dict[str, Any]:
    if intent.name == "logs":
        tail = _TAIL.search(_URL.sub(" ", text))
        return {"tail": int(tail.group(1) or tail.group(2))} if tail else {}
    if intent.name == "http_check":
        url = _URL.search(text)
        return {"url": url.group(0).rstrip(".,;)")} if url else {}
    return {}


def _words(text: str) -> list[str]:
    # URLs are dropped first so "http://web:8080" does not name the target `web` by accident.
    words = _WORD.findall(_URL.sub(" ", text).lower())
    return [word.rstrip("._-") for word in words]


def _named(words: Iterable[str], *, known: list[str]) -> list[str]:
    by_word = {name.lower(): name for name in known}
    found: list[str] = []
    for word in words:
        name = by_word.get(word)
        if name is not None and name not in found:
            found.append(name)
    return found


def _runs_on(spec: OperationSpec, target: ConcreteTarget) -> bool:
    # HTTP operations probe a target's URL, so they suit a target of any kind.
    return target.kind in spec.executors or "http" in spec.executors


def _summary(steps: list[PlannedOperation]) -> str:
    return "; ".join(f"{step.operation} {step.environment}/{step.target}" for step in steps)


def _examples() -> list[str]:
    return [intent.example for intent in INTENTS]
