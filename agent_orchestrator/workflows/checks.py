"""Check structured steps against the catalog while the request is still in hand, so a bad
operation, parameter or condition is a 422 naming the field rather than a workflow that fails
later; with the targets as well, for an edited plan, which no planner reads again."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi.exceptions import RequestValidationError

from shared.lib.catalog import Catalog, InvalidParamsError, UnknownOperationError
from shared.lib.planning.models import PlannedOperation
from shared.lib.targets import (
    AmbiguousTargetError,
    TargetResolver,
    UnknownEnvironmentError,
    UnknownTargetError,
)

Location = tuple[str | int, ...]


def check_steps(
    catalog: Catalog,
    steps: Sequence[PlannedOperation],
    *,
    at: Callable[[int], Location],
    targets: TargetResolver | None = None,
) -> list[PlannedOperation]:
    """Raise one 422 listing every step whose operation or parameters the catalog refuses, or
    whose condition names a step that has not run before it; with `targets`, also every step
    whose target or environment is not configured (or whose target needs an environment).

    The steps as the planner would have written them: parameters with the catalog's defaults
    filled in and values coerced, and (with `targets`) the environment each target is in."""
    problems: list[dict[str, Any]] = []
    checked: list[PlannedOperation] = []
    for index, step in enumerate(steps):
        update: dict[str, Any] = {}
        try:
            update["params"] = catalog.validate_params(step.operation, step.params)
        except UnknownOperationError as exc:
            problems.append(_problem("unknown_operation", (*at(index), "operation"), exc, step))
        except InvalidParamsError as exc:
            loc = (*at(index), "params", exc.field)
            problems.append(_problem("invalid_parameter", loc, exc, exc.value))
        if step.when is not None and step.when.step >= index:
            loc = (*at(index), "when", "step")
            problems.append(
                _problem("condition_looks_ahead", loc, _looks_ahead(index), step.when.step)
            )
        if targets is not None:
            try:
                update["environment"] = targets.resolve(step.target, step.environment).environment
            except UnknownTargetError as exc:
                loc = (*at(index), "target")
                problems.append(_problem("unknown_target", loc, exc, step.target))
            except UnknownEnvironmentError as exc:
                loc = (*at(index), "environment")
                problems.append(_problem("unknown_environment", loc, exc, step.environment))
            except AmbiguousTargetError as exc:
                loc = (*at(index), "environment")
                problems.append(_problem("ambiguous_target", loc, exc, step.environment))
        checked.append(step.model_copy(update=update))
    if problems:
        raise RequestValidationError(problems)
    return checked


def _looks_ahead(index: int) -> ValueError:
    earlier = f"one of steps 0..{index - 1}" if index else "none: the first step has no earlier one"
    return ValueError(
        f"a condition can only name an earlier step; name {earlier}, or leave 'when' out"
    )


def _problem(kind: str, loc: Location, error: Exception, value: Any) -> dict[str, Any]:
    if isinstance(value, PlannedOperation):
        value = value.operation
    return {"type": kind, "loc": loc, "msg": str(error), "input": value}
