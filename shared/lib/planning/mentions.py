"""Where a request names configured targets: by name, by an alias from environments.yml, by
the name spelt with other nouns ("payments database" for payments-db), and which unknown words
look like a misspelt target ("did you mean payments?") rather than being guessed at."""

from __future__ import annotations

import difflib
import itertools
import re
from dataclasses import dataclass

from shared.lib.planning.vocabulary import Vocabulary
from shared.lib.targets import TargetResolver

NEAR_MISS_CUTOFF = 0.75
# Grammar and generic nouns: never a target, never a misspelt one.
_STOPWORD_TEXT = """
a an the of for on in at to from with by into onto me my our us we i you your is are was
were be been being it its it's this that these those them they their there here and or but
if so not no yes do does did done what what's whats which who how how's when where why can
could would should will shall may might must have has had get got make service services
container containers host hosts box server servers machine node vm unit app application
instance one ones all both every each same again now some any thing things up down out over
off back about lines line last past minutes minute hours hour seconds second mins min secs
sec days day more less much many very really bit please also just see show tell give look
find print display read dump fetch grab pull let know want need like currently right still
quite too as well
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_PLURAL_CUES = re.compile(r"\b(all|both|every|each)\s+(?:of\s+)?(?:the\s+)?$")
_NAME_LIKE = re.compile(r"^(?=.*[a-z])(?=.*[\d_-])[a-z0-9][a-z0-9._-]*$")
_DURATION = re.compile(r"^\d+[smhd]$|^\d+(?:ms|min|mins|hrs?)$")


@dataclass(frozen=True)
class Mention:
    """A span of the clause that names one target, or several sharing an alias."""

    start: int
    end: int
    names: tuple[str, ...]
    text: str
    plural: bool


class TargetMentions:
    """Finds target names, aliases and their noun variants in normalized text."""

    def __init__(self, *, resolver: TargetResolver, vocabulary: Vocabulary) -> None:
        self._resolver = resolver
        phrases: dict[str, set[str]] = {}
        for target in resolver.targets():
            service = resolver.service(target.name, target.environment)
            spelt = {target.name.lower(), re.sub(r"[-_.]+", " ", target.name.lower())}
            spelt |= {alias.lower() for alias in service.aliases}
            for phrase in list(spelt):
                spelt |= _noun_variants(phrase, vocabulary.nouns)
            for phrase in spelt:
                phrases.setdefault(phrase, set()).add(target.name)
        self._phrases = {phrase: tuple(sorted(names)) for phrase, names in phrases.items()}
        self._patterns = [
            (phrase, re.compile(rf"(?<![\w@/-]){_words(phrase)}(s|es)?(?![\w-])"))
            for phrase in sorted(self._phrases, key=len, reverse=True)
        ]
        self._known_words = sorted({w for p in self._phrases for w in [p, *p.split()]})

    def find(self, text: str) -> list[Mention]:
        """Every mention, longest first wins, in the order they appear."""
        found: list[Mention] = []
        for phrase, pattern in self._patterns:
            for match in pattern.finditer(text):
                if any(match.start() < m.end and m.start < match.end() for m in found):
                    continue
                plural = bool(match.group(1)) or bool(_PLURAL_CUES.search(text[: match.start()]))
                found.append(
                    Mention(match.start(), match.end(), self._phrases[phrase], phrase, plural)
                )
        return sorted(found, key=lambda mention: mention.start)

    def near_misses(self, words: list[str], *, vocabulary: Vocabulary) -> dict[str, list[str]]:
        """Unknown words that look like target names -> the names they may mean (maybe none,
        for a word shaped like a name, such as `api2`, that resembles nothing configured)."""
        misses: dict[str, list[str]] = {}
        for word in words:
            if _ignorable(word, vocabulary):
                continue
            close = difflib.get_close_matches(word, self._known_words, n=3, cutoff=NEAR_MISS_CUTOFF)
            names = sorted({name for phrase in close for name in self._names_with_word(phrase)})
            if names or _NAME_LIKE.match(word):
                misses[word] = names
        return misses

    def describe(self, name: str) -> str:
        """`name (description)` for questions, from the first environment that has one."""
        for target in self._resolver.targets():
            if target.name == name:
                description = self._resolver.service(name, target.environment).description
                if description:
                    return f"{name} ({description})"
        return name

    def _names_with_word(self, word: str) -> set[str]:
        return {
            name
            for phrase, names in self._phrases.items()
            if word == phrase or word in phrase.split()
            for name in names
        }


def _ignorable(word: str, vocabulary: Vocabulary) -> bool:
    return (
        len(word) < 3
        or word in STOPWORDS
        or word in vocabulary.words
        or word.isdigit()
        or bool(_DURATION.match(word))
        or word.startswith("@")
    )


def _noun_variants(phrase: str, nouns: dict[str, tuple[str, ...]]) -> set[str]:
    words = phrase.split()
    options = [(word, *nouns.get(word, ())) for word in words]
    if len(words) > 4 or all(len(choice) == 1 for choice in options):
        return set()
    return {" ".join(combo) for combo in itertools.product(*options)} - {phrase}


def _words(phrase: str) -> str:
    return r"[\s_-]+".join(re.escape(word) for word in phrase.split())
