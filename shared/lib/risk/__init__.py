"""Risk assessment: declarative rules that score a plan's tier, deny-by-default."""

from shared.lib.risk.assessor import MutationHistory, RiskAssessor
from shared.lib.risk.policy import FlapCondition, RiskPolicy, RiskRule, RuleMatch

RISK_POLICY_FILE = "hitl/risk_policy.yml"

__all__ = [
    "RISK_POLICY_FILE",
    "FlapCondition",
    "MutationHistory",
    "RiskAssessor",
    "RiskPolicy",
    "RiskRule",
    "RuleMatch",
]
