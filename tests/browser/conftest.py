"""The inbox in real Chromium: Debian's /usr/bin/chromium driven by Playwright (no browser
download), against the service served by uvicorn in a thread on loopback."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml
from playwright.sync_api import Browser, Page, sync_playwright

from agent_orchestrator.app import create_app
from shared.lib.executors.fake import FakeExecutor
from tests.helpers import KEYS, REPO
from tests.integration.inbox_support import inbox_settings
from tests.testbed.availability import service_unavailable
from tests.testbed.loopback_server import LoopbackServer
from tests.testbed.service import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
RECEIVER_SECRET = "browser-test-receiver-secret-01"


@dataclass
class Inbox:
    base_url: str
    screenshots: Path
    received: list[dict[str, Any]]

    def sign_in(self, page: Page, who: str, *, start: str = "/inbox") -> None:
        page.goto(self.base_url + start)
        page.get_by_label("API key").fill(KEYS[who])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_selector(f'[data-testid="who"]:text-is("{who}")')

    def shot(self, page: Page, name: str) -> None:
        page.screenshot(path=str(self.screenshots / f"{name}.png"), full_page=True)


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Screenshots go to INBOX_SCREENSHOTS (e.g. .testbed/screenshots), else the test's tmp."""
    target = Path(os.environ.get("INBOX_SCREENSHOTS", tmp_path / "screenshots"))
    if not target.is_absolute():
        target = REPO / target
    target.mkdir(parents=True, exist_ok=True)
    return target


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local webhook receiver recording every notification body."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.append(json.loads(body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    with LoopbackServer(Handler, name="notification-receiver") as server:
        yield server.url + "/hook", received


@pytest.fixture
def inbox(
    database_url: str,
    tmp_path: Path,
    screenshots: Path,
    receiver: tuple[str, list[dict[str, Any]]],
) -> Iterator[Inbox]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    hook_url, received = receiver
    notifications = tmp_path / "notifications.yml"
    notifications.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "delivery": {"attempts": 1, "timeout_s": 5},
                "receivers": [
                    {
                        "name": "local",
                        "url": hook_url,
                        "secret": RECEIVER_SECRET,
                        "events": ["approval_requested"],
                    }
                ],
            }
        )
    )
    settings = inbox_settings(
        database_url,
        tmp_path,
        AGENT_PUBLIC_URL=base_url,
        AGENT_NOTIFICATIONS_FILE=notifications,
    )
    fakes = {kind: FakeExecutor(kind=kind) for kind in ("docker", "ssh", "http")}
    app = create_app(settings, executors=fakes)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="inbox-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the inbox server did not start")
        time.sleep(0.05)
    try:
        yield Inbox(base_url=base_url, screenshots=screenshots, received=received)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        service_unavailable(
            "chromium", f"{CHROMIUM} is missing; run scripts/provision-testbed.sh as root"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            launched.close()
