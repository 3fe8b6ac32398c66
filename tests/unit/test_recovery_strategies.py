"""config/hitl/recovery_strategies.yml: validated at start-up against the catalog, and every
mistake stops the service naming the file, line and field; the webhook secrets are checked too."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from shared.lib.alerts import RECOVERY_STRATEGIES_FILE, load_recovery_strategies
from shared.lib.catalog import Catalog, load_catalog
from shared.lib.config import load_agent_config
from shared.lib.config_errors import ConfigError
from shared.lib.settings import SettingsError, load_settings
from tests.helpers import CONFIG_DIR

GOOD = """\
version: 1
self_alerts:
  labels:
    job: devops-agent
strategies:
  - id: service-down
    match:
      alertname: ServiceDown
      labels: {severity: [page, critical]}
    target:
      labels: [service]
    environment:
      labels: [env]
      aliases: {production: prod}
    steps:
      - operation: logs
        params: {tail: 50}
      - operation: restart
"""


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(config_dir=CONFIG_DIR)


def load(tmp_path: Path, text: str, catalog: Catalog) -> object:
    (tmp_path / "hitl").mkdir(exist_ok=True)
    (tmp_path / RECOVERY_STRATEGIES_FILE).write_text(text, encoding="utf-8")
    return load_recovery_strategies(config_dir=tmp_path, catalog=catalog)


def error(tmp_path: Path, text: str, catalog: Catalog) -> str:
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, text, catalog)
    return str(raised.value)


def test_the_shipped_strategies_load(catalog: Catalog) -> None:
    strategies = load_recovery_strategies(config_dir=CONFIG_DIR, catalog=catalog)
    assert strategies.ids() == [
        "service-down",
        "container-unhealthy",
        "deploy-or-errors",
        "ci-failed",
    ]
    down = strategies.match("ServiceDown", {"service": "web"})
    assert down is not None
    assert [step.operation for step in down.steps] == [
        "logs",
        "health",
        "restart",
        "health",
        "http_check",
    ]
    restart = down.steps[2]
    assert restart.only_if is not None and restart.only_if.step == down.steps[1].id
    assert strategies.match("InstanceDown", {}) is down
    assert strategies.match("servicedown", {}) is None
    assert "devops-agent" in strategies.self_alerts.labels["job"]


def test_params_are_checked_and_defaults_filled(tmp_path: Path, catalog: Catalog) -> None:
    strategies = load_recovery_strategies(config_dir=_write(tmp_path, GOOD), catalog=catalog)
    (strategy,) = strategies.strategies
    assert [(step.operation, step.params) for step in strategy.steps] == [
        ("logs", {"tail": 50}),
        ("restart", {"timeout": 10}),
    ]
    assert strategies.match("ServiceDown", {"severity": "page"}) is strategy
    assert strategies.match("ServiceDown", {"severity": "info"}) is None
    assert strategies.match("ServiceDown", {}) is None


@pytest.mark.parametrize(
    ("change", "where", "says"),
    [
        (
            ("- operation: restart", "- operation: reboot"),
            ":18: strategies[0].steps[1].operation:",
            "operation 'reboot' is not in the catalog",
        ),
        (
            ("params: {tail: 50}", "params: {tail: 0}"),
            ":17: strategies[0].steps[0].params.tail:",
            "parameter 'tail'",
        ),
        (
            ("params: {tail: 50}", "params: {argv: [rm, -rf, /]}"),
            ":17: strategies[0].steps[0].params.argv:",
            "is not a parameter of this operation",
        ),
        (
            ("      labels: [service]", "      labels: [service]\n      from: job"),
            ":12: strategies[0].target.from:",
            "Extra inputs are not permitted",
        ),
        (
            ("      labels: [env]", "      labels: [env-name]"),
            ":13: strategies[0].environment.labels[0]:",
            "should match pattern",
        ),
        (
            ("  - id: service-down", "  - id: Service Down"),
            ":6: strategies[0].id:",
            "should match pattern",
        ),
        (
            (
                "      - operation: restart",
                "      - operation: restart\n        only_if: {step: down, status: failed}",
            ),
            ":6: strategies[0]:",
            "`only_if` names step 'down', which is not an earlier step",
        ),
        (
            ("    steps:\n", "    steps: []\n    old_steps:\n"),
            ":16: strategies[0].old_steps:",
            "Extra inputs are not permitted",
        ),
    ],
)
def test_a_bad_strategy_names_file_line_and_field(
    tmp_path: Path, catalog: Catalog, change: tuple[str, str], where: str, says: str
) -> None:
    old, new = change
    assert old in GOOD
    message = error(tmp_path, GOOD.replace(old, new), catalog)
    assert str(tmp_path / RECOVERY_STRATEGIES_FILE) in message
    assert where in message, message
    assert says in message, message


def test_duplicate_ids_are_refused(tmp_path: Path, catalog: Catalog) -> None:
    twice = GOOD + GOOD[GOOD.index("  - id:") :]
    message = error(tmp_path, twice, catalog)
    assert ":19: strategies[1].id: duplicate strategy id 'service-down'" in message


def test_a_missing_file_says_which(tmp_path: Path, catalog: Catalog) -> None:
    with pytest.raises(ConfigError, match="cannot read the recovery strategies file"):
        load_recovery_strategies(config_dir=tmp_path, catalog=catalog)


def test_a_bad_strategies_file_stops_start_up(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    path = config / RECOVERY_STRATEGIES_FILE
    path.write_text(path.read_text().replace("operation: restart", "operation: rm"))
    settings = load_settings(AGENT_CONFIG_DIR=config, AGENT_DATA_DIR=tmp_path)
    with pytest.raises(ConfigError, match="operation 'rm' is not in the catalog"):
        load_agent_config(settings)


@pytest.mark.parametrize("variable", ["AGENT_ALERT_WEBHOOK_TOKEN", "AGENT_ALERT_WEBHOOK_SECRET"])
@pytest.mark.parametrize("value", ["change-me", "short-token"])
def test_weak_webhook_secrets_stop_start_up(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert f"  {variable}: " in message
    assert "at least 16 characters" in message
    assert value not in message.replace("'change-me' is a placeholder", "")


def test_webhook_secrets_are_optional_and_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENT_ALERT_WEBHOOK_TOKEN", raising=False)
    monkeypatch.setenv("AGENT_ALERT_WEBHOOK_SECRET", "")
    settings = load_settings()
    assert settings.alert_webhook_token is None
    assert settings.alert_webhook_secret is None
    monkeypatch.setenv("AGENT_ALERT_WEBHOOK_TOKEN", "a-long-enough-random-token")
    settings = load_settings()
    assert settings.alert_webhook_token is not None
    assert "a-long-enough" not in repr(settings)


def _write(directory: Path, text: str) -> Path:
    (directory / "hitl").mkdir(exist_ok=True)
    (directory / RECOVERY_STRATEGIES_FILE).write_text(text, encoding="utf-8")
    return directory
