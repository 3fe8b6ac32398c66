"""Pytest plugin: a session-wide fleet of loopback sshd hosts, and SshTargets that reach them.

The hosts run no systemd, so the fleet puts small stand-ins for `systemctl` and `journalctl`
first on the remote PATH; they keep per-host unit state (keyed by the sshd port) in files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.lib.targets.models import SshTarget
from tests.testbed.availability import service_unavailable
from tests.testbed.sshd import SshdFleet, SshdUnavailable, SshHost, stop_leftovers

STATE_ROOT = Path(__file__).resolve().parents[2] / ".testbed" / "ssh"
FLEET_SIZE = 3

# Units named no-such* do not exist; any other unit exists and starts inactive.
SYSTEMCTL_STUB = r"""#!/bin/sh
# Test stand-in for systemctl on a host without systemd; state is kept per sshd port.
state="$(dirname "$0")/../units/${SSH_CONNECTION##* }"
mkdir -p "$state"
verb=$1; shift
for unit in "$@"; do :; done
case "$unit" in no-such*) known=no ;; *) known=yes ;; esac
active=$(cat "$state/$unit.state" 2>/dev/null || echo inactive)
restarts=$(cat "$state/$unit.restarts" 2>/dev/null || echo 0)
case "$verb" in
  is-active)
    [ "$known" = yes ] || active=inactive
    echo "$active"; [ "$active" = active ] ;;
  show)
    if [ "$known" = no ]; then
      printf 'Id=%s\nLoadState=not-found\nActiveState=inactive\nSubState=dead\nMainPID=0\n' \
        "$unit"
    elif [ "$active" = active ]; then
      printf 'Id=%s\nLoadState=loaded\nActiveState=active\nSubState=running\nMainPID=%s\n' \
        "$unit" "$$"
    else
      printf 'Id=%s\nLoadState=loaded\nActiveState=inactive\nSubState=dead\nMainPID=0\n' "$unit"
    fi
    echo "NRestarts=$restarts" ;;
  start|stop|restart)
    if [ "$known" = no ]; then
      echo "Failed to $verb $unit: Unit $unit not found." >&2; exit 5
    fi
    if [ "$verb" = stop ]; then echo inactive > "$state/$unit.state"
    else echo active > "$state/$unit.state"; fi
    [ "$verb" = restart ] && echo $((restarts + 1)) > "$state/$unit.restarts"
    echo "$(date -u +%FT%T) $verb $unit" >> "$state/$unit.journal" ;;
  *) echo "systemctl stub: unsupported verb $verb" >&2; exit 1 ;;
esac
"""

JOURNALCTL_STUB = r"""#!/bin/sh
# Test stand-in for journalctl -u UNIT -n N --no-pager, reading the systemctl stub's log.
state="$(dirname "$0")/../units/${SSH_CONNECTION##* }"
unit=""; lines=10
while [ $# -gt 0 ]; do
  case "$1" in -u) unit=$2; shift ;; -n) lines=$2; shift ;; esac; shift
done
[ -f "$state/$unit.journal" ] || { echo "-- No entries --"; exit 0; }
tail -n "$lines" "$state/$unit.journal"
"""


@pytest.fixture(scope="session")
def sshd_fleet() -> Iterator[SshdFleet]:
    """Three sshd instances on loopback ports standing in for three hosts."""
    _remove_stale_runs()
    base_dir = STATE_ROOT / str(os.getpid())  # concurrent test runs get separate fleets
    try:
        fleet = SshdFleet.start(FLEET_SIZE, base_dir, extra_path=[_write_stubs(base_dir)])
    except (SshdUnavailable, OSError, subprocess.CalledProcessError) as exc:
        shutil.rmtree(base_dir, ignore_errors=True)
        service_unavailable("sshd", str(exc))
    try:
        yield fleet
    finally:
        fleet.stop()
        shutil.rmtree(base_dir, ignore_errors=True)


def ssh_target(
    host: SshHost,
    *,
    name: str | None = None,
    unit: str | None = None,
    known_hosts: Path | None = None,
    environment: str = "test",
) -> SshTarget:
    """An SshTarget for one fleet host, verifying its key against the fleet's known_hosts."""
    return SshTarget(
        name=name or f"host-{host.port}",
        environment=environment,
        host=host.host,
        port=host.port,
        user=host.user,
        key_path=str(host.client_key),
        known_hosts=str(known_hosts or host.known_hosts),
        unit=unit,
    )


def ssh_targets(fleet: SshdFleet) -> list[SshTarget]:
    return [ssh_target(host) for host in fleet.hosts]


def _write_stubs(base_dir: Path) -> Path:
    stub_bin = base_dir / "stub-bin"
    stub_bin.mkdir(parents=True, exist_ok=True)
    for name, text in (("systemctl", SYSTEMCTL_STUB), ("journalctl", JOURNALCTL_STUB)):
        path = stub_bin / name
        path.write_text(text)
        path.chmod(0o755)
    return stub_bin


def _remove_stale_runs() -> None:
    """Drop state left by runs that died before their teardown."""
    if not STATE_ROOT.is_dir():
        return
    for run in STATE_ROOT.iterdir():
        if run.name.isdigit() and not Path(f"/proc/{run.name}").exists():
            stop_leftovers(run)
            shutil.rmtree(run, ignore_errors=True)
