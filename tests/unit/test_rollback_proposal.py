"""The rollback proposal goes through the planner like any request's steps: what the planner
plans is proposed, and what its funnel refuses ends the workflow `failed` for a person."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from graphs.rollback import propose_rollback, rollback_status
from graphs.state import WorkflowState
from shared.lib.catalog import load_catalog
from shared.lib.planning.errors import PlanRejected
from shared.lib.planning.models import Plan, PlannedOperation
from shared.lib.workflows.models import WorkRequest
from tests.helpers import CONFIG_DIR

CATALOG = load_catalog(config_dir=CONFIG_DIR)


@dataclass
class Timeline:
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def update(
        self, workflow_id: str, *, event: str, detail: dict[str, Any], **_: Any
    ) -> None:
        self.events.append((event, detail))


@dataclass
class Planner:
    refuse: str | None = None
    asked: list[WorkRequest] = field(default_factory=list)

    async def plan(self, request: WorkRequest) -> Plan:
        self.asked.append(request)
        if self.refuse:
            raise PlanRejected("deny-protected-target", self.refuse)
        return Plan(steps=list(request.steps or []), summary="start web")


@dataclass
class Context:
    planner: Planner
    catalog: Any = CATALOG
    workflows: Timeline = field(default_factory=Timeline)


@dataclass
class Runtime:
    context: Context


def stopped_and_unverified() -> WorkflowState:
    step = PlannedOperation(operation="stop", target="web", environment="prod")
    return {
        "workflow_id": "wf-1",
        "request": {"requester": "alice", "source": "api", "text": "stop web on prod"},
        "plan": Plan(steps=[step]).model_dump(mode="json"),
        "results": [{"status": "ok", "operation": "stop", "target": "web"}],
        "verification": [{"passed": False, "detail": "web: https://shop/ answered 503"}],
    }


async def test_the_inverse_is_planned_by_the_planner_for_the_same_requester() -> None:
    planner = Planner()
    state = stopped_and_unverified()
    update = await propose_rollback(state, Runtime(Context(planner)))  # type: ignore[arg-type]
    [asked] = planner.asked
    assert (asked.requester, asked.source) == ("alice", "api")
    assert [(s.operation, s.target) for s in asked.steps or []] == [("start", "web")]
    assert [s["operation"] for s in update["plan"]["steps"]] == ["start"]
    assert update["round"] == 2 and update["results"] == []


async def test_a_rollback_the_funnel_refuses_ends_failed_for_a_person() -> None:
    context = Context(Planner(refuse="prod/web is protected (frozen for the audit)"))
    state = stopped_and_unverified()
    update = await propose_rollback(state, Runtime(context))  # type: ignore[arg-type]
    assert "plan" not in update  # nothing proposed
    assert [event for event, _ in context.workflows.events] == ["rollback_refused"]
    ended: WorkflowState = {**state, "rollback": update["rollback"]}
    found = rollback_status(ended)
    assert found is not None
    status, error = found
    assert status == "failed"
    assert error is not None and "frozen for the audit" in error and "a person must look" in error
