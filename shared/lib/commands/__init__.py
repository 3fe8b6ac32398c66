"""The command policy for free-form commands (run_command, exec): deny, shell and allow rules."""

from shared.lib.commands.policy import (
    COMMAND_POLICY_FILE,
    CommandPolicy,
    CommandVerdict,
    DenyRule,
    load_command_policy,
)

__all__ = [
    "COMMAND_POLICY_FILE",
    "CommandPolicy",
    "CommandVerdict",
    "DenyRule",
    "load_command_policy",
]
