"""The planner's vocabulary as written in config/vocabulary.yml: intents and their phrases,
refusals, unsupported operations, rule-change and self words, validated at start-up."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from shared.lib.catalog import Catalog
from shared.lib.config_errors import YamlDocument, read_yaml

VOCABULARY_FILE = Path("vocabulary.yml")
TARGET_TOKEN = "@target"  # noqa: S105 - a placeholder word, not a secret
Kind = Literal["docker", "ssh"]
KINDS: tuple[Kind, ...] = ("docker", "ssh")
# A gap of up to three words; `@target` and a quoted command count as one word each.
_GAP = r"(?:\S+\s+){0,3}?"
# No past tense: "when was web restarted" is a question, never a restart.
_SUFFIX = r"(?:s|es|ing)?"
_PHRASE = r"^[a-z0-9@'\"*:=/.+-][a-z0-9@'\"*:=/. +-]*$"


def _lower(value: Any) -> Any:
    if isinstance(value, str):
        return " ".join(value.lower().split())
    if isinstance(value, list):
        return [_lower(item) for item in value]
    return value


Phrase = Annotated[
    str, BeforeValidator(_lower), Field(min_length=1, max_length=80, pattern=_PHRASE)
]


class OperationChoice(BaseModel):
    """An operation an intent may become, for the target kinds given (all when left out)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    operation: str
    kinds: tuple[Kind, ...] = KINDS
    params: dict[str, Any] = Field(default_factory=dict)


def _choice(value: Any) -> Any:
    return {"operation": value} if isinstance(value, str) else value


class Intent(BaseModel):
    """What a clause asks for, and the words that ask for it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    example: str = Field(min_length=1)
    operations: tuple[Annotated[OperationChoice, BeforeValidator(_choice)], ...] = Field(
        min_length=1
    )
    phrases: tuple[Phrase, ...] = ()
    questions: tuple[Phrase, ...] = ()
    hints: tuple[Phrase, ...] = ()
    yields_to: tuple[str, ...] = ()
    """Intents that win when both are asked in one clause ("tail the journal": journal)."""


class Refusal(BaseModel):
    """Words asking for something the agent refuses (`refusals`) or lacks (`unsupported`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$", max_length=64)
    reason: str = Field(min_length=1, max_length=300)
    phrases: tuple[Phrase, ...] = Field(min_length=1)


class EnvironmentWords(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    unknown: tuple[Phrase, ...] = ()

    def aliases(self) -> dict[str, tuple[str, ...]]:
        """Configured environment name -> its other words."""
        extra = self.model_extra or {}
        return {name: tuple(_lower(words)) for name, words in extra.items()}


class Vocabulary(BaseModel):
    """Every word list the offline planner reads; one instance per running service."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    intents: dict[str, Intent] = Field(min_length=1)
    refusals: tuple[Refusal, ...] = ()
    unsupported: tuple[Refusal, ...] = ()
    hedges: tuple[Refusal, ...] = ()
    """Words that make a clause other than a plain request (clauses.py: Clause.hedges)."""
    rule_change: tuple[Phrase, ...] = ()
    self_words: tuple[Phrase, ...] = Field(default=(), alias="self")
    environments: EnvironmentWords = Field(default_factory=EnvironmentWords)
    nouns: dict[str, tuple[Phrase, ...]] = Field(default_factory=dict)
    fillers: tuple[Phrase, ...] = ()

    @classmethod
    def load(cls, path: Path, *, catalog: Catalog | None = None) -> Self:
        """The vocabulary from `path`; with `catalog`, operations it does not have are refused."""
        document = read_yaml(path, what="vocabulary")
        vocabulary = document.validate(cls, context="config/vocabulary.yml")
        if catalog is not None:
            _check_operations(vocabulary, document, catalog=catalog)
        return vocabulary

    @cached_property
    def words(self) -> frozenset[str]:
        """Every word any list uses: such words are never mistaken for a misspelt target."""
        texts = [*self.rule_change, *self.self_words, *self.fillers]
        for intent in self.intents.values():
            texts += [*intent.phrases, *intent.questions, *intent.hints]
        for entry in (*self.refusals, *self.unsupported, *self.hedges):
            texts += entry.phrases
        return frozenset(word for text in texts for word in re.findall(r"[a-z][a-z'-]*", text))


@dataclass(frozen=True)
class PhraseMatch:
    """Where a phrase matched in a clause, and what it stands for."""

    start: int
    end: int
    kind: Literal["intent", "question", "hint", "refusal", "unsupported"]
    name: str

    @property
    def length(self) -> int:
        return self.end - self.start


def phrase_regex(phrase: str) -> re.Pattern[str]:
    """A phrase as a regex over a normalized clause: whole words, `*` a short gap, and the
    last word inflected."""
    parts = phrase.split()
    pieces: list[str] = []
    for index, part in enumerate(parts):
        if part == "*":
            pieces.append(_GAP)
            continue
        word = re.escape(part)
        if index == len(parts) - 1 and part[-1].isalpha() and part != TARGET_TOKEN:
            word += _SUFFIX
        pieces.append(word + r"\s+")
    body = "".join(pieces)
    body = body[: -len(r"\s+")] if body.endswith(r"\s+") else body
    return re.compile(rf"(?<![\w@-]){body}(?![\w-])")


def find_phrases(text: str, vocabulary: Vocabulary) -> list[PhraseMatch]:
    """Every phrase match in `text`, longest first, without overlaps."""
    found: list[PhraseMatch] = []
    for name, intent in vocabulary.intents.items():
        found += _matches(text, intent.phrases, "intent", name)
        found += _matches(text, intent.questions, "question", name)
        found += _matches(text, intent.hints, "hint", name)
    for entry in vocabulary.refusals:
        found += _matches(text, entry.phrases, "refusal", entry.id)
    for entry in vocabulary.unsupported:
        found += _matches(text, entry.phrases, "unsupported", entry.id)
    found.sort(key=lambda match: (-match.length, match.start))
    kept: list[PhraseMatch] = []
    for match in found:
        if all(match.end <= other.start or match.start >= other.end for other in kept):
            kept.append(match)
    return sorted(kept, key=lambda match: match.start)


def find_any(text: str, phrases: tuple[str, ...]) -> list[str]:
    """The phrases of a plain list (rule_change, self) that occur in `text`."""
    return [phrase for phrase in phrases if _compiled(phrase).search(text)]


def _matches(
    text: str,
    phrases: tuple[str, ...],
    kind: Literal["intent", "question", "hint", "refusal", "unsupported"],
    name: str,
) -> list[PhraseMatch]:
    return [
        PhraseMatch(match.start(), match.end(), kind, name)
        for phrase in phrases
        for match in _compiled(phrase).finditer(text)
    ]


_CACHE: dict[str, re.Pattern[str]] = {}


def _compiled(phrase: str) -> re.Pattern[str]:
    pattern = _CACHE.get(phrase)
    if pattern is None:
        pattern = _CACHE[phrase] = phrase_regex(phrase)
    return pattern


def _check_operations(vocabulary: Vocabulary, document: YamlDocument, *, catalog: Catalog) -> None:
    for name, intent in vocabulary.intents.items():
        for index, other in enumerate(intent.yields_to):
            if other not in vocabulary.intents:
                raise document.error(
                    f"intent '{other}' is not defined",
                    at=("intents", name, "yields_to", index),
                    fix=f"use one of: {', '.join(vocabulary.intents)}",
                )
        for index, choice in enumerate(intent.operations):
            at = ("intents", name, "operations", index)
            if choice.operation not in catalog.operations:
                raise document.error(
                    f"operation '{choice.operation}' is not in the catalog",
                    at=at,
                    fix=f"use one of: {', '.join(catalog.names())}",
                )
            spec = catalog.get(choice.operation)
            if not set(choice.kinds) & set(spec.executors) and "http" not in spec.executors:
                raise document.error(
                    f"operation '{choice.operation}' runs on {', '.join(spec.executors)} "
                    f"targets, not {', '.join(choice.kinds)}",
                    at=at,
                    fix="set `kinds` to target kinds the operation runs on",
                )
            try:
                catalog.validate_params(choice.operation, choice.params) if choice.params else None
            except ValueError as error:
                raise document.error(
                    str(error), at=(*at, "params"), fix="give params the catalog accepts"
                ) from None


def load_vocabulary(*, config_dir: Path, catalog: Catalog | None = None) -> Vocabulary:
    """config/vocabulary.yml, validated (and checked against the catalog when given)."""
    return Vocabulary.load(config_dir / VOCABULARY_FILE, catalog=catalog)
