"""What the agent sends Slack in answer to a click: ephemeral explanations, the updated
message, and the reject-reason dialog."""

from __future__ import annotations

import json
from typing import Any

from shared.lib.approvals.service import DecisionView

REJECT_CALLBACK = "approval_reject_reason"
REASON_BLOCK = "reason"
REASON_INPUT = "reason"
REASON_MAX_CHARS = 2000
"""As the REST API's reject body allows."""


def ephemeral(text: str) -> dict[str, Any]:
    """Shown only to the person who clicked; the original message stays as it was."""
    return {"response_type": "ephemeral", "replace_original": False, "text": text}


def outcome_message(view: DecisionView, *, actor: str, decision: str, link: str) -> dict[str, Any]:
    """The approval message, replaced by what happened to it (the buttons go away)."""
    done = {"approve": "approved", "reject": "rejected"}.get(decision, decision)
    if view.status == "pending":
        progress = f"{view.approvals_received} of {view.required_approvals} approvals so far"
        text = f"{actor} approved; {progress}. The request still waits for more approvers."
    else:
        resumes = " The workflow resumes." if view.resumed else ""
        text = f"Approval {view.approval_id} {done} by {actor}: now {view.status}.{resumes}"
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{link}|Open approval>"}]},
    ]
    return {"replace_original": True, "text": text, "blocks": blocks}


def reject_dialog(*, approval_id: str, shown: str | None, response_url: str) -> dict[str, Any]:
    """The modal that asks for a rejection's reason; submitting it rejects."""
    metadata = {"approval_id": approval_id, "shown": shown, "response_url": response_url}
    return {
        "type": "modal",
        "callback_id": REJECT_CALLBACK,
        "private_metadata": json.dumps(metadata, separators=(",", ":")),
        "title": {"type": "plain_text", "text": "Reject request"},
        "submit": {"type": "plain_text", "text": "Reject"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": {"type": "plain_text", "text": "Why reject it?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_INPUT,
                    "multiline": True,
                    "max_length": REASON_MAX_CHARS,
                },
            }
        ],
    }
