"""config/vocabulary.yml: the shipped file loads, and a bad entry stops start-up naming the
file, line, field and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.lib.catalog import load_catalog
from shared.lib.config_errors import ConfigError
from shared.lib.planning.vocabulary import Vocabulary, load_vocabulary
from tests.helpers import CONFIG_DIR

GOOD = """\
version: 1
intents:
  restart:
    example: restart <target>
    operations: [restart]
    phrases: [restart, bounce]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vocabulary.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_vocabulary_loads_against_the_catalog() -> None:
    vocabulary = load_vocabulary(config_dir=CONFIG_DIR, catalog=load_catalog(config_dir=CONFIG_DIR))
    assert "bounce" in vocabulary.intents["restart"].phrases
    assert "bounce" in vocabulary.words


def test_an_operation_the_catalog_lacks_names_line_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("[restart]", "[restart, reimage]"))
    with pytest.raises(ConfigError) as caught:
        Vocabulary.load(path, catalog=load_catalog(config_dir=CONFIG_DIR))
    error = caught.value
    assert (error.line, error.field) == (5, "intents.restart.operations[1]")
    assert "'reimage' is not in the catalog" in str(error) and "use one of" in str(error)


def test_an_unknown_key_names_line_and_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        Vocabulary.load(write(tmp_path, GOOD + "    synonyms: [kick]\n"))
    assert (caught.value.line, caught.value.field) == (7, "intents.restart.synonyms")
    assert "remove the key" in str(caught.value)


def test_yields_to_an_undefined_intent_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "    yields_to: [journal]\n")
    with pytest.raises(ConfigError, match="intent 'journal' is not defined") as caught:
        Vocabulary.load(path, catalog=load_catalog(config_dir=CONFIG_DIR))
    assert caught.value.field == "intents.restart.yields_to[0]"
