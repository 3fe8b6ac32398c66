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

from shared.lib.execution.models import ExecutionResult, OperationCall
from shared.lib.executors.ssh import SshExecutor
from shared.lib.targets.models import SshTarget
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
    samples_ms: list[float]

    @property
    def total_ms(self) -> float:
        return sum(self.samples_ms)

    @property
    def mean_ms(self) -> float:
        return statistics.fmean(self.samples_ms)


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
    sequential = await _sequential(targets[0], hosts[0], commands)
    sizes = [n for n in FAN_OUT_SIZES if n <= len(targets)]
    fan_out = {n: await _fan_out(targets[:n]) for n in sizes}
    return _report(commands=commands, sequential=sequential, fan_out=fan_out)


async def _sequential(target: SshTarget, host: SshHost, commands: int) -> list[Timing]:
    """Per-command latency of each method, interleaved so load from elsewhere hits all alike."""
    pooled = SshExecutor()
    unbounded = SshExecutor(remote_grace_s=None)
    bare = await asyncssh.connect(
        host.host,
        port=host.port,
        username=host.user,
        client_keys=[str(host.client_key)],
        known_hosts=str(host.known_hosts),
    )

    async def fresh() -> None:
        executor = SshExecutor()
        try:
            _check(await executor.execute(_true(target)))
        finally:
            await executor.aclose()

    async def bare_run() -> None:
        done = await bare.run("true", check=False)
        if done.exit_status != 0:
            raise RuntimeError(f"bare asyncssh `true` exited with {done.exit_status}")

    methods: dict[str, Callable[[], Awaitable[None]]] = {
        "one pooled connection (`SshExecutor`)": lambda: _ok(pooled, target),
        "new connection per command (`SshExecutor`)": fresh,
        "one pooled connection, remote `timeout` bound off": lambda: _ok(unbounded, target),
        "one connection, bare `asyncssh` `conn.run`": bare_run,
    }
    samples: dict[str, list[float]] = {label: [] for label in methods}
    try:
        for action in methods.values():  # warm-up: opens the pooled connections
            await action()
        for _ in range(commands):
            for label, action in methods.items():
                started = time.perf_counter()
                await action()
                samples[label].append(_ms_since(started))
        for executor in (pooled, unbounded):
            if executor.connections_opened != 1:
                raise RuntimeError(f"pool opened {executor.connections_opened} connections")
    finally:
        await pooled.aclose()
        await unbounded.aclose()
        bare.close()
        await bare.wait_closed()
    return [Timing(label, values) for label, values in samples.items()]


async def _ok(executor: SshExecutor, target: SshTarget) -> None:
    _check(await executor.execute(_true(target)))


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
    *, commands: int, sequential: list[Timing], fan_out: dict[int, tuple[float, float]]
) -> str:
    openssh = subprocess.run(["ssh", "-V"], capture_output=True, text=True, check=False).stderr
    load = os.getloadavg()[0]
    baseline = sequential[0].mean_ms
    lines = [
        "# SSH execution cost",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {openssh.strip()}, asyncssh "
        f"{asyncssh.__version__}, Python {platform.python_version()}, {os.cpu_count()} cores "
        f"(1-minute load {load:.1f} at the end: other work shared the machine); every sshd on "
        "a loopback port of the same machine, ed25519 keys, host keys verified.",
        "",
        f"## {commands} sequential `true` on one host, methods interleaved",
        "",
        "| method | total ms | mean ms | p50 ms | p95 ms | vs pooled |",
        "|---|---|---|---|---|---|",
    ]
    for timing in sequential:
        ordered = sorted(timing.samples_ms)
        p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
        lines.append(
            f"| {timing.label} | {timing.total_ms:.0f} | {timing.mean_ms:.2f} "
            f"| {statistics.median(ordered):.2f} | {p95:.2f} | {timing.mean_ms / baseline:.2f}x |"
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
        "authentication every time; the pool pays them once per host. The executor runs each "
        "command under the host's `timeout` (so the host ends commands the client gave up on); "
        "that extra exec is the gap to the bound-off row, which matches bare asyncssh. Fan-out "
        "time stays near one command's time while the hosts work in parallel; all hosts here "
        "share one 2-core machine with the client.",
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
