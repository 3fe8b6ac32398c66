"""Turns an operation call into the command line sent to the host: SSH operation names,
systemd unit checks and shell quoting.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

from shared.lib.execution.models import OperationCall
from shared.lib.targets.models import SshTarget

# Universal operation names map onto the SSH-native ones so one request works on any target.
ALIASES = {
    "restart": "service_restart",
    "logs": "journal_tail",
    "health": "service_status",
    "start": "service_start",
    "stop": "service_stop",
}
NATIVE_OPERATIONS = frozenset(
    {"run_command", "service_status", "service_restart", "journal_tail", "disk_usage", "uptime"}
)
SUPPORTED_OPERATIONS = NATIVE_OPERATIONS | frozenset(ALIASES)

# systemd unit names: letters, digits and ":-_.\", one optional "@" for template instances.
UNIT_NAME = re.compile(r"[A-Za-z0-9:_.\\][A-Za-z0-9:_.\\-]*(@[A-Za-z0-9:_.\\-]*)?")
UNIT_NAME_MAX = 255
STATUS_PROPERTIES = (
    "Id",
    "LoadState",
    "ActiveState",
    "SubState",
    "MainPID",
    "NRestarts",
    "ExecMainStartTimestamp",
)
JOURNAL_LINES_DEFAULT = 100
JOURNAL_LINES_MAX = 10_000
REMOTE_KILL_AFTER_S = 5


class Refused(Exception):
    """The call is invalid for this executor; nothing was sent."""


@dataclass(frozen=True)
class Command:
    """What is sent to the remote shell: one argv, or a few joined with ';'.

    With `bound` set, each argv runs under coreutils `timeout`: OpenSSH ignores signal
    requests on root sessions (no post-auth privilege separation) and keeps a closed channel,
    and its session slot, until the command exits, so the host must end the command itself.
    """

    argvs: tuple[tuple[str, ...], ...]
    bound: str | None = None

    @property
    def line(self) -> str:
        prefix = ("timeout", "-k", str(REMOTE_KILL_AFTER_S), self.bound) if self.bound else ()
        return "; ".join(shlex.join((*prefix, *argv)) for argv in self.argvs)

    @property
    def argv(self) -> tuple[str, ...] | None:
        return self.argvs[0] if len(self.argvs) == 1 else None


def build_command(call: OperationCall, target: SshTarget) -> Command:
    """The remote command for a call, or Refused naming what is wrong."""
    operation = ALIASES.get(call.operation, call.operation)
    if call.operation not in SUPPORTED_OPERATIONS:
        known = ", ".join(sorted(SUPPORTED_OPERATIONS))
        raise Refused(f"operation '{call.operation}' is not supported over ssh (known: {known})")
    if operation == "run_command":
        argv = call.params.get("argv")
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise Refused(
                f"run_command needs param argv as a non-empty list of strings, got {argv!r}"
            )
        return Command((tuple(argv),))
    if operation == "disk_usage":
        return Command((("df", "-P"),))
    if operation == "uptime":
        return Command((("cat", "/proc/uptime"), ("uptime",)))
    unit = _unit(call, target)
    if operation == "service_status":
        show = ["systemctl", "show", "--no-pager"]
        for prop in STATUS_PROPERTIES:
            show += ["-p", prop]
        return Command((("systemctl", "is-active", unit), (*show, unit)))
    if operation == "journal_tail":
        lines = _journal_lines(call.params)
        return Command((("journalctl", "-u", unit, "-n", str(lines), "--no-pager"),))
    verb = operation.removeprefix("service_")  # restart, start, stop
    return Command((("systemctl", verb, unit),))


def _unit(call: OperationCall, target: SshTarget) -> str:
    param = call.params.get("unit")
    if param is not None and target.unit is not None and param != target.unit:
        raise Refused(
            f"param unit {param!r} differs from unit {target.unit!r} of target '{target.name}'"
        )
    unit = target.unit if target.unit is not None else param
    if unit is None:
        raise Refused(
            f"'{call.operation}' needs a systemd unit: set unit on target '{target.name}' "
            "or pass param unit"
        )
    if not isinstance(unit, str) or len(unit) > UNIT_NAME_MAX or not UNIT_NAME.fullmatch(unit):
        raise Refused(f"{unit!r} is not a valid systemd unit name")
    return unit


def _journal_lines(params: dict[str, Any]) -> int:
    lines = params.get("lines", params.get("tail", JOURNAL_LINES_DEFAULT))
    if isinstance(lines, bool) or not isinstance(lines, int) or not 1 <= lines <= JOURNAL_LINES_MAX:
        raise Refused(f"lines must be an integer from 1 to {JOURNAL_LINES_MAX}, got {lines!r}")
    return lines
