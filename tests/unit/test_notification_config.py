"""config/notifications.yml: receivers validated at start-up; errors name file, line, field."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.lib.config_errors import ConfigError
from shared.lib.notifications.config import load_notifications
from shared.lib.notifications.models import NotificationEvent
from tests.helpers import CONFIG_DIR


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "notifications.yml"
    path.write_text(text)
    return path


def test_shipped_file_has_no_receivers() -> None:
    config = load_notifications(CONFIG_DIR / "notifications.yml", environ={})
    assert config.receivers == ()
    assert config.delivery.attempts == 4


def test_receivers_with_secret_env_filters_and_interpolated_url(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "version: 1\n"
        "delivery: {attempts: 3, backoff_s: 0.5}\n"
        "receivers:\n"
        "  - name: ops-json\n"
        "    url: https://hooks.example/agent\n"
        "    secret: a-literal-secret-1234\n"
        "  - name: slack-ops\n"
        "    url: ${SLACK_URL}\n"
        "    format: slack\n"
        "    secret_env: SLACK_SECRET\n"
        "    events: [approval_requested]\n",
    )
    environ = {"SLACK_URL": "https://hooks.slack.example/T/B/x", "SLACK_SECRET": "s" * 20}
    config = load_notifications(path, environ=environ)
    ops, slack = config.receivers
    assert ops.format == "json" and ops.events == frozenset(NotificationEvent)
    assert slack.url == "https://hooks.slack.example/T/B/x"
    assert slack.secret == "s" * 20
    assert slack.events == {NotificationEvent.APPROVAL_REQUESTED}
    assert config.delivery.attempts == 3
    assert "secret" not in repr(slack).replace("secret_env", "")


@pytest.mark.parametrize(
    ("receiver", "line", "field", "words"),
    [
        ("    secret_env: MISSING_SECRET\n", 5, "receivers[0].secret_env", "MISSING_SECRET"),
        ("    secret: short\n", 5, "receivers[0].secret", "at least 16"),
        ("    secret: a-literal-secret-1234\n    events: [approved]\n", 6, "events[0]", "Input"),
        ("    secret: a-literal-secret-1234\n    format: teams\n", 6, "format", "json"),
        ("    secret: a-literal-secret-1234\n    secret_env: X\n", 3, "receivers[0]", "exactly"),
    ],
)
def test_bad_receiver_names_line_and_field(
    tmp_path: Path, receiver: str, line: int, field: str, words: str
) -> None:
    path = _write(
        tmp_path,
        "version: 1\nreceivers:\n  - name: ops\n    url: https://x.example/hook\n" + receiver,
    )
    with pytest.raises(ConfigError) as raised:
        load_notifications(path, environ={})
    assert raised.value.line == line
    assert field in (raised.value.field or "")
    assert words in str(raised.value)


def test_duplicate_receiver_names_are_refused(tmp_path: Path) -> None:
    entry = "  - {name: ops, url: 'https://x.example', secret: a-literal-secret-1234}\n"
    path = _write(tmp_path, "receivers:\n" + entry + entry)
    with pytest.raises(ConfigError, match="used twice") as raised:
        load_notifications(path, environ={})
    assert raised.value.line == 3


def test_missing_file_is_an_error_only_when_asked_for(tmp_path: Path) -> None:
    assert load_notifications(tmp_path / "absent.yml", required=False).receivers == ()
    with pytest.raises(ConfigError, match="cannot read the notifications file"):
        load_notifications(tmp_path / "absent.yml")
