"""SSH execution cost: pooled connection against a connection per command, and fan-out.

Run with `python -m benchmarks.bench_ssh [--commands N] [--hosts N]`; starts its own loopback
sshd fleet, stops it at the end, and writes benchmarks/results/ssh.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncssh

from shared.lib.execution.models import ExecutionResult, OperationCall, SshTarget
from shared.lib.executors.ssh import SshExecutor
from tests.testbed.sshd import SshdFleet, SshHost

REPO_ROOT = Path(__file__).resolve().parents[1]
STATE_DIR = REPO_ROOT / ".testbed" / "ssh" / f"bench-{os.getpid()}"
RESULTS = REPO_ROOT / "benchmarks" / "results" / "ssh.md"
FAN_OUT_SIZES = (1, 2, 4, 8)
FAN_OUT_REPEATS = 5
REMOTE_SLEEP_S = 0.2  # stands in for a command that waits on something (systemctl, a probe)


@dataclass(frozen=True)
class Timing:
    label: str
    total_ms: float
    count: int

    @property
    def per_command_ms(self) -> float:
        return self.total_ms / self.count


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--commands", type=int, default=100, help="commands per method")
    parser.add_argument("--hosts", type=int, default=max(FAN_OUT_SIZES), help="sshd instances")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    fleet = SshdFleet.start(args.hosts, STATE_DIR)
    try:
        report = asyncio.run(_benchmark(fleet.hosts, commands=args.commands))
    finally:
        fleet.stop()
        shutil.rmtree(STATE_DIR, ignore_errors=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(report)


async def _benchmark(hosts: list[SshHost], *, commands: int) -> str:
    targets = [_target(host) for host in hosts]
    pooled = await _pooled(targets[0], commands)
    fresh = await _connection_per_command(targets[0], commands)
    raw = await _bare_asyncssh(hosts[0], commands)
    sizes = [n for n in FAN_OUT_SIZES if n <= len(targets)]
    fan_out = {n: await _fan_out(targets[:n]) for n in sizes}
    return _report(commands=commands, pooled=pooled, fresh=fresh, raw=raw, fan_out=fan_out)


async def _pooled(target: SshTarget, commands: int) -> Timing:
    executor = SshExecutor()
    try:
        _check(await executor.execute(_true(target)))  # warm-up: opens the pooled connection
        started = time.perf_counter()
        for _ in range(commands):
            _check(await executor.execute(_true(target)))
        total = _ms_since(started)
        if executor.connections_opened != 1:
            raise RuntimeError(f"pool opened {executor.connections_opened} connections, not 1")
    finally:
        await executor.aclose()
    return Timing("one pooled connection (`SshExecutor`)", total, commands)


async def _connection_per_command(target: SshTarget, commands: int) -> Timing:
    started = time.perf_counter()
    for _ in range(commands):
        executor = SshExecutor()
        try:
            _check(await executor.execute(_true(target)))
        finally:
            await executor.aclose()
    return Timing("new connection per command (`SshExecutor`)", _ms_since(started), commands)


async def _bare_asyncssh(host: SshHost, commands: int) -> Timing:
    """The floor: asyncssh's own `run` on one connection, no executor around it."""
    async with asyncssh.connect(
        host.host,
        port=host.port,
        username=host.user,
        client_keys=[str(host.client_key)],
        known_hosts=str(host.known_hosts),
    ) as conn:
        started = time.perf_counter()
        for _ in range(commands):
            done = await conn.run("true", check=False)
            if done.exit_status != 0:
                raise RuntimeError(f"bare asyncssh `true` exited with {done.exit_status}")
        total = _ms_since(started)
    return Timing("one connection, bare `asyncssh.run`", total, commands)


async def _fan_out(targets: list[SshTarget]) -> tuple[float, float]:
    """Median ms to run the sleep on every target: concurrently, then one after another."""
    executor = SshExecutor()
    calls = [_sleep(target) for target in targets]
    try:
        for result in await executor.fan_out(calls):  # warm-up: one connection per host
            _check(result)

        async def concurrent() -> None:
            for result in await executor.fan_out(calls):
                _check(result)

        async def sequential() -> None:
            for call in calls:
                _check(await executor.execute(call))

        together = await _median_ms(concurrent)
        one_by_one = await _median_ms(sequential)
    finally:
        await executor.aclose()
    return together, one_by_one


async def _median_ms(action: Callable[[], Awaitable[None]]) -> float:
    samples = []
    for _ in range(FAN_OUT_REPEATS):
        started = time.perf_counter()
        await action()
        samples.append(_ms_since(started))
    return statistics.median(samples)


def _report(
    *,
    commands: int,
    pooled: Timing,
    fresh: Timing,
    raw: Timing,
    fan_out: dict[int, tuple[float, float]],
) -> str:
    openssh = subprocess.run(["ssh", "-V"], capture_output=True, text=True, check=False).stderr
    lines = [
        "# SSH execution cost",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {openssh.strip()}, asyncssh "
        f"{asyncssh.__version__}, Python {platform.python_version()}, {os.cpu_count()} cores; "
        "every sshd on a loopback port of the same machine, ed25519 keys, host keys verified.",
        "",
        f'## {commands} sequential `run_command ["true"]` on one host',
        "",
        "| method | total ms | ms per command | vs pooled |",
        "|---|---|---|---|",
    ]
    for timing in (pooled, fresh, raw):
        lines.append(
            f"| {timing.label} | {timing.total_ms:.0f} | {timing.per_command_ms:.2f} "
            f"| {timing.per_command_ms / pooled.per_command_ms:.2f}x |"
        )
    lines += [
        "",
        f"## Fan-out of `sleep {REMOTE_SLEEP_S}` to N hosts (median of {FAN_OUT_REPEATS}, "
        "warm pool)",
        "",
        "| hosts | `fan_out` ms | sequential ms | speed-up |",
        "|---|---|---|---|",
    ]
    for size, (together, one_by_one) in fan_out.items():
        lines.append(
            f"| {size} | {together:.0f} | {one_by_one:.0f} | {one_by_one / together:.2f}x |"
        )
    lines += [
        "",
        "A new connection per command pays TCP setup, key exchange and public-key "
        "authentication every time; the pool pays them once per host. Fan-out time stays near "
        "one command's time while the hosts work in parallel; all hosts here share one 2-core "
        "machine, so the client and eight daemons compete for the same CPUs.",
        "",
    ]
    return "\n".join(lines)


def _target(host: SshHost) -> SshTarget:
    return SshTarget(
        name=f"bench-{host.port}",
        environment="bench",
        host=host.host,
        port=host.port,
        user=host.user,
        key_path=str(host.client_key),
        known_hosts=str(host.known_hosts),
    )


def _true(target: SshTarget) -> OperationCall:
    return OperationCall(operation="run_command", target=target, params={"argv": ["true"]})


def _sleep(target: SshTarget) -> OperationCall:
    argv = ["sleep", str(REMOTE_SLEEP_S)]
    return OperationCall(operation="run_command", target=target, params={"argv": argv})


def _check(result: ExecutionResult) -> None:
    if not result.ok:
        raise RuntimeError(f"benchmark command failed: {result}")


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


if __name__ == "__main__":
    main()
