"""Answer Slack's interactivity requests: verify the signature, map the Slack member to a
principal, decide through the one `ApprovalService`, and tell Slack what happened.

Slack wants an answer to a click within 3 seconds and ignores its body; what the clicker sees
goes to the click's `response_url`. A view submission is answered in the HTTP reply itself.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from uuid import UUID

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
from shared.lib.safe_input import text_problem
from shared.lib.slack import messages, payloads
from shared.lib.slack.payloads import Click, SlackPayloadError

log = logging.getLogger(__name__)


class SlackSignatureError(DomainError):
    status_code = 401


class SlackDisabledError(DomainError):
    status_code = 404  # off until its signing secret is set: nothing to reach here


MAX_TIMESTAMP_DIGITS = 12
"""Unix seconds have 10 digits until the year 2286; more is not a time Slack sends."""


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
        payload = payloads.form_payload(self._verify(body, timestamp, signature))
        kind = payload.get("type")
        if kind == "block_actions":
            await self._clicked(payloads.click(payload))
            return None
        if kind == "view_submission":
            return await self._submitted(payload)
        log.info("slack interaction ignored", extra={"slack_type": kind})
        return None

    def _verify(self, body: bytes, timestamp: str | None, signature: str | None) -> str:
        """The body as text, once its signature checks out."""
        if self._verifier is None:
            raise SlackDisabledError(
                "Slack interactivity is off: set AGENT_SLACK_SIGNING_SECRET to the app's "
                "Signing Secret (docs/inbox.md)"
            )
        _check_signing_headers(timestamp, signature)
        try:
            text = body.decode("utf-8")  # slack_sdk decodes it too, and raises on bad bytes
        except UnicodeDecodeError:
            raise SlackPayloadError(
                "the body is not UTF-8 text; Slack posts a URL-encoded form with a 'payload' field"
            ) from None
        # Checks the HMAC and that the timestamp is within 5 minutes of now (replays).
        if not self._verifier.is_valid(body=text, timestamp=timestamp, signature=signature):
            raise SlackSignatureError(
                "bad or stale Slack signature: X-Slack-Signature must be the v0 HMAC of the "
                "raw body keyed with the app's Signing Secret, and X-Slack-Request-Timestamp "
                "within 5 minutes of now"
            )
        return text

    async def _clicked(self, click: Click) -> None:
        principal = self._principals.by_slack_user(click.user_id)
        if principal is None:
            text = _unmapped(click.user_id)
            await self._respond(click.response_url, messages.ephemeral(text), click.approval_id)
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
            await self._respond(click.response_url, messages.ephemeral(why_not), click.approval_id)
            return
        view = messages.reject_dialog(
            approval_id=str(click.approval_id), shown=click.shown, response_url=click.response_url
        )
        try:
            await asyncio.to_thread(self._web.views_open, trigger_id=click.trigger_id, view=view)
        except Exception as error:  # Slack said no, or could not be reached (urllib's errors)
            why = error.response.get("error") if isinstance(error, SlackApiError) else error
            log.warning("views.open failed", extra={"error": f"{type(error).__name__}: {error}"})
            text = f"could not open the reason dialog ({why}); reject in the inbox instead: "
            text += self._link(click.approval_id)
            await self._respond(click.response_url, messages.ephemeral(text), click.approval_id)

    async def _submitted(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        submitted = payloads.submission(payload)
        if submitted is None:
            return None
        principal = self._principals.by_slack_user(submitted.user_id)
        if principal is None:
            return _field_error(_unmapped(submitted.user_id))
        problem = _reason_problem(submitted.reason)
        if problem:
            return _field_error(problem)
        refused = await self._decide(
            principal,
            submitted.approval_id,
            "reject",
            submitted.reason.strip(),
            submitted.shown,
            submitted.response_url,
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
                await self._respond(response_url, messages.ephemeral(str(refused)), approval_id)
            return str(refused)
        if response_url:
            outcome = messages.outcome_message(
                view, actor=principal.name, decision=decision, link=self._link(approval_id)
            )
            await self._respond(response_url, outcome, approval_id)
        return None

    async def _respond(self, response_url: str, message: dict[str, Any], approval_id: UUID) -> None:
        """Best effort: by now the decision is recorded (or refused), and a message that cannot
        be delivered must not turn that into an error; the approval shows it in the inbox."""
        client = WebhookClient(response_url, timeout=10)
        try:
            response = await asyncio.to_thread(client.send_dict, message)
        except Exception as error:  # slack_sdk re-raises whatever urllib raised
            log.warning(
                "could not post to the Slack response_url",
                extra={
                    "approval_id": str(approval_id),
                    "error": f"{type(error).__name__}: {error}",
                },
            )
            return
        if response.status_code >= 300:
            log.warning(
                "slack response_url refused the message",
                extra={
                    "approval_id": str(approval_id),
                    "status": response.status_code,
                    "body": response.body[:200],
                },
            )

    def _link(self, approval_id: UUID) -> str:
        return f"{self._public_url}/inbox/approvals/{approval_id}"


def _check_signing_headers(timestamp: str | None, signature: str | None) -> None:
    """Refuse headers Slack never sends: slack_sdk's verifier raises on them (int() of the
    timestamp, compare_digest of a non-ASCII signature) instead of saying no."""
    if not (
        timestamp
        and timestamp.isascii()
        and timestamp.isdigit()
        and len(timestamp) <= MAX_TIMESTAMP_DIGITS
    ):
        raise SlackSignatureError(
            "X-Slack-Request-Timestamp must be the request's Unix time in whole seconds, as "
            "Slack sends it with the signature"
        )
    if not (signature and signature.isascii()):
        raise SlackSignatureError(
            "X-Slack-Signature must be the v0 HMAC of the raw body keyed with the app's "
            "Signing Secret, as Slack sends it"
        )


def _reason_problem(reason: str) -> str | None:
    """Why the dialog's reason cannot be stored; the REST API refuses the same (RejectBody)."""
    problem = text_problem(reason)
    if problem:
        return f"the reason {problem}"
    if not reason.strip():
        return "say why you reject it; the requester reads this"
    if len(reason) > messages.REASON_MAX_CHARS:
        return f"keep the reason to {messages.REASON_MAX_CHARS} characters (it has {len(reason)})"
    return None


def _unmapped(user_id: str) -> str:
    return (
        f"your Slack account ({user_id}) is not mapped to an approver; ask an admin to add "
        f"`slack_user_id: {user_id}` to your entry in config/hitl/principals.yml. "
        "Nothing was changed."
    )


def _field_error(text: str) -> dict[str, Any]:
    return {"response_action": "errors", "errors": {messages.REASON_BLOCK: text[:1900]}}
