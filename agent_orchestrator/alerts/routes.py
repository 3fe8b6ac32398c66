"""POST /webhook/alerts for Alertmanager, and GET /alerts for people."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from agent_orchestrator.alerts.schemas import AlertView
from agent_orchestrator.deps import AlertRecords, Alerts, CurrentPrincipal, Settings
from shared.lib.alerts.models import AlertmanagerPayload, WebhookReply
from shared.lib.alerts.service import SIGNATURE_HEADER, verify_delivery
from shared.lib.errors import DomainError

router = APIRouter(tags=["alerts"])

MAX_BODY_BYTES = 1_000_000


class PayloadTooLargeError(DomainError):
    status_code = 413


@router.post("/webhook/alerts")
async def receive_alerts(request: Request, settings: Settings, alerts: Alerts) -> WebhookReply:
    """Alertmanager's webhook (payload version 4); authenticated by a bearer token."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadTooLargeError(f"an alert notification may be at most {MAX_BODY_BYTES} bytes")
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLargeError(f"an alert notification may be at most {MAX_BODY_BYTES} bytes")
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


@router.get("/alerts")
async def list_alerts(
    principal: CurrentPrincipal,
    records: AlertRecords,
    status: Literal["firing", "resolved"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[AlertView]:
    """Alert episodes, newest first: what the agent did, repeats, resolution and notes."""
    found = await records.recent(status=status, limit=limit, offset=offset)
    return [AlertView.of(record) for record in found]
