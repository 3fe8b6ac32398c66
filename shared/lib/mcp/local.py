"""The tools' backend inside the service: the engine and stores themselves, for one principal.
Kept apart from `backend.py` so the stdio process never imports the engine (LangGraph)."""

from __future__ import annotations

from shared.lib.catalog.models import Catalog
from shared.lib.errors import NotFoundError
from shared.lib.mcp.backend import BackendError, JsonObject
from shared.lib.mcp.models import TargetSummary, target_summaries
from shared.lib.planning.models import PlannedOperation
from shared.lib.principals import Principal
from shared.lib.targets.resolver import TargetResolver
from shared.lib.workflows.engine import WorkflowEngine
from shared.lib.workflows.models import WorkRequest
from shared.lib.workflows.store import WorkflowRecord, WorkflowStore


class LocalBackend:
    """The tools' view of the agent inside the service: engine and stores, one principal."""

    def __init__(
        self,
        *,
        principal: Principal,
        engine: WorkflowEngine,
        workflows: WorkflowStore,
        catalog: Catalog,
        resolver: TargetResolver,
        public_url: str,
    ) -> None:
        self._principal = principal
        self._public_url = public_url.rstrip("/")
        self._engine = engine
        self._workflows = workflows
        self._catalog = catalog
        self._resolver = resolver

    async def principal(self) -> Principal:
        return self._principal

    async def inbox_link(self, approval_id: str) -> str:
        return f"{self._public_url}/inbox/approvals/{approval_id}"

    async def catalog(self) -> Catalog:
        return self._catalog

    async def targets(self) -> list[TargetSummary]:
        return target_summaries(self._resolver)

    async def start(self, order: JsonObject) -> JsonObject:
        steps = None
        if order.get("operation") is not None:
            steps = [
                PlannedOperation(
                    operation=order["operation"],
                    target=order["target"],
                    environment=order.get("environment"),
                    params=order.get("params") or {},
                )
            ]
        work = WorkRequest(
            source="mcp",
            requester=self._principal.name,
            text=order.get("request"),
            steps=steps,
            environment=order.get("environment"),
            reason=order.get("reason"),
        )
        return workflow_view(await self._engine.start(work))

    async def workflow(self, workflow_id: str) -> JsonObject:
        try:
            record = await self._workflows.get(workflow_id)
        except NotFoundError as error:
            raise BackendError(str(error)) from None
        timeline = await self._workflows.timeline(workflow_id)
        return {
            **workflow_view(record),
            "source": record.source,
            "requester": record.requester,
            "request": record.request,
            "results": record.results,
            "verification": record.verification,
            "timeline": [event.model_dump(mode="json") for event in timeline],
            "created_at": record.created_at.isoformat(),
            "finished_at": record.finished_at.isoformat() if record.finished_at else None,
        }

    async def my_workflows(self, limit: int) -> list[JsonObject]:
        records = await self._workflows.for_requester(self._principal.name, limit=limit)
        return [{**workflow_view(r), "created_at": r.created_at.isoformat()} for r in records]


def workflow_view(record: WorkflowRecord) -> JsonObject:
    """The same fields as the REST API's WorkflowView."""
    risk = None
    if record.risk:
        risk = {"tier": record.risk["tier"], "reasons": record.risk.get("reasons", [])}
    pending = record.status == "awaiting_approval" and record.approval_id is not None
    return {
        "workflow_id": record.id,
        "status": record.status,
        "plan": record.plan,
        "risk": risk,
        "approval_id": str(record.approval_id) if pending else None,
        "error": record.error,
    }
