"""Messages the chat answers without any planner: decisions on approvals ("yes, approve",
"reject it because ...") and "what is pending". Matched by fixed patterns, never by a model, so
no model output can ever turn into an approval.

A decision is recorded only when the message plainly makes one: the decision word, what it is
about (an id, "it", "this"...) and at most a reason. A message that talks about a decision
without plainly making it (a question, a hedge, a condition, a change, a report of an earlier
decision) is still read as about one, and gets a question back: nothing is decided.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)
_SEP = r"[\s,.!:;-]*"
_APPROVE = re.compile(
    rf"^\s*(?:(?:yes|yep|yeah|ok|okay|sure|fine)\b{_SEP})?(?:approve|lgtm)\b(?P<rest>.*)$",
    re.IGNORECASE | re.DOTALL,
)
_REJECT = re.compile(
    rf"^\s*(?:(?:no|nope)\b{_SEP})?(?:reject|deny|decline)\b(?P<rest>.*)$",
    re.IGNORECASE | re.DOTALL,
)
# A message about a decision that does not plainly make one: "I approved it yesterday",
# "approved?", "don't approve yet", "can you reject it?". Only the first few small words may
# stand before the decision word, so "who must approve this?" is a question for the planner.
_SMALL_WORDS = (
    "yes|yep|yeah|ok|okay|sure|fine|no|nope|so|well|and|but|then|i|we|you|i'd|i'll|i've|we'll|"
    "we've|do|does|did|don't|dont|doesn't|didn't|not|never|already|just|will|won't|can|can't|"
    "cannot|could|should|shall|would|may|might|must|have|has|had|haven't|hasn't|to|go|ahead|"
    "maybe|probably|still|wait|hold|on|hmm|um"
)
_TALK = re.compile(
    rf"^\s*(?:(?:{_SMALL_WORDS})(?![\w'])[\s,.!:;-]*){{0,4}}"
    r"(?P<word>approv(?:e|ed|es|ing)|lgtm|reject(?:ed|s|ing)?|den(?:y|ied|ies|ying)"
    r"|declin(?:e|ed|es|ing))\b",
    re.IGNORECASE,
)
# What may stand between the decision word and its reason: "reject it, because <reason>".
_HEAD = re.compile(
    r"(?:[\s,.;:!-]+|\b(?:it|this|that|the|approval|request|one|please|now)\b)*", re.IGNORECASE
)
_INTRO = re.compile(r"(?:because|since|as|reason|for)\b[\s,.;:!-]*", re.IGNORECASE)
# Words that make a message a question, a condition or a hedge rather than a decision.
_HEDGE = re.compile(
    r"\?|\b\w*n['\u2019]t\b|\b(?:not|no|never|dont|wait|waiting|hold|later|yet|if|unless|but|after|"
    r"before|first|until|till|once|when|then|instead|change|changed|modify|edit|maybe|"
    r"perhaps|unsure)\b",
    re.IGNORECASE,
)
_MORE = re.compile(r"^(?:and|also|plus|then)\b", re.IGNORECASE)
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
    doubt: str | None = None
    """Why the message does not plainly decide (a question, a hedge, a condition, a report of
    an earlier decision): it is asked about and nothing is decided."""


def decision_in(message: str) -> DecisionRequest | None:
    """The decision a message starts with, if it starts with one; when it talks about one
    without plainly making it, a request whose `doubt` says why."""
    for decision, pattern in (("approve", _APPROVE), ("reject", _REJECT)):
        match = pattern.match(message)
        if match is not None:
            return _read("approve" if decision == "approve" else "reject", match["rest"])
    talk = _TALK.match(message.replace("\u2019", "'"))
    if talk is None:
        return None
    word = talk["word"].lower()
    ids = _UUID.findall(message)
    return DecisionRequest(
        decision="approve" if word.startswith(("approv", "lgtm")) else "reject",
        approval_id=UUID(ids[0]) if ids else None,
        reason=None,
        named=len(set(ids)),
        doubt=_talk_doubt(message, word, message[: talk.start("word")]),
    )


def _read(decision: Literal["approve", "reject"], rest: str) -> DecisionRequest:
    """What follows the decision word: ids and filler, then nothing or a reason."""
    ids = _UUID.findall(rest)
    body = _UUID.sub(" ", rest)
    head = _HEAD.match(body)
    end = head.end() if head else 0
    after = body[end:]
    separator = body[:end].strip()[-1:]  # "reject it, <reason>", "reject it: <reason>"
    intro = _INTRO.match(after)
    reason = (after[intro.end() :] if intro else after).strip() or None
    free = intro is not None or separator == ":"  # "because <reason>", "reject it: <reason>"
    doubt = None
    if "?" in body[:end] or (intro is None and not separator and "?" in after):
        doubt = "the message asks a question"
    elif reason is not None and (hedge := _hedge(reason, free=decision == "reject" and free)):
        doubt = f"'{hedge}' makes it a question, a condition or a change"
    elif reason is not None and intro is None and not separator:
        doubt = f"the message says more than the decision ('{_quote(reason)}')"
    return DecisionRequest(
        decision=decision,
        approval_id=UUID(ids[0]) if ids else None,
        reason=reason,
        named=len(set(ids)),
        doubt=doubt,
    )


def _hedge(reason: str, *, free: bool) -> str | None:
    """The word in a reason that takes the decision back. An approval's reason must not; a
    rejection's reason after "because" is free text ("because it is not safe yet")."""
    if free:
        return None
    found = _HEDGE.search(reason) or _MORE.match(reason)
    return found.group() if found else None


def _talk_doubt(message: str, word: str, before: str) -> str:
    if word not in ("approve", "lgtm", "reject", "deny", "decline"):
        return f"'{word}' reports a decision rather than making one"
    if "?" in message:
        return "the message asks a question"
    if (hedge := _HEDGE.search(before)) is not None:
        return f"'{hedge.group()}' makes it a question, a condition or a change"
    return "the message does not start with the decision"


def _quote(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


REASON_MAX_CHARS = 2000  # what an approval records of a reason (the REST bodies' bound)


def unclear(request: DecisionRequest, approval_id: UUID | None) -> str | None:
    """The question to ask instead of deciding `approval_id`, when the message does not say
    one thing: deciding the first of several approvals and dropping the rest would be a guess,
    a question or a condition is not a decision, and a rejection needs its why."""
    if request.named > 1:
        return (
            f"That names {request.named} approvals; I decide one per message. Say "
            f"'{request.decision} <approval id>' for each."
        )
    if request.doubt is not None:
        return undecided(request, approval_id)
    if approval_id is None:
        return f"Which approval do you mean? Say '{request.decision} <approval id>'."
    if request.decision == "reject" and not request.reason:
        return f"Say why, for example 'reject {approval_id} because it is peak traffic'."
    if request.reason and len(request.reason) > REASON_MAX_CHARS:
        return (
            f"Keep the reason under {REASON_MAX_CHARS:,} characters, as the approval records "
            "it; nothing was decided."
        )
    return None


def undecided(request: DecisionRequest, approval_id: UUID | None) -> str:
    """What a message that talks about a decision without making one is answered."""
    named = str(approval_id) if approval_id is not None else "<id>"
    return (
        f"Nothing was decided: {request.doubt}. To approve, "
        f"say 'approve {named}' (optionally 'because <reason>'); to reject, say 'reject "
        f"{named} because <reason>'; to change the plan, reject it and ask again."
    )


def asks_for_pending(message: str) -> bool:
    """ "What is pending?", "anything awaiting approval?"."""
    return _PENDING.search(message) is not None
