"""Approval policy: what each tier needs, and a bad policy file stopping start-up precisely."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.lib.approvals.policy import ApprovalPolicy, ApprovalRequirement, parse_duration
from shared.lib.config_errors import ConfigError
from shared.lib.risk.models import RiskTier

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "hitl" / "approval_policy.yml"
APPROVERS = frozenset({"approver", "ops-lead", "admin"})

GOOD_TIERS = {
    "low": "    auto: true\n",
    "medium": "    approvals: 1\n    roles: [approver]\n    ttl: 4h\n",
    "high": "    approvals: 1\n    roles: [approver]\n    ttl: 1h\n    on_timeout: reject\n",
    "critical": "    approvals: 2\n    roles: [ops-lead, admin]\n    ttl: 30m\n",
}


def write(tmp_path: Path, **tiers: str) -> Path:
    body = "".join(f"  {name}:\n{text}" for name, text in tiers.items())
    path = tmp_path / "approval_policy.yml"
    path.write_text(f"version: 1\ntiers:\n{body}", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("tier", "expected"),
    [
        (RiskTier.LOW, ApprovalRequirement(True, 0, frozenset(), 0, "expire")),
        (RiskTier.MEDIUM, ApprovalRequirement(False, 1, APPROVERS, 4 * 3600, "expire")),
        (RiskTier.HIGH, ApprovalRequirement(False, 1, APPROVERS, 3600, "expire")),
        (
            RiskTier.CRITICAL,
            ApprovalRequirement(False, 2, frozenset({"ops-lead", "admin"}), 1800, "expire"),
        ),
    ],
)
def test_shipped_defaults(tier: RiskTier, expected: ApprovalRequirement) -> None:
    assert ApprovalPolicy.load(SHIPPED).requirement(tier) == expected


def test_custom_file_sets_on_timeout(tmp_path: Path) -> None:
    policy = ApprovalPolicy.load(write(tmp_path, **GOOD_TIERS))
    assert policy.requirement(RiskTier.HIGH).on_timeout == "reject"
    assert policy.requirement(RiskTier.MEDIUM).roles == frozenset({"approver"})


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("45s", 45), ("30m", 1800), ("4h", 14400), ("2d", 172800), (" 1 h ", 3600), (90, 90)],
)
def test_parse_duration(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["4", "1w", "h", "-1h", "1.5h", True])
def test_parse_duration_refuses_other_forms(text: object) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_missing_tier_names_the_tier(tmp_path: Path) -> None:
    tiers = {name: text for name, text in GOOD_TIERS.items() if name != "critical"}
    path = write(tmp_path, **tiers)
    with pytest.raises(ConfigError, match="Field required") as caught:
        ApprovalPolicy.load(path)
    assert (caught.value.path, caught.value.line) == (path, 2)
    assert caught.value.field == "tiers.critical"


@pytest.mark.parametrize(
    ("tier", "text", "line", "field", "message"),
    [
        ("medium", "    approvals: 1\n    roles: [approver]\n    ttl: 4x\n", 8, "tiers.medium.ttl",
         "not a duration"),
        ("medium", "    approvals: 1\n    roles: [root]\n    ttl: 4h\n", 7,
         "tiers.medium.roles[0]", "Input should be"),
        ("medium", "    approvals: 1\n    roles: [approver]\n    ttl: 4h\n    on_timeout: wait\n",
         9, "tiers.medium.on_timeout", "Input should be"),
        ("medium", "    approvals: 1\n    ttl: 4h\n", 5, "tiers.medium", "needs approvals >= 1"),
        ("low", "    auto: true\n    approvals: 1\n", 3, "tiers.low", "auto tier takes no"),
        ("critical", "    approvals: 2\n    roles: [admin]\n    ttl: 60d\n", 17,
         "tiers.critical.ttl", "less than or equal"),
    ],
)  # fmt: skip
def test_bad_tier_names_file_line_and_field(
    tmp_path: Path, tier: str, text: str, line: int, field: str, message: str
) -> None:
    path = write(tmp_path, **{**GOOD_TIERS, tier: text})
    with pytest.raises(ConfigError, match=message) as caught:
        ApprovalPolicy.load(path)
    assert (caught.value.line, caught.value.field) == (line, field)


def test_higher_tier_asking_for_less_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, **{**GOOD_TIERS, "critical": "    auto: true\n"})
    with pytest.raises(ConfigError, match="asks for less than the lower tier 'high'") as caught:
        ApprovalPolicy.load(path)
    assert caught.value.field == "tiers.critical"
