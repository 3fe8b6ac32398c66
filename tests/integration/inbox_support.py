"""What the inbox tests share: the service with in-memory executors, and signing in."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from shared.lib.settings import Settings, load_settings
from tests.helpers import CONFIG_DIR, FIXTURES, KEYS

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_SHOWN = re.compile(r'name="shown_hash" value="([0-9a-f]{64})"')


def inbox_settings(database_url: str, data_dir: Path, **extra: Any) -> Settings:
    return load_settings(
        DATABASE_URL=database_url,
        AGENT_CONFIG_DIR=CONFIG_DIR,
        AGENT_DATA_DIR=data_dir,
        AGENT_ENVIRONMENTS_FILE=FIXTURES / "environments.yml",
        AGENT_SWEEP_INTERVAL_S=0.5,
        **extra,
    )


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


def shown_hash_of(html: str) -> str:
    match = _SHOWN.search(html)
    assert match, "page offers no decision form"
    return match.group(1)


def sign_in(api: TestClient, who: str) -> None:
    """Sign `who` in through the form, as a browser would."""
    api.cookies.clear()
    form = api.get("/inbox")
    assert form.status_code == 200, form.text
    signed = api.post(
        "/inbox/login",
        data={"csrf_token": csrf_of(form.text), "api_key": KEYS[who], "next": "/inbox/pending"},
        follow_redirects=False,
    )
    assert signed.status_code == 303, signed.text
    assert signed.headers["location"] == "/inbox/pending"
