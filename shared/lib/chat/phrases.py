"""Messages the chat answers without any planner: decisions on approvals ("yes, approve",
"reject it because ...") and "what is pending". Matched by fixed patterns, never by a model, so
no model output can ever turn into an approval."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)
_LEAD = r"^\s*(?:(?:{words})\b[\s,.!:;-]*)?(?:i\s+)?"
_APPROVE = re.compile(
    _LEAD.format(words="yes|yep|yeah|ok|okay|sure|fine")
    + r"(?:approved?|approves|lgtm)\b(?P<rest>.*)$",
    re.IGNORECASE | re.DOTALL,
)
_REJECT = re.compile(
    _LEAD.format(words="no|nope") + r"(?:reject(?:ed|s)?|deny|decline)\b(?P<rest>.*)$",
    re.IGNORECASE | re.DOTALL,
)
# What stands between the decision word and its reason: "reject it, because <reason>".
_FILLER = re.compile(
    r"^[\s,.;:!-]*(?:(?:it|this|that|the|approval|request|one|please)\b[\s,.;:!-]*)*"
    r"(?:(?:because|since|as|reason|for)\b[\s,.;:!-]*)?",
    re.IGNORECASE,
)
_PENDING = re.compile(
    r"\bpending\b|\b(?:waiting|awaiting|waits)\s+(?:for\s+)?(?:an?\s+)?approvals?\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class DecisionRequest:
    """A decision typed in chat; without an id it means the session's pending approval."""

    decision: Literal["approve", "reject"]
    approval_id: UUID | None
    reason: str | None
    named: int = 0
    """How many approval ids the message names: more than one is asked about, not decided."""


def decision_in(message: str) -> DecisionRequest | None:
    """The decision a message starts with, if it starts with one."""
    for decision, pattern in (("approve", _APPROVE), ("reject", _REJECT)):
        match = pattern.match(message)
        if match is None:
            continue
        rest = match["rest"]
        ids = _UUID.findall(rest)
        reason = _FILLER.sub("", _UUID.sub(" ", rest)).strip() or None
        return DecisionRequest(
            decision="approve" if decision == "approve" else "reject",
            approval_id=UUID(ids[0]) if ids else None,
            reason=reason,
            named=len(set(ids)),
        )
    return None


REASON_MAX_CHARS = 2000  # what an approval records of a reason (the REST bodies' bound)


def unclear(request: DecisionRequest, approval_id: UUID | None) -> str | None:
    """The question to ask instead of deciding `approval_id`, when the message does not say
    one thing: deciding the first of several approvals and dropping the rest would be a guess,
    and a rejection needs its why."""
    if request.named > 1 or approval_id is None:
        return (
            f"That names {request.named} approvals; I decide one per message. Say "
            f"'{request.decision} <approval id>' for each."
        )
    if request.decision == "reject" and not request.reason:
        return f"Say why, for example 'reject {approval_id} because it is peak traffic'."
    if request.reason and len(request.reason) > REASON_MAX_CHARS:
        return (
            f"Keep the reason under {REASON_MAX_CHARS:,} characters, as the approval records "
            "it; nothing was decided."
        )
    return None


def asks_for_pending(message: str) -> bool:
    """ "What is pending?", "anything awaiting approval?"."""
    return _PENDING.search(message) is not None
