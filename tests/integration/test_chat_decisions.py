"""What chat records as a decision, what it lists as pending, what it says of a merged or
waiting workflow, and what "it" / "them" mean after several targets: on real Postgres,
offline planner, in-memory executors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shared.lib.executors.fake import FakeExecutor
from tests.helpers import approval, auth, workflow
from tests.integration.chat_support import all_calls, chat_api, say


@pytest.fixture
def api(database_url: str, tmp_path: Path, fakes: dict[str, FakeExecutor]) -> Iterator[TestClient]:
    with chat_api(database_url=database_url, data_dir=tmp_path, executors=fakes) as client:
        yield client


def _still_pending(api: TestClient, asked: dict[str, Any]) -> None:
    """Nothing was recorded: the approval is pending with no decision, the workflow waits."""
    record = approval(api, asked["approval_id"])
    assert record["status"] == "pending"
    assert record["approvals_received"] == 0
    assert [a["action"] for a in record["actions"]] == ["requested"]
    assert workflow(api, asked["workflow_id"])["status"] == "awaiting_approval"


# -- A: only a plain decision is recorded --------------------------------------------------

UNDECIDED = [
    ("bob", "approve {id}? what does it do first"),
    ("bob", "approve {id} not yet, waiting for the DBA"),
    ("bob", "approve {id} but change the timeout to 60 first"),
    ("bob", "approve {id} if the DBA agrees"),
    ("bob", "don't approve {id} yet"),
    ("bob", "approved?"),
    ("carol", "I approved {id} yesterday, why is it still pending?"),
    ("bob", "reject {id} not yet"),
    ("bob", "reject {id}? is it risky"),
]


@pytest.mark.parametrize(("who", "message"), UNDECIDED, ids=[m for _, m in UNDECIDED])
def test_a_question_hedge_condition_or_report_decides_nothing(
    api: TestClient, fakes: dict[str, FakeExecutor], who: str, message: str
) -> None:
    asked = say(api, "alice", "restart web on prod")
    assert asked["status"] == "awaiting_approval"
    approval_id = asked["approval_id"]

    reply = say(api, who, message.format(id=approval_id))

    assert reply["status"] == "needs_clarification", reply["reply"]
    assert reply["reply"].startswith("Nothing was decided"), reply["reply"]
    assert f"approve {approval_id}" in reply["reply"] or "approve <id>" in reply["reply"]
    assert "recorded" not in reply["reply"]
    _still_pending(api, asked)
    assert fakes["docker"].target("web").restart_count == 0


def test_after_a_hedge_in_a_session_a_plain_decision_still_counts(api: TestClient) -> None:
    asked = say(api, "alice", "restart web on prod")
    approval_id = asked["approval_id"]
    hedged = say(api, "bob", f"approve {approval_id} not yet, waiting for the DBA")
    assert f"approve {approval_id}" in hedged["reply"]
    _still_pending(api, asked)

    plain = say(api, "bob", "approve it because the DBA signed off", hedged["session_id"])

    assert plain["status"] == "approved", plain["reply"]
    record = approval(api, approval_id)
    assert record["status"] == "approved"
    assert record["actions"][-1]["action"] == "approve"
    assert record["actions"][-1]["reason"] == "the DBA signed off"


def test_a_rejection_reason_after_because_is_free_text(api: TestClient) -> None:
    asked = say(api, "alice", "restart web on prod")
    rejected = say(api, "bob", f"reject {asked['approval_id']} because it is not safe yet")
    assert rejected["status"] == "rejected", rejected["reply"]
    assert approval(api, asked["approval_id"])["status"] == "rejected"


# -- B: "what is pending?" lists what GET /approvals/pending lists -------------------------


def _rest_pending(api: TestClient, who: str) -> list[str]:
    response = api.get("/approvals/pending", headers=auth(who))
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()]


def test_pending_in_chat_lists_what_the_rest_listing_lists(api: TestClient) -> None:
    carols = say(api, "carol", "restart web on prod")
    alices = say(api, "alice", "restart api in dev")
    assert carols["status"] == alices["status"] == "awaiting_approval"
    assert api.get(f"/approvals/{carols['approval_id']}", headers=auth("alice")).status_code == 403

    for who in ("alice", "bob"):
        listed = say(api, who, "what is pending?")
        assert listed["status"] == "answered"
        assert listed["candidates"] == _rest_pending(api, who)
    mine = say(api, "alice", "what is pending?")
    assert mine["candidates"] == [alices["approval_id"]]
    assert carols["approval_id"] not in mine["reply"]
    assert "carol" not in mine["reply"]
    assert set(say(api, "bob", "what is pending?")["candidates"]) == {
        carols["approval_id"],
        alices["approval_id"],
    }


# -- C: a merged or waiting request says where it really stands ----------------------------


def test_a_request_merged_into_a_waiting_workflow_names_its_approval(api: TestClient) -> None:
    first = say(api, "alice", "restart web on prod")
    again = say(api, "alice", "restart web on prod")

    assert workflow(api, again["workflow_id"])["status"] == "merged"
    assert again["status"] == "awaiting_approval", again["reply"]
    assert again["approval_id"] == first["approval_id"]
    assert f"approve {first['approval_id']}" in again["reply"]
    assert f"merged into workflow {first['workflow_id']}" in again["reply"]
    history = api.get(f"/chat/{again['session_id']}", headers=auth("alice")).json()
    assert history["context"]["pending_approval_id"] == first["approval_id"]


def test_a_request_merged_into_someone_elses_workflow_keeps_its_approval_private(
    api: TestClient,
) -> None:
    carols = say(api, "carol", "restart web on prod")
    alices = say(api, "alice", "restart web on prod")

    assert workflow(api, alices["workflow_id"])["status"] == "merged"
    assert alices["status"] == "awaiting_approval", alices["reply"]
    assert alices["approval_id"] is None
    assert carols["approval_id"] not in alices["reply"]


def test_a_request_waiting_for_its_target_says_so(api: TestClient) -> None:
    say(api, "alice", "restart web on prod")
    waiting = say(api, "alice", "stop web on prod")

    assert workflow(api, waiting["workflow_id"])["status"] == "waiting_for_target"
    assert waiting["status"] == "waiting_for_target", waiting["reply"]
    assert "waits for another workflow that holds the target" in waiting["reply"]


# -- D: "it" after several targets is asked about, "them" means all of them ----------------


def test_it_after_several_targets_is_asked_about(
    api: TestClient, fakes: dict[str, FakeExecutor]
) -> None:
    first = say(api, "alice", "show logs of web and api on dev")
    assert first["status"] == "answered"
    assert {r["target"] for r in first["results"]} == {"web", "api"}

    which = say(api, "alice", "restart it", first["session_id"])

    assert which["status"] == "needs_clarification", which["reply"]
    assert which["workflow_id"] is None and which["plan"] == []
    assert "web or api" in which["reply"]
    assert which["candidates"] == ["web", "api"]
    assert all_calls(fakes) == ["logs web", "logs api"]


@pytest.mark.parametrize("message", ["restart them both", "restart both", "restart them"])
def test_them_after_several_targets_means_all_of_them(api: TestClient, message: str) -> None:
    first = say(api, "alice", "show logs of web and api on dev")

    both = say(api, "alice", message, first["session_id"])

    assert both["status"] == "awaiting_approval", both["reply"]
    planned = {(s["operation"], s["target"], s["environment"]) for s in both["plan"]}
    assert planned == {("restart", "web", "dev"), ("restart", "api", "dev")}


def test_after_the_question_both_names_them_all(api: TestClient) -> None:
    first = say(api, "alice", "show logs of web and api on dev")
    which = say(api, "alice", "restart it", first["session_id"])
    assert which["status"] == "needs_clarification"

    both = say(api, "alice", "restart both", first["session_id"])

    assert both["status"] == "awaiting_approval", both["reply"]
    assert {s["target"] for s in both["plan"]} == {"web", "api"}
