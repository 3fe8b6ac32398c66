"""Check structured steps against the catalog while the request is still in hand, so a bad
operation, parameter or condition is a 422 naming the field rather than a workflow that fails
later."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi.exceptions import RequestValidationError

from shared.lib.catalog import Catalog, InvalidParamsError, UnknownOperationError
from shared.lib.planning.models import PlannedOperation

Location = tuple[str | int, ...]


def check_steps(
    catalog: Catalog, steps: Sequence[PlannedOperation], *, at: Callable[[int], Location]
) -> None:
    """Raise one 422 listing every step whose operation or parameters the catalog refuses, or
    whose condition names a step that has not run before it."""
    problems: list[dict[str, Any]] = []
    for index, step in enumerate(steps):
        try:
            catalog.validate_params(step.operation, step.params)
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
    if problems:
        raise RequestValidationError(problems)


def _looks_ahead(index: int) -> ValueError:
    earlier = f"one of steps 0..{index - 1}" if index else "none: the first step has no earlier one"
    return ValueError(
        f"a condition can only name an earlier step; name {earlier}, or leave 'when' out"
    )


def _problem(kind: str, loc: Location, error: Exception, value: Any) -> dict[str, Any]:
    if isinstance(value, PlannedOperation):
        value = value.operation
    return {"type": kind, "loc": loc, "msg": str(error), "input": value}
