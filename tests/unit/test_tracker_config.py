"""config/trackers.yml: the shipped file loads; a bad one names the file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.lib.config_errors import ConfigError
from shared.lib.trackers.config import load_trackers
from tests.helpers import CONFIG_DIR


def test_the_shipped_file_has_no_tracker() -> None:
    assert load_trackers(CONFIG_DIR / "trackers.yml", environ={}).tracker is None


def test_a_missing_token_names_the_variable_and_the_line(tmp_path: Path) -> None:
    path = tmp_path / "trackers.yml"
    path.write_text("version: 1\ntracker:\n  kind: github\n  repository: acme/ops\n")
    with pytest.raises(ConfigError) as error:
        load_trackers(path, environ={})
    assert "GITHUB_TOKEN" in str(error.value) and str(path) in str(error.value)


def test_an_unknown_kind_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "trackers.yml"
    path.write_text("version: 1\ntracker:\n  kind: trello\n")
    with pytest.raises(ConfigError) as error:
        load_trackers(path, environ={})
    assert "tracker" in str(error.value) and ":3" in str(error.value)
