"""Risk assessment: declarative rules that score a plan's tier, deny-by-default.

The policy and assessor live in `policy` and `assessor`; this package exports only the models,
so the catalog and approvals can name a tier without importing the assessor.
"""

from shared.lib.risk.models import RiskAssessment, RiskTier, RuleHit

RISK_POLICY_FILE = "hitl/risk_policy.yml"

__all__ = ["RISK_POLICY_FILE", "RiskAssessment", "RiskTier", "RuleHit"]
