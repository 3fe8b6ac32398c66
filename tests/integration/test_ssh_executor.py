"""SshExecutor against real sshd daemons on loopback ports, host keys verified."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from shared.lib.execution.models import ExecutionResult, ExecutionStatus, OperationCall
from shared.lib.executors.ssh import SshExecutor
from shared.lib.targets.models import DockerTarget, SshTarget
from tests.conformance.contract import ConformanceCase, ExecutorContract
from tests.testbed.ssh_fixtures import ssh_target, ssh_targets
from tests.testbed.sshd import SshdFleet, free_loopback_port, write_wrong_known_hosts

pytestmark = pytest.mark.ssh

# Prints the remote clock before and after sleeping, so overlap is read from the hosts.
TIMED_SLEEP = "date +%s.%N; sleep {seconds}; date +%s.%N"


def run(target: SshTarget, *argv: str, **fields: Any) -> OperationCall:
    return OperationCall(
        operation="run_command", target=target, params={"argv": list(argv)}, **fields
    )


def op(target: SshTarget, operation: str, **params: Any) -> OperationCall:
    return OperationCall(operation=operation, target=target, params=params)


def timed_sleep(target: SshTarget, seconds: float) -> OperationCall:
    return run(target, "sh", "-c", TIMED_SLEEP.format(seconds=seconds), timeout_s=20)


def remote_span(result: ExecutionResult) -> tuple[float, float]:
    start, end = (float(line) for line in result.stdout.split())
    return start, end


def max_overlap(spans: list[tuple[float, float]]) -> int:
    """The largest number of spans running at one instant."""
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


async def wait_until(condition: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting until {what}")
        await asyncio.sleep(0.05)


def processes_with_argv(*argv: str) -> list[int]:
    wanted = "\0".join(argv).encode() + b"\0"
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes() == wanted:
                pids.append(int(cmdline.parent.name))
        except OSError:
            continue
    return pids


@pytest.fixture
async def executor() -> AsyncIterator[SshExecutor]:
    ssh = SshExecutor(connect_timeout_s=5)
    yield ssh
    await ssh.aclose()


@pytest.fixture
def targets(sshd_fleet: SshdFleet) -> list[SshTarget]:
    return ssh_targets(sshd_fleet)


class TestSshConformance(ExecutorContract):
    @pytest.fixture
    def case(self, executor: SshExecutor, targets: list[SshTarget]) -> ConformanceCase:
        web = targets[0]
        nobody = web.model_copy(update={"name": "nobody", "port": free_loopback_port()})
        return ConformanceCase(
            executor=executor,
            read_call=op(web, "uptime"),
            unreachable_call=op(nobody, "uptime"),
            big_output_call=run(web, "seq", "1", "200000", output_cap=1000),
            slow_call=run(web, "sleep", "30", timeout_s=1.5),
            failing_call=run(web, "ls", "/nonexistent"),
        )


async def test_fan_out_runs_on_all_hosts_at_once(
    executor: SshExecutor, targets: list[SshTarget]
) -> None:
    started = time.perf_counter()
    results = await executor.fan_out([timed_sleep(t, 1) for t in targets])
    elapsed = time.perf_counter() - started

    assert [r.status for r in results] == [ExecutionStatus.OK] * 3, results
    assert [r.target for r in results] == [t.name for t in targets]
    assert [r.invocation.endpoint for r in results] == [
        f"{t.user}@{t.host}:{t.port}" for t in targets
    ]
    assert max_overlap([remote_span(r) for r in results]) == 3
    assert elapsed < 2.5


async def test_fan_out_limit_and_per_host_channel_limit_bound_concurrency(
    targets: list[SshTarget],
) -> None:
    ssh = SshExecutor(channels_per_host=2)
    try:
        same_host = await ssh.fan_out([timed_sleep(targets[0], 0.4) for _ in range(4)])
        limited = await ssh.fan_out([timed_sleep(t, 0.4) for t in targets], limit=1)
    finally:
        await ssh.aclose()

    assert all(r.ok for r in same_host + limited), same_host + limited
    assert max_overlap([remote_span(r) for r in same_host]) == 2
    assert max_overlap([remote_span(r) for r in limited]) == 1
    assert ssh.connections_opened == 3  # four commands on one host shared one connection


async def test_wrong_host_key_is_unreachable_naming_the_host_key(
    executor: SshExecutor, sshd_fleet: SshdFleet, tmp_path: Path
) -> None:
    host = sshd_fleet.hosts[1]
    wrong = write_wrong_known_hosts(tmp_path / "known_hosts", port=host.port)
    # The same host with its good key first: a pooled, verified connection must not be reused.
    assert (await executor.execute(run(ssh_target(host), "true"))).ok

    result = await executor.execute(run(ssh_target(host, known_hosts=wrong), "true"))

    assert result.status is ExecutionStatus.UNREACHABLE, result
    assert result.reason == (
        f"host key for 127.0.0.1:{host.port} does not match known_hosts {wrong}"
    )


async def test_host_missing_from_known_hosts_is_unreachable(
    executor: SshExecutor, sshd_fleet: SshdFleet, tmp_path: Path
) -> None:
    host = sshd_fleet.hosts[2]
    empty = tmp_path / "known_hosts"
    empty.write_text("")

    result = await executor.execute(run(ssh_target(host, known_hosts=empty), "true"))

    assert result.status is ExecutionStatus.UNREACHABLE, result
    assert (
        result.reason == f"host key for 127.0.0.1:{host.port} is not listed in known_hosts {empty}"
    )


async def test_refused_connection_names_host_and_port(
    executor: SshExecutor, targets: list[SshTarget]
) -> None:
    port = free_loopback_port()
    result = await executor.execute(run(targets[0].model_copy(update={"port": port}), "true"))

    assert result.status is ExecutionStatus.UNREACHABLE
    assert result.reason == f"connection to 127.0.0.1:{port} refused"


async def test_timeout_keeps_the_pooled_connection_for_the_next_command(
    executor: SshExecutor, targets: list[SshTarget]
) -> None:
    web = targets[0]
    assert (await executor.execute(run(web, "true"))).ok
    conn = executor.pooled_connection(web)

    slow = await executor.execute(run(web, "sleep", "37.25", timeout_s=1))
    after = await executor.execute(run(web, "echo", "still here"))

    assert slow.status is ExecutionStatus.TIMEOUT, slow
    assert (
        slow.reason == f"timed out after 1 s while running the command on root@127.0.0.1:{web.port}"
    )
    assert after.status is ExecutionStatus.OK and after.stdout == "still here\n", after
    assert executor.pooled_connection(web) is conn
    assert executor.pool_size == 1 and executor.connections_opened == 1
    # The host ends the abandoned command itself, 2 s (the grace) after the timeout.
    assert slow.invocation.call == "timeout -k 5 3 sleep 37.25"
    await wait_until(
        lambda: not processes_with_argv("sleep", "37.25"), timeout_s=10, what="remote sleep ends"
    )


async def test_abandoned_command_holds_its_channel_until_the_host_ends_it(
    targets: list[SshTarget],
) -> None:
    # sshd keeps a closed channel's session until its command exits, so the slot stays taken.
    web = targets[1]
    ssh = SshExecutor(channels_per_host=1, remote_grace_s=1.5)
    try:
        slow = await ssh.execute(run(web, "sleep", "38.5", timeout_s=0.5))
        queued = await ssh.execute(run(web, "true", timeout_s=0.3))
        await wait_until(
            lambda: not processes_with_argv("sleep", "38.5"), timeout_s=10, what="remote sleep ends"
        )
        freed = await ssh.execute(run(web, "echo", "free", timeout_s=10))
    finally:
        await ssh.aclose()

    assert slow.status is ExecutionStatus.TIMEOUT, slow
    assert queued.status is ExecutionStatus.TIMEOUT, queued
    assert queued.reason == (
        f"timed out after 0.3 s while waiting for a free channel to root@127.0.0.1:{web.port}"
    )
    assert freed.ok and freed.stdout == "free\n", freed
    assert ssh.connections_opened == 1


async def test_output_over_cap_is_truncated_and_flagged(
    executor: SshExecutor, targets: list[SshTarget]
) -> None:
    out = await executor.execute(run(targets[0], "seq", "1", "200000", output_cap=1000))
    err = await executor.execute(
        run(targets[0], "sh", "-c", "seq 1 100000 >&2; echo done", output_cap=500)
    )

    assert out.ok and out.truncated and len(out.stdout) == 1000
    assert out.stdout.startswith("1\n2\n3\n")
    assert err.ok and err.truncated and len(err.stderr) == 500 and err.stdout == "done\n"


async def test_small_output_is_not_flagged(executor: SshExecutor, targets: list[SshTarget]) -> None:
    result = await executor.execute(run(targets[0], "seq", "1", "3", output_cap=6))

    assert result.ok and result.stdout == "1\n2\n3\n" and not result.truncated


async def test_idle_connection_is_reaped_and_transparently_replaced(
    targets: list[SshTarget],
) -> None:
    web = targets[0]
    ssh = SshExecutor(idle_timeout_s=0.3, reap_interval_s=0.1)
    try:
        busy = await ssh.execute(timed_sleep(web, 0.8))  # busy past the expiry: not reaped
        assert busy.ok and ssh.connections_opened == 1, busy
        first = ssh.pooled_connection(web)
        assert first is not None
        await wait_until(
            lambda: ssh.pooled_connection(web) is None and first.is_closed(),
            timeout_s=5,
            what="the idle connection is closed",
        )
        again = await ssh.execute(run(web, "echo", "back"))
        second = ssh.pooled_connection(web)
    finally:
        await ssh.aclose()

    assert again.ok and again.stdout == "back\n"
    assert second is not None and second is not first
    assert ssh.connections_opened == 2


async def test_idle_expiry_is_also_checked_when_a_connection_is_reused(
    targets: list[SshTarget],
) -> None:
    web = targets[0]
    now = [1000.0]
    ssh = SshExecutor(idle_timeout_s=60, reap_interval_s=3600, clock=lambda: now[0])
    try:
        assert (await ssh.execute(run(web, "true"))).ok
        first = ssh.pooled_connection(web)
        assert first is not None
        now[0] += 30
        assert (await ssh.execute(run(web, "true"))).ok
        kept = ssh.pooled_connection(web)
        now[0] += 61
        assert (await ssh.execute(run(web, "true"))).ok
        replaced = ssh.pooled_connection(web)
    finally:
        await ssh.aclose()

    assert kept is first
    assert replaced is not first and first.is_closed()
    assert ssh.connections_opened == 2


async def test_broken_connection_is_dropped_and_the_next_call_reconnects(
    executor: SshExecutor, targets: list[SshTarget]
) -> None:
    web = targets[0]
    assert (await executor.execute(run(web, "true"))).ok
    broken = executor.pooled_connection(web)
    assert broken is not None
    broken.abort()
    await wait_until(broken.is_closed, timeout_s=5, what="the aborted connection is closed")

    result = await executor.execute(run(web, "echo", "reconnected"))

    assert result.ok and result.stdout == "reconnected\n", result
    assert executor.pooled_connection(web) is not broken
    assert executor.connections_opened == 2


async def test_argv_is_quoted_not_interpreted_by_the_remote_shell(
    executor: SshExecutor, targets: list[SshTarget]
) -> None:
    argv = ["printf", "%s|", "a b", "$HOME", ";", "`id`", "'q'", "x && y"]

    result = await executor.execute(run(targets[0], *argv))

    assert result.ok, result
    assert result.stdout == "a b|$HOME|;|`id`|'q'|x && y|"
    assert result.invocation.kind == "ssh"
    assert result.invocation.argv == tuple(argv)
    assert (
        result.invocation.call
        == "timeout -k 5 32 printf '%s|' 'a b' '$HOME' ';' '`id`' ''\"'\"'q'\"'\"'' 'x && y'"
    )


async def test_failure_reports_exit_code_and_stderr(
    executor: SshExecutor, targets: list[SshTarget]
) -> None:
    result = await executor.execute(run(targets[0], "sh", "-c", "echo oops >&2; exit 3"))

    assert result.status is ExecutionStatus.FAILED
    assert result.exit_code == 3 and result.stderr == "oops\n"
    assert result.reason == "remote command exited with 3"


async def test_uptime_and_disk_usage_are_parsed_into_data(
    executor: SshExecutor, targets: list[SshTarget]
) -> None:
    uptime = await executor.execute(op(targets[1], "uptime"))
    disk = await executor.execute(op(targets[1], "disk_usage"))

    assert uptime.ok and uptime.data["uptime_s"] > 0, uptime
    assert uptime.invocation.call == "timeout -k 5 32 cat /proc/uptime; timeout -k 5 32 uptime"
    assert len(uptime.data["load_average"]) == 3
    assert disk.ok and disk.invocation.argv == ("df", "-P"), disk
    mounts = {row["mounted_on"]: row for row in disk.data["filesystems"]}
    assert mounts["/"]["size_kb"] > 0
    assert 0 <= mounts["/"]["used_percent"] <= 100


async def test_universal_aliases_drive_the_unit_on_the_host(
    executor: SshExecutor, sshd_fleet: SshdFleet
) -> None:
    api = ssh_target(sshd_fleet.hosts[2], name="api", unit="api.service")
    execute: Callable[[OperationCall], Awaitable[ExecutionResult]] = executor.execute

    before = await execute(op(api, "health"))
    started = await execute(op(api, "start"))
    healthy = await execute(op(api, "health"))
    restarted = await execute(op(api, "restart"))
    status = await execute(op(api, "service_status"))
    logs = await execute(op(api, "logs", lines=5))
    stopped = await execute(op(api, "stop"))
    after = await execute(op(api, "service_status"))

    assert (
        before.status is ExecutionStatus.FAILED and before.reason == "unit api.service is inactive"
    )
    assert started.ok and started.invocation.argv == ("systemctl", "start", "api.service")
    assert healthy.ok and healthy.data["active"] is True, healthy
    assert (
        restarted.ok
        and restarted.invocation.call == "timeout -k 5 32 systemctl restart api.service"
    )
    assert status.ok and status.data["restarts"] == 1 and status.data["sub_state"] == "running"
    assert logs.invocation.argv == ("journalctl", "-u", "api.service", "-n", "5", "--no-pager")
    assert [line.split()[1:] for line in logs.stdout.splitlines()] == [
        ["start", "api.service"],
        ["restart", "api.service"],
    ]
    assert stopped.ok
    assert after.ok and after.data["active"] is False and after.data["active_state"] == "inactive"


async def test_missing_unit_fails_and_bad_unit_names_are_refused(
    executor: SshExecutor, targets: list[SshTarget]
) -> None:
    host = targets[0]
    missing = await executor.execute(op(host, "service_status", unit="no-such.service"))
    restart_missing = await executor.execute(op(host, "service_restart", unit="no-such.service"))
    injected = await executor.execute(op(host, "restart", unit="web; rm -rf /"))
    option = await executor.execute(op(host, "restart", unit="--all"))
    no_unit = await executor.execute(op(host, "journal_tail"))
    conflicting = await executor.execute(
        op(host.model_copy(update={"unit": "web.service"}), "restart", unit="db.service")
    )

    assert (
        missing.status is ExecutionStatus.FAILED
        and missing.reason == "unit no-such.service not found"
    )
    assert restart_missing.status is ExecutionStatus.FAILED and restart_missing.exit_code == 5
    assert "not found" in restart_missing.stderr
    for refused in (injected, option, no_unit, conflicting):
        assert refused.status is ExecutionStatus.REFUSED, refused
        assert refused.invocation.kind == "none"  # nothing was sent
    assert injected.reason == "'web; rm -rf /' is not a valid systemd unit name"
    assert no_unit.reason and "needs a systemd unit" in no_unit.reason


async def test_bad_params_and_foreign_targets_are_refused(
    executor: SshExecutor, targets: list[SshTarget]
) -> None:
    docker = DockerTarget(
        name="web", environment="test", docker_host="local", docker_url="unix:///nowhere"
    )
    foreign = await executor.execute(OperationCall(operation="run_command", target=docker))
    no_argv = await executor.execute(op(targets[0], "run_command"))
    not_strings = await executor.execute(op(targets[0], "run_command", argv=["echo", 1]))
    too_many_lines = await executor.execute(
        op(targets[0].model_copy(update={"unit": "web.service"}), "logs", lines=10**6)
    )

    assert foreign.status is ExecutionStatus.REFUSED
    assert foreign.reason == "the ssh executor cannot run on docker target 'web'"
    for result in (no_argv, not_strings, too_many_lines):
        assert result.status is ExecutionStatus.REFUSED, result
    assert too_many_lines.reason == "lines must be an integer from 1 to 10000, got 1000000"


async def test_remote_bound_can_be_turned_off_for_hosts_without_timeout(
    targets: list[SshTarget],
) -> None:
    ssh = SshExecutor(remote_grace_s=None)
    try:
        result = await ssh.execute(run(targets[0], "echo", "plain"))
    finally:
        await ssh.aclose()

    assert result.ok and result.invocation.call == "echo plain"
