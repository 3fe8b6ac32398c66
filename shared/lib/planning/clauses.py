"""Reading a request the way an on-call engineer writes it: quoted commands and URLs set aside
verbatim, rule-changing text flagged, then one clause at a time, each with what it asks for
(an intent, a command, a refusal) and which targets it names."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from shared.lib.planning.mentions import STOPWORDS, Mention, TargetMentions
from shared.lib.planning.models import RequestFlag
from shared.lib.planning.vocabulary import (
    TARGET_TOKEN,
    PhraseMatch,
    Vocabulary,
    find_any,
    find_phrases,
)

RULE_CHANGE = "rule-change"
URL = re.compile(r"https?://[^\s\"'<>`]+", re.IGNORECASE)
_QUOTED = re.compile("`([^`]+)`|\"([^\"]+)\"|\u201c([^\u201d]+)\u201d|(?<![\\w])'([^']+)'(?![\\w])")
_SPLIT = re.compile(
    r"\s*(?:[;!?\n]|\.(?:\s|$)|,|\s&\s|\b(?:and then|and also|after that|afterwards|then|and"
    r"|but|also|plus)\b)\s*"
)
# "since 10 minutes" is a time (logs), not a reason.
_REASON = re.compile(r"\b(?:because|since(?!\s+\d)|cause|cuz|coz|due to|so that)\b.*$")
# "restart all but worker": kept in one clause as an exception (a hedge), never split at "but".
_ALL_BUT = re.compile(r"\b(?:(all|everything|everyone|anything)\s+but|but\s+not)\b")
_PRONOUN = re.compile(r"\b(?:it|its|it's|them|they|their|that one|this one|the same|same one)\b")
_WORDS = re.compile(r"[a-z0-9@][a-z0-9@._'/-]*")
# A minus sign is kept ("last -5 lines"), so the catalog refuses the count instead of the
# planner reading 5.
_TAIL = re.compile(
    r"\b(?:last|tail|past|latest|first)\s+(-?\d+)(?:\s+(?:log\s+)?lines?)?\b"
    r"|(?<![\w-])(-?\d+)\s+(?:log\s+)?lines?\b"
)
_SINCE = re.compile(
    r"\b(?:last|past|since|for the last|for the past)\s+(?:(\d+)\s*)?"
    r"(s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?)\b"
)
_ARTICLE = re.compile(r"\b(?:(?:all|both|every|each)\s+(?:of\s+)?)?(?:the|our|my|a|an)\s+@target")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# "on dve", "in develop": a word where an environment goes ("the" allowed before it).
_PLACE = re.compile(r"\b(?:on|in)\s+(?:the\s+)?([^\s,;:!?()]+)")


@dataclass
class Clause:
    """One clause of a request and what was found in it."""

    text: str
    mentions: list[Mention] = field(default_factory=list)
    phrases: list[PhraseMatch] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    pronoun: bool = False
    flagged: bool = False
    leftover: list[str] = field(default_factory=list)
    hedges: list[tuple[str, str]] = field(default_factory=list)
    """(hedge id, the words found): a negation, question, condition, time, exception or
    option that makes the clause other than a plain request (config/vocabulary.yml)."""

    def of_kind(self, *kinds: str) -> list[PhraseMatch]:
        return [match for match in self.phrases if match.kind in kinds]


@dataclass
class Reading:
    """The whole request: its clauses, environments named, flags, and self references."""

    clauses: list[Clause]
    environments: set[str]
    unknown_environments: set[str]
    flags: list[RequestFlag]
    self_words: list[str]
    reason: str = ""
    """The text from "because" (or "since", "due to") on, set aside before the clauses."""


class RequestReader:
    """Turns text into a Reading; knows words, never decides what to run."""

    def __init__(
        self, *, vocabulary: Vocabulary, mentions: TargetMentions, environments: list[str]
    ) -> None:
        self._vocabulary = vocabulary
        self._mentions = mentions
        self._environments = environments
        words = {name: name for name in environments}
        for name, aliases in vocabulary.environments.aliases().items():
            if name in environments:
                words |= {alias: name for alias in aliases}
        self._environment_words = words
        self._unknown = [w for w in vocabulary.environments.unknown if w not in words]

    def read(self, text: str) -> Reading:
        text = " ".join(text.replace("\u2019", "'").replace("\u2018", "'").split())
        commands: list[str] = []  # first: a URL inside a quoted command stays in the command
        text = _QUOTED.sub(lambda m: self._quoted(m, commands), text)
        urls: list[str] = []
        text = URL.sub(lambda m: _placeholder(urls, m.group(0).rstrip(".,;)"), "@url"), text)
        lowered = text.lower()
        flags = [
            RequestFlag(kind=RULE_CHANGE, evidence=phrase)
            for phrase in find_any(lowered, self._vocabulary.rule_change)
        ]
        self_words = find_any(lowered, self._vocabulary.self_words)
        lowered = self._join_mentions(lowered)
        environments, unknown, lowered = self._environments_in(lowered)
        reason = _REASON.search(lowered)
        lowered = _ALL_BUT.sub(lambda m: f"{m.group(1) or ''} except", _REASON.sub("", lowered))
        lowered = self._protect(lowered)
        clauses = [
            self._clause(part.lower(), commands=commands, urls=urls)
            for part in _SPLIT.split(lowered)
            if part and part.strip()
        ]
        return Reading(
            clauses, environments, unknown, flags, self_words, reason.group(0) if reason else ""
        )

    def requests_in(self, reason: str) -> list[str]:
        """The parts of a reason after its first that ask for something ("because it is stuck
        and stop payments": "stop payments")."""
        parts = [part for part in _SPLIT.split(reason) if part and part.strip()][1:]
        return [
            part
            for part in parts
            if any(match.kind != "hint" for match in find_phrases(part, self._vocabulary))
        ]

    def _quoted(self, match: re.Match[str], commands: list[str]) -> str:
        inner = next(group for group in match.groups() if group is not None)
        if URL.fullmatch(inner.strip()):
            return f" {inner.strip()} "  # a quoted URL is a URL to probe, not a command
        plain = " ".join(inner.lower().split())
        found = self._mentions.find(plain)
        whole = len(found) == 1 and (found[0].start, found[0].end) == (0, len(plain))
        if plain in self._environment_words or whole:
            return f" {inner} "  # a quoted name is a name, not a command
        return " " + _placeholder(commands, inner, "@cmd") + " "

    def _join_mentions(self, text: str) -> str:
        """Multi-word names stay whole ("dev box" is a target, not the dev environment)."""
        for mention in reversed(self._mentions.find(text)):
            joined = text[mention.start : mention.end].replace(" ", "_")
            text = text[: mention.start] + joined + text[mention.end :]
        return text

    def _protect(self, text: str) -> str:
        """Phrases such as "turn it off and on again" stay whole: their "and" splits nothing
        (the split only sees lower-case words)."""
        for match in find_phrases(text, self._vocabulary):
            inner = text[match.start : match.end]
            if re.search(r"\band\b", inner):
                inner = re.sub(r"\band\b", "AND", inner)
                text = text[: match.start] + inner + text[match.end :]
        return text

    def _environments_in(self, text: str) -> tuple[set[str], set[str], str]:
        found: set[str] = set()
        for word, name in sorted(self._environment_words.items(), key=lambda i: -len(i[0])):
            pattern = re.compile(
                rf"(?:\b(?:on|in|at|from|for|to)\s+(?:the\s+)?)?(?<![\w@/-]){re.escape(word)}"
                r"(?![\w-])(?:\s+(?:env|environment|cluster))?"
            )
            if pattern.search(text):
                found.add(name)
                text = pattern.sub(" ", text)
        unknown: set[str] = set()
        for word in self._unknown:
            pattern = re.compile(
                rf"\b(?:on|in|at|from|to)\s+(?:the\s+)?{re.escape(word)}(?![\w-])"
                r"|(?<![\w-])" + re.escape(word) + r"\s+(?:env|environment)\b"
            )
            if pattern.search(text):
                unknown.add(word)
                text = pattern.sub(" ", text)
        unknown |= {word for word in self._places(text) if not self._known_word(word)}
        return found, unknown, text

    def _places(self, text: str) -> list[str]:
        return [match.group(1).rstrip(".").removesuffix("'s") for match in _PLACE.finditer(text)]

    def _known_word(self, word: str) -> bool:
        """A word after "on"/"in" that is not an environment: a target, a number, grammar."""
        return (
            not word
            or word.startswith("@")
            or word[0].isdigit()
            or word in STOPWORDS
            or word in self._vocabulary.words
            or bool(self._mentions.find(word.replace("_", " ")))
        )

    def _clause(self, text: str, *, commands: list[str], urls: list[str]) -> Clause:
        clause = Clause(text=text.strip())
        clause.commands = [commands[int(i)] for i in re.findall(r"@cmd(\d+)", text)]
        clause.urls = [urls[int(i)] for i in re.findall(r"@url(\d+)", text)]
        clause.flagged = bool(find_any(text, self._vocabulary.rule_change))
        stripped = text
        for phrase in self._vocabulary.rule_change:
            stripped = _remove(stripped, phrase)
        clause.mentions = self._mentions.find(stripped)
        marked = _replace_spans(stripped, [(m.start, m.end) for m in clause.mentions], TARGET_TOKEN)
        marked = _ARTICLE.sub(TARGET_TOKEN, marked)
        clause.phrases = find_phrases(marked, self._vocabulary)
        rest = _replace_spans(marked, [(p.start, p.end) for p in clause.phrases], " ")
        clause.pronoun = bool(_PRONOUN.search(rest))
        for filler in self._vocabulary.fillers:
            rest = _remove(rest, filler)
        clause.hedges = [
            (entry.id, phrase)
            for entry in self._vocabulary.hedges
            for phrase in find_any(rest, entry.phrases)
        ]
        clause.leftover = [
            word.strip("'.-/")
            for word in _WORDS.findall(rest)
            if not word.startswith("@") and word.strip("'.-/")
        ]
        return clause


def logs_params(text: str) -> dict[str, int]:
    """`tail` and `since` (seconds) from "last 50 lines", "past 10 minutes"."""
    params: dict[str, int] = {}
    since = _SINCE.search(text)
    if since:
        amount = int(since.group(1) or 1)
        params["since"] = amount * _UNITS[since.group(2)[0]]
        text = text[: since.start()] + text[since.end() :]
    tail = _TAIL.search(text)
    if tail:
        params["tail"] = int(tail.group(1) or tail.group(2))
    return params


def _placeholder(store: list[str], value: str, prefix: str) -> str:
    store.append(value)
    return f"{prefix}{len(store) - 1}"


def _remove(text: str, phrase: str) -> str:
    return re.sub(rf"(?<![\w-]){re.escape(phrase)}(?![\w-])", " ", text)


def _replace_spans(text: str, spans: list[tuple[int, int]], token: str) -> str:
    for start, end in sorted(spans, reverse=True):
        text = f"{text[:start]} {token} {text[end:]}"
    return text
