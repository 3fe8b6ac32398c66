"""Approval rules through the REST API: two-person approvals, roles, risk reasons, protected
targets, plan edits, plan hashes, expiry and the domain metrics; real Postgres (a database per
test), in-memory executors."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from agent_orchestrator.app import create_app
from shared.lib.executors.fake import FakeExecutor
from shared.lib.planning.models import Plan
from shared.lib.settings import load_settings
from tests.helpers import (
    CONFIG_DIR,
    FIXTURES,
    approval,
    auth,
    orchestrate,
    wait_for,
    wait_status,
    workflow,
)

StartApi = Callable[..., TestClient]

# Five distinct targets changed at once: `blast-radius-wide` makes the plan critical.
FIVE_RESTARTS = [
    {"operation": "restart", "target": "web", "environment": "dev"},
    {"operation": "restart", "target": "api", "environment": "dev"},
    {"operation": "restart", "target": "worker", "environment": "dev"},
    {"operation": "restart", "target": "web", "environment": "prod"},
    {"operation": "restart", "target": "orders-db", "environment": "prod"},
]


@pytest.fixture
def fakes() -> dict[str, FakeExecutor]:
    return {kind: FakeExecutor(kind=kind) for kind in ("docker", "ssh", "http")}


@pytest.fixture
def start_api(
    empty_database_url: str, tmp_path: Path, fakes: dict[str, FakeExecutor]
) -> Iterator[StartApi]:
    """Start the service (lifespan included) on this test's own database; stopped after."""
    with ExitStack() as running:

        def start(*, config_dir: Path = CONFIG_DIR, sweep_interval_s: float = 0.5) -> TestClient:
            settings = load_settings(
                DATABASE_URL=empty_database_url,
                AGENT_CONFIG_DIR=config_dir,
                AGENT_DATA_DIR=tmp_path,
                AGENT_ENVIRONMENTS_FILE=FIXTURES / "environments.yml",
                AGENT_SWEEP_INTERVAL_S=sweep_interval_s,
            )
            client = TestClient(create_app(settings, executors=fakes))
            return running.enter_context(client)

        yield start


@pytest.fixture
def api(start_api: StartApi) -> TestClient:
    return start_api()


def config_with_tier(tmp_path: Path, tier: str, **changes: Any) -> Path:
    """A copy of config/ (migrations in state/ included) whose approval tier is changed."""
    copy = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, copy)
    path = copy / "hitl" / "approval_policy.yml"
    policy = yaml.safe_load(path.read_text())
    policy["tiers"][tier].update(changes)
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return copy


# --- helpers -------------------------------------------------------------------------------


def rules_fired(risk: dict[str, Any]) -> set[str]:
    """Rule ids named in `risk.reasons` ("<rule>: <why>")."""
    return {reason.split(":", 1)[0] for reason in risk["reasons"]}


def calls(fakes: dict[str, FakeExecutor], operation: str) -> list[tuple[str | None, str]]:
    """(environment, target) of every call of `operation`, executor by executor."""
    return [
        (call.target.environment, call.target.name)
        for fake in fakes.values()
        for call in fake.calls
        if call.operation == operation
    ]


def metric(api: TestClient, sample: str, **labels: str) -> float:
    """Sum of the samples named `sample` whose labels include `labels`, from GET /metrics."""
    response = api.get("/metrics", headers=auth("dave"))
    assert response.status_code == 200, response.text
    return sum(
        value.value
        for family in text_string_to_metric_families(response.text)
        for value in family.samples
        if value.name == sample and all(value.labels.get(k) == v for k, v in labels.items())
    )


# --- 1. two distinct approvers with the right roles ---------------------------------------


def test_critical_plan_needs_two_distinct_approvers_with_allowed_roles(
    api: TestClient, fakes: dict[str, FakeExecutor]
) -> None:
    started = orchestrate(api, {"steps": FIVE_RESTARTS})
    assert started["status"] == "awaiting_approval", started
    assert started["risk"]["tier"] == "critical"
    assert "blast-radius-wide" in rules_fired(started["risk"])
    approval_id = started["approval_id"]
    pending = approval(api, approval_id)
    assert pending["required_approvals"] == 2
    assert sorted(pending["allowed_roles"]) == ["admin", "ops-lead"]
    assert (pending["status"], pending["approvals_received"]) == ("pending", 0)

    first = api.post(f"/approve/{approval_id}", headers=auth("carol"), json={"reason": "ok"})
    assert first.status_code == 202, first.text
    assert first.json()["status"] == "pending"
    assert first.json()["resumed"] is False
    after_first = approval(api, approval_id)
    assert (after_first["status"], after_first["approvals_received"]) == ("pending", 1)

    again = api.post(f"/approve/{approval_id}", headers=auth("carol"))
    assert again.status_code == 409, again.text
    assert "already chose approve" in again.json()["detail"]
    assert approval(api, approval_id) == after_first

    bob = api.post(f"/approve/{approval_id}", headers=auth("bob"))
    assert bob.status_code == 403, bob.text
    assert "needs one of ['admin', 'ops-lead']" in bob.json()["detail"]
    assert approval(api, approval_id) == after_first
    assert workflow(api, started["workflow_id"])["status"] == "awaiting_approval"
    assert calls(fakes, "restart") == []

    second = api.post(f"/approve/{approval_id}", headers=auth("dave"))
    assert second.status_code == 202, second.text
    assert (second.json()["status"], second.json()["approvals_received"]) == ("approved", 2)
    done = wait_status(api, started["workflow_id"], "completed")
    expected = [(step["environment"], step["target"]) for step in FIVE_RESTARTS]
    assert sorted(calls(fakes, "restart")) == sorted(expected)  # each restarted exactly once
    assert [(e["environment"], e["target"], e["status"]) for e in done["executions"]] == [
        (environment, target, "ok") for environment, target in expected
    ]
    actions = [(a["action"], a["actor"]) for a in approval(api, approval_id)["actions"]]
    assert actions == [("requested", "alice"), ("approve", "carol"), ("approve", "dave")]


# --- 2. risk reasons, unknown names, protected targets -------------------------------------


def test_risk_reasons_name_the_rules_that_fired(api: TestClient) -> None:
    started = orchestrate(api, {"request": "restart web on prod"})
    assert started["risk"]["tier"] == "high"
    detail = workflow(api, started["workflow_id"])
    assert rules_fired(detail["risk"]) == {
        "catalog-default-risk",
        "prod-mutation",
        "customer-facing-prod-mutation",
    }
    hits = approval(api, started["approval_id"])["assessment"]["hits"]
    assert {hit["rule"] for hit in hits} == rules_fired(detail["risk"])

    read_only = orchestrate(api, {"operation": "logs", "target": "web", "environment": "dev"})
    assert read_only["risk"]["tier"] == "low"
    assert rules_fired(read_only["risk"]) == {"dev-read-only"}


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (
            {"operation": "restart", "target": "web2", "environment": "prod"},
            ["unknown target 'web2'", "web", "orders-db", "vault"],
        ),
    ],
)
def test_unknown_target_asks_back_and_touches_nothing(
    api: TestClient, fakes: dict[str, FakeExecutor], step: dict[str, Any], expected: list[str]
) -> None:
    """An unknown operation never gets this far: it is a 422 (tests/integration/
    test_input_bounds.py); a target is resolved by the planner, which names the known ones."""
    started = orchestrate(api, step)
    # A question back, not `failed` (which means an error while running).
    assert started["status"] == "needs_clarification", started
    assert started["approval_id"] is None and started["plan"] is None
    question = started["question"]
    assert question.startswith(expected[0]), question
    assert all(name in question for name in expected[1:]), question
    assert set(expected[1:]) <= set(started["candidates"]), started["candidates"]
    detail = workflow(api, started["workflow_id"])
    assert detail["approvals"] == [] and detail["executions"] == []
    assert [e["event"] for e in detail["timeline"]][-2:] == [
        "needs_clarification",
        "needs_clarification",
    ]
    assert [call for fake in fakes.values() for call in fake.calls] == []


def test_mutating_a_protected_target_is_refused_at_planning(
    api: TestClient, fakes: dict[str, FakeExecutor]
) -> None:
    # Refused with its rule before any approval is asked for (issue 10: it used to be sent to
    # two approvers and refused only when it ran).
    started = orchestrate(api, {"operation": "restart", "target": "vault", "environment": "prod"})
    assert started["approval_id"] is None and started["plan"] is None, started
    assert started["status"] == "rejected", started
    assert started["rule"] == "deny-protected-target", started
    assert "deny-protected-target" in started["error"], started["error"]
    assert "protected" in started["error"]
    detail = workflow(api, started["workflow_id"])
    assert detail["approvals"] == [] and detail["executions"] == []
    assert [call for fake in fakes.values() for call in fake.calls] == []


# --- 3. editing a plan, binding decisions to the plan hash ---------------------------------


def test_plan_hash_mismatch_is_refused_and_changes_nothing(api: TestClient) -> None:
    started = orchestrate(api, {"request": "restart web on prod"})
    approval_id = started["approval_id"]
    before = approval(api, approval_id)

    stale = api.post(f"/approve/{approval_id}", headers=auth("bob"), json={"plan_hash": "0" * 64})
    assert stale.status_code == 409, stale.text
    assert "bound to plan" in stale.json()["detail"]
    assert approval(api, approval_id) == before
    assert workflow(api, started["workflow_id"])["status"] == "awaiting_approval"

    current = api.post(
        f"/approve/{approval_id}", headers=auth("bob"), json={"plan_hash": before["plan_hash"]}
    )
    assert current.status_code == 202, current.text
    wait_status(api, started["workflow_id"], "completed")


def test_an_edited_plan_supersedes_the_approval_and_runs_after_a_new_one(
    api: TestClient, fakes: dict[str, FakeExecutor]
) -> None:
    started = orchestrate(api, {"request": "restart web on prod"})
    workflow_id, old_id = started["workflow_id"], started["approval_id"]
    edited = Plan.model_validate(
        {
            "steps": [
                {
                    "operation": "restart",
                    "target": "web",
                    "environment": "prod",
                    "params": {"timeout": 30},
                }
            ],
            "summary": "restart prod/web with a longer grace period",
        }
    )
    assert edited.hash != approval(api, old_id)["plan_hash"]
    unchanged = api.post(
        f"/approve/{old_id}",
        headers=auth("bob"),
        json={"plan": approval(api, old_id)["plan"], "reason": "looks right"},
    )  # the plan as the approval shows it: no edit, and no round that bars bob from approving
    assert unchanged.status_code == 422, unchanged.text
    assert "approve without 'plan'" in unchanged.json()["detail"]
    assert approval(api, old_id)["status"] == "pending"

    edit = api.post(
        f"/approve/{old_id}",
        headers=auth("bob"),
        json={"plan": edited.model_dump(mode="json"), "reason": "give it 30 s"},
    )
    assert edit.status_code == 202, edit.text
    assert edit.json()["status"] == "superseded"
    waiting = wait_for(
        lambda: workflow(api, workflow_id),
        until=lambda w: w["status"] == "awaiting_approval" and w["approval_id"] != old_id,
        what=f"workflow {workflow_id} awaiting a new approval",
    )
    new_id = waiting["approval_id"]
    old, new = approval(api, old_id), approval(api, new_id)
    assert old["status"] == "superseded"
    assert (new["status"], new["round"], new["risk_level"]) == ("pending", 2, "high")
    assert new["plan_hash"] == edited.hash
    assert new["plan"] == {"steps": edited.normalized()}
    assert waiting["plan"] == edited.normalized()
    assert calls(fakes, "restart") == []

    assert api.post(f"/approve/{old_id}", headers=auth("carol")).status_code == 409
    assert api.post(f"/approve/{new_id}", headers=auth("alice")).status_code == 403
    own_edit = api.post(f"/approve/{new_id}", headers=auth("bob"))
    assert own_edit.status_code == 403
    assert "edited this plan" in own_edit.json()["detail"]
    assert approval(api, new_id)["status"] == "pending"
    approved = api.post(f"/approve/{new_id}", headers=auth("carol"), json={"reason": "ok"})
    assert approved.status_code == 202, approved.text
    done = wait_status(api, workflow_id, "completed")
    restarts = [c for c in fakes["docker"].calls if c.operation == "restart"]
    assert [(c.target.environment, c.target.name, c.params) for c in restarts] == [
        ("prod", "web", {"timeout": 30})
    ]
    assert done["plan"] == edited.normalized()
    assert [a["status"] for a in done["approvals"]] == ["superseded", "approved"]


def _edit(api: TestClient, approval_id: str, editor: str, timeout: int) -> None:
    plan = {"steps": [{"operation": "restart", "target": "web", "environment": "prod",
                       "params": {"timeout": timeout}}]}  # fmt: skip
    edit = api.post(f"/approve/{approval_id}", headers=auth(editor), json={"plan": plan})
    assert edit.status_code == 202, edit.text
    assert edit.json()["status"] == "superseded"


def _next_round(api: TestClient, workflow_id: str, previous: str) -> str:
    waiting = wait_for(
        lambda: workflow(api, workflow_id),
        until=lambda w: w["status"] == "awaiting_approval" and w["approval_id"] != previous,
        what=f"workflow {workflow_id} awaiting a new round",
    )
    return str(waiting["approval_id"])


def test_whoever_shaped_any_round_cannot_approve_a_later_one(
    api: TestClient, fakes: dict[str, FakeExecutor]
) -> None:
    started = orchestrate(api, {"request": "restart web on prod"})
    workflow_id, round_1 = started["workflow_id"], started["approval_id"]
    _edit(api, round_1, "carol", timeout=20)
    round_2 = _next_round(api, workflow_id, round_1)
    _edit(api, round_2, "bob", timeout=30)
    round_3 = _next_round(api, workflow_id, round_2)

    for editor in ("carol", "bob"):
        refused = api.post(f"/approve/{round_3}", headers=auth(editor))
        assert refused.status_code == 403, refused.text
        assert "edited this plan" in refused.json()["detail"]
    assert approval(api, round_3)["status"] == "pending"
    assert calls(fakes, "restart") == []

    approved = api.post(f"/approve/{round_3}", headers=auth("dave"))
    assert approved.status_code == 202, approved.text
    wait_status(api, workflow_id, "completed")
    assert len(calls(fakes, "restart")) == 1


# --- 4. expiry -----------------------------------------------------------------------------


@pytest.mark.parametrize(("on_timeout", "final"), [("expire", "expired"), ("reject", "rejected")])
def test_the_sweeper_resolves_an_approval_past_its_ttl(
    start_api: StartApi,
    tmp_path: Path,
    fakes: dict[str, FakeExecutor],
    on_timeout: str,
    final: str,
) -> None:
    config = config_with_tier(tmp_path, "high", ttl="1s", on_timeout=on_timeout)
    api = start_api(config_dir=config, sweep_interval_s=0.2)
    expirations = "orchestrator_approval_expirations_total"
    before = metric(api, expirations, risk_level="high")

    started = orchestrate(api, {"request": "restart web on prod"})
    assert started["status"] == "awaiting_approval"
    assert started["risk"]["tier"] == "high"
    done = wait_status(api, started["workflow_id"], final)
    assert "no decision within its TTL" in done["error"]

    late = api.post(f"/approve/{started['approval_id']}", headers=auth("bob"))
    assert late.status_code == 409, late.text
    record = approval(api, started["approval_id"])
    assert (record["status"], record["timeout_outcome"]) == ("expired", on_timeout)
    assert [(a["action"], a["actor"]) for a in record["actions"]] == [
        ("requested", "alice"),
        ("expire", "expiry-sweeper"),
    ]
    assert metric(api, expirations, risk_level="high") - before == 1
    assert calls(fakes, "restart") == []


def test_expiring_on_demand_needs_ops_lead_or_admin(start_api: StartApi, tmp_path: Path) -> None:
    config = config_with_tier(tmp_path, "high", ttl="1s", on_timeout="expire")
    # The sweeper runs once at start-up, then not again during this test.
    api = start_api(config_dir=config, sweep_interval_s=3600)
    expirations = "orchestrator_approval_expirations_total"
    before = metric(api, expirations, risk_level="high")
    started = orchestrate(api, {"request": "restart web on prod"})
    approval_id = started["approval_id"]
    expires_at = datetime.fromisoformat(approval(api, approval_id)["expires_at"])
    wait_for(
        lambda: datetime.now(UTC),
        until=lambda now: now > expires_at,
        what=f"approval {approval_id} past its TTL",
    )

    bob = api.post("/approvals/expire", headers=auth("bob"))
    assert bob.status_code == 403, bob.text
    assert "needs ops-lead or admin" in bob.json()["detail"]
    assert approval(api, approval_id)["status"] == "pending"
    assert workflow(api, started["workflow_id"])["status"] == "awaiting_approval"

    carol = api.post("/approvals/expire", headers=auth("carol"))
    assert carol.status_code == 200, carol.text
    assert carol.json() == {"expired": 1}
    wait_status(api, started["workflow_id"], "expired")
    expired = approval(api, approval_id)
    assert expired["status"] == "expired"
    assert [(a["action"], a["actor"]) for a in expired["actions"]][-1] == ("expire", "carol")
    assert metric(api, expirations, risk_level="high") - before == 1
    assert api.post("/approvals/expire", headers=auth("dave")).json() == {"expired": 0}


def test_refused_decision_attempts_are_kept_in_the_audit(
    api: TestClient, empty_database_url: str
) -> None:
    started = orchestrate(api, {"request": "restart web on prod"})
    approval_id = started["approval_id"]
    attempts = [
        (api.post(f"/approve/{approval_id}", headers=auth("alice")), 403),  # the requester
        (api.post(f"/approve/{approval_id}", headers=auth("bob")), 202),
        (api.post(f"/approve/{approval_id}", headers=auth("bob")), 409),  # a second vote
    ]
    assert [response.status_code for response, _ in attempts] == [code for _, code in attempts]
    wait_status(api, started["workflow_id"], "completed")
    late = api.post(f"/reject/{approval_id}", headers=auth("carol"), json={"reason": "late"})
    assert late.status_code == 409
    with psycopg.connect(empty_database_url) as conn:
        rows = conn.execute(
            "SELECT actor, decision, status_code FROM decision_refusals"
            " WHERE approval_id = %s ORDER BY id",
            (approval_id,),
        ).fetchall()
    assert rows == [("alice", "approve", 403), ("bob", "approve", 409), ("carol", "reject", 409)]
    decisions = [(a["action"], a["actor"]) for a in approval(api, approval_id)["actions"]]
    assert decisions == [("requested", "alice"), ("approve", "bob")]


# --- 5. metrics over one approved workflow -------------------------------------------------


def test_one_approved_workflow_moves_each_metric_once(
    api: TestClient, fakes: dict[str, FakeExecutor]
) -> None:
    samples: dict[str, dict[str, str]] = {
        "orchestrator_approval_requests_total": {"risk_level": "high"},
        "orchestrator_approval_decisions_total": {"decision": "approve", "risk_level": "high"},
        "orchestrator_executions_total": {
            "executor": "fake",  # the in-memory executors report themselves as `fake`
            "operation": "restart",
            "status": "ok",
        },
        "orchestrator_workflow_duration_seconds_count": {"status": "completed"},
        "orchestrator_workflows_total": {"status": "completed"},
        "orchestrator_approval_wait_seconds_count": {"risk_level": "high"},
    }
    before = {name: metric(api, name, **labels) for name, labels in samples.items()}

    started = orchestrate(api, {"request": "restart web on prod"})
    assert started["risk"]["tier"] == "high"
    approved = api.post(f"/approve/{started['approval_id']}", headers=auth("bob"))
    assert approved.status_code == 202, approved.text
    done = wait_status(api, started["workflow_id"], "completed")
    assert done["results"][0]["invocation"]["kind"] == "fake"
    assert fakes["docker"].target("web").restart_count == 1

    after = {name: metric(api, name, **labels) for name, labels in samples.items()}
    assert {name: after[name] - before[name] for name in samples} == dict.fromkeys(samples, 1.0)
