"""Settings: sensible defaults, and bad values stop start-up with the variable and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.lib.settings import SettingsError, load_settings


def test_defaults_need_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = load_settings()
    assert settings.database_url is None
    assert settings.port == 8080
    assert (settings.config_dir / "state").is_dir()
    assert not settings.llm_configured


@pytest.mark.parametrize(
    ("variable", "value", "fix"),
    [
        ("DATABASE_URL", "mysql://db/x", "unset it to use the embedded Postgres"),
        ("AGENT_PORT", "70000", "between 1 and 65535"),
        ("AGENT_PORT", "eighty", "between 1 and 65535"),
        ("LOG_LEVEL", "loud", "one of DEBUG, INFO"),
        ("LLM_BASE_URL", "localhost:11434", "OpenAI-compatible API"),
        ("AGENT_CONFIG_DIR", "/no/such/folder", "catalog.yml"),
    ],
)
def test_invalid_setting_names_variable_and_fix(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, fix: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert f"  {variable}: " in str(raised.value)
    assert fix in str(raised.value)


def test_dotenv_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("AGENT_PORT", raising=False)
    (tmp_path / ".env").write_text("AGENT_PORT=9191\nLOG_LEVEL=debug\n")
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.port == 9191
    assert settings.log_level == "DEBUG"


def test_relative_files_resolve_from_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "envs.yml").write_text("version: 1\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AGENT_ENVIRONMENTS_FILE", "envs.yml")
    assert load_settings().environments_file == tmp_path / "envs.yml"
