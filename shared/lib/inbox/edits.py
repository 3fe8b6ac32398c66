"""Turn the inbox's edit form (one text field per step parameter) back into a plan."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.lib.catalog.models import Catalog, ParamValueError
from shared.lib.errors import InvalidRequestError
from shared.lib.planning.models import Plan, PlannedOperation


def param_field(index: int, name: str) -> str:
    """The form field holding parameter `name` of step `index` (1-based)."""
    return f"step{index}.{name}"


def edited_plan(steps: list[dict[str, Any]], catalog: Catalog, form: Mapping[str, str]) -> Plan:
    """The plan with each step's parameters as typed in `form`; a blank field means the
    parameter's default, written in as the planner writes it, so a form sent back as it was
    is the plan as it stands (refused as an edit that changes nothing), not a new round with
    the defaults left out. Lists are written one item per line."""
    edited = []
    for index, step in enumerate(steps, start=1):
        spec = catalog.operations.get(str(step.get("operation")))
        params: dict[str, Any] = {}
        for name, param in (spec.params if spec else {}).items():
            text = form.get(param_field(index, name), "").strip()
            if not text:
                continue
            raw: Any = [line.strip() for line in text.splitlines() if line.strip()]
            if param.type != "list[str]":
                raw = text
            try:
                params[name] = param.normalize(raw)
            except ParamValueError as error:
                raise InvalidRequestError(
                    f"field '{param_field(index, name)}' (step {index} {step.get('operation')}, "
                    f"parameter '{name}') {error}; correct it and submit the edit again"
                ) from None
        if spec is not None:
            params = catalog.validate_params(spec.name, params)  # the defaults filled in
        edited.append(
            PlannedOperation(
                operation=str(step.get("operation")),
                target=str(step.get("target")),
                environment=step.get("environment"),
                params=params,
            )
        )
    return Plan(steps=edited)
