"""POST /webhook/alerts for Alertmanager, and GET /alerts for people."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from agent_orchestrator.alerts.schemas import AlertView
from agent_orchestrator.deps import AlertRecords, Alerts, CurrentPrincipal, Settings
from agent_orchestrator.system.errors import AUTHENTICATED, WITH_BODY, responses
from shared.lib.alerts.models import AlertmanagerPayload, WebhookReply
from shared.lib.alerts.service import SIGNATURE_HEADER, verify_delivery

router = APIRouter(tags=["alerts"])


@router.post(
    "/webhook/alerts",
    responses=responses(*AUTHENTICATED, *WITH_BODY),
    openapi_extra={"security": [{"AlertWebhookToken": []}]},
)
async def receive_alerts(request: Request, settings: Settings, alerts: Alerts) -> WebhookReply:
    """Alertmanager's webhook (payload version 4); authenticated by a bearer token.

    The request gate has checked the token and bounded the body (1 MB) before this runs.
    """
    body = await request.body()
    verify_delivery(
        settings=settings,
        authorization=request.headers.get("Authorization"),
        signature=request.headers.get(SIGNATURE_HEADER),
        body=body,
    )
    try:
        payload = AlertmanagerPayload.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None
    return await alerts.receive(payload, request_id=request.state.request_id)


@router.get("/alerts", responses=responses(*AUTHENTICATED))
async def list_alerts(
    principal: CurrentPrincipal,
    records: AlertRecords,
    status: Literal["firing", "resolved"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[AlertView]:
    """Alert episodes, newest first: what the agent did, repeats, resolution and notes."""
    found = await records.recent(status=status, limit=limit, offset=offset)
    return [AlertView.of(record) for record in found]
