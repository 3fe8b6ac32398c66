"""Runs catalog operations on hosts over SSH: pooled asyncssh connections, verified host keys.

Every remote failure (unreachable host, wrong host key, non-zero exit, timeout) comes back as an
ExecutionResult; exceptions are left for bugs.
"""

from shared.lib.executors.ssh.commands import ALIASES, NATIVE_OPERATIONS, SUPPORTED_OPERATIONS
from shared.lib.executors.ssh.executor import SshExecutor

__all__ = ["ALIASES", "NATIVE_OPERATIONS", "SUPPORTED_OPERATIONS", "SshExecutor"]
