"""The stack's configs pass the real tools (promtool, amtool, docker-compose), and every metric
a dashboard panel or an alert rule queries is one the service exposes on /metrics."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import REPO, auth
from tests.testbed.availability import service_unavailable

pytestmark = pytest.mark.deploy

DEPLOY = REPO / "deploy"
TOOL_DEADLINE_S = 120.0
TOOLS = {
    "promtool": "prometheus",
    "amtool": "prometheus-alertmanager",
    "docker-compose": "docker-compose",
}
# Series Prometheus makes itself, not scraped from the service.
PROMETHEUS_OWN = {"up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds"}
PROMQL_WORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "le",
    "inf",
    "nan",
}


def tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "--no-install-recommends", TOOLS[name]]
        for argv in (install, ["apt-get", "update"], install):
            subprocess.run(argv, env=env, capture_output=True, timeout=900, check=False)
            if shutil.which(name):
                return str(shutil.which(name))
    service_unavailable(name, f"install the Debian package {TOOLS[name]}")


def run_tool(*argv: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [tool(argv[0]), *argv[1:]], capture_output=True, timeout=TOOL_DEADLINE_S, env=env
    )
    output = (done.stdout + done.stderr).decode(errors="replace")
    assert done.returncode == 0, f"{' '.join(argv)} failed:\n{output}"
    return output


def test_prometheus_config_and_rules_pass_promtool(tmp_path: Path) -> None:
    rules = sorted(str(p) for p in (DEPLOY / "prometheus" / "rules").glob("*.yml"))
    config = DEPLOY / "prometheus" / "prometheus.yml"
    assert "valid prometheus config" in run_tool(
        "promtool", "check", "config", "--syntax-only", str(config)
    )
    # The full check also opens the files the config names: the metrics token is a compose
    # secret under /run/secrets, so check a copy that points at a stand-in token file.
    copy = tmp_path / "prometheus"
    shutil.copytree(DEPLOY / "prometheus", copy)
    token = tmp_path / "metrics_token"
    token.write_text("stand-in")
    (copy / "prometheus.yml").write_text(
        config.read_text().replace("/run/secrets/metrics_token", str(token))
    )
    output = run_tool("promtool", "check", "config", str(copy / "prometheus.yml"))
    assert f"SUCCESS: {len(rules)} rule files found" in output
    assert "SUCCESS" in run_tool("promtool", "check", "rules", *rules)


def test_alertmanager_config_passes_amtool_and_keeps_the_agent_off_its_own_alerts() -> None:
    path = DEPLOY / "alertmanager" / "alertmanager.yml"
    assert "SUCCESS" in run_tool("amtool", "check-config", str(path))

    # The routing tree, as amtool resolves it: agent alerts to people, the rest to the agent.
    def receiver(*labels: str) -> str:
        output = run_tool("amtool", "config", "routes", "test", f"--config.file={path}", *labels)
        return output.splitlines()[0]  # stderr adds a warning about --alertmanager.url

    assert receiver("alertname=DevopsAgentDown", "component=devops-agent").strip() == "operators"
    assert receiver("alertname=ServiceDown", "service=web", "env=prod").strip() == "devops-agent"
    config = yaml.safe_load(path.read_text())
    webhook = config["receivers"][0]["webhook_configs"][0]["http_config"]["authorization"]
    assert webhook == {"credentials_file": "/run/secrets/agent_alert_webhook_token"}


def test_compose_file_passes_docker_compose_config_with_no_secret_inline() -> None:
    env = {**os.environ, "DOCKER_GID": "999"}
    rendered = run_tool(
        "docker-compose",
        "--env-file",
        str(DEPLOY / ".env.example"),
        "-f",
        str(DEPLOY / "compose.yml"),
        "config",
        env=env,
    )
    stack = yaml.safe_load(rendered)
    assert set(stack["services"]) == {
        "postgres",
        "migrate",
        "agent",
        "prometheus",
        "alertmanager",
        "grafana",
    }
    agent = stack["services"]["agent"]
    assert agent["group_add"] == ["999"]
    assert {s.get("target", s["source"]) for s in agent["secrets"]} == {
        "database_url",
        "agent_alert_webhook_token",
        "metrics_token",
    }
    assert "MIGRATION_DATABASE_URL" not in agent.get("environment", {})
    text = (DEPLOY / "compose.yml").read_text().lower()
    assert not re.search(
        r"(password|token|secret)\s*:\s*['\"]?[a-z0-9]", text.replace("_file:", "")
    )


def promql_metrics(expr: str) -> set[str]:
    """Metric names an expression selects: identifiers that are not functions, keywords,
    label matchers, grouping labels, ranges or strings."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        rest = expr[match.end() :].lstrip()
        if rest.startswith("(") or match.group().lower() in PROMQL_WORDS:
            continue
        names.add(match.group())
    return names


def queried_metrics() -> dict[str, set[str]]:
    """Each metric name, with the dashboard panels and alert rules that query it."""
    used: dict[str, set[str]] = {}
    dashboards = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
    for path in dashboards:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                for name in promql_metrics(target["expr"]):
                    used.setdefault(name, set()).add(f"panel {panel['title']!r}")
    for path in sorted((DEPLOY / "prometheus" / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                for name in promql_metrics(str(rule["expr"])):
                    used.setdefault(name, set()).add(f"rule {rule['alert']}")
    return used


def exposed_metrics(body: str) -> set[str]:
    names = set()
    for family in text_string_to_metric_families(body):
        names.add(family.name)
        suffixes = {
            "counter": ["_total", "_created"],
            "histogram": ["_bucket", "_sum", "_count", "_created"],
            "summary": ["_sum", "_count", "_created"],
        }.get(family.type, [])
        names.update(family.name + suffix for suffix in suffixes)
        names.update(sample.name for sample in family.samples)
    return names


def test_promql_metric_names_are_parsed() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, handler) (rate(http_x_bucket{a="b"}'
        "[$__rate_interval]))) > 2 and on(instance) up == 0"
    )
    assert promql_metrics(expr) == {"http_x_bucket", "up"}


@pytest.fixture
def scraped(client: TestClient) -> Iterator[str]:
    client.get("/health")  # one request, so the HTTP histograms have samples
    response = client.get("/metrics", headers=auth("carol"))
    assert response.status_code == 200
    yield response.text


def test_every_dashboard_and_rule_metric_is_on_metrics(scraped: str) -> None:
    used = queried_metrics()
    assert "orchestrator_approvals_pending" in used
    exposed = exposed_metrics(scraped)
    missing = {
        name: sorted(where)
        for name, where in used.items()
        if name not in exposed and name not in PROMETHEUS_OWN
    }
    assert not missing, f"queried but not on /metrics: {missing}"


def test_dashboard_has_the_operator_panels() -> None:
    panels = json.loads((DEPLOY / "grafana" / "dashboards" / "devops-agent.json").read_text())
    titles = {p["title"].split(" (")[0] for p in panels["panels"]}
    assert {
        "Pending approvals by tier",
        "Approval wait by tier",
        "Decisions",
        "Expirations",
        "Workflows by outcome",
        "Executions by operation and outcome",
        "Alert outcomes",
        "Notification failures",
        "HTTP latency",
    } <= titles
    datasource = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]
    assert all(p["datasource"]["uid"] == datasource["uid"] for p in panels["panels"])


def test_config_dir_keeps_its_path_in_the_image() -> None:
    assert Path(DEPLOY / "Dockerfile").read_text().count("AGENT_CONFIG_DIR=/app/config") == 1
