"""Runs catalog operations on hosts over SSH: pooled asyncssh connections, verified host keys.

Every remote failure (unreachable host, wrong host key, non-zero exit, timeout) comes back as an
ExecutionResult; exceptions are left for bugs.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shlex
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import asyncssh

from shared.lib.execution.models import (
    ExecutionResult,
    ExecutionStatus,
    Invocation,
    OperationCall,
    cap_output,
)
from shared.lib.targets.models import SshTarget

Process = asyncssh.SSHClientProcess[str]

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
STATUS_PROPERTIES = ("Id", "LoadState", "ActiveState", "SubState", "MainPID", "NRestarts")
JOURNAL_LINES_DEFAULT = 100
JOURNAL_LINES_MAX = 10_000
READ_CHUNK = 64 * 1024
REMOTE_KILL_AFTER_S = 5

ConnectionKey = tuple[str, int, str, str | None, str | None]


class _Refused(Exception):
    """The call is invalid for this executor; nothing was sent."""


class _Unreachable(Exception):
    """No usable SSH session to the host."""


@dataclass(frozen=True)
class _Command:
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


@dataclass
class _Completed:
    exit_code: int | None
    stdout: str
    stderr: str
    truncated: bool


@dataclass
class _Pooled:
    conn: asyncssh.SSHClientConnection
    last_used: float
    in_use: int = 0


@dataclass
class _Slot:
    """Pool state for one (host, port, user, key, known_hosts)."""

    channels: asyncio.Semaphore
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pooled: _Pooled | None = None


class SshExecutor:
    """Executes catalog operations over one pooled SSH connection per host."""

    kind = "ssh"

    def __init__(
        self,
        *,
        connect_timeout_s: float = 10.0,
        keepalive_interval_s: float = 15.0,
        keepalive_count_max: int = 3,
        idle_timeout_s: float = 300.0,
        reap_interval_s: float | None = None,
        channels_per_host: int = 8,
        max_concurrency: int = 32,
        remote_grace_s: float | None = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`remote_grace_s`: the host ends a command that long after call.timeout_s (None: never,
        for hosts without coreutils `timeout`). Keep channels_per_host under sshd's MaxSessions.
        """
        if channels_per_host < 1 or max_concurrency < 1:
            raise ValueError(
                f"channels_per_host={channels_per_host} and max_concurrency={max_concurrency} "
                "must both be at least 1"
            )
        self._connect_timeout_s = connect_timeout_s
        self._keepalive_interval_s = keepalive_interval_s
        self._keepalive_count_max = keepalive_count_max
        self._idle_timeout_s = idle_timeout_s
        self._reap_interval_s = reap_interval_s or min(idle_timeout_s / 2, 30.0)
        self._channels_per_host = channels_per_host
        self._remote_grace_s = remote_grace_s
        self._reclaims: set[asyncio.Task[None]] = set()
        self._global = asyncio.Semaphore(max_concurrency)
        self._clock = clock
        self._slots: dict[ConnectionKey, _Slot] = {}
        self._reaper: asyncio.Task[None] | None = None
        self.connections_opened = 0

    def supports(self, operation: str) -> bool:
        return operation in SUPPORTED_OPERATIONS

    async def execute(self, call: OperationCall) -> ExecutionResult:
        started = time.perf_counter()
        target = call.target
        endpoint = _endpoint(target) if isinstance(target, SshTarget) else target.name
        try:
            if not isinstance(target, SshTarget):
                raise _Refused(
                    f"the ssh executor cannot run on {target.kind} target '{target.name}'"
                )
            command = _build(call, target)
            if self._remote_grace_s is not None:
                command = replace(command, bound=f"{call.timeout_s + self._remote_grace_s:g}")
        except _Refused as exc:
            invocation = Invocation(kind="none", endpoint=endpoint, call=call.operation)
            return _result(call, ExecutionStatus.REFUSED, invocation, started, reason=str(exc))
        invocation = Invocation(kind="ssh", endpoint=endpoint, call=command.line, argv=command.argv)
        async with self._global:
            return await self._execute(call, target, command, invocation, started)

    async def fan_out(
        self, calls: Sequence[OperationCall], limit: int | None = None
    ) -> list[ExecutionResult]:
        """Run calls concurrently (at most `limit` at once, and the global limit); keep order."""
        if limit is not None and limit < 1:
            raise ValueError(f"fan_out limit must be at least 1, got {limit}")
        local = asyncio.Semaphore(limit) if limit else None

        async def one(call: OperationCall) -> ExecutionResult:
            if local is None:
                return await self.execute(call)
            async with local:
                return await self.execute(call)

        return list(await asyncio.gather(*(one(call) for call in calls)))

    def pooled_connection(self, target: SshTarget) -> asyncssh.SSHClientConnection | None:
        """The live pooled connection for the target, if any (for tests and diagnostics)."""
        slot = self._slots.get(_key(target))
        return slot.pooled.conn if slot and slot.pooled else None

    @property
    def pool_size(self) -> int:
        return sum(1 for slot in self._slots.values() if slot.pooled is not None)

    async def aclose(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        for task in list(self._reclaims):
            task.cancel()
        conns = [slot.pooled.conn for slot in self._slots.values() if slot.pooled]
        for slot in self._slots.values():
            slot.pooled = None
        for conn in conns:
            conn.close()
        for conn in conns:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.wait_closed(), timeout=5)

    async def _execute(
        self,
        call: OperationCall,
        target: SshTarget,
        command: _Command,
        invocation: Invocation,
        started: float,
    ) -> ExecutionResult:
        slot = self._slot(target)
        phase = f"waiting for a free channel to {_endpoint(target)}"
        holds_channel = False
        running: Process | None = None  # set while a started remote command has not ended
        try:
            async with asyncio.timeout(call.timeout_s):
                await slot.channels.acquire()
                holds_channel = True
                phase = f"opening a session on {_endpoint(target)}"
                pooled, running = await self._open(slot, target, command)
                try:
                    phase = f"running the command on {_endpoint(target)}"
                    done = await self._collect(slot, pooled, target, running, call.output_cap)
                    running = None
                finally:
                    self._release(pooled)
        except TimeoutError:
            reason = f"timed out after {call.timeout_s:g} s while {phase}"
            return _result(call, ExecutionStatus.TIMEOUT, invocation, started, reason=reason)
        except _Unreachable as exc:
            return _result(call, ExecutionStatus.UNREACHABLE, invocation, started, reason=str(exc))
        finally:
            if running is not None:
                self._reclaim_later(slot, running, call.timeout_s)
            elif holds_channel:
                slot.channels.release()
        return _finish(call, invocation, started, done)

    def _reclaim_later(self, slot: _Slot, process: Process, timeout_s: float) -> None:
        """Give the abandoned command's channel slot back once sshd has really closed it."""
        bound = timeout_s + (self._remote_grace_s or 0) + REMOTE_KILL_AFTER_S + 5

        async def reclaim() -> None:
            try:
                await asyncio.wait_for(process.wait_closed(), bound)
            except TimeoutError:
                pass  # the host never ended it; stop counting it rather than block forever
            finally:
                slot.channels.release()

        task = asyncio.get_running_loop().create_task(reclaim())
        self._reclaims.add(task)
        task.add_done_callback(self._reclaims.discard)

    async def _open(
        self, slot: _Slot, target: SshTarget, command: _Command
    ) -> tuple[_Pooled, Process]:
        """A busy pooled connection and the remote process started on it."""
        for attempt in (1, 2):
            pooled = await self._checkout(slot, target)
            try:
                process = await pooled.conn.create_process(
                    command.line, stdin=asyncssh.DEVNULL, encoding="utf-8", errors="replace"
                )
            except (asyncssh.Error, OSError) as exc:
                self._release(pooled)
                if not pooled.conn.is_closed():
                    raise _Unreachable(f"{_endpoint(target)} refused a session: {exc}") from exc
                self._discard(slot, pooled)
                if attempt == 2:
                    raise _Unreachable(f"connection to {_endpoint(target)} lost: {exc}") from exc
                # A pooled connection can die unnoticed; nothing was sent, so reconnect once.
                continue
            except BaseException:
                self._release(pooled)
                raise
            return pooled, process
        raise AssertionError("unreachable: the loop returns or raises")

    async def _checkout(self, slot: _Slot, target: SshTarget) -> _Pooled:
        """The pooled connection (reconnecting when it is closed or idle too long), marked busy."""
        async with slot.lock:
            pooled = slot.pooled
            if pooled is not None and (pooled.conn.is_closed() or self._expired(pooled)):
                self._discard(slot, pooled)
                pooled = None
            if pooled is None:
                pooled = _Pooled(conn=await self._connect(target), last_used=self._clock())
                slot.pooled = pooled
                self._start_reaper()
            pooled.in_use += 1
            return pooled

    def _release(self, pooled: _Pooled) -> None:
        pooled.in_use -= 1
        pooled.last_used = self._clock()

    async def _collect(
        self, slot: _Slot, pooled: _Pooled, target: SshTarget, process: Process, cap: int
    ) -> _Completed:
        try:
            (out, out_cut), (err, err_cut) = await asyncio.gather(
                _drain(process.stdout, cap), _drain(process.stderr, cap)
            )
            await process.wait_closed()
        except BaseException as exc:
            _abandon(process)  # timeout or cancellation: end this channel, keep the connection
            if isinstance(exc, asyncssh.Error | OSError):
                if pooled.conn.is_closed():
                    self._discard(slot, pooled)
                raise _Unreachable(f"connection to {_endpoint(target)} lost: {exc}") from exc
            raise
        return _Completed(process.returncode, out, err, out_cut or err_cut)

    async def _connect(self, target: SshTarget) -> asyncssh.SSHClientConnection:
        options: dict[str, Any] = {
            "port": target.port,
            "username": target.user,
            "connect_timeout": self._connect_timeout_s,
            "keepalive_interval": self._keepalive_interval_s,
            "keepalive_count_max": self._keepalive_count_max,
        }
        if target.known_hosts:  # otherwise asyncssh's default, ~/.ssh/known_hosts; never off
            options["known_hosts"] = target.known_hosts
        if target.key_path:
            options["client_keys"] = [target.key_path]
        try:
            conn = await asyncssh.connect(target.host, **options)
        except asyncssh.HostKeyNotVerifiable as exc:
            raise _Unreachable(_host_key_reason(target)) from exc
        except asyncssh.PermissionDenied as exc:
            key = target.key_path or "the default keys"
            raise _Unreachable(
                f"authentication as {_endpoint(target)} with {key} was denied: {exc}"
            ) from exc
        except ConnectionRefusedError as exc:
            raise _Unreachable(f"connection to {target.host}:{target.port} refused") from exc
        except socket.gaierror as exc:
            raise _Unreachable(f"cannot resolve host {target.host!r}: {exc.strerror}") from exc
        except TimeoutError as exc:
            raise _Unreachable(
                f"no SSH answer from {target.host}:{target.port} "
                f"within {self._connect_timeout_s:g} s"
            ) from exc
        except OSError as exc:
            what = f"cannot read {exc.filename}" if exc.filename else "cannot connect"
            raise _Unreachable(f"{what} for {target.host}:{target.port}: {exc}") from exc
        except (asyncssh.Error, asyncssh.KeyImportError) as exc:
            raise _Unreachable(f"ssh to {_endpoint(target)} failed: {exc}") from exc
        self.connections_opened += 1
        return conn

    def _slot(self, target: SshTarget) -> _Slot:
        key = _key(target)
        if key not in self._slots:
            self._slots[key] = _Slot(channels=asyncio.Semaphore(self._channels_per_host))
        return self._slots[key]

    def _expired(self, pooled: _Pooled) -> bool:
        return pooled.in_use == 0 and self._clock() - pooled.last_used > self._idle_timeout_s

    def _discard(self, slot: _Slot, pooled: _Pooled) -> None:
        if slot.pooled is pooled:
            slot.pooled = None
        pooled.conn.close()

    def _start_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap())

    async def _reap(self) -> None:
        """Close pooled connections idle past the expiry, so idle hosts hold no sessions."""
        while any(slot.pooled for slot in self._slots.values()):
            await asyncio.sleep(self._reap_interval_s)
            for slot in self._slots.values():
                pooled = slot.pooled
                if (
                    pooled
                    and not slot.lock.locked()
                    and (pooled.conn.is_closed() or self._expired(pooled))
                ):
                    self._discard(slot, pooled)


def _build(call: OperationCall, target: SshTarget) -> _Command:
    """The remote command for a call, or _Refused naming what is wrong."""
    operation = ALIASES.get(call.operation, call.operation)
    if call.operation not in SUPPORTED_OPERATIONS:
        known = ", ".join(sorted(SUPPORTED_OPERATIONS))
        raise _Refused(f"operation '{call.operation}' is not supported over ssh (known: {known})")
    if operation == "run_command":
        argv = call.params.get("argv")
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise _Refused(
                f"run_command needs param argv as a non-empty list of strings, got {argv!r}"
            )
        return _Command((tuple(argv),))
    if operation == "disk_usage":
        return _Command((("df", "-P"),))
    if operation == "uptime":
        return _Command((("cat", "/proc/uptime"), ("uptime",)))
    unit = _unit(call, target)
    if operation == "service_status":
        show = ["systemctl", "show", "--no-pager"]
        for prop in STATUS_PROPERTIES:
            show += ["-p", prop]
        return _Command((("systemctl", "is-active", unit), (*show, unit)))
    if operation == "journal_tail":
        lines = _journal_lines(call.params)
        return _Command((("journalctl", "-u", unit, "-n", str(lines), "--no-pager"),))
    verb = operation.removeprefix("service_")  # restart, start, stop
    return _Command((("systemctl", verb, unit),))


def _unit(call: OperationCall, target: SshTarget) -> str:
    param = call.params.get("unit")
    if param is not None and target.unit is not None and param != target.unit:
        raise _Refused(
            f"param unit {param!r} differs from unit {target.unit!r} of target '{target.name}'"
        )
    unit = target.unit if target.unit is not None else param
    if unit is None:
        raise _Refused(
            f"'{call.operation}' needs a systemd unit: set unit on target '{target.name}' "
            "or pass param unit"
        )
    if not isinstance(unit, str) or len(unit) > UNIT_NAME_MAX or not UNIT_NAME.fullmatch(unit):
        raise _Refused(f"{unit!r} is not a valid systemd unit name")
    return unit


def _journal_lines(params: dict[str, Any]) -> int:
    lines = params.get("lines", params.get("tail", JOURNAL_LINES_DEFAULT))
    if isinstance(lines, bool) or not isinstance(lines, int) or not 1 <= lines <= JOURNAL_LINES_MAX:
        raise _Refused(f"lines must be an integer from 1 to {JOURNAL_LINES_MAX}, got {lines!r}")
    return lines


def _finish(
    call: OperationCall, invocation: Invocation, started: float, done: _Completed
) -> ExecutionResult:
    """Turn a completed remote command into a result, parsing what the operation reports."""
    operation = ALIASES.get(call.operation, call.operation)
    status, reason = ExecutionStatus.OK, None
    if done.exit_code != 0:
        status = ExecutionStatus.FAILED
        reason = f"remote command exited with {done.exit_code}"
    data: dict[str, Any] = {}
    if operation == "service_status":
        data = _parse_service_status(done.stdout)
        if status is ExecutionStatus.OK and data.get("load_state") == "not-found":
            status, reason = ExecutionStatus.FAILED, f"unit {data.get('unit')} not found"
        elif status is ExecutionStatus.OK and call.operation == "health" and not data["active"]:
            status = ExecutionStatus.FAILED
            reason = f"unit {data.get('unit')} is {data.get('active_state') or 'not active'}"
    elif operation == "disk_usage" and status is ExecutionStatus.OK:
        data = {"filesystems": _parse_df(done.stdout)}
    elif operation == "uptime" and status is ExecutionStatus.OK:
        data = _parse_uptime(done.stdout)
    return _result(
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


def _parse_service_status(stdout: str) -> dict[str, Any]:
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
    }


def _parse_df(stdout: str) -> list[dict[str, Any]]:
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


def _parse_uptime(stdout: str) -> dict[str, Any]:
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


async def _drain(stream: asyncssh.SSHReader[str], cap: int) -> tuple[str, bool]:
    """Read a stream to its end, keeping at most cap characters in memory."""
    kept: list[str] = []
    size = 0
    cut = False
    while chunk := await stream.read(READ_CHUNK):
        if size <= cap:
            kept.append(chunk)
            size += len(chunk)
        else:
            cut = True
    text, truncated = cap_output("".join(kept), cap)
    return text, truncated or cut


def _abandon(process: Process) -> None:
    """Stop a remote command we no longer wait for and close its channel."""
    with contextlib.suppress(Exception):
        process.send_signal("KILL")
    with contextlib.suppress(Exception):
        process.close()


def _result(
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


def _endpoint(target: SshTarget) -> str:
    return f"{target.user}@{target.host}:{target.port}"


def _key(target: SshTarget) -> ConnectionKey:
    # Credentials are part of the key: a connection verified against one known_hosts file
    # must never serve a target that trusts a different one.
    return (target.host, target.port, target.user, target.key_path, target.known_hosts)


def _host_key_reason(target: SshTarget) -> str:
    path = target.known_hosts or str(Path("~/.ssh/known_hosts").expanduser())
    try:
        matched = asyncssh.read_known_hosts(path).match(target.host, target.host, target.port)
        listed = bool(matched[0] or matched[1])  # host keys or CA keys for this host:port
    except (OSError, ValueError, asyncssh.Error):
        listed = False
    where = f"{target.host}:{target.port}"
    if listed:
        return f"host key for {where} does not match known_hosts {path}"
    return f"host key for {where} is not listed in known_hosts {path}"
