"""Reads the LLM planner may make before it proposes a plan: read-only catalog operations, at
most MAX_READS of them within READ_BUDGET_S, through the operation runner's own checks. Each
result goes back to the model as a tool message, and the approver sees what was read beside
the model's stated reason. The model never sets a tier and never approves."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.messages.tool import ToolCall

from shared.lib.catalog.models import Catalog
from shared.lib.execution.models import ExecutionResult
from shared.lib.planning.conversation import Proposal
from shared.lib.targets.models import (
    AmbiguousTargetError,
    UnknownEnvironmentError,
    UnknownTargetError,
)
from shared.lib.targets.resolver import TargetResolver

READ_TOOL = "read_state"
MAX_READS = 3
READ_BUDGET_S = 20.0
READ_OUTPUT_CHARS = 2000

READS_PROMPT = f"""
Before you plan you may call {READ_TOOL} (at most {MAX_READS} times) to read a target's state
with a read-only operation. When the user asks for a change only if it is needed ("check it
and restart it if needed"), read first, then propose the change only when what you read
shows it is needed, and say why in `rationale`; otherwise submit a read_only plan or a question.
What you read is shown to the approver beside your reason.
"""


class Reader(Protocol):
    async def run(
        self, *, operation: str, target: str, environment: str | None, params: dict[str, Any]
    ) -> ExecutionResult: ...


def read_tool(catalog: Catalog) -> dict[str, Any]:
    """The function the model may call before submitting its plan: reads only."""
    reads = sorted(name for name in catalog.names() if not catalog.get(name).mutates)
    return {
        "type": "function",
        "function": {
            "name": READ_TOOL,
            "description": f"Read one target's current state before planning (at most "
            f"{MAX_READS} reads; they change nothing). Then submit the plan.",
            "parameters": {
                "type": "object",
                "properties": {
                    "operation": {"type": "string", "enum": reads},
                    "target": {"type": "string"},
                    "environment": {"type": "string"},
                    "params": {"type": "object"},
                },
                "required": ["operation", "target"],
            },
        },
    }


def read_calls(reply: AIMessage) -> list[ToolCall]:
    return [call for call in reply.tool_calls if call["name"] == READ_TOOL]


@dataclass
class Investigation:
    """One planning turn's reads: bounded, checked, remembered for the approver."""

    reader: Reader
    catalog: Catalog
    resolver: TargetResolver
    reads: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    async def look_first(
        self,
        reply: AIMessage,
        messages: list[BaseMessage],
        *,
        ask: Callable[[list[BaseMessage]], Awaitable[AIMessage]],
    ) -> AIMessage:
        """Answer the model's reads until it submits a plan: MAX_READS are carried out, and a
        couple more are answered with a refusal before the model must plan or be sent back."""
        for _ in range(MAX_READS + 2):
            calls = read_calls(reply)
            if not calls:
                return reply
            messages += [reply, *[await self.answer(call) for call in calls]]
            reply = await ask(messages)
        return reply

    async def answer(self, call: ToolCall) -> ToolMessage:
        content = await self._read(call.get("args") or {})
        return ToolMessage(content=json.dumps(content), tool_call_id=call.get("id") or READ_TOOL)

    def summary(self) -> str:
        """What was read, as the approver is shown it."""
        return "; ".join(
            f"{r['operation']} {r['environment']}/{r['target']}: {r['status']}"
            + (f" ({r['reason']})" if r.get("reason") else "")
            for r in self.reads
        )

    async def _read(self, args: dict[str, Any]) -> dict[str, Any]:
        remaining = READ_BUDGET_S - (time.monotonic() - self.started)
        if len(self.reads) >= MAX_READS or remaining <= 0:
            return {"refused": f"no more reads ({MAX_READS} at most); submit the plan now"}
        operation = str(args.get("operation", ""))
        if operation not in self.catalog.operations or self.catalog.get(operation).mutates:
            return {"refused": f"'{operation}' is not a read-only catalog operation"}
        try:
            target = self.resolver.resolve(str(args.get("target", "")), args.get("environment"))
        except (UnknownTargetError, UnknownEnvironmentError, AmbiguousTargetError) as error:
            return {"refused": str(error)}
        if self.resolver.self_reason(target):
            return {"refused": "the agent never acts on itself, reads included"}
        try:
            result = await asyncio.wait_for(
                self.reader.run(
                    operation=operation,
                    target=target.name,
                    environment=target.environment,
                    params=dict(args.get("params") or {}),
                ),
                timeout=remaining,
            )
        except TimeoutError:
            return {"refused": f"the read took longer than the {READ_BUDGET_S:.0f} s budget"}
        record = {
            "operation": operation,
            "target": target.name,
            "environment": target.environment,
            "status": result.status.value,
            "reason": result.reason,
            "output": result.stdout[-READ_OUTPUT_CHARS:],
            "data": result.data,
        }
        self.reads.append(record)
        return record


def with_reads(proposal: Proposal, investigation: Investigation | None) -> Proposal:
    """The model's stated reason and what it read, for the approver."""
    if investigation is None or not investigation.reads:
        return proposal
    read = f"read before planning: {investigation.summary()}"
    rationale = f"{proposal.rationale} ({read})" if proposal.rationale else read
    return proposal.model_copy(update={"rationale": rationale})
