"""Risk assessment: each shipped rule fires with its tier and reason, anything unknown is
critical, history and blast radius raise the tier, and no rule ever lowers it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.lib.catalog import Catalog, load_catalog
from shared.lib.config_errors import ConfigError
from shared.lib.planning.models import Plan, PlannedOperation
from shared.lib.risk.assessor import RiskAssessor
from shared.lib.risk.models import RiskAssessment, RiskTier
from shared.lib.risk.policy import RiskPolicy
from shared.lib.targets import TargetResolver, load_targets
from tests.helpers import CONFIG_DIR

SHIPPED_POLICY = CONFIG_DIR / "hitl" / "risk_policy.yml"

ENVIRONMENTS = """\
version: 1
environments:
  dev:
    docker_hosts: {local: "unix:///var/run/docker.sock"}
    ssh_hosts: {app1: {host: 127.0.0.1, port: 2222}}
    services:
      web: {kind: docker, docker_host: local, container: web, tags: [customer-facing]}
      api: {kind: docker, docker_host: local, container: api}
      cache: {kind: docker, docker_host: local, container: redis, tags: [stateful]}
      db: {kind: docker, docker_host: local, container: postgres, tags: [database]}
      vault:
        kind: docker
        docker_host: local
        container: vault
        protected: true
        protected_reason: it holds the secrets
      worker: {kind: ssh, ssh_host: app1, unit: worker.service}
      host1: {kind: ssh, ssh_host: app1}
  prod:
    docker_hosts: {edge: "tcp://docker.prod.internal:2376"}
    ssh_hosts: {web1: {host: web1.prod.internal}}
    services:
      web: {kind: ssh, ssh_host: web1, unit: nginx.service, tags: [customer-facing]}
      worker: {kind: docker, docker_host: edge, container: worker}
"""


class FakeHistory:
    """Recent mutation counts per (environment, target), recording what was asked."""

    def __init__(self, counts: dict[tuple[str, str], int] | None = None) -> None:
        self.counts = counts or {}
        self.asked: list[tuple[str, str | None, int]] = []

    async def recent_mutations(self, *, target: str, environment: str | None, window_s: int) -> int:
        self.asked.append((target, environment, window_s))
        return self.counts.get((environment or "", target), 0)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(config_dir=CONFIG_DIR)


@pytest.fixture(scope="module")
def resolver(tmp_path_factory: pytest.TempPathFactory) -> TargetResolver:
    config_dir = tmp_path_factory.mktemp("risk-config")
    (config_dir / "environments.yml").write_text(ENVIRONMENTS, encoding="utf-8")
    return load_targets(config_dir=config_dir, environ={})


@pytest.fixture(scope="module")
def assessor(catalog: Catalog, resolver: TargetResolver) -> RiskAssessor:
    policy = RiskPolicy.load(SHIPPED_POLICY, catalog=catalog)
    return RiskAssessor(policy=policy, catalog=catalog, resolver=resolver)


def step(
    operation: str, target: str, environment: str | None = "dev", **params: Any
) -> PlannedOperation:
    return PlannedOperation(
        operation=operation, target=target, environment=environment, params=params
    )


async def assess(
    assessor: RiskAssessor, *steps: PlannedOperation, history: FakeHistory | None = None
) -> RiskAssessment:
    return await assessor.assess(Plan(steps=list(steps)), history=history or FakeHistory())


def hits_of(assessment: RiskAssessment, rule: str) -> list[tuple[RiskTier, str, int | None]]:
    return [(hit.tier, hit.reason, hit.step) for hit in assessment.hits if hit.rule == rule]


RULE_CASES = [
    # (planned step, rule that must fire, its tier, words in its reason, plan tier)
    (step("logs", "api"), "dev-read-only", "low", "logs on dev/api", "low"),
    (step("restart", "api"), "dev-mutation", "medium", "restart on dev/api", "medium"),
    (step("restart", "worker", "prod"), "prod-mutation", "high", "changes production", "high"),
    (step("restart", "db"), "stateful-mutation", "high", "restart on dev/db", "high"),
    (step("start", "cache"), "stateful-mutation", "high", "database or stateful", "high"),
    (
        step("restart", "web", "prod"),
        "customer-facing-prod-mutation",
        "high",
        "customer-facing service in production",
        "high",
    ),
    (
        step("run_command", "host1", argv=["ls", "-l"]),
        "free-form-command",
        "high",
        "never below high",
        "high",
    ),
    (
        step("exec", "api", argv=["rm", "-rf", "/var/lib/app"]),
        "destructive-command",
        "critical",
        "command `rm -rf /var/lib/app` matches",
        "critical",
    ),
    (
        step("run_command", "host1", argv=["psql", "-c", "DROP DATABASE app"]),
        "destructive-command",
        "critical",
        "psql -c 'DROP DATABASE app'",
        "critical",
    ),
    (
        step("run_command", "host1", argv=["sudo", "shutdown", "-h", "now"]),
        "destructive-command",
        "critical",
        "take a host down",
        "critical",
    ),
]


@pytest.mark.parametrize(("planned", "rule", "tier", "reason", "plan_tier"), RULE_CASES)
async def test_shipped_rule_fires(
    assessor: RiskAssessor,
    planned: PlannedOperation,
    rule: str,
    tier: str,
    reason: str,
    plan_tier: str,
) -> None:
    assessment = await assess(assessor, planned)
    [(hit_tier, hit_reason, hit_step)] = hits_of(assessment, rule)
    assert (hit_tier, hit_step) == (RiskTier(tier), 0)
    assert reason in hit_reason
    assert assessment.tier is RiskTier(plan_tier)


@pytest.mark.parametrize(
    ("planned", "silent_rule"),
    [
        (step("health", "db"), "stateful-mutation"),
        (step("restart", "worker", "prod"), "customer-facing-prod-mutation"),
        (step("run_command", "host1", argv=["ls", "/tmp/rm -rf"]), "destructive-command"),
        (step("run_command", "host1", argv=["echo", "rm -rf /"]), "destructive-command"),
        (step("restart", "api"), "free-form-command"),
        (step("logs", "api"), "dev-mutation"),
    ],
)
async def test_rule_stays_silent_when_a_condition_fails(
    assessor: RiskAssessor, planned: PlannedOperation, silent_rule: str
) -> None:
    assert hits_of(await assess(assessor, planned), silent_rule) == []


async def test_read_only_in_dev_is_low_with_no_other_hit(assessor: RiskAssessor) -> None:
    assessment = await assess(assessor, step("health", "web"), step("logs", "worker"))
    assert assessment.tier is RiskTier.LOW
    assert {hit.rule for hit in assessment.hits} == {"dev-read-only"}
    assert [hit.step for hit in assessment.hits] == [0, 1]


async def test_assessment_is_bound_to_the_plan_hash(assessor: RiskAssessor) -> None:
    plan = Plan(steps=[step("restart", "api")])
    assessment = await assessor.assess(plan, history=FakeHistory())
    assert assessment.plan_hash == plan.hash


@pytest.mark.parametrize(
    ("planned", "rule", "words"),
    [
        (
            step("nuke", "api"),
            "deny-unknown-operation",
            ["'nuke'", "not in the catalog", "restart"],
        ),
        (step("logs", "web2"), "deny-unknown-target", ["'web2'", "known", "api"]),
        (step("logs", "api", "prod"), "deny-unknown-target", ["'api'", "'prod'"]),
        (step("logs", "api", "staging"), "deny-unknown-environment", ["'staging'", "dev, prod"]),
        (step("restart", "web", None), "deny-ambiguous-target", ["'web'", "dev, prod"]),
        (step("logs", "api", tail=0), "deny-invalid-params", ["'tail'", "out of range"]),
        (step("logs", "api", lines=5), "deny-invalid-params", ["'lines'", "not a parameter"]),
        (step("restart", "vault"), "deny-protected-target", ["dev/vault", "holds the secrets"]),
    ],
)
async def test_unknown_or_forbidden_is_critical(
    assessor: RiskAssessor, planned: PlannedOperation, rule: str, words: list[str]
) -> None:
    assessment = await assess(assessor, step("logs", "api"), planned)
    [(tier, reason, index)] = hits_of(assessment, rule)
    assert (tier, index, assessment.tier) == (RiskTier.CRITICAL, 1, RiskTier.CRITICAL)
    assert all(word in reason for word in words), reason


async def test_reading_a_protected_target_is_allowed(assessor: RiskAssessor) -> None:
    assessment = await assess(assessor, step("logs", "vault"))
    assert assessment.tier is RiskTier.LOW
    assert hits_of(assessment, "deny-protected-target") == []


async def test_destructive_pattern_fires_even_when_params_are_invalid(
    assessor: RiskAssessor,
) -> None:
    planned = step("run_command", "host1", argv=["rm", "-rf", "/"], sudo=True)
    assessment = await assess(assessor, planned)
    assert {"deny-invalid-params", "destructive-command"} <= {hit.rule for hit in assessment.hits}


async def test_flap_breaker_counts_history_and_this_plan(assessor: RiskAssessor) -> None:
    history = FakeHistory({("dev", "api"): 3})
    assessment = await assess(assessor, step("restart", "api"), history=history)
    [(tier, reason, index)] = hits_of(assessment, "flap-breaker")
    assert (tier, index, assessment.tier) == (RiskTier.CRITICAL, 0, RiskTier.CRITICAL)
    assert "4 mutating operations within 600 s (3 recent, 1 in this plan)" in reason
    assert history.asked == [("api", "dev", 600)]


async def test_flap_breaker_fires_from_the_step_that_crosses_the_limit(
    assessor: RiskAssessor,
) -> None:
    history = FakeHistory({("dev", "api"): 2})
    plan = [step("restart", "api"), step("logs", "api"), step("restart", "api")]
    assessment = await assess(assessor, *plan, history=history)
    assert [index for _, _, index in hits_of(assessment, "flap-breaker")] == [2]


async def test_flap_breaker_at_the_limit_does_not_fire(assessor: RiskAssessor) -> None:
    history = FakeHistory({("dev", "api"): 2, ("dev", "web"): 9})
    assessment = await assess(
        assessor, step("restart", "api"), step("logs", "web"), history=history
    )
    assert hits_of(assessment, "flap-breaker") == []
    assert assessment.tier is RiskTier.MEDIUM


@pytest.mark.parametrize(
    ("targets", "rule", "tier"),
    [
        (["api", "web", "worker"], "blast-radius", RiskTier.HIGH),
        (["api", "web", "worker", "host1", "cache"], "blast-radius-wide", RiskTier.CRITICAL),
    ],
)
async def test_blast_radius_counts_distinct_changed_targets(
    assessor: RiskAssessor, targets: list[str], rule: str, tier: RiskTier
) -> None:
    assessment = await assess(assessor, *(step("restart", name) for name in targets))
    [(hit_tier, reason, index)] = hits_of(assessment, rule)
    assert (hit_tier, index, assessment.tier) == (tier, None, tier)
    assert f"{len(targets)} distinct targets" in reason


async def test_blast_radius_ignores_repeats_and_reads(assessor: RiskAssessor) -> None:
    plan = [step("restart", "api"), step("restart", "api"), step("restart", "web")]
    reads = [step("logs", name) for name in ("cache", "worker", "host1")]
    assessment = await assess(assessor, *plan, *reads)
    assert {hit.rule for hit in assessment.hits} & {"blast-radius", "blast-radius-wide"} == set()
    assert assessment.tier is RiskTier.MEDIUM


async def test_no_rule_lowers_the_catalog_default(assessor: RiskAssessor) -> None:
    # `stop` defaults to high; the dev-mutation rule asks for only medium.
    assessment = await assess(assessor, step("stop", "api"))
    assert hits_of(assessment, "dev-mutation")[0][0] is RiskTier.MEDIUM
    assert hits_of(assessment, "catalog-default-risk")[0][0] is RiskTier.HIGH
    assert assessment.tier is RiskTier.HIGH


async def test_a_low_rule_cannot_lower_other_rules(
    tmp_path: Path, catalog: Catalog, resolver: TargetResolver
) -> None:
    path = tmp_path / "risk_policy.yml"
    path.write_text(
        "version: 1\nrules:\n"
        "  - {id: prod, reason: prod, tier: high, match: {environments: [prod]}}\n"
        "  - {id: calm, reason: calm, tier: low, match: {mutating: true}}\n",
        encoding="utf-8",
    )
    policy = RiskPolicy.load(path, catalog=catalog)
    custom = RiskAssessor(policy=policy, catalog=catalog, resolver=resolver)
    assessment = await assess(custom, step("restart", "worker", "prod"))
    assert [hit.rule for hit in assessment.hits] == ["catalog-default-risk", "prod", "calm"]
    assert assessment.tier is RiskTier.HIGH


@pytest.mark.parametrize(
    ("rule", "line", "field", "message"),
    [
        (
            "  - id: bad\n    reason: r\n    tier: high\n    match:\n"
            "      command_patterns: ['ok', '(unclosed']\n",
            7,
            "rules[0].match.command_patterns[1]",
            "regex does not compile",
        ),
        (
            "  - {id: x, reason: r, tier: severe, match: {mutating: true}}\n",
            3,
            "rules[0].tier",
            "Input should be",
        ),
        ("  - {id: x, reason: r, tier: high, match: {}}\n", 3, "rules[0].match", "at least one"),
        (
            "  - {id: x, reason: r, tier: high, match: {operations: [reboot]}}\n",
            3,
            "rules[0].match.operations",
            "'reboot' is not in the catalog",
        ),
        (
            "  - {id: x, reason: r, tier: high, match: {mutating: true}}\n"
            "  - {id: x, reason: r, tier: low, match: {mutating: false}}\n",
            4,
            "rules[1].id",
            "duplicate rule id 'x'",
        ),
        (
            "  - {id: x, reason: r, tier: high, match: {flap: {more_than: 3}}}\n",
            3,
            "rules[0].match.flap.window_s",
            "Field required",
        ),
    ],
)
def test_bad_policy_names_file_line_and_field(
    tmp_path: Path, catalog: Catalog, rule: str, line: int, field: str, message: str
) -> None:
    path = tmp_path / "risk_policy.yml"
    path.write_text(f"version: 1\nrules:\n{rule}", encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as caught:
        RiskPolicy.load(path, catalog=catalog)
    assert (caught.value.path, caught.value.line, caught.value.field) == (path, line, field)


def test_assessor_refuses_rules_for_operations_the_catalog_lacks(
    catalog: Catalog, resolver: TargetResolver
) -> None:
    policy = RiskPolicy.model_validate(
        {"rules": [{"id": "x", "reason": "r", "tier": "high", "match": {"operations": ["zap"]}}]}
    )
    with pytest.raises(ValueError, match="zap"):
        RiskAssessor(policy=policy, catalog=catalog, resolver=resolver)
