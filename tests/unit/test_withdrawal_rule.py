"""Which runs end `withdrawn` at their gates once alerts resolved (graphs/withdrawal.py): only a
recovery alerts asked for, as the webhook decides; a person's request never, and no store is
asked about it. The routes send a withdrawn run to its report, past its claim and its gate."""

from __future__ import annotations

from typing import Any, cast

import pytest

from graphs.context import WorkflowContext
from graphs.ownership import after_claim, after_wait
from graphs.state import WorkflowState
from graphs.withdrawal import alert_withdrawal
from graphs.workflow import after_request
from shared.lib.planning.models import PlannedOperation
from shared.lib.workflows.models import WorkRequest

RESTART = [PlannedOperation(operation="restart", target="web", environment="dev")]


class _Alerts:
    def __init__(self, cleared: bool) -> None:
        self.cleared = cleared
        self.asked: list[tuple[str, int]] = []

    async def __call__(self, workflow_id: str, *, alert_id: int) -> bool:
        self.asked.append((workflow_id, alert_id))
        return self.cleared


def _state(request: WorkRequest) -> WorkflowState:
    return {"workflow_id": "wf-1", "request": request.model_dump(mode="json")}


def _ctx(alerts: _Alerts) -> WorkflowContext:
    return cast(WorkflowContext, type("Ctx", (), {"alerts_cleared": alerts})())


FROM_ALERT = WorkRequest(
    source="alert",
    requester="alertmanager",
    steps=RESTART,
    alert={"alert_id": 7, "alertname": "ServiceDown", "fingerprint": "fp"},
)


async def test_a_persons_request_is_never_withdrawn_and_nothing_is_read() -> None:
    alerts = _Alerts(cleared=True)
    person = WorkRequest(source="api", requester="alice", steps=RESTART)
    assert await alert_withdrawal(_ctx(alerts), _state(person), when="now") is None
    assert alerts.asked == []


@pytest.mark.parametrize("cleared", [True, False])
async def test_an_alerts_recovery_ends_once_its_alerts_cleared(cleared: bool) -> None:
    alerts = _Alerts(cleared=cleared)
    decision = await alert_withdrawal(_ctx(alerts), _state(FROM_ALERT), when="before x")
    assert alerts.asked == [("wf-1", 7)]
    if not cleared:
        assert decision is None
        return
    assert decision == {
        "outcome": "withdrawn",
        "reason": "alert ServiceDown resolved before x; the recovery is no longer needed",
    }


def test_a_withdrawn_run_goes_to_its_report_from_its_claim_wait_and_request() -> None:
    withdrawn: dict[str, Any] = {"decision": {"outcome": "withdrawn", "reason": "gone"}}
    assert after_claim(cast(WorkflowState, {**withdrawn, "claim": None})) == "report"
    assert after_wait(cast(WorkflowState, withdrawn)) == "report"
    assert after_request(cast(WorkflowState, withdrawn)) == "report"
    asking: WorkflowState = {"decision": {"outcome": "edited"}, "claim": {"outcome": "owned"}}
    assert after_claim(asking) == "investigate"
    assert after_request(asking) == "gate"
    assert after_request({}) == "gate"
