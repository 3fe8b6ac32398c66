"""The web inbox through HTTP (the browser test drives it in Chromium): sign-in and its cookie,
CSRF on every form, decisions through the one decision service, history and statistics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

from agent_orchestrator.app import create_app
from shared.lib.executors.fake import FakeExecutor
from tests.helpers import KEYS, auth, orchestrate, wait_status
from tests.integration.inbox_support import csrf_of, inbox_settings, shown_hash_of, sign_in


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    fakes = {kind: FakeExecutor(kind=kind) for kind in ("docker", "ssh", "http")}
    with TestClient(create_app(inbox_settings(database_url, tmp_path), executors=fakes)) as c:
        yield c


def _paused(api: TestClient) -> tuple[str, str]:
    started = orchestrate(api, {"request": "restart web on prod"})
    assert started["status"] == "awaiting_approval", started
    return started["workflow_id"], started["approval_id"]


def test_sign_in_sets_a_signed_http_only_strict_cookie(api: TestClient, tmp_path: Path) -> None:
    page = api.get("/inbox/pending", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"].startswith("/inbox?next=")
    form = api.get("/inbox")
    wrong = api.post("/inbox/login", data={"csrf_token": csrf_of(form.text), "api_key": "nope"})
    assert wrong.status_code == 401
    assert "unknown API key" in wrong.text
    signed = api.post(
        "/inbox/login",
        data={"csrf_token": csrf_of(form.text), "api_key": "demo-approver-key"},
        follow_redirects=False,
    )
    cookie = signed.headers["set-cookie"]
    assert cookie.startswith("agent_inbox=")
    assert "httponly" in cookie.lower()
    assert "samesite=strict" in cookie.lower()
    assert "path=/inbox" in cookie.lower()
    assert "max-age=28800" in cookie.lower()
    assert (tmp_path / "inbox-session-secret").stat().st_mode & 0o077 == 0
    pending = api.get("/inbox/pending")
    assert pending.status_code == 200
    assert 'data-testid="who">bob<' in pending.text
    api.cookies.clear()
    api.cookies.set("agent_inbox", "forged" + cookie.split(";")[0][-20:], path="/inbox")
    assert api.get("/inbox/pending", follow_redirects=False).status_code == 303


def test_a_decision_form_without_its_csrf_token_is_refused(
    api: TestClient, database_url: str
) -> None:
    workflow_id, approval_id = _paused(api)
    sign_in(api, "bob")
    page = api.get(f"/inbox/approvals/{approval_id}")
    for data in ({}, {"csrf_token": "not-the-session-token"}):
        refused = api.post(f"/inbox/approvals/{approval_id}/approve", data=data)
        assert refused.status_code == 403
        assert "csrf_token" in refused.json()["detail"]
    with psycopg.connect(database_url) as conn:
        decisions = conn.execute(
            "SELECT count(*) FROM approval_actions WHERE approval_id = %s AND action = 'approve'",
            (approval_id,),
        ).fetchone()
    assert decisions == (0,)
    approved = api.post(
        f"/inbox/approvals/{approval_id}/approve",
        data={"csrf_token": csrf_of(page.text), "shown_hash": shown_hash_of(page.text)},
    )
    assert approved.status_code == 200
    assert "Approved: the request is now approved (1 of 1 approvals)" in approved.text
    wait_status(api, workflow_id, "completed")


def test_requester_sees_why_and_refusals_match_rest(api: TestClient) -> None:
    _, approval_id = _paused(api)
    sign_in(api, "alice")
    page = api.get(f"/inbox/approvals/{approval_id}")
    assert "requested this work and cannot decide on it" in page.text
    assert 'action="/inbox/approvals/' not in page.text
    forced = api.post(
        f"/inbox/approvals/{approval_id}/approve", data={"csrf_token": csrf_of(page.text)}
    )
    rest = api.post(f"/approve/{approval_id}", headers=auth("alice"))
    assert forced.status_code == rest.status_code == 403
    assert escape(rest.json()["detail"]) in forced.text
    sign_in(api, "bob")
    page = api.get(f"/inbox/approvals/{approval_id}")
    no_reason = api.post(
        f"/inbox/approvals/{approval_id}/reject",
        data={"csrf_token": csrf_of(page.text), "reason": "  "},
    )
    assert no_reason.status_code == 422
    assert "field &#39;reason&#39; is required to reject" in no_reason.text
    assert api.get(f"/approvals/{approval_id}", headers=auth("bob")).json()["status"] == "pending"


def test_decision_records_what_was_shown_and_the_workflow_page_replays_it(
    api: TestClient,
) -> None:
    workflow_id, approval_id = _paused(api)
    sign_in(api, "bob")
    page = api.get(f"/inbox/approvals/{approval_id}")
    shown = shown_hash_of(page.text)
    stale = api.post(
        f"/inbox/approvals/{approval_id}/approve",
        data={"csrf_token": csrf_of(page.text), "shown_hash": "0" * 64},
    )
    assert stale.status_code == 409
    assert "not what you were shown" in stale.text
    api.post(
        f"/inbox/approvals/{approval_id}/approve",
        data={"csrf_token": csrf_of(page.text), "shown_hash": shown},
    )
    wait_status(api, workflow_id, "completed")
    record = api.get(f"/approvals/{approval_id}", headers=auth("bob")).json()
    approve = next(a for a in record["actions"] if a["action"] == "approve")
    recorded = approve["details"]["shown"]
    assert recorded["hash"] == shown
    assert recorded["channel"] == "inbox"
    assert recorded["checkpoint_id"]
    workflow_page = api.get(f"/inbox/workflows/{workflow_id}")
    index = [a["action"] for a in record["actions"]].index("approve")
    assert f"/inbox/approvals/{approval_id}/shown/{index}" in workflow_page.text
    replay = api.get(f"/inbox/approvals/{approval_id}/shown/{index}")
    assert replay.status_code == 200
    assert 'data-testid="replay-match"' in replay.text
    assert shown[:16] in replay.text


def test_an_edit_form_sent_back_blank_is_the_plan_as_it_stands(api: TestClient) -> None:
    _, approval_id = _paused(api)  # restart web on prod: timeout 10, the catalog's default
    sign_in(api, "bob")
    page = api.get(f"/inbox/approvals/{approval_id}")
    edit = api.post(
        f"/inbox/approvals/{approval_id}/edit",
        data={"csrf_token": csrf_of(page.text), "step1.timeout": ""},
    )
    assert edit.status_code == 422
    assert "changes nothing" in edit.text
    record = api.get(f"/approvals/{approval_id}", headers=auth("bob")).json()
    assert record["status"] == "pending"
    assert [a["action"] for a in record["actions"]] == ["requested"]


def test_history_lists_decided_approvals_and_the_statistics_view(api: TestClient) -> None:
    workflow_id, approval_id = _paused(api)
    api.post(f"/reject/{approval_id}", headers=auth("bob"), json={"reason": "not now"})
    wait_status(api, workflow_id, "rejected")
    sign_in(api, "carol")
    history = api.get("/inbox/history", params={"status": "rejected"})
    assert history.status_code == 200
    assert f"/inbox/approvals/{approval_id}" in history.text
    assert "bob reject" in history.text
    assert 'data-testid="statistics"' in history.text
    none = api.get("/inbox/history", params={"status": "approved"})
    assert f"/inbox/approvals/{approval_id}" not in none.text
    bad = api.get("/inbox/history", params={"tier": "urgent"})
    assert bad.status_code == 422
    assert "tier" in bad.text


def test_text_the_api_refuses_is_refused_by_the_inbox_too(api: TestClient) -> None:
    """NUL reached Postgres from the inbox's forms, filters and paths (a 500), and control
    characters were stored; the REST API refuses both with a 422 naming the field."""
    _, approval_id = _paused(api)
    sign_in(api, "bob")
    token = csrf_of(api.get(f"/inbox/approvals/{approval_id}").text)
    for reason in ("bad\x00reason", "bell\x07 and esc\x1b[31m"):
        refused = api.post(
            f"/inbox/approvals/{approval_id}/reject", data={"csrf_token": token, "reason": reason}
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["detail"][0]["loc"] == ["form", "reason"]
    assert api.get(f"/approvals/{approval_id}", headers=auth("bob")).json()["status"] == "pending"
    for path in (
        "/inbox/workflows/%00x",
        "/inbox/workflows/%00x/status",
        "/inbox/pending?source=%00",
        "/inbox/pending?environment=a%00b",
        "/inbox/history?source=%00",
        "/inbox/events?source=%00",
    ):
        assert api.get(path).status_code == 422, path


def test_signing_out_ends_the_session_for_a_kept_copy_of_the_cookie_too(api: TestClient) -> None:
    """The cookie is only signed: a copy kept from before the sign-out signed its holder in
    until it expired (8 h). The session is now ended on the server."""
    sign_in(api, "bob")
    kept = api.cookies.get("agent_inbox", path="/inbox")
    assert kept
    page = api.get("/inbox/pending")
    assert page.status_code == 200
    signed_out = api.post(
        "/inbox/logout", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False
    )
    assert signed_out.status_code == 303
    api.cookies.clear()
    api.cookies.set("agent_inbox", kept, path="/inbox")
    replayed = api.get("/inbox/pending", follow_redirects=False)
    assert replayed.status_code == 303
    assert replayed.headers["location"].startswith("/inbox?next=")
    sign_in(api, "bob")  # signing in again works, with a session of its own
    assert 'data-testid="who">bob<' in api.get("/inbox/pending").text


def test_an_operator_reads_in_the_inbox_only_what_rest_lets_her_read(api: TestClient) -> None:
    """alice (operator) read bob's approvals in the inbox (page, replay, Pending, History)
    while REST answered her 403: the inbox now applies the REST rule."""
    theirs = orchestrate(api, {"request": "restart web on prod"}, who="bob")
    assert theirs["status"] == "awaiting_approval", theirs
    mine = orchestrate(api, {"request": "restart orders-db on prod"})  # she still sees hers
    assert mine["status"] == "awaiting_approval", mine
    own = mine["approval_id"]
    rest = api.get(f"/approvals/{theirs['approval_id']}", headers=auth("alice"))
    assert rest.status_code == 403
    plan_hash = api.get(f"/approvals/{theirs['approval_id']}", headers=auth("carol")).json()[
        "plan_hash"
    ]
    sign_in(api, "alice")
    for path in (
        f"/inbox/approvals/{theirs['approval_id']}",
        f"/inbox/approvals/{theirs['approval_id']}/shown/0",
    ):
        page = api.get(path)
        assert page.status_code == 403, path
        assert page.headers["content-type"].startswith("text/html")
        assert escape(rest.json()["detail"]) in page.text
        assert plan_hash not in page.text
    pending = api.get("/inbox/pending")
    assert f"/inbox/approvals/{own}" in pending.text
    assert f"/inbox/approvals/{theirs['approval_id']}" not in pending.text
    assert api.get(f"/inbox/approvals/{own}").status_code == 200
    api.post(f"/reject/{theirs['approval_id']}", headers=auth("carol"), json={"reason": "no"})
    api.post(f"/reject/{own}", headers=auth("carol"), json={"reason": "not now"})
    history = api.get("/inbox/history")
    assert f"/inbox/approvals/{own}" in history.text
    assert f"/inbox/approvals/{theirs['approval_id']}" not in history.text
    assert 'data-testid="statistics"' not in history.text  # everyone's figures
    sign_in(api, "carol")  # an ops lead reads all, as in REST
    history = api.get("/inbox/history")
    assert f"/inbox/approvals/{theirs['approval_id']}" in history.text
    assert 'data-testid="statistics"' in history.text
    assert api.get(f"/inbox/approvals/{theirs['approval_id']}").status_code == 200


def test_replaying_an_audit_row_that_records_no_decision_is_a_404_page(api: TestClient) -> None:
    """The 'requested' row (or an expiry) has no recorded view: the replay was a 500."""
    _, approval_id = _paused(api)
    actions = api.get(f"/approvals/{approval_id}", headers=auth("bob")).json()["actions"]
    assert actions[0]["action"] == "requested"
    sign_in(api, "bob")
    replay = api.get(f"/inbox/approvals/{approval_id}/shown/0")
    assert replay.status_code == 404, replay.text
    assert replay.headers["content-type"].startswith("text/html")
    assert "this row records no decision" in replay.text
    assert 'data-testid="who">bob<' in replay.text  # an inbox page, signed in
    assert api.get(f"/inbox/approvals/{approval_id}/shown/7").status_code == 404


def test_wrong_keys_on_the_sign_in_form_are_throttled_like_the_api(
    database_url: str, tmp_path: Path
) -> None:
    """POST /inbox/login answered 401 forever, never counted: the form now counts in the
    gate's throttle of the address, and answers 429 with Retry-After as a page."""
    settings = inbox_settings(database_url, tmp_path, AGENT_AUTH_FAILURES_PER_MINUTE=3)
    with TestClient(create_app(settings)) as api:
        token = csrf_of(api.get("/inbox").text)
        for _ in range(2):
            wrong = api.post("/inbox/login", data={"csrf_token": token, "api_key": "guess"})
            assert wrong.status_code == 401
        assert api.get("/alerts", headers={"X-API-Key": "guess-2"}).status_code == 401
        for key in ("guess", KEYS["bob"]):  # a right key waits too, as at the gate
            throttled = api.post("/inbox/login", data={"csrf_token": token, "api_key": key})
            assert throttled.status_code == 429, throttled.text
            assert int(throttled.headers["Retry-After"]) >= 1
            assert throttled.headers["content-type"].startswith("text/html")
            assert "too many wrong API keys" in throttled.text
            assert 'role="alert"' in throttled.text
        assert api.get("/alerts", headers=auth("bob")).status_code == 429
