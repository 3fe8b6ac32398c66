"""An approver's day in the inbox, in real Chromium: a request appears live, is read, approved
and watched to completion; the requester cannot approve; a reason-less reject is refused in the
page; an edit comes back as a new, re-assessed request; a notification's link lands on its
approval after sign-in. Every page is screenshotted."""

from __future__ import annotations

import json

import httpx
import psycopg
from playwright.sync_api import Browser, expect

from tests.browser.conftest import Inbox
from tests.helpers import auth, wait_for

LONG_LOG = "\n".join(
    f"2025-01-02T03:04:{i % 60:02d} web: request {i} served in 12ms" for i in range(80)
)


def _orchestrate(inbox: Inbox, text: str) -> dict[str, str]:
    started = httpx.post(
        f"{inbox.base_url}/orchestrate", json={"request": text}, headers=auth("alice"), timeout=30
    )
    assert started.status_code == 201, started.text
    body: dict[str, str] = started.json()
    assert body["status"] == "awaiting_approval", body
    return body


def _add_evidence(database_url: str, approval_id: str) -> None:
    """Stand in for the evidence-gathering step (another change adds it to the graph): the
    approval's context gets the `evidence` list the page renders."""
    evidence = [
        {"operation": "logs", "target": "web", "status": "ok", "output": LONG_LOG},
        {"operation": "health", "target": "web", "status": "ok", "output": {"state": "running"}},
    ]
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE approval_requests SET context = context || jsonb_build_object('evidence',"
            " %s::jsonb) WHERE id = %s",
            (json.dumps(evidence), approval_id),
        )


def test_an_approver_decides_in_the_browser(
    inbox: Inbox, browser: Browser, database_url: str
) -> None:
    approver = browser.new_context().new_page()
    inbox.sign_in(approver, "bob")
    expect(approver.get_by_role("heading", name="Pending approvals")).to_be_visible()
    expect(approver.locator("#pending-rows")).to_contain_text("Nothing waits")
    inbox.shot(approver, "01-pending-empty")

    started = _orchestrate(inbox, "restart web on prod")
    approval_id, workflow_id = started["approval_id"], started["workflow_id"]
    row = approver.locator(f'tr[data-approval="{approval_id}"]')
    expect(row).to_be_visible(timeout=15_000)  # arrives over SSE, no reload
    expect(row).to_contain_text("restart web (prod)")
    expect(row).to_contain_text("alice")
    expect(row).to_contain_text("0 / 1")
    inbox.shot(approver, "02-pending-live")

    _add_evidence(database_url, approval_id)
    row.get_by_role("link").click()
    expect(approver.get_by_role("heading", name="Approval request")).to_be_visible()
    expect(approver.get_by_test_id("step")).to_contain_text("restart")
    expect(approver.get_by_test_id("step")).to_contain_text("nothing undoes this step")
    expect(approver.get_by_role("heading", name="Risk:")).to_contain_text(
        started["risk"]["tier"].upper()  # type: ignore[index]
    )
    rule = approver.get_by_role("cell", name="prod-mutation", exact=True)
    expect(approver.get_by_test_id("rule").filter(has=rule)).to_contain_text("changes production")
    expect(approver.get_by_test_id("evidence")).to_have_count(2)
    logs = approver.get_by_test_id("evidence").first
    expect(logs).to_contain_text("request 0 served")
    expect(logs.locator("details pre")).to_be_hidden()
    logs.get_by_text("Show all").click()
    expect(logs.locator("details pre")).to_contain_text("request 79 served")
    inbox.shot(approver, "03-approval")

    requester = browser.new_context().new_page()
    inbox.sign_in(requester, "alice", start=f"/inbox/approvals/{approval_id}")
    expect(requester.get_by_test_id("why-not")).to_contain_text("requested this work")
    expect(requester.get_by_role("button", name="Approve")).to_have_count(0)
    inbox.shot(requester, "04-requester-cannot-approve")

    approver.get_by_role("button", name="Reject").click()
    reason = approver.get_by_label("Reason for rejecting (required)")
    assert reason.evaluate("el => el.validity.valueMissing") is True
    expect(approver.get_by_test_id("approval-status")).to_have_text("pending")
    assert approver.url.endswith(f"/inbox/approvals/{approval_id}")

    approver.get_by_role("button", name="Approve").click()
    expect(approver.get_by_role("status").first).to_contain_text("Approved")
    expect(approver.get_by_test_id("approval-status")).to_have_text("approved")
    approver.get_by_role("link", name=workflow_id).click()
    expect(approver.get_by_test_id("workflow-status")).to_have_text("completed", timeout=30_000)
    approver.reload()
    expect(approver.get_by_test_id("audit-row").filter(has_text="approve")).to_contain_text(
        "view as shown"
    )
    inbox.shot(approver, "05-workflow-completed")
    approver.get_by_role("link", name="view as shown").click()
    expect(approver.get_by_test_id("replay-match")).to_be_visible()
    expect(approver.get_by_test_id("evidence")).to_have_count(2)
    inbox.shot(approver, "06-decision-replay")

    approver.goto(f"{inbox.base_url}/inbox/history")
    expect(approver.get_by_test_id("history-row").first).to_contain_text("approved")
    expect(approver.get_by_test_id("statistics")).to_contain_text(
        started["risk"]["tier"].upper()  # type: ignore[index]
    )
    inbox.shot(approver, "07-history")


def test_an_edit_comes_back_as_a_new_assessed_request(inbox: Inbox, browser: Browser) -> None:
    started = _orchestrate(inbox, "restart web on prod")
    approver = browser.new_context().new_page()
    inbox.sign_in(approver, "bob", start=f"/inbox/approvals/{started['approval_id']}")
    approver.get_by_text("Edit parameters").click()
    approver.get_by_label("timeout").fill("5")
    approver.get_by_role("button", name="Submit edit").click()
    expect(approver.get_by_role("status").first).to_contain_text("Edit recorded")
    inbox.shot(approver, "08-edit-recorded")

    def second_round() -> int:
        approver.reload()
        return approver.get_by_role("link", name="Round 2").count()

    wait_for(second_round, until=lambda n: n == 1, timeout_s=30, interval_s=0.5, what="round 2")
    approver.get_by_role("link", name="Round 2").click()
    expect(approver.get_by_test_id("approval-status")).to_have_text("pending")
    expect(approver.get_by_test_id("step")).to_contain_text("timeout")
    expect(approver.get_by_test_id("step")).to_contain_text("5")
    expect(approver.get_by_role("heading", name="Risk:")).to_be_visible()
    expect(approver.get_by_test_id("why-not")).to_contain_text("edited this plan")
    inbox.shot(approver, "09-edited-request")


def test_a_notification_link_opens_its_approval_after_sign_in(
    inbox: Inbox, browser: Browser
) -> None:
    started = _orchestrate(inbox, "restart web on prod")
    notified = wait_for(
        lambda: [n for n in inbox.received if n.get("approval_id") == started["approval_id"]],
        until=bool,
        what="approval_requested notification",
    )
    link = notified[0]["approval_url"]
    assert link == f"{inbox.base_url}/inbox/approvals/{started['approval_id']}"
    page = browser.new_context().new_page()
    page.goto(link)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("API key").fill("demo-ops-lead-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Approval request")).to_be_visible()
    assert page.url == link
    expect(page.get_by_role("button", name="Approve")).to_be_visible()
    inbox.shot(page, "10-notification-link")
