"""Helpers for the alert webhook tests: Alertmanager payloads, deliveries and what they left."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from shared.lib.executors.fake import FakeExecutor

TOKEN = "test-alert-token-0123456789abcdef"


def alert(
    status: str = "firing",
    *,
    fingerprint: str | None = None,
    starts_at: datetime | None = None,
    alertname: str = "ServiceDown",
    annotations: dict[str, str] | None = None,
    **labels: str,
) -> dict[str, Any]:
    starts = starts_at or datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    ends = starts + timedelta(minutes=5) if status == "resolved" else None
    return {
        "status": status,
        "labels": {"alertname": alertname, **labels},
        "annotations": annotations or {"summary": "web is down"},
        "startsAt": starts.isoformat().replace("+00:00", "Z"),
        "endsAt": ends.isoformat().replace("+00:00", "Z") if ends else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example/graph",
        "fingerprint": fingerprint or uuid.uuid4().hex[:16],
    }


def notification(*alerts: dict[str, Any]) -> dict[str, Any]:
    firing = any(a["status"] == "firing" for a in alerts)
    return {
        "version": "4",
        "groupKey": '{}:{alertname="ServiceDown"}',
        "truncatedAlerts": 0,
        "status": "firing" if firing else "resolved",
        "receiver": "devops-agent",
        "groupLabels": {"alertname": "ServiceDown"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example",
        "alerts": list(alerts),
    }


def deliver(
    api: TestClient, *alerts: dict[str, Any], token: str | None = TOKEN, **headers: str
) -> Any:
    sent = {"Content-Type": "application/json", **headers}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    return api.post("/webhook/alerts", content=json.dumps(notification(*alerts)), headers=sent)


def delivered(api: TestClient, *alerts: dict[str, Any]) -> dict[str, Any]:
    response = deliver(api, *alerts)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def alert_rows(database_url: str, fingerprint: str) -> list[dict[str, Any]]:
    with psycopg.connect(database_url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute(
            "SELECT * FROM alert_workflows WHERE fingerprint = %s ORDER BY id", (fingerprint,)
        ).fetchall()


def workflows_for(database_url: str, fingerprint: str) -> list[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT id FROM workflows WHERE request->'alert'->>'fingerprint' = %s",
            (fingerprint,),
        ).fetchall()
    return [row[0] for row in rows]


def restarts(fakes: dict[str, FakeExecutor]) -> list[tuple[str, str]]:
    return [
        (call.target.environment, call.target.name)
        for call in fakes["docker"].calls
        if call.operation == "restart"
    ]
