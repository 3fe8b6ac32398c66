"""Ordinary bad input is a 422 naming the field, checked before anything is stored: control
characters and lone surrogates, 64-bit integers, list and page sizes, catalog parameters."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from agent_orchestrator.app import create_app
from shared.lib.executors.fake import FakeExecutor
from shared.lib.settings import load_settings
from tests.helpers import CONFIG_DIR, FIXTURES, auth
from tests.integration.alerts_support import TOKEN, alert, deliver, notification

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def database_url(empty_database_url: str) -> str:
    return empty_database_url


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = load_settings(
        DATABASE_URL=database_url,
        AGENT_CONFIG_DIR=CONFIG_DIR,
        AGENT_DATA_DIR=tmp_path,
        AGENT_ENVIRONMENTS_FILE=FIXTURES / "environments.yml",
        AGENT_ALERT_WEBHOOK_TOKEN=TOKEN,
    )
    fakes = {kind: FakeExecutor(kind=kind) for kind in ("docker", "ssh", "http")}
    with TestClient(create_app(settings, executors=fakes)) as client:
        yield client


def workflow_count(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM workflows").fetchone()
    assert row is not None
    return int(row[0])


def refused(response: Any, *loc: str | int) -> str:
    """The message of the 422 problem at `loc`; fails when the response is anything else."""
    assert response.status_code == 422, response.text
    problems = response.json()["detail"]
    for problem in problems:
        if tuple(problem["loc"]) == loc:
            return str(problem["msg"])
    raise AssertionError(f"no problem at {loc} in {problems}")


def raw_post(api: TestClient, path: str, text: str, who: str = "alice") -> Any:
    """POST a JSON text as is: `json=` cannot carry a lone surrogate."""
    return api.post(path, content=text.encode("utf-8"), headers={**JSON, **auth(who)})


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ('{"request": "restart web\\u0000 on dev"}', ("body", "request")),
        ('{"request": "restart web\\ud800 on dev"}', ("body", "request")),
        ('{"operation": "restart", "target": "we\\u0000b"}', ("body", "target")),
        (
            '{"operation": "logs", "target": "web", "params": {"x": ["\\udfff"]}}',
            ("body", "params"),
        ),
        (
            '{"steps": [{"operation": "restart", "target": "web\\u001b"}]}',
            ("body", "steps", 0, "target"),
        ),
    ],
)
def test_control_characters_and_lone_surrogates_are_422_and_nothing_is_stored(
    api: TestClient, database_url: str, body: str, loc: tuple[str | int, ...]
) -> None:
    message = refused(raw_post(api, "/orchestrate", body), *loc)
    assert "U+" in message and "printable" in message
    assert workflow_count(database_url) == 0


def test_chat_message_and_reasons_refuse_nul(api: TestClient) -> None:
    assert "U+0000" in refused(
        raw_post(api, "/chat", '{"message": "hi\\u0000"}'), "body", "message"
    )
    some_id = uuid.uuid4()
    response = raw_post(api, f"/reject/{some_id}", '{"reason": "no\\ud83d"}', "bob")
    assert "string" in refused(response, "body", "reason")  # pydantic's own unicode check
    assert "U+0007" in refused(
        raw_post(api, f"/approve/{some_id}", '{"reason": "ok\\u0007"}', "bob"), "body", "reason"
    )
    edit = (
        '{"plan": {"steps": [{"operation": "restart", "target": "web"}], "summary": "a\\u0000b",'
        ' "flags": [{"kind": "x\\u0000"}]}}'
    )  # an edited plan's summary and flags are stored with the approval
    response = raw_post(api, f"/approve/{some_id}", edit, "bob")
    assert "U+0000" in refused(response, "body", "plan", "summary")
    assert "U+0000" in refused(response, "body", "plan", "flags", 0, "kind")


def test_path_ids_and_query_strings_refuse_control_characters(api: TestClient) -> None:
    response = api.get("/workflows/wf-%00abc", headers=auth("alice"))
    refused(response, "path", "workflow_id")
    response = api.post("/resume/wf-%01", headers=auth("alice"))
    refused(response, "path", "workflow_id")
    response = api.get("/approvals/pending", params={"role": "ops\x00"}, headers=auth("bob"))
    refused(response, "query", "role")


def test_offsets_beyond_the_page_bound_are_422(api: TestClient) -> None:
    huge = str(2**63)
    for path in ("/approvals/pending", "/alerts"):
        response = api.get(path, params={"offset": huge}, headers=auth("bob"))
        assert "less than or equal" in refused(response, "query", "offset")


def test_integers_beyond_64_bits_are_422_in_params_and_edited_plans(
    api: TestClient, database_url: str
) -> None:
    big = 2**64
    body = json.dumps({"operation": "logs", "target": "web", "params": {"tail": big}})
    assert "64-bit" in refused(raw_post(api, "/orchestrate", body), "body", "params")
    edit = {"plan": {"steps": [{"operation": "logs", "target": "web", "params": {"n": -big}}]}}
    response = raw_post(api, f"/approve/{uuid.uuid4()}", json.dumps(edit), "bob")
    assert "64-bit" in refused(response, "body", "plan", "steps", 0, "params")
    assert workflow_count(database_url) == 0


def test_nan_and_infinity_are_422_not_a_server_error(api: TestClient, database_url: str) -> None:
    """The json module reads NaN and Infinity, which Postgres refuses to store: before this,
    such a parameter reached the database and came back as a 500."""
    body = '{"operation": "logs", "target": "web", "params": {"tail": 5, "ratio": Infinity}}'
    assert "finite" in refused(raw_post(api, "/orchestrate", body), "body", "params")
    context = (
        '{"source_id": "bot", "target_resource": {"name": "web", "environment": "dev"},'
        ' "action_request": {"intent": "restart the container"}, "context": {"ratio": NaN}}'
    )
    response = raw_post(api, "/execute-docker-command", context)
    assert "finite" in refused(response, "body", "context")
    probe = {"operation": "http_check", "target": "web", "params": {"timeout_s": "nan"}}
    response = api.post("/orchestrate", json=probe, headers=auth("alice"))
    assert "a number" in refused(response, "body", "params", "timeout_s")
    assert workflow_count(database_url) == 0


def test_deep_nesting_and_bytes_not_utf8_are_422_not_a_server_error(
    api: TestClient, database_url: str
) -> None:
    """The 422 echoes what it refuses: a body nested 600 levels deep recursed past Python's
    limit there, and a byte that is not UTF-8 failed to decode: both were a 500."""
    deep = "[" * 600 + "]" * 600
    response = raw_post(api, "/orchestrate", f'{{"request": {deep}}}')
    refused(response, "body", "request")
    assert "..." in response.text  # the echo cut short
    notice = (
        b'{"version": "4", "status": "firing", "alerts": [{"status": "firing",'
        b' "labels": {"alertname": "\xff"}, "startsAt": "2026-01-01T00:00:00Z"}]}'
    )
    sent = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    alerts = api.post("/webhook/alerts", content=notice, headers=sent)
    assert alerts.status_code == 422, alerts.text
    assert "\\xff" in alerts.text  # the byte, echoed escaped
    assert workflow_count(database_url) == 0


def test_a_body_the_parser_cannot_read_is_a_422_saying_why_not_a_bare_400(
    api: TestClient, database_url: str
) -> None:
    """Past the parser's nesting limit, or not UTF-8, FastAPI answered 400 "There was an error
    parsing the body"; JSON sent as text/plain (curl -d) was a 422 about a dictionary."""
    headers = {**JSON, **auth("alice")}
    too_deep = api.post("/orchestrate", content=b"[" * 100_000 + b"]" * 100_000, headers=headers)
    assert "deeper than the JSON parser reads" in refused(too_deep, "body")
    latin1 = api.post("/orchestrate", content=b'{"request": "restart \xe9"}', headers=headers)
    assert "not UTF-8 (byte 0xe9" in refused(latin1, "body")
    as_text = api.post(
        "/orchestrate",
        content=b'{"request": "restart web on dev"}',
        headers={**auth("alice"), "Content-Type": "text/plain"},
    )
    assert "Content-Type: application/json" in refused(as_text, "body")
    assert workflow_count(database_url) == 0


def test_fields_the_form_does_not_take_are_refused_not_ignored(
    api: TestClient, database_url: str
) -> None:
    """`params` beside plain text, and fields /orchestrate does not know, were dropped silently:
    a caller who sent them believed they were heard."""
    text_params = {"request": "logs of web on dev", "params": {"tail": 5}}
    message = refused(api.post("/orchestrate", json=text_params, headers=auth("alice")), "body")
    assert "go with 'operation'" in message
    steps_params = {"steps": [{"operation": "inspect", "target": "web"}], "params": {"x": 1}}
    refused(api.post("/orchestrate", json=steps_params, headers=auth("alice")), "body")
    unknown = {"request": "restart web on dev", "dry_run": True}
    refused(api.post("/orchestrate", json=unknown, headers=auth("alice")), "body", "dry_run")
    assert workflow_count(database_url) == 0


def test_more_than_fifty_steps_are_422(api: TestClient, database_url: str) -> None:
    steps = [{"operation": "inspect", "target": "web"}] * 51
    response = api.post("/orchestrate", json={"steps": steps}, headers=auth("alice"))
    assert "at most 50" in refused(response, "body", "steps")
    assert workflow_count(database_url) == 0


def test_catalog_refusals_are_422_naming_the_field_not_a_failed_workflow(
    api: TestClient, database_url: str
) -> None:
    negative = {"operation": "logs", "target": "web", "environment": "dev", "params": {"tail": -1}}
    message = refused(
        api.post("/orchestrate", json=negative, headers=auth("alice")), "body", "params", "tail"
    )
    assert "tail" in message and "1" in message
    unknown = {**negative, "params": {"colour": "red"}}
    message = refused(
        api.post("/orchestrate", json=unknown, headers=auth("alice")), "body", "params", "colour"
    )
    assert "allowed:" in message
    steps = {
        "steps": [
            {"operation": "inspect", "target": "web"},
            {"operation": "reboot-everything", "target": "web"},
        ]
    }
    message = refused(
        api.post("/orchestrate", json=steps, headers=auth("alice")), "body", "steps", 1, "operation"
    )
    assert "known:" in message and "config/catalog.yml" in message
    ahead = {
        "steps": [
            {
                "operation": "inspect",
                "target": "web",
                "environment": "dev",
                "when": {"step": 1, "status": "ok"},
            },
            {"operation": "health", "target": "web", "environment": "dev"},
        ]
    }
    message = refused(
        api.post("/orchestrate", json=ahead, headers=auth("alice")), "body", "steps", 0, "when",
        "step",
    )  # fmt: skip
    assert "earlier step" in message
    assert workflow_count(database_url) == 0


def test_a_bad_alert_is_refused_alone_and_the_others_are_handled(api: TestClient) -> None:
    poisoned = alert(service="web", env="dev", annotations={"summary": "down\x00"})
    healthy = alert(service="web", env="dev", alertname="ServiceDown")
    for _ in range(2):  # a redelivery behaves the same
        response = deliver(api, poisoned, healthy)
        assert response.status_code == 200, response.text
        reply = response.json()
        assert reply["refused"] == 1
        first, second = reply["alerts"]
        assert first["outcome"] == "refused" and first["alert_id"] is None
        assert "annotations" in first["reason"] and "U+0000" in first["reason"]
        assert second["fingerprint"] == healthy["fingerprint"]
        assert second["outcome"] in ("workflow_started", "duplicate")
    # Not even an object: refused alone too (it refused the whole delivery, the good alert with it).
    body = notification(alert(service="web", env="dev"))
    body["alerts"] = ["not an alert", None, *body["alerts"]]
    sent = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    response = api.post("/webhook/alerts", content=json.dumps(body), headers=sent)
    assert response.status_code == 200, response.text
    outcomes = [a["outcome"] for a in response.json()["alerts"]]
    assert outcomes == ["refused", "refused", "workflow_started"], outcomes
    assert "alerts[0] refused" in response.json()["alerts"][0]["reason"]


def test_a_key_given_twice_is_422_on_every_json_body_and_forms_pass(
    api: TestClient, database_url: str
) -> None:
    """The json module kept the last of a repeated key; the request gate now refuses it by
    name on any JSON body (the alert webhook's too, after its token), and reads no form."""
    delivery = json.dumps(notification(alert(service="web", env="dev")))
    sent = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    twice = delivery[:-1] + ', "alerts": []}'
    response = api.post("/webhook/alerts", content=twice, headers=sent)
    assert "given 2 times" in refused(response, "body", "alerts")
    bare = b'{"request": "logs of web on dev", "request": "restart web on dev"}'
    response = api.post("/orchestrate", content=bare, headers=auth("alice"))  # no content type
    refused(response, "body", "request")
    typed = {"Content-Type": "application/merge-patch+json; charset=utf-8", **auth("alice")}
    response = api.post("/orchestrate", content=bare, headers=typed)
    refused(response, "body", "request")
    form = {"Content-Type": "application/x-www-form-urlencoded", **auth("alice")}
    response = api.post("/orchestrate", content=b"request=a&request=b", headers=form)
    assert response.status_code == 422, response.text
    assert "duplicate_key" not in response.text  # a form is the route's to read, not JSON
    assert workflow_count(database_url) == 0
    assert deliver(api, alert(service="web", env="dev")).status_code == 200  # the same, once
