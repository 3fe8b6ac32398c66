"""The offline planner: plain-text intents and structured steps become validated plans, and
anything it cannot plan is refused with the choices that would work."""

from __future__ import annotations

from typing import Any

import pytest

from shared.lib.catalog import Catalog, load_catalog
from shared.lib.planning import PlanningError
from shared.lib.planning.models import PlannedOperation
from shared.lib.planning.offline import OfflinePlanner
from shared.lib.targets import load_targets
from shared.lib.workflows.models import WorkRequest
from tests.helpers import CONFIG_DIR

ENVIRONMENTS = """\
version: 1
environments:
  dev:
    docker_hosts: {local: "unix:///var/run/docker.sock"}
    ssh_hosts: {app1: {host: 127.0.0.1, port: 2222}}
    services:
      web:
        kind: docker
        docker_host: local
        container: web
        health_url: http://127.0.0.1:8081/health
      api: {kind: docker, docker_host: local, container: api}
      db: {kind: docker, docker_host: local, container: postgres, tags: [database]}
      worker: {kind: ssh, ssh_host: app1, unit: worker.service}
      host1: {kind: ssh, ssh_host: app1}
  prod:
    docker_hosts: {edge: "tcp://docker.prod.internal:2376"}
    ssh_hosts: {web1: {host: web1.prod.internal}}
    services:
      web: {kind: ssh, ssh_host: web1, unit: nginx.service}
      worker: {kind: docker, docker_host: edge, container: worker}
      payments: {kind: docker, docker_host: edge, container: payments}
"""

DEV_TARGETS = ["api", "db", "host1", "web", "worker"]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(config_dir=CONFIG_DIR)


@pytest.fixture(scope="module")
def planner(catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> OfflinePlanner:
    config_dir = tmp_path_factory.mktemp("planner-config")
    (config_dir / "environments.yml").write_text(ENVIRONMENTS, encoding="utf-8")
    resolver = load_targets(config_dir=config_dir, environ={})
    return OfflinePlanner(catalog=catalog, resolver=resolver)


def ask(text: str, *, environment: str | None = "dev") -> WorkRequest:
    return WorkRequest(requester="alice", text=text, environment=environment)


def steps_of(planner: OfflinePlanner, request: WorkRequest) -> list[tuple[str, str, str | None]]:
    plan = planner.plan(request)
    return [(step.operation, step.target, step.environment) for step in plan.steps]


@pytest.mark.parametrize(
    ("text", "operation", "target", "environment"),
    [
        ("restart web", "restart", "web", "dev"),
        ("Restart the web service on prod", "restart", "web", "prod"),
        ("restart web in production", "restart", "web", "prod"),
        ("show logs of api", "logs", "api", "dev"),
        ("stop worker on prod", "stop", "worker", "prod"),
        ("start worker", "start", "worker", "dev"),
        ("status of web", "health", "web", "dev"),
        ("is web healthy?", "health", "web", "dev"),
        ("health of web prod", "health", "web", "prod"),
        ("stats for api", "stats", "api", "dev"),
        ("inspect db", "inspect", "db", "dev"),
        ("inspect worker", "service_status", "worker", "dev"),
        ("uptime of host1", "uptime", "host1", "dev"),
        ("disk usage on host1", "disk_usage", "host1", "dev"),
    ],
)
def test_plain_text_intent(
    planner: OfflinePlanner, text: str, operation: str, target: str, environment: str
) -> None:
    assert steps_of(planner, ask(text)) == [(operation, target, environment)]


def test_environment_may_come_only_from_the_text(planner: OfflinePlanner) -> None:
    assert steps_of(planner, ask("restart payments", environment=None)) == [
        ("restart", "payments", "prod")
    ]
    assert steps_of(planner, ask("restart web on prod", environment=None)) == [
        ("restart", "web", "prod")
    ]


@pytest.mark.parametrize(
    ("text", "params"),
    [
        ("logs for api last 50 lines", {"tail": 50}),
        ("show the last 20 log lines of api", {"tail": 20}),
        ("logs of api 7 lines", {"tail": 7}),
        ("show logs of api", {"tail": 100}),
        ("restart web", {"timeout": 10}),
    ],
)
def test_params_are_read_and_normalized(
    planner: OfflinePlanner, text: str, params: dict[str, Any]
) -> None:
    assert planner.plan(ask(text)).steps[0].params == params


def test_check_url_for_a_named_target(planner: OfflinePlanner) -> None:
    plan = planner.plan(ask("check https://status.example.com/ping for web on prod"))
    [step] = plan.steps
    assert (step.operation, step.target, step.environment) == ("http_check", "web", "prod")
    assert step.params["url"] == "https://status.example.com/ping"


def test_check_url_finds_the_target_by_its_health_url(planner: OfflinePlanner) -> None:
    [step] = planner.plan(ask("check http://127.0.0.1:8081/health")).steps
    assert (step.operation, step.target, step.environment) == ("http_check", "web", "dev")
    assert step.params == {"url": "http://127.0.0.1:8081/health", "expected_status": 200,
                           "timeout_s": 5.0}  # fmt: skip


def test_check_url_of_no_known_target_lists_targets(planner: OfflinePlanner) -> None:
    with pytest.raises(PlanningError, match=r"which target status\.example\.com") as caught:
        planner.plan(ask("check https://status.example.com/"))
    assert caught.value.candidates == DEV_TARGETS


def test_several_targets_make_one_step_each(planner: OfflinePlanner) -> None:
    plan = planner.plan(ask("restart web, api and worker"))
    assert [(step.operation, step.target) for step in plan.steps] == [
        ("restart", "web"),
        ("restart", "api"),
        ("restart", "worker"),
    ]
    assert plan.summary == "restart dev/web; restart dev/api; restart dev/worker"


def test_words_inside_a_url_do_not_name_targets(planner: OfflinePlanner) -> None:
    with pytest.raises(PlanningError, match="no known target"):
        planner.plan(ask("restart http://api.internal/"))


def test_no_target_lists_the_known_targets(planner: OfflinePlanner) -> None:
    with pytest.raises(PlanningError, match="no known target named") as caught:
        planner.plan(ask("restart the frontend"))
    assert caught.value.candidates == DEV_TARGETS


def test_target_of_another_environment_is_refused(planner: OfflinePlanner) -> None:
    with pytest.raises(PlanningError, match="'payments' exists in: prod") as caught:
        planner.plan(ask("restart payments"))
    assert caught.value.candidates == DEV_TARGETS


def test_ambiguous_target_asks_for_an_environment(planner: OfflinePlanner) -> None:
    with pytest.raises(PlanningError, match="several environments") as caught:
        planner.plan(ask("restart web", environment=None))
    assert caught.value.candidates == ["dev", "prod"]


def test_two_environments_in_one_request_are_refused(planner: OfflinePlanner) -> None:
    with pytest.raises(PlanningError, match="several environments") as caught:
        planner.plan(ask("restart web on dev and prod"))
    assert caught.value.candidates == ["dev", "prod"]


def test_unknown_request_environment_is_refused(planner: OfflinePlanner) -> None:
    with pytest.raises(PlanningError, match="unknown environment 'staging'") as caught:
        planner.plan(ask("restart web", environment="staging"))
    assert caught.value.candidates == ["dev", "prod"]


def test_unrecognized_intent_lists_what_is_understood(planner: OfflinePlanner) -> None:
    with pytest.raises(PlanningError, match="cannot tell what to do") as caught:
        planner.plan(ask("make web faster"))
    assert "restart <target> [on <env>]" in caught.value.candidates
    assert "uptime of <host> / load on <host>" in caught.value.candidates
    assert caught.value.candidates == planner.examples()  # one per intent in vocabulary.yml


def test_operation_the_target_kind_cannot_run_is_refused(planner: OfflinePlanner) -> None:
    with pytest.raises(PlanningError, match="'stats' cannot run on dev/worker") as caught:
        planner.plan(ask("stats for worker"))
    assert "dev/api" in caught.value.candidates
    assert "dev/worker" not in caught.value.candidates


def test_out_of_range_params_are_refused(planner: OfflinePlanner) -> None:
    with pytest.raises(PlanningError, match="'tail'") as caught:
        planner.plan(ask("logs for api last 9999 lines"))
    assert "tail" in caught.value.candidates


def test_empty_request_is_refused(planner: OfflinePlanner) -> None:
    with pytest.raises(PlanningError, match="neither text nor steps"):
        planner.plan(WorkRequest(requester="alice", text="  "))


def structured(*steps: PlannedOperation, environment: str | None = "dev") -> WorkRequest:
    return WorkRequest(requester="alice", steps=list(steps), environment=environment)


def test_structured_steps_pass_through_validated(planner: OfflinePlanner) -> None:
    request = structured(
        PlannedOperation(operation="logs", target="api", params={"tail": "25"}),
        PlannedOperation(operation="restart", target="web", environment="prod"),
    )
    plan = planner.plan(request)
    assert plan.steps == [
        PlannedOperation(operation="logs", target="api", environment="dev", params={"tail": 25}),
        PlannedOperation(
            operation="restart", target="web", environment="prod", params={"timeout": 10}
        ),
    ]


def test_structured_unknown_operation_lists_the_catalog(
    planner: OfflinePlanner, catalog: Catalog
) -> None:
    request = structured(PlannedOperation(operation="reimage", target="api"))
    with pytest.raises(PlanningError, match="unknown operation 'reimage'") as caught:
        planner.plan(request)
    assert caught.value.candidates == catalog.names()


def test_structured_unknown_target_lists_targets(planner: OfflinePlanner) -> None:
    request = structured(PlannedOperation(operation="logs", target="api2"))
    with pytest.raises(PlanningError, match="unknown target 'api2'") as caught:
        planner.plan(request)
    assert caught.value.candidates == DEV_TARGETS


def test_structured_invalid_params_are_refused(planner: OfflinePlanner) -> None:
    request = structured(PlannedOperation(operation="run_command", target="host1", params={}))
    with pytest.raises(PlanningError, match="'argv' is required") as caught:
        planner.plan(request)
    assert caught.value.candidates == ["argv"]


def test_structured_operation_for_the_wrong_target_kind_is_refused(
    planner: OfflinePlanner,
) -> None:
    request = structured(PlannedOperation(operation="uptime", target="api"))
    with pytest.raises(PlanningError, match="runs on ssh targets") as caught:
        planner.plan(request)
    assert "logs" in caught.value.candidates
    assert "uptime" not in caught.value.candidates


def test_plans_only_hold_catalog_operations(planner: OfflinePlanner, catalog: Catalog) -> None:
    texts = ["restart web", "logs of api", "uptime of host1", "inspect worker", "status of db"]
    operations = {step.operation for text in texts for step in planner.plan(ask(text)).steps}
    assert operations <= set(catalog.operations)
