"""Alerts: recovery strategies from config, triage of an alert into a plan or an escalation,
and the record of every alert the agent was told about."""

from shared.lib.alerts.models import RecoveryDecision
from shared.lib.alerts.store import AlertNotice, AlertRecord, AlertStore, Recorded
from shared.lib.alerts.strategies import (
    RECOVERY_STRATEGIES_FILE,
    RecoveryStrategies,
    RecoveryStrategy,
    load_recovery_strategies,
)
from shared.lib.alerts.triage import AlertFacts, AlertTriage

__all__ = [
    "RECOVERY_STRATEGIES_FILE",
    "AlertFacts",
    "AlertNotice",
    "AlertRecord",
    "AlertStore",
    "AlertTriage",
    "Recorded",
    "RecoveryDecision",
    "RecoveryStrategies",
    "RecoveryStrategy",
    "load_recovery_strategies",
]
