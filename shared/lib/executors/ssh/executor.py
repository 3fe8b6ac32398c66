"""The SSH executor: validates a call, runs its command on a pooled connection under the call's
deadline, and reads the output back with a cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import asyncssh

from shared.lib.execution.models import (
    ExecutionResult,
    ExecutionStatus,
    Invocation,
    OperationCall,
    cap_output,
)
from shared.lib.executors.ssh.commands import (
    REMOTE_KILL_AFTER_S,
    SUPPORTED_OPERATIONS,
    Command,
    Refused,
    build_command,
)
from shared.lib.executors.ssh.parsing import Completed, finish, result
from shared.lib.executors.ssh.pool import (
    Pooled,
    Slot,
    SshConnectionPool,
    Unreachable,
    endpoint,
)
from shared.lib.targets.models import SshTarget

Process = asyncssh.SSHClientProcess[str]

READ_CHUNK = 64 * 1024


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
        self._pool = SshConnectionPool(
            connect_timeout_s=connect_timeout_s,
            keepalive_interval_s=keepalive_interval_s,
            keepalive_count_max=keepalive_count_max,
            idle_timeout_s=idle_timeout_s,
            reap_interval_s=reap_interval_s,
            channels_per_host=channels_per_host,
            clock=clock,
        )
        self._remote_grace_s = remote_grace_s
        self._reclaims: set[asyncio.Task[None]] = set()
        self._global = asyncio.Semaphore(max_concurrency)

    @property
    def connections_opened(self) -> int:
        return self._pool.connections_opened

    def supports(self, operation: str) -> bool:
        return operation in SUPPORTED_OPERATIONS

    async def execute(self, call: OperationCall) -> ExecutionResult:
        started = time.perf_counter()
        target = call.target
        where = endpoint(target) if isinstance(target, SshTarget) else target.name
        try:
            if not isinstance(target, SshTarget):
                raise Refused(
                    f"the ssh executor cannot run on {target.kind} target '{target.name}'"
                )
            command = build_command(call, target)
            if self._remote_grace_s is not None:
                command = replace(command, bound=f"{call.timeout_s + self._remote_grace_s:g}")
        except Refused as exc:
            invocation = Invocation(kind="none", endpoint=where, call=call.operation)
            return result(call, ExecutionStatus.REFUSED, invocation, started, reason=str(exc))
        invocation = Invocation(kind="ssh", endpoint=where, call=command.line, argv=command.argv)
        async with self._global:
            return await self._execute(call, target, command, invocation, started)

    async def probe(self, target: SshTarget) -> str:
        """Check out the host's pooled connection (connecting when none is open) and give it
        back: the server's version string; raises `Unreachable` with the reason."""
        slot = self._pool.slot(target)
        pooled = await self._pool.checkout(slot, target)
        try:
            return str(pooled.conn.get_extra_info("server_version") or "ssh")
        finally:
            self._pool.release(pooled)

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
        return self._pool.pooled_connection(target)

    @property
    def pool_size(self) -> int:
        return self._pool.size

    async def aclose(self) -> None:
        await self._pool.stop_reaper()
        for task in list(self._reclaims):
            task.cancel()
        await self._pool.close_all()

    async def _execute(
        self,
        call: OperationCall,
        target: SshTarget,
        command: Command,
        invocation: Invocation,
        started: float,
    ) -> ExecutionResult:
        slot = self._pool.slot(target)
        phase = f"waiting for a free channel to {endpoint(target)}"
        holds_channel = False
        running: Process | None = None  # set while a started remote command has not ended
        try:
            async with asyncio.timeout(call.timeout_s):
                await slot.channels.acquire()
                holds_channel = True
                phase = f"opening a session on {endpoint(target)}"
                pooled, running = await self._open(slot, target, command)
                try:
                    phase = f"running the command on {endpoint(target)}"
                    done = await self._collect(slot, pooled, target, running, call.output_cap)
                    running = None
                finally:
                    self._pool.release(pooled)
        except TimeoutError:
            reason = f"timed out after {call.timeout_s:g} s while {phase}"
            return result(call, ExecutionStatus.TIMEOUT, invocation, started, reason=reason)
        except Unreachable as exc:
            return result(call, ExecutionStatus.UNREACHABLE, invocation, started, reason=str(exc))
        finally:
            if running is not None:
                self._reclaim_later(slot, running, call.timeout_s)
            elif holds_channel:
                slot.channels.release()
        return finish(call, invocation, started, done)

    def _reclaim_later(self, slot: Slot, process: Process, timeout_s: float) -> None:
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
        self, slot: Slot, target: SshTarget, command: Command
    ) -> tuple[Pooled, Process]:
        """A busy pooled connection and the remote process started on it."""
        for attempt in (1, 2):
            pooled = await self._pool.checkout(slot, target)
            try:
                process = await pooled.conn.create_process(
                    command.line, stdin=asyncssh.DEVNULL, encoding="utf-8", errors="replace"
                )
            except (asyncssh.Error, OSError) as exc:
                self._pool.release(pooled)
                if not pooled.conn.is_closed():
                    raise Unreachable(f"{endpoint(target)} refused a session: {exc}") from exc
                self._pool.discard(slot, pooled)
                if attempt == 2:
                    raise Unreachable(f"connection to {endpoint(target)} lost: {exc}") from exc
                # A pooled connection can die unnoticed; nothing was sent, so reconnect once.
                continue
            except BaseException:
                self._pool.release(pooled)
                raise
            return pooled, process
        raise AssertionError("unreachable: the loop returns or raises")

    async def _collect(
        self, slot: Slot, pooled: Pooled, target: SshTarget, process: Process, cap: int
    ) -> Completed:
        try:
            (out, out_cut), (err, err_cut) = await asyncio.gather(
                _drain(process.stdout, cap), _drain(process.stderr, cap)
            )
            await process.wait_closed()
        except BaseException as exc:
            _abandon(process)  # timeout or cancellation: end this channel, keep the connection
            if isinstance(exc, asyncssh.Error | OSError):
                if pooled.conn.is_closed():
                    self._pool.discard(slot, pooled)
                raise Unreachable(f"connection to {endpoint(target)} lost: {exc}") from exc
            raise
        return Completed(process.returncode, out, err, out_cut or err_cut)


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
