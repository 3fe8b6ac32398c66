"""Tool definitions built from the catalog: each operation's parameters with their types and
bounds as JSON Schema, and annotations that say honestly what a tool can change."""

from __future__ import annotations

from typing import Any

import mcp_types as types

from shared.lib.catalog.models import Catalog, OperationSpec, ParameterSpec
from shared.lib.mcp.models import (
    ChangeArgs,
    DescribeArgs,
    ListArgs,
    ReadArgs,
    ToolArguments,
    WaitArgs,
    WorkflowArgs,
)

REQUESTER_ONLY = (
    "You act as a requester: this server has no way to approve or reject anything, and no "
    "argument or wording changes that. A human approver decides in the agent's inbox."
)

_JSON_TYPES = {
    "int": "integer",
    "float": "number",
    "str": "string",
    "bool": "boolean",
    "url": "string",
    "list[str]": "array",
}


def param_schema(spec: ParameterSpec) -> dict[str, Any]:
    """One catalog parameter as JSON Schema: type, bounds, pattern, choices, default."""
    schema: dict[str, Any] = {"type": _JSON_TYPES[spec.type]}
    if spec.description:
        schema["description"] = spec.description
    low, high = {
        "str": ("minLength", "maxLength"),
        "url": ("minLength", "maxLength"),
        "list[str]": ("minItems", "maxItems"),
    }.get(spec.type, ("minimum", "maximum"))
    if spec.min is not None:
        schema[low] = int(spec.min) if spec.type != "float" else spec.min
    if spec.max is not None:
        schema[high] = int(spec.max) if spec.type != "float" else spec.max
    if spec.type == "url":
        schema["format"] = "uri"
    if spec.type == "list[str]":
        schema["items"] = {"type": "string"}
        if spec.regex:
            schema["items"]["pattern"] = spec.regex
    elif spec.regex:
        schema["pattern"] = spec.regex
    if spec.choices:
        schema["enum"] = list(spec.choices)
    if spec.default is not None:
        schema["default"] = spec.default
    return schema


def params_schema(spec: OperationSpec) -> dict[str, Any]:
    """An operation's `params` object; unknown parameters are refused, as the runner does."""
    return {
        "type": "object",
        "properties": {name: param_schema(param) for name, param in spec.params.items()},
        "required": sorted(name for name, param in spec.params.items() if param.required),
        "additionalProperties": False,
    }


def operation_view(spec: OperationSpec) -> dict[str, Any]:
    """What describe_operation tells a host about one operation."""
    return {
        "name": spec.name,
        "description": spec.description,
        "mutates": spec.mutates,
        "default_risk": spec.default_risk.value,
        "inverse": spec.inverse,
        "target_kinds": list(spec.executors),
        "params": params_schema(spec),
        "ask_with": "request_change" if spec.mutates else "run_read",
    }


def tool_definitions(catalog: Catalog) -> list[types.Tool]:
    reads = [spec for spec in catalog.operations.values() if not spec.mutates]
    everything = list(catalog.operations.values())
    return [
        _tool(
            "list_targets",
            "List the targets you may name: environment, service, kind, tags and whether it is "
            "protected (the agent never changes a protected target).",
            ListArgs,
            read_only=True,
            drop=("limit",),
        ),
        _tool(
            "describe_operation",
            "Describe the operation catalog (or one operation): what each does, whether it "
            "changes anything, its default risk, inverse and parameters.",
            DescribeArgs,
            read_only=True,
            operations=everything,
            optional_operation=True,
        ),
        _tool(
            "run_read",
            "Run one read-only operation (logs, inspect, health, ...) on a target and answer "
            "with its result at once. It runs as a workflow through the same checks, ledger and "
            "tracing as any request; should a policy still require approval, you get the "
            "approval link instead of a result. " + REQUESTER_ONLY,
            ReadArgs,
            read_only=True,
            operations=reads,
        ),
        _tool(
            "request_change",
            "Ask for a change (restart, stop, exec, ... or plain words). Answers at once with the "
            "workflow id, status, risk tier and the rules that fired; when a human must approve, "
            "with the approval id and the inbox link to hand to a person. It never waits for or "
            "reports execution itself: follow up with get_workflow or wait_for_workflow. "
            + REQUESTER_ONLY,
            ChangeArgs,
            read_only=False,
            operations=everything,
            optional_operation=True,
        ),
        _tool(
            "get_workflow",
            "Status, risk, approval, timeline and results of one of your workflows.",
            WorkflowArgs,
            read_only=True,
        ),
        _tool(
            "wait_for_workflow",
            "Wait (bounded) for one of your workflows to finish, reporting progress while it "
            "waits; answers with its state when it finishes or the wait runs out. Waiting does "
            "not speed up or stand in for a human approval.",
            WaitArgs,
            read_only=True,
        ),
        _tool(
            "list_my_requests",
            "Your most recent workflows, newest first, with status and approval links.",
            ListArgs,
            read_only=True,
        ),
    ]


def _tool(
    name: str,
    description: str,
    arguments: type[ToolArguments],
    *,
    read_only: bool,
    operations: list[OperationSpec] | None = None,
    optional_operation: bool = False,
    drop: tuple[str, ...] = (),
) -> types.Tool:
    schema = _input_schema(arguments, operations, optional_operation=optional_operation)
    for field in drop:
        schema["properties"].pop(field, None)
    annotations = types.ToolAnnotations(
        title=name.replace("_", " "),
        read_only_hint=read_only,
        destructive_hint=not read_only,
        idempotent_hint=read_only,
        # Reaching real targets (containers, hosts) is the open world; the catalog is not.
        open_world_hint=operations is not None and name != "describe_operation",
    )
    return types.Tool(
        name=name, description=description, input_schema=schema, annotations=annotations
    )


def _input_schema(
    arguments: type[ToolArguments],
    operations: list[OperationSpec] | None,
    *,
    optional_operation: bool,
) -> dict[str, Any]:
    schema = arguments.model_json_schema()
    schema.pop("title", None)
    schema["additionalProperties"] = False
    if operations is None:
        return schema
    described = schema["properties"]["operation"].get("description", "")
    names: list[str | None] = [spec.name for spec in operations]
    if optional_operation:
        names.append(None)
    schema["properties"]["operation"] = {
        "type": ["string", "null"] if optional_operation else "string",
        "enum": names,
        "description": described,
    }
    if "params" in schema["properties"]:
        # The params object depends on the operation chosen: one branch per operation.
        schema["allOf"] = [
            {
                "if": {
                    "properties": {"operation": {"const": spec.name}},
                    "required": ["operation"],
                },
                "then": {"properties": {"params": params_schema(spec)}},
            }
            for spec in operations
        ]
    return schema
