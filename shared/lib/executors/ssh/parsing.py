"""Turns a finished remote command into an ExecutionResult, parsing what systemctl, df and
uptime print.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from shared.lib.execution.models import (
    ExecutionResult,
    ExecutionStatus,
    Invocation,
    OperationCall,
)
from shared.lib.executors.ssh.commands import ALIASES


@dataclass
class Completed:
    exit_code: int | None
    stdout: str
    stderr: str
    truncated: bool


def finish(
    call: OperationCall, invocation: Invocation, started: float, done: Completed
) -> ExecutionResult:
    """Turn a completed remote command into a result, parsing what the operation reports."""
    operation = ALIASES.get(call.operation, call.operation)
    status, reason = ExecutionStatus.OK, None
    if done.exit_code != 0:
        status = ExecutionStatus.FAILED
        reason = f"remote command exited with {done.exit_code}"
    data: dict[str, Any] = {}
    if operation == "service_status":
        data = parse_service_status(done.stdout)
        if status is ExecutionStatus.OK and data.get("load_state") == "not-found":
            status, reason = ExecutionStatus.FAILED, f"unit {data.get('unit')} not found"
        elif status is ExecutionStatus.OK and call.operation == "health" and not data["active"]:
            status = ExecutionStatus.FAILED
            reason = f"unit {data.get('unit')} is {data.get('active_state') or 'not active'}"
    elif operation == "disk_usage" and status is ExecutionStatus.OK:
        data = {"filesystems": parse_df(done.stdout)}
    elif operation == "uptime" and status is ExecutionStatus.OK:
        data = parse_uptime(done.stdout)
    return result(
        call,
        status,
        invocation,
        started,
        reason=reason,
        exit_code=done.exit_code,
        stdout=done.stdout,
        stderr=done.stderr,
        truncated=done.truncated,
        data=data,
    )


def result(
    call: OperationCall,
    status: ExecutionStatus,
    invocation: Invocation,
    started: float,
    **fields: Any,
) -> ExecutionResult:
    return ExecutionResult(
        status=status,
        operation=call.operation,
        target=call.target.name,
        invocation=invocation,
        duration_ms=(time.perf_counter() - started) * 1000,
        **fields,
    )


def parse_service_status(stdout: str) -> dict[str, Any]:
    lines = stdout.splitlines()
    props = dict(line.split("=", 1) for line in lines[1:] if "=" in line)
    active_state = props.get("ActiveState") or (lines[0].strip() if lines else "")
    return {
        "unit": props.get("Id"),
        "active": active_state == "active",
        "active_state": active_state,
        "sub_state": props.get("SubState"),
        "load_state": props.get("LoadState"),
        "main_pid": _int_or_none(props.get("MainPID")),
        "restarts": _int_or_none(props.get("NRestarts")),
        "main_pid_started_at": props.get("ExecMainStartTimestamp") or None,
    }


def parse_df(stdout: str) -> list[dict[str, Any]]:
    rows = []
    for line in stdout.splitlines()[1:]:
        fields = line.split(None, 5)
        if len(fields) < 6 or not fields[1].isdigit():
            continue
        rows.append(
            {
                "filesystem": fields[0],
                "size_kb": int(fields[1]),
                "used_kb": int(fields[2]),
                "available_kb": int(fields[3]),
                "used_percent": _int_or_none(fields[4].rstrip("%")),
                "mounted_on": fields[5],
            }
        )
    return rows


def parse_uptime(stdout: str) -> dict[str, Any]:
    first, _, rest = stdout.partition("\n")
    numbers = first.split()
    load = re.search(r"load average:\s*([\d.]+),\s*([\d.]+),\s*([\d.]+)", rest)
    return {
        "uptime_s": float(numbers[0]) if numbers else None,
        "summary": rest.strip(),
        "load_average": [float(x) for x in load.groups()] if load else None,
    }


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None
