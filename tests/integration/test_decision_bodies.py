"""A decision is recorded only as it was sent: a field the body does not take, a key given twice,
an edit naming a target that is not configured and an edit that only leaves out a default are
each refused with a 422 naming the field, and the approval stays pending with nothing run.
Real Postgres (a database per test), in-memory executors, the offline planner."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shared.lib.executors.fake import FakeExecutor
from tests.helpers import approval, auth, orchestrate, wait_for, workflow
from tests.integration.service_support import agent_api

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def api(database_url: str, tmp_path: Path, fakes: dict[str, FakeExecutor]) -> Iterator[TestClient]:
    with agent_api(database_url, tmp_path, executors=fakes) as client:
        yield client


def awaiting(api: TestClient, request: str) -> dict[str, Any]:
    started = orchestrate(api, {"request": request})
    assert started["status"] == "awaiting_approval", started
    return started


def problem(response: Any, *loc: str | int) -> dict[str, Any]:
    """The 422 problem at `loc`; fails when the response is anything else."""
    assert response.status_code == 422, response.text
    for found in response.json()["detail"]:
        if tuple(found["loc"]) == loc:
            return dict(found)
    raise AssertionError(f"no problem at {loc} in {response.json()['detail']}")


def raw_post(api: TestClient, path: str, text: str, who: str = "bob") -> Any:
    """POST a JSON text as is: `json=` cannot give a key twice."""
    return api.post(path, content=text.encode(), headers={**JSON, **auth(who)})


def untouched(api: TestClient, fakes: dict[str, FakeExecutor], started: dict[str, Any]) -> None:
    """The approval is pending with no decision recorded, and nothing ran (the probes that show
    approvers the targets' state aside)."""
    record = approval(api, started["approval_id"])
    assert record["status"] == "pending", record
    assert [action["action"] for action in record["actions"]] == ["requested"]
    assert workflow(api, started["workflow_id"])["status"] == "awaiting_approval"
    ran = [call.operation for fake in fakes.values() for call in fake.calls]
    assert {"restart", "logs"}.isdisjoint(ran), ran


def test_fields_a_decision_does_not_take_are_refused_by_name(
    api: TestClient, fakes: dict[str, FakeExecutor]
) -> None:
    """`steps` beside `reason` (an edit belongs in `plan`) approved and ran the plan as it
    stood, and a misspelled `planHash` skipped the check of the reviewed plan's hash."""
    started = awaiting(api, "restart web on prod")
    approval_id = started["approval_id"]
    misshapen = {
        "steps": [{"operation": "logs", "target": "web", "environment": "prod"}],
        "reason": "only read the logs",
    }
    response = api.post(f"/approve/{approval_id}", json=misshapen, headers=auth("bob"))
    assert "unknown field 'steps'" in problem(response, "body", "steps")["msg"]
    response = api.post(f"/approve/{approval_id}", json={"planHash": "0" * 64}, headers=auth("bob"))
    assert "planHash" in problem(response, "body", "planHash")["msg"]
    response = api.post(
        f"/reject/{approval_id}", json={"reason": "no", "approve": True}, headers=auth("bob")
    )
    problem(response, "body", "approve")
    untouched(api, fakes, started)

    chat = api.post(
        "/chat", json={"message": "approve it", "session": "abc"}, headers=auth("bob")
    )  # a misspelled session_id would start a new conversation
    problem(chat, "body", "session")


def test_a_key_given_twice_is_refused_wherever_it_is(
    api: TestClient, fakes: dict[str, FakeExecutor]
) -> None:
    """The json module kept the last value: `"plan": null` after an edit approved the plan as
    it stood, and a second `request` replaced the first."""
    started = awaiting(api, "restart web on prod")
    path = f"/approve/{started['approval_id']}"
    edit = {"steps": [{"operation": "logs", "target": "web", "environment": "prod"}]}
    response = raw_post(api, path, f'{{"plan": {json.dumps(edit)}, "plan": null}}')
    found = problem(response, "body", "plan")
    assert found["type"] == "duplicate_key" and "given 2 times" in found["msg"]
    assert found["input"] == [edit, None]
    nested = (
        '{"plan": {"steps": [{"operation": "restart", "target": "web", "environment": "prod",'
        ' "params": {"timeout": 30, "timeout": 5}}]}}'
    )
    problem(raw_post(api, path, nested), "body", "plan", "steps", 0, "params", "timeout")
    twice = raw_post(api, f"/reject/{started['approval_id']}", '{"reason": "a", "reason": "b"}')
    problem(twice, "body", "reason")
    untouched(api, fakes, started)

    before = api.get("/workflows", headers=auth("alice")).json()
    request = '{"request": "show logs of web on dev", "request": "restart web on prod"}'
    problem(raw_post(api, "/orchestrate", request, "alice"), "body", "request")
    assert api.get("/workflows", headers=auth("alice")).json() == before


def test_an_edit_naming_a_target_not_configured_is_refused(
    api: TestClient, fakes: dict[str, FakeExecutor]
) -> None:
    """It was accepted, came back critical (deny-unknown-target) and failed after two more
    approvals; the planner asks instead, and so does the edit now, naming the known targets."""
    started = awaiting(api, "restart web on prod")
    path = f"/approve/{started['approval_id']}"
    unknown = {"steps": [{"operation": "restart", "target": "webb", "environment": "prod"}]}
    response = api.post(path, json={"plan": unknown}, headers=auth("bob"))
    found = problem(response, "body", "plan", "steps", 0, "target")
    assert found["type"] == "unknown_target" and "webb" in found["msg"]
    assert "web" in found["msg"].split("known there:")[1]  # the targets that would do
    elsewhere = {"steps": [{"operation": "restart", "target": "web", "environment": "staging"}]}
    response = api.post(path, json={"plan": elsewhere}, headers=auth("bob"))
    assert "dev, prod" in problem(response, "body", "plan", "steps", 0, "environment")["msg"]
    nowhere = {"steps": [{"operation": "restart", "target": "web"}]}  # in dev and in prod
    response = api.post(path, json={"plan": nowhere}, headers=auth("bob"))
    assert "say which" in problem(response, "body", "plan", "steps", 0, "environment")["msg"]
    untouched(api, fakes, started)


def test_an_edit_is_compared_and_stored_with_the_catalogs_defaults(
    api: TestClient, fakes: dict[str, FakeExecutor]
) -> None:
    """`restart worker` is planned with `timeout: 10` (the default): sending it back without
    params was taken as an edit, which started a new round and stored `params: {}`."""
    started = awaiting(api, "restart worker")
    approval_id = started["approval_id"]
    planned = approval(api, approval_id)["plan"]["steps"]
    assert planned == [on_worker("restart", timeout=10)]
    for same in ({"operation": "restart", "target": "worker", "environment": "dev"},
                 {"operation": "restart", "target": "worker"}):  # fmt: skip
        response = api.post(
            f"/approve/{approval_id}", json={"plan": {"steps": [same]}}, headers=auth("bob")
        )
        assert response.status_code == 422, response.text
        assert "approve without 'plan'" in response.json()["detail"]
    untouched(api, fakes, started)

    edited = [
        {"operation": "logs", "target": "worker"},
        {"operation": "restart", "target": "worker", "params": {"timeout": "30"}},
    ]
    response = api.post(
        f"/approve/{approval_id}", json={"plan": {"steps": edited}}, headers=auth("bob")
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "superseded"
    waiting = wait_for(
        lambda: workflow(api, started["workflow_id"]),
        until=lambda w: w["status"] == "awaiting_approval" and w["approval_id"] != approval_id,
        what="the edited plan's round",
    )
    assert approval(api, waiting["approval_id"])["plan"]["steps"] == [
        on_worker("logs", tail=100),
        on_worker("restart", timeout=30),
    ]


def on_worker(operation: str, **params: Any) -> dict[str, Any]:
    """A step on dev/worker as the planner writes it."""
    return {"operation": operation, "target": "worker", "environment": "dev", "params": params}
