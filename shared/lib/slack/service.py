"""Answer Slack's interactivity requests: verify the signature, map the Slack member to a
principal, decide through the one `ApprovalService`, and tell Slack what happened.

Slack wants an answer to a click within 3 seconds and ignores its body; what the clicker sees
goes to the click's `response_url`. A view submission is answered in the HTTP reply itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import parse_qs
from uuid import UUID

from pydantic import BaseModel
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from shared.lib.approvals.eligibility import why_cannot_decide
from shared.lib.approvals.service import ApprovalService
from shared.lib.approvals.store import ApprovalStore
from shared.lib.errors import DomainError
from shared.lib.notifications.formats import APPROVE_ACTION, REJECT_ACTION
from shared.lib.principals import Principal, PrincipalDirectory
from shared.lib.slack import messages

log = logging.getLogger(__name__)


class SlackSignatureError(DomainError):
    status_code = 401


class SlackDisabledError(DomainError):
    status_code = 404  # off until its signing secret is set: nothing to reach here


class SlackPayloadError(DomainError):
    status_code = 400


class Click(BaseModel):
    """One button press, as the agent needs it."""

    user_id: str
    action_id: str
    approval_id: UUID
    shown: str | None = None
    response_url: str
    trigger_id: str | None = None


class SlackInteractivity:
    def __init__(
        self,
        *,
        signing_secret: str | None,
        bot_token: str | None,
        api_url: str,
        public_url: str,
        principals: PrincipalDirectory,
        decisions: ApprovalService,
        approvals: ApprovalStore,
    ) -> None:
        self._verifier = SignatureVerifier(signing_secret) if signing_secret else None
        self._web = WebClient(token=bot_token, base_url=api_url, timeout=10)
        self._public_url = public_url.rstrip("/")
        self._principals = principals
        self._decisions = decisions
        self._approvals = approvals

    async def handle(
        self, *, body: bytes, timestamp: str | None, signature: str | None
    ) -> dict[str, Any] | None:
        """Act on one interactivity request; what to answer Slack with (None: an empty 200)."""
        self._verify(body, timestamp, signature)
        payload = _payload(body)
        kind = payload.get("type")
        if kind == "block_actions":
            await self._clicked(_click(payload))
            return None
        if kind == "view_submission":
            return await self._submitted(payload)
        log.info("slack interaction ignored", extra={"slack_type": kind})
        return None

    def _verify(self, body: bytes, timestamp: str | None, signature: str | None) -> None:
        if self._verifier is None:
            raise SlackDisabledError(
                "Slack interactivity is off: set AGENT_SLACK_SIGNING_SECRET to the app's "
                "Signing Secret (docs/inbox.md)"
            )
        # Checks the HMAC and that the timestamp is within 5 minutes of now (replays).
        if not self._verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
            raise SlackSignatureError(
                "bad or stale Slack signature: X-Slack-Signature must be the v0 HMAC of the "
                "raw body keyed with the app's Signing Secret, and X-Slack-Request-Timestamp "
                "within 5 minutes of now"
            )

    async def _clicked(self, click: Click) -> None:
        principal = self._principals.by_slack_user(click.user_id)
        if principal is None:
            await self._respond(click.response_url, messages.ephemeral(_unmapped(click.user_id)))
            return
        if click.action_id == REJECT_ACTION:
            await self._ask_reason(click, principal)
            return
        if click.action_id != APPROVE_ACTION:
            return
        await self._decide(
            principal, click.approval_id, "approve", None, click.shown, click.response_url
        )

    async def _ask_reason(self, click: Click, principal: Principal) -> None:
        record = await self._approvals.get(click.approval_id)
        why_not = why_cannot_decide(record, principal)
        if why_not is not None:
            await self._respond(click.response_url, messages.ephemeral(why_not))
            return
        view = messages.reject_dialog(
            approval_id=str(click.approval_id), shown=click.shown, response_url=click.response_url
        )
        try:
            await asyncio.to_thread(self._web.views_open, trigger_id=click.trigger_id, view=view)
        except SlackApiError as error:
            log.warning("views.open failed", extra={"error": str(error)})
            text = f"could not open the reason dialog ({error.response.get('error')}); reject "
            text += f"in the inbox instead: {self._link(click.approval_id)}"
            await self._respond(click.response_url, messages.ephemeral(text))

    async def _submitted(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        view = payload.get("view") or {}
        if view.get("callback_id") != messages.REJECT_CALLBACK:
            return None
        user_id = str((payload.get("user") or {}).get("id", ""))
        principal = self._principals.by_slack_user(user_id)
        if principal is None:
            return _field_error(_unmapped(user_id))
        try:
            metadata = json.loads(view.get("private_metadata") or "{}")
            approval_id = UUID(metadata["approval_id"])
            values = view["state"]["values"][messages.REASON_BLOCK][messages.REASON_INPUT]
        except (KeyError, ValueError, TypeError) as error:
            raise SlackPayloadError(
                f"view_submission without its approval or reason: {error}"
            ) from None
        reason = str(values.get("value") or "").strip()
        if not reason:
            return _field_error("say why you reject it; the requester reads this")
        refused = await self._decide(
            principal,
            approval_id,
            "reject",
            reason,
            metadata.get("shown"),
            str(metadata.get("response_url") or ""),
        )
        return _field_error(refused) if refused else None

    async def _decide(
        self,
        principal: Principal,
        approval_id: UUID,
        decision: Any,
        reason: str | None,
        shown: str | None,
        response_url: str,
    ) -> str | None:
        """Decide; tell the channel the outcome, or the clicker why not (returned too)."""
        try:
            view = await self._decisions.decide(
                principal=principal,
                approval_id=approval_id,
                decision=decision,
                reason=reason,
                shown_hash=shown,
                channel="slack",
            )
        except DomainError as refused:
            if response_url:
                await self._respond(response_url, messages.ephemeral(str(refused)))
            return str(refused)
        if response_url:
            outcome = messages.outcome_message(
                view, actor=principal.name, decision=decision, link=self._link(approval_id)
            )
            await self._respond(response_url, outcome)
        return None

    async def _respond(self, response_url: str, message: dict[str, Any]) -> None:
        client = WebhookClient(response_url, timeout=10)
        response = await asyncio.to_thread(client.send_dict, message)
        if response.status_code >= 300:
            log.warning(
                "slack response_url refused the message",
                extra={"status": response.status_code, "body": response.body[:200]},
            )

    def _link(self, approval_id: UUID) -> str:
        return f"{self._public_url}/inbox/approvals/{approval_id}"


def _payload(body: bytes) -> dict[str, Any]:
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=True)
        payload = json.loads(form["payload"][0])
    except (KeyError, ValueError, UnicodeDecodeError) as error:
        raise SlackPayloadError(
            f"expected a form body with a JSON 'payload' field (Slack's format): {error}"
        ) from None
    if not isinstance(payload, dict):
        raise SlackPayloadError("the 'payload' field is not a JSON object")
    return payload


def _click(payload: dict[str, Any]) -> Click:
    try:
        action = payload["actions"][0]
        value = json.loads(action["value"])
        return Click(
            user_id=payload["user"]["id"],
            action_id=action["action_id"],
            approval_id=value["approval_id"],
            shown=value.get("shown"),
            response_url=payload["response_url"],
            trigger_id=payload.get("trigger_id"),
        )
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise SlackPayloadError(
            f"block_actions payload without a decision button: {error}"
        ) from None


def _unmapped(user_id: str) -> str:
    return (
        f"your Slack account ({user_id}) is not mapped to an approver; ask an admin to add "
        f"`slack_user_id: {user_id}` to your entry in config/hitl/principals.yml. "
        "Nothing was changed."
    )


def _field_error(text: str) -> dict[str, Any]:
    return {"response_action": "errors", "errors": {messages.REASON_BLOCK: text[:1900]}}
