"""The shipped catalog loads, its bounds and inverses hold, and a broken catalog file stops
start-up with the file, line and field in the message."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.lib.catalog import (
    Catalog,
    InvalidParamsError,
    RiskTier,
    UnknownOperationError,
    load_catalog,
)
from shared.lib.config_errors import ConfigError
from tests.helpers import CONFIG_DIR

DOCKER_OPERATIONS = {
    "list",
    "inspect",
    "logs",
    "stats",
    "health",
    "start",
    "stop",
    "restart",
    "exec",
}
SSH_OPERATIONS = {
    "run_command", "service_status", "service_restart", "journal_tail", "disk_usage", "uptime",
    "restart", "start", "stop", "logs", "health",
}  # fmt: skip


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(config_dir=CONFIG_DIR)


def test_executor_kinds_cover_what_each_executor_implements(catalog: Catalog) -> None:
    assert {spec.name for spec in catalog.for_executor("docker")} == DOCKER_OPERATIONS
    assert {spec.name for spec in catalog.for_executor("ssh")} == SSH_OPERATIONS
    assert {spec.name for spec in catalog.for_executor("http")} == {"http_check"}


def test_inverse_pairs(catalog: Catalog) -> None:
    assert catalog.get("stop").inverse == "start"
    assert catalog.get("start").inverse == "stop"
    assert catalog.get("restart").inverse is None


def test_free_form_commands_are_high_risk_and_shell_free(catalog: Catalog) -> None:
    for name in ("run_command", "exec"):
        spec = catalog.get(name)
        assert spec.default_risk.rank >= RiskTier.HIGH.rank
        assert spec.command_param == "argv"
    assert not any(spec.allows_shell for spec in catalog.operations.values())


def test_read_operations_do_not_mutate(catalog: Catalog) -> None:
    readers = {"list", "inspect", "logs", "stats", "health", "service_status", "journal_tail",
               "disk_usage", "uptime", "http_check"}  # fmt: skip
    assert {name for name, spec in catalog.operations.items() if not spec.mutates} == readers


def test_defaults_are_filled(catalog: Catalog) -> None:
    assert catalog.validate_params("logs", {}) == {"tail": 100}
    assert catalog.validate_params("stop", {}) == {"timeout": 10}
    assert catalog.validate_params("http_check", {"url": "http://web/health"}) == {
        "url": "http://web/health",
        "expected_status": 200,
        "timeout_s": 5.0,
    }


def test_values_are_coerced(catalog: Catalog) -> None:
    assert catalog.validate_params("logs", {"tail": "50", "since": 60}) == {"tail": 50, "since": 60}
    assert catalog.validate_params("list", {"all": "yes"}) == {"all": True}


@pytest.mark.parametrize(
    ("operation", "params", "field", "allowed"),
    [
        ("logs", {"tail": 0}, "tail", "1..5000"),
        ("logs", {"tail": 5001}, "tail", "1..5000"),
        ("stop", {"timeout": 301}, "timeout", "0..300"),
        ("restart", {"timeout": -1}, "timeout", "0..300"),
        ("http_check", {"timeout_s": 0.05}, "timeout_s", "0.1..60"),
        ("exec", {"argv": []}, "argv", "1..64"),
        ("exec", {"argv": ["x"] * 65}, "argv", "1..64"),
    ],
)
def test_out_of_bounds_names_operation_field_value_and_range(
    catalog: Catalog, operation: str, params: dict[str, object], field: str, allowed: str
) -> None:
    with pytest.raises(InvalidParamsError) as caught:
        catalog.validate_params(operation, params)
    message = str(caught.value)
    assert caught.value.field == field
    assert f"'{operation}'" in message and f"'{field}'" in message and allowed in message
    assert repr(params[field])[:10] in message


@pytest.mark.parametrize(
    ("operation", "params", "problem"),
    [
        ("logs", {"tail": "lots"}, "is not a whole number"),
        ("logs", {"tail": True}, "is not a whole number"),
        ("logs", {"tail": 2.5}, "is not a whole number"),
        ("exec", {"argv": "rm -rf /"}, "is not a list of"),
        ("exec", {"argv": ["ls", 3]}, "is not a list of"),
        ("exec", {}, "is required"),
        ("http_check", {"url": "file:///etc/passwd"}, "is not an http(s) URL"),
        ("logs", {"tial": 5}, "is not a parameter of this operation (allowed: since, tail)"),
        ("uptime", {"verbose": True}, "(allowed: none)"),
    ],
)
def test_wrong_types_and_unknown_params_are_refused(
    catalog: Catalog, operation: str, params: dict[str, object], problem: str
) -> None:
    with pytest.raises(InvalidParamsError, match=f"'{operation}'") as caught:
        catalog.validate_params(operation, params)
    assert problem in str(caught.value)


def test_unknown_operation_lists_the_known_ones(catalog: Catalog) -> None:
    with pytest.raises(UnknownOperationError) as caught:
        catalog.validate_params("reboot_host", {})
    message = str(caught.value)
    assert "'reboot_host'" in message and "restart" in message and "http_check" in message


GOOD_OPERATION = """\
version: 1
operations:
  stop:
    description: Stop it.
    executors: [docker]
    mutates: true
    inverse: start
    default_risk: medium
    params:
      timeout: {type: int, min: 0, max: 300, default: 10}
  start:
    description: Start it.
    executors: [docker]
    mutates: true
    inverse: stop
    default_risk: low
"""


def _load(tmp_path: Path, text: str) -> Catalog:
    (tmp_path / "catalog.yml").write_text(text, encoding="utf-8")
    return load_catalog(config_dir=tmp_path)


def _load_error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text)
    message = str(caught.value)
    assert str(tmp_path / "catalog.yml") in message
    return message


def test_minimal_catalog_loads(tmp_path: Path) -> None:
    assert _load(tmp_path, GOOD_OPERATION).names() == ["start", "stop"]


def test_unknown_key_names_line_and_field(tmp_path: Path) -> None:
    message = _load_error(
        tmp_path, GOOD_OPERATION.replace("    mutates: true\n", "    mutate: true\n", 1)
    )
    assert ":6: operations.stop.mutate:" in message
    assert "remove the key or correct its spelling" in message


def test_wrong_type_names_line_and_field(tmp_path: Path) -> None:
    message = _load_error(tmp_path, GOOD_OPERATION.replace("max: 300", "max: lots"))
    assert ":10: operations.stop.params.timeout.max:" in message
    assert "'lots'" in message and "use a number" in message


def test_missing_field_points_at_its_operation(tmp_path: Path) -> None:
    message = _load_error(tmp_path, GOOD_OPERATION.replace("    default_risk: low\n", ""))
    assert ":11: operations.start.default_risk:" in message and "add the field" in message


def test_bad_risk_tier_is_refused(tmp_path: Path) -> None:
    message = _load_error(
        tmp_path, GOOD_OPERATION.replace("default_risk: low", "default_risk: meh")
    )
    assert ":16: operations.start.default_risk:" in message and "'meh'" in message


def test_default_out_of_bounds_is_refused(tmp_path: Path) -> None:
    message = _load_error(tmp_path, GOOD_OPERATION.replace("default: 10", "default: 999"))
    assert ":10: operations.stop.params.timeout:" in message and "999" in message


def test_unpaired_inverse_is_refused(tmp_path: Path) -> None:
    message = _load_error(tmp_path, GOOD_OPERATION.replace("inverse: stop", "inverse: null"))
    assert "'stop' names 'start' as its inverse" in message


def test_low_risk_free_form_command_is_refused(tmp_path: Path) -> None:
    text = GOOD_OPERATION + (
        "  shell:\n"
        "    description: Anything.\n"
        "    executors: [ssh]\n"
        "    mutates: true\n"
        "    default_risk: medium\n"
        "    command_param: argv\n"
        "    params: {argv: {type: 'list[str]', required: true}}\n"
    )
    message = _load_error(tmp_path, text)
    assert ":17: operations.shell:" in message and "never below 'high'" in message


def test_invalid_yaml_names_its_line(tmp_path: Path) -> None:
    message = _load_error(tmp_path, GOOD_OPERATION.replace("  start:\n", "  start:\n   bad: [\n"))
    assert "invalid YAML" in message and ":1" in message


def test_duplicate_operation_is_refused(tmp_path: Path) -> None:
    text = GOOD_OPERATION + "  stop:\n    description: again\n"
    message = _load_error(tmp_path, text)
    assert ":17: operations.stop: duplicate key 'stop'" in message
    assert "line 3" in message


def test_missing_file_says_which(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the operation catalog file"):
        load_catalog(config_dir=tmp_path)
