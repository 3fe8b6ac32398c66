"""The MCP server (the SDK's low-level `Server`): lists tools whose schemas come from the
catalog, routes calls to `tools.py`, and serves the catalog and the caller's workflows as
resources. It knows nothing of transports; whoever runs it says how to reach the agent for the
caller of each request (`backend_for`)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel, ValidationError

from shared.lib.mcp import tools
from shared.lib.mcp.backend import AgentBackend, BackendError, JsonObject
from shared.lib.mcp.models import (
    ChangeArgs,
    DescribeArgs,
    ListArgs,
    NoArgs,
    ReadArgs,
    WaitArgs,
    WorkflowArgs,
)
from shared.lib.mcp.schemas import REQUESTER_ONLY, operation_view, tool_definitions
from shared.lib.metrics import MCP_TOOL_CALLS

log = logging.getLogger(__name__)

Context = ServerRequestContext[Any, Any]
BackendFor = Callable[[Context], AgentBackend]
CATALOG_URI = "devops-agent://catalog"
MY_WORKFLOWS_URI = "devops-agent://workflows/mine"
RESOURCE_NOT_FOUND = -32002  # the MCP specification's error code for an unknown resource URI
INSTRUCTIONS = (
    "The DevOps agent's gated operations. Read with run_read; ask for changes with "
    "request_change and hand the inbox link to a person. " + REQUESTER_ONLY
)
Args = TypeVar("Args", bound=BaseModel)
_DECISION_WORDS = ("approve", "reject", "decide", "sign_off")


def build_server(*, backend_for: BackendFor, version: str) -> Server[Any]:
    """An MCP server whose every request reaches the agent as the caller's principal."""

    async def list_tools(ctx: Context, params: types.PaginatedRequestParams | None) -> Any:
        catalog = await backend_for(ctx).catalog()
        return types.ListToolsResult(tools=tool_definitions(catalog))

    async def call_tool(ctx: Context, params: types.CallToolRequestParams) -> Any:
        started, outcome = time.perf_counter(), "ok"
        try:
            payload = await _call(backend_for(ctx), ctx, params.name, params.arguments or {})
        except ValidationError as error:
            outcome, payload = "refused", {"error": _argument_problems(params.name, error)}
        except (tools.ToolRefusal, BackendError) as error:
            outcome, payload = "refused", {"error": str(error)}
        except Exception as error:  # a bug: say so as data, keep the session alive
            log.exception("mcp tool failed", extra={"tool": params.name})
            outcome, payload = "error", {"error": f"internal error in {params.name}: {error}"}
        finally:
            elapsed = time.perf_counter() - started
            MCP_TOOL_CALLS.labels(tool=_metric_name(params.name), outcome=outcome).observe(elapsed)
        return types.CallToolResult(
            content=[types.TextContent(text=json.dumps(payload, indent=1, default=str))],
            structured_content=payload,
            is_error=outcome != "ok",
        )

    async def list_resources(ctx: Context, params: types.PaginatedRequestParams | None) -> Any:
        return types.ListResourcesResult(
            resources=[
                types.Resource(
                    uri=CATALOG_URI,
                    name="catalog",
                    description="Every operation the agent can run, with its parameters.",
                    mime_type="application/json",
                ),
                types.Resource(
                    uri=MY_WORKFLOWS_URI,
                    name="my-workflows",
                    description="Your most recent workflows, newest first.",
                    mime_type="application/json",
                ),
            ]
        )

    async def read_resource(ctx: Context, params: types.ReadResourceRequestParams) -> Any:
        backend = backend_for(ctx)
        if params.uri == CATALOG_URI:
            catalog = await backend.catalog()
            body: Any = [operation_view(spec) for spec in catalog.operations.values()]
        elif params.uri == MY_WORKFLOWS_URI:
            body = await tools.list_my_requests(backend, ListArgs())
        else:  # the spec's "resource not found", not a server fault
            raise MCPError(
                RESOURCE_NOT_FOUND,
                f"unknown resource {params.uri!r} (known: {CATALOG_URI}, {MY_WORKFLOWS_URI})",
            )
        text = json.dumps(body, indent=1, default=str)
        return types.ReadResourceResult(
            contents=[
                types.TextResourceContents(uri=params.uri, mime_type="application/json", text=text)
            ]
        )

    return Server(
        "devops-agent",
        version=version,
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_read_resource=read_resource,
    )


async def _call(
    backend: AgentBackend, ctx: Context, name: str, arguments: dict[str, Any]
) -> JsonObject:
    calls: dict[str, Callable[[], Awaitable[JsonObject]]] = {
        "list_targets": lambda: _list_targets(backend, arguments),
        "describe_operation": lambda: tools.describe_operation(
            backend, _parse(DescribeArgs, arguments)
        ),
        "run_read": lambda: tools.run_read(backend, _parse(ReadArgs, arguments)),
        "request_change": lambda: tools.request_change(backend, _parse(ChangeArgs, arguments)),
        "get_workflow": lambda: tools.get_workflow(backend, _parse(WorkflowArgs, arguments)),
        "wait_for_workflow": lambda: tools.wait_for_workflow(
            backend, _parse(WaitArgs, arguments), progress=ctx.session.report_progress
        ),
        "list_my_requests": lambda: tools.list_my_requests(backend, _parse(ListArgs, arguments)),
    }
    call = calls.get(name)
    if call is not None:
        return await call()
    if any(word in name.lower() for word in _DECISION_WORDS):
        raise tools.ToolRefusal(
            f"there is no '{name}' tool: approvals and rejections are decided by a human "
            "approver in the agent's inbox, never over MCP"
        )
    raise tools.ToolRefusal(f"unknown tool '{name}' (known: {', '.join(sorted(calls))})")


async def _list_targets(backend: AgentBackend, arguments: dict[str, Any]) -> JsonObject:
    _parse(NoArgs, arguments)  # it takes none, and says so for any it is given
    return await tools.list_targets(backend)


def _parse(model: type[Args], arguments: dict[str, Any]) -> Args:
    return model.model_validate(arguments)


def _argument_problems(tool: str, error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "arguments"
        if item["type"] == "extra_forbidden":
            problems.append(f"'{field}' is not an argument of {tool}")
        else:
            problems.append(f"'{field}': {item['msg']}")
    text = f"{tool}: " + "; ".join(problems) + " (see the tool's input schema)"
    if any(item["type"] == "extra_forbidden" for item in error.errors()):
        text += ". " + REQUESTER_ONLY
    return text


def _metric_name(name: str) -> str:
    known = {
        "list_targets",
        "describe_operation",
        "run_read",
        "request_change",
        "get_workflow",
        "wait_for_workflow",
        "list_my_requests",
    }
    return name if name in known else "unknown"
