"""From a Reading to what each clause asks: one intent (or a quoted command, or a URL probe) on
named targets. Anything left unclear makes the whole request a question; this module never
guesses a target or turns one verb into another."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from shared.lib.planning.clauses import Clause, Reading
from shared.lib.planning.errors import ClarificationNeeded
from shared.lib.planning.mentions import TargetMentions
from shared.lib.planning.vocabulary import Vocabulary


@dataclass
class ClauseIntent:
    """What one clause asks for: an intent, a quoted command or a URL, on these targets."""

    clause: Clause
    intent: str | None = None
    command: list[str] | None = None
    url: str | None = None
    targets: list[str] = field(default_factory=list)


def understand(
    reading: Reading,
    *,
    vocabulary: Vocabulary,
    mentions: TargetMentions,
    known: list[str],
    last_target: str | None,
    examples: list[str],
    text: str,
) -> list[ClauseIntent]:
    """Every clause that asks for something, with its targets; ClarificationNeeded otherwise."""
    items = [_first_reading(clause, vocabulary, mentions) for clause in reading.clauses]
    _continue_lists(items)
    asked = [item for item in items if _asks(item)]
    if not asked:
        if any(item.targets for item in items):
            names = sorted({name for item in items for name in item.targets})
            raise ClarificationNeeded(
                f"cannot tell what to do with {', '.join(names)} from {text!r}; I understand: "
                f"{'; '.join(examples)}",
                examples,
            )
        raise ClarificationNeeded(
            f"cannot tell what to do from {text!r}; I understand: {'; '.join(examples)}",
            examples,
        )
    for index, item in enumerate(items):
        if _describes_what_follows(items, index):
            continue  # "web is stuck, restart it": the clause says what "it" is
        if not _asks(item) and item.clause.leftover and not item.clause.flagged:
            raise ClarificationNeeded(
                f"I did not understand {item.clause.text!r} in {text!r}; say it as its own "
                "request, for example: " + "; ".join(examples[:3]),
                examples,
            )
    for index, item in enumerate(items):
        if _asks(item) and not item.targets and item.clause.pronoun:
            described = next((i.targets for i in reversed(items[:index]) if i.targets), None)
            item.targets = list(described or [])
    _borrow_targets(asked, last_target)
    for item in asked:
        if not item.targets and item.url is None:
            where = ", ".join(mentions.describe(name) for name in known)
            raise ClarificationNeeded(
                f"no known target named in {item.clause.text!r} (known: {where}); name one of them",
                known,
            )
    return asked


def _first_reading(
    clause: Clause, vocabulary: Vocabulary, mentions: TargetMentions
) -> ClauseIntent:
    item = ClauseIntent(clause=clause, targets=_targets(clause, mentions))
    misses = mentions.near_misses(clause.leftover, vocabulary=vocabulary)
    if misses:
        word, names = next(iter(misses.items()))
        if names:
            shown = " or ".join(mentions.describe(name) for name in names)
            raise ClarificationNeeded(f"I don't know '{word}'; did you mean {shown}?", names)
        raise ClarificationNeeded(
            f"I don't know a target called '{word}'; name a configured target", []
        )
    strong = _strong_intents(clause, vocabulary)
    if clause.commands:
        if strong:
            raise ClarificationNeeded(
                f"in {clause.text!r}, run the quoted command or {strong[0]}? Say one of them",
                [strong[0], "run the quoted command"],
            )
        if len(clause.commands) > 1:
            raise ClarificationNeeded("quote one command per clause", [])
        try:
            item.command = shlex.split(clause.commands[0])
        except ValueError as error:
            raise ClarificationNeeded(f"cannot read the quoted command: {error}", []) from None
        return item
    if len(strong) > 1:
        raise ClarificationNeeded(
            f"{clause.text!r} asks for {' and '.join(strong)}; which one? "
            "(give each its own clause, joined by 'and')",
            strong,
        )
    if not strong:
        unsupported = clause.of_kind("unsupported")
        if unsupported:
            entry = next(e for e in vocabulary.unsupported if e.id == unsupported[0].name)
            raise ClarificationNeeded(f"{entry.reason} (asked: {clause.text!r})", [])
    if clause.urls and (not strong or strong == ["health"]):
        item.url = clause.urls[0].rstrip(".,;)")
        return item
    if strong:
        item.intent = strong[0]
        return item
    hints = sorted({match.name for match in clause.of_kind("hint")})
    if len(hints) == 1:
        item.intent = hints[0]
    return item


def _strong_intents(clause: Clause, vocabulary: Vocabulary) -> list[str]:
    names = []
    for match in clause.of_kind("intent", "question"):
        if match.name not in names:
            names.append(match.name)
    # A generic word gives way to a specific one in the same clause ("tail the journal").
    return [
        name
        for name in names
        if not any(other in vocabulary.intents[name].yields_to for other in names if other != name)
    ]


def _targets(clause: Clause, mentions: TargetMentions) -> list[str]:
    names: list[str] = []
    settled = {name for m in clause.mentions if len(m.names) == 1 or m.plural for name in m.names}
    for mention in clause.mentions:
        if len(mention.names) > 1 and not mention.plural and settled & set(mention.names):
            continue  # "nginx on lb1", "nginx on both load balancers": the rest settles it
        if len(mention.names) > 1 and not mention.plural:
            shown = ", ".join(mentions.describe(name) for name in mention.names)
            raise ClarificationNeeded(
                f"'{mention.text}' could be {shown}; which one? (say 'all {mention.text}s' "
                "for every one)",
                list(mention.names),
            )
        names += [name for name in mention.names if name not in names]
    return names


def _describes_what_follows(items: list[ClauseIntent], index: int) -> bool:
    item = items[index]
    if _asks(item) or not item.targets:
        return False
    later = items[index + 1 :]
    return any(_asks(i) and not i.targets and i.clause.pronoun for i in later)


def _asks(item: ClauseIntent) -> bool:
    return item.intent is not None or item.command is not None or item.url is not None


def _continue_lists(items: list[ClauseIntent]) -> None:
    """ "restart web, api and worker": a clause of only names continues the previous intent."""
    previous: ClauseIntent | None = None
    for item in items:
        if not _asks(item) and item.targets and not item.clause.leftover and previous:
            item.intent, item.command, item.url = previous.intent, previous.command, previous.url
        if _asks(item):
            previous = item


def _borrow_targets(asked: list[ClauseIntent], last_target: str | None) -> None:
    """A clause without a name means the targets of the clause before it ("restart web and
    show its logs"), or of the one after ("show logs and stats for web"), or, for "it" in a
    conversation, what the conversation was about."""
    for index, item in enumerate(asked):
        if item.targets or item.url is not None:
            continue
        before = next((i.targets for i in reversed(asked[:index]) if i.targets), None)
        after = next((i.targets for i in asked[index + 1 :] if i.targets), None)
        if before:
            item.targets = list(before)
        elif item.clause.pronoun and last_target:
            item.targets = [last_target]
        elif after:
            item.targets = list(after)
        elif last_target and index == 0 and len(asked) == 1 and item.clause.pronoun:
            item.targets = [last_target]
