"""A change must be asked for plainly: negations, questions, conditions, times, exceptions and
options get a question back naming the words; an unknown word where an environment goes is
asked about even when the session has one; a request hidden in a reason is not dropped; a URL
inside a quoted command stays in the command; too many steps are a question, not a crash."""

from __future__ import annotations

import pytest

from shared.lib.catalog import Catalog, load_catalog
from shared.lib.planning import ClarificationNeeded
from shared.lib.planning.models import MAX_STEPS
from shared.lib.planning.offline import OfflinePlanner
from shared.lib.targets import load_targets
from shared.lib.workflows.models import WorkRequest
from tests.helpers import CONFIG_DIR

ENVIRONMENTS = """\
version: 1
environments:
  dev:
    docker_hosts: {local: "unix:///var/run/docker.sock"}
    ssh_hosts: {host1: {host: 127.0.0.1, port: 2222}}
    services:
      web: {kind: docker, docker_host: local, container: web}
      api: {kind: docker, docker_host: local, container: api}
      host1: {kind: ssh, ssh_host: host1}
  prod:
    docker_hosts: {edge: "tcp://edge.internal:2376"}
    services:
      payments: {kind: docker, docker_host: edge, container: payments}
"""


@pytest.fixture(scope="module")
def planner(tmp_path_factory: pytest.TempPathFactory) -> OfflinePlanner:
    catalog: Catalog = load_catalog(config_dir=CONFIG_DIR)
    config_dir = tmp_path_factory.mktemp("hedges-config")
    (config_dir / "environments.yml").write_text(ENVIRONMENTS, encoding="utf-8")
    return OfflinePlanner(catalog=catalog, resolver=load_targets(config_dir=config_dir, environ={}))


def question(planner: OfflinePlanner, text: str, environment: str | None = "dev") -> str:
    request = WorkRequest(requester="alice", text=text, environment=environment)
    with pytest.raises(ClarificationNeeded) as asked:
        planner.plan(request)
    return asked.value.question


@pytest.mark.parametrize(
    ("text", "reason", "words"),
    [
        ("don't restart web", "says not to do it", "don't"),
        ("never restart payments on prod", "says not to do it", "never"),
        ("should I restart api?", "asks about doing it", "should"),
        ("restart web if it is unhealthy", "depend on something", "if"),
        ("restart web in 10 minutes", "at another time", "in * minute"),
        ("restart everything except api", "excludes something", "except"),
        ("restart all but api", "excludes something", "except"),
        ("stop web with timeout 0", "sets an option", "timeout"),
    ],
)
def test_a_hedged_change_is_asked_about_naming_the_words(
    planner: OfflinePlanner, text: str, reason: str, words: str
) -> None:
    asked = question(planner, text)
    assert reason in asked
    assert f"('{words}')" in asked


@pytest.mark.parametrize(
    "text",
    [
        "restart web if you can",
        "restart web because it is not responding",
        "web is not up, restart it",
    ],
)
def test_polite_words_and_reasons_do_not_hold_a_change(planner: OfflinePlanner, text: str) -> None:
    plan = planner.plan(WorkRequest(requester="alice", text=text, environment="dev"))
    assert [(s.operation, s.target) for s in plan.steps] == [("restart", "web")]


def test_a_read_keeps_its_time_words(planner: OfflinePlanner) -> None:
    request = WorkRequest(
        requester="alice", text="logs of api since 10 minutes ago", environment="dev"
    )
    (step,) = planner.plan(request).steps
    assert (step.operation, step.params.get("since")) == ("logs", 600)


def test_an_unknown_environment_word_is_asked_about_despite_the_session(
    planner: OfflinePlanner,
) -> None:
    assert "unknown environment 'dve'" in question(planner, "restart web on dve", "dev")
    assert "unknown environment 'develop'" in question(planner, "restart web in develop", "dev")


def test_a_request_inside_a_reason_is_asked_about(planner: OfflinePlanner) -> None:
    asked = question(planner, "restart api because it is stuck and stop web")
    assert "'stop web'" in asked


def test_a_url_inside_a_quoted_command_stays_in_the_command(planner: OfflinePlanner) -> None:
    text = "run `curl -s http://127.0.0.1:8080/health` on host1"
    (step,) = planner.plan(WorkRequest(requester="alice", text=text, environment="dev")).steps
    assert step.params["argv"] == ["curl", "-s", "http://127.0.0.1:8080/health"]


def test_more_steps_than_a_plan_holds_are_a_question(planner: OfflinePlanner) -> None:
    text = " and ".join(f"show the last {n} lines of api logs" for n in range(1, 61))
    assert f"at most {MAX_STEPS}" in question(planner, text)


def test_a_negative_line_count_is_refused_not_read_as_positive(planner: OfflinePlanner) -> None:
    assert "tail" in question(planner, "logs of api last -5 lines")
