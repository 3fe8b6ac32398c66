"""Schemathesis over every documented operation, with an API key, without one, and the
webhook with its token: no 5xx, and no status or body the OpenAPI description does not state."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from agent_orchestrator.app import create_app
from shared.lib.executors.fake import FakeExecutor
from shared.lib.settings import load_settings
from tests.helpers import CONFIG_DIR, FIXTURES, KEYS
from tests.integration.alerts_support import TOKEN
from tests.testbed.live_app import served

CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance"
)
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
MIN_REQUESTS = 2000

# (label, extra arguments, test cases per operation)
PASSES = [
    (
        "with an API key",
        ["-H", f"Authorization: Bearer {KEYS['dave']}", "--exclude-path", "/webhook/alerts"],
        50,
    ),
    ("without a key", [], 30),
    (
        "webhook token",
        ["-H", f"Authorization: Bearer {TOKEN}", "--include-path", "/webhook/alerts"],
        100,
    ),
]


def run_pass(base_url: str, report: Path, extra: list[str], examples: int) -> list[int]:
    """One schemathesis run; the status of every request it sent (from its HAR report)."""
    command = [
        str(SCHEMATHESIS), "run", f"{base_url}/openapi.json", "--checks", CHECKS,
        "--max-examples", str(examples), "--seed", "20240501", "--workers", "1",
        "--report", "har", "--report-har-path", str(report), *extra,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    entries = json.loads(report.read_text())["log"]["entries"]
    return [int(entry["response"]["status"]) for entry in entries]


def test_generated_requests_get_no_5xx_and_only_documented_answers(
    empty_database_url: str, tmp_path: Path
) -> None:
    settings = load_settings(
        DATABASE_URL=empty_database_url,
        AGENT_CONFIG_DIR=CONFIG_DIR,
        AGENT_DATA_DIR=tmp_path,
        AGENT_ENVIRONMENTS_FILE=FIXTURES / "environments.yml",
        AGENT_ALERT_WEBHOOK_TOKEN=TOKEN,
        # Schemathesis sends wrong keys on purpose; throttling them would hide the routes.
        AGENT_AUTH_FAILURES_PER_MINUTE=10_000,
        LOG_LEVEL="WARNING",
    )
    fakes = {kind: FakeExecutor(kind=kind) for kind in ("docker", "ssh", "http")}
    statuses: Counter[int] = Counter()
    with served(create_app(settings, executors=fakes)) as base_url:
        for index, (label, extra, examples) in enumerate(PASSES):
            found = run_pass(base_url, tmp_path / f"pass-{index}.har", extra, examples)
            print(f"schemathesis {label}: {len(found)} requests, {Counter(found)}")
            statuses.update(found)
    total = sum(statuses.values())
    server_errors = sum(count for status, count in statuses.items() if status >= 500)
    print(f"schemathesis total: {total} requests, {server_errors} 5xx")
    assert server_errors == 0, statuses
    assert total >= MIN_REQUESTS, statuses
