"""Small helpers for tests: wait on a condition with a deadline, never sleep-and-hope."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from fastapi.testclient import TestClient

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "config"
FIXTURES = REPO / "tests" / "fixtures"

KEYS = {
    "alice": "demo-operator-key",
    "bob": "demo-approver-key",
    "carol": "demo-ops-lead-key",
    "dave": "demo-admin-key",
    "erin": "demo-approver2-key",
}


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[name]}"}


def wait_for(
    probe: Callable[[], T],
    *,
    until: Callable[[T], bool],
    timeout_s: float = 30.0,
    interval_s: float = 0.05,
    what: str = "condition",
) -> T:
    """Call `probe` until `until(value)` holds; fail with the last value at the deadline."""
    deadline = time.monotonic() + timeout_s
    value = probe()
    while not until(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout_s}s; last value: {value!r}")
        time.sleep(interval_s)
        value = probe()
    return value


def orchestrate(api: TestClient, body: dict[str, Any], *, who: str = "alice") -> dict[str, Any]:
    """POST /orchestrate, asserting it was accepted; the started workflow's view."""
    response = api.post("/orchestrate", json=body, headers=auth(who))
    assert response.status_code == 201, response.text
    started: dict[str, Any] = response.json()
    return started


def workflow(api: TestClient, workflow_id: str, reader: str = "bob") -> dict[str, Any]:
    """The workflow as `reader` sees it; an approver by default, who may read any workflow
    (an operator reads only those they requested)."""
    response = api.get(f"/workflows/{workflow_id}", headers=auth(reader))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def approval(api: TestClient, approval_id: str) -> dict[str, Any]:
    response = api.get(f"/approvals/{approval_id}", headers=auth("bob"))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_status(api: TestClient, workflow_id: str, status: str) -> dict[str, Any]:
    return wait_for(
        lambda: workflow(api, workflow_id),
        until=lambda w: w["status"] == status,
        what=f"workflow {workflow_id} {status}",
    )
