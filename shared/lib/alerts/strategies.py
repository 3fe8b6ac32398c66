"""Recovery strategies as written in config/hitl/recovery_strategies.yml: which alerts the agent
answers with which catalog operations, validated into typed models at start-up."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from shared.lib.catalog import Catalog, InvalidParamsError
from shared.lib.config_errors import YamlDocument, read_yaml

RECOVERY_STRATEGIES_FILE = Path("hitl") / "recovery_strategies.yml"
STRATEGY_ID = r"^[a-z][a-z0-9-]*$"
LABEL_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"

# Labels whose values name hosts, containers or endpoints; compared with the agent's identity.
DEFAULT_IDENTITY_LABELS = (
    "instance",
    "host",
    "hostname",
    "nodename",
    "container",
    "container_name",
    "name",
    "pod",
)


def _as_tuple(value: Any) -> Any:
    # `alertname: ServiceDown` and `alertname: [ServiceDown]` mean the same.
    return (value,) if isinstance(value, str) else value


Names = Annotated[tuple[str, ...], BeforeValidator(_as_tuple)]
LabelName = Annotated[str, Field(pattern=LABEL_NAME, max_length=128)]


class StrategyMatch(BaseModel):
    """The alerts a strategy answers: one of these names, and every listed label equal."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alertname: Names = Field(min_length=1)
    labels: dict[LabelName, Names] = Field(default_factory=dict)

    def matches(self, alertname: str, labels: Mapping[str, str]) -> bool:
        if alertname not in self.alertname:
            return False
        return all(labels.get(name) in values for name, values in self.labels.items())


class NameFromLabels(BaseModel):
    """A configured name read from the first of `labels` the alert carries.

    `aliases` map a label value to a configured name (`web-frontend: web`); any other value
    must already be a configured name. With no such label, `default` is used if given.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    labels: tuple[LabelName, ...] = Field(min_length=1)
    aliases: dict[str, str] = Field(default_factory=dict)
    default: str | None = None

    def read(self, labels: Mapping[str, str]) -> tuple[str, str] | None:
        """(label, value) of the first label present, or None."""
        for name in self.labels:
            value = labels.get(name)
            if value is not None:
                return name, value
        return None


class StepCondition(BaseModel):
    """When a step applies; a step whose condition fails is left out of the plan."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target_kind: tuple[Literal["docker", "ssh"], ...] | None = None
    has_health_url: bool | None = None


class StepResultCondition(BaseModel):
    """Run a step only if an earlier step (named by its `id`) ended `status`; evaluated by the
    engine when the plan runs, shown to the approver, recorded as skipped when it fails."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    step: str = Field(pattern=STRATEGY_ID, max_length=64)
    status: Literal["ok", "failed"]


class StrategyStep(BaseModel):
    """One catalog operation with fixed parameters; nothing in an alert changes them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | None = Field(default=None, pattern=STRATEGY_ID, max_length=64)
    """A name for `only_if` of a later step to look back at."""
    operation: str = Field(min_length=1, max_length=64)
    params: dict[str, Any] = Field(default_factory=dict)
    when: StepCondition | None = None
    only_if: StepResultCondition | None = None


class RecoveryStrategy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=STRATEGY_ID, max_length=64)
    description: str = Field(default="", max_length=300)
    match: StrategyMatch
    escalate: bool = False
    """Hand the alert to a human (and the tracker) instead of planning anything."""
    target: NameFromLabels = NameFromLabels(labels=("service",))
    environment: NameFromLabels | None = None
    steps: tuple[StrategyStep, ...] = Field(default=(), max_length=20)

    @model_validator(mode="after")
    def _steps_unless_escalating(self) -> Self:
        if not self.escalate and not self.steps:
            raise ValueError("give the strategy at least one step, or `escalate: true`")
        return self

    @model_validator(mode="after")
    def _conditions_look_back(self) -> Self:
        # A condition looks at a step that is always in the plan (no `when`) and runs before it.
        earlier: set[str] = set()
        for step in self.steps:
            if step.only_if is not None and step.only_if.step not in earlier:
                raise ValueError(
                    f"`only_if` names step '{step.only_if.step}', which is not an earlier step "
                    "with that `id` and no `when`; give the step it looks at an `id`, before it"
                )
            if step.id is not None and step.when is None:
                earlier.add(step.id)
        return self


class SelfAlerts(BaseModel):
    """How to tell an alert about the agent itself: it is escalated, never acted on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    labels: dict[LabelName, Names] = Field(default_factory=dict)
    """Any one of these labels with one of its values marks the alert as the agent's own."""
    identity_labels: tuple[LabelName, ...] = DEFAULT_IDENTITY_LABELS
    """Labels whose value (the host of host:port) is compared with the agent's own container
    names, host names and database endpoints."""


class RecoveryStrategies(BaseModel):
    """Every strategy, in the order they are tried; the first that matches an alert wins."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    self_alerts: SelfAlerts = SelfAlerts()
    strategies: tuple[RecoveryStrategy, ...] = ()

    @classmethod
    def load(cls, path: Path, *, catalog: Catalog) -> Self:
        """The strategies from `path`; unknown operations or bad parameters stop start-up."""
        document = read_yaml(path, what="recovery strategies")
        strategies = document.validate(cls, context="config/hitl/recovery_strategies.yml")
        document.require_unique(
            [strategy.id for strategy in strategies.strategies],
            section="strategies",
            field="id",
            problem="duplicate strategy id '{key}'",
            fix="give every strategy its own id; alert records name strategies by it",
        )
        return strategies.model_copy(
            update={"strategies": _with_catalog_params(strategies, document, catalog=catalog)}
        )

    def match(self, alertname: str, labels: Mapping[str, str]) -> RecoveryStrategy | None:
        return next((s for s in self.strategies if s.match.matches(alertname, labels)), None)

    def ids(self) -> list[str]:
        return [strategy.id for strategy in self.strategies]


def load_recovery_strategies(
    *, config_dir: Path, catalog: Catalog, path: Path | None = None
) -> RecoveryStrategies:
    """The strategies from `path` (relative to `config_dir`), by default hitl/recovery_..."""
    return RecoveryStrategies.load(config_dir / (path or RECOVERY_STRATEGIES_FILE), catalog=catalog)


def _with_catalog_params(
    strategies: RecoveryStrategies, document: YamlDocument, *, catalog: Catalog
) -> tuple[RecoveryStrategy, ...]:
    """Each step checked against the catalog, its params normalized (defaults filled in)."""
    checked: list[RecoveryStrategy] = []
    for index, strategy in enumerate(strategies.strategies):
        steps: list[StrategyStep] = []
        for number, step in enumerate(strategy.steps):
            at: tuple[str | int, ...] = ("strategies", index, "steps", number)
            if step.operation not in catalog.operations:
                raise document.error(
                    f"operation '{step.operation}' is not in the catalog",
                    at=(*at, "operation"),
                    fix=f"use one of: {', '.join(catalog.names())}",
                )
            try:
                params = catalog.validate_params(step.operation, step.params)
            except InvalidParamsError as exc:
                raise document.error(
                    str(exc),
                    at=(*at, "params", exc.field),
                    fix=f"see operations.{step.operation}.params in config/catalog.yml",
                ) from None
            steps.append(step.model_copy(update={"params": params}))
        checked.append(strategy.model_copy(update={"steps": tuple(steps)}))
    return tuple(checked)
