"""The loopback sshd fleet works as a fleet of hosts, with host key checking left on."""

from __future__ import annotations

from pathlib import Path

import asyncssh
import pytest

from tests.testbed.sshd import SshdFleet, write_wrong_known_hosts

pytestmark = pytest.mark.ssh


async def test_command_runs_over_ssh_with_verified_host_key(sshd_fleet: SshdFleet) -> None:
    host = sshd_fleet.hosts[0]
    async with asyncssh.connect(
        host.host,
        port=host.port,
        username=host.user,
        client_keys=[str(host.client_key)],
        known_hosts=str(host.known_hosts),
    ) as conn:
        result = await conn.run("echo hello from $((40 + 2))", check=False)
        server_key = conn.get_server_host_key()

    assert result.exit_status == 0, result.stderr
    assert result.stdout == "hello from 42\n"
    assert server_key is not None
    assert server_key.export_public_key().decode().split()[:2] == host.host_key_pub.split()


async def test_every_host_has_its_own_port_and_host_key(sshd_fleet: SshdFleet) -> None:
    hosts = sshd_fleet.hosts
    assert len({h.port for h in hosts}) == len(hosts) == 3
    assert len({h.host_key_pub for h in hosts}) == 3
    lines = hosts[0].known_hosts.read_text().splitlines()
    assert sorted(lines) == sorted(f"[{h.host}]:{h.port} {h.host_key_pub}" for h in hosts)


async def test_unknown_host_key_is_rejected(sshd_fleet: SshdFleet, tmp_path: Path) -> None:
    host = sshd_fleet.hosts[1]
    wrong = write_wrong_known_hosts(tmp_path / "known_hosts", port=host.port)

    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        await asyncssh.connect(
            host.host,
            port=host.port,
            username=host.user,
            client_keys=[str(host.client_key)],
            known_hosts=str(wrong),
        )


async def test_host_missing_from_known_hosts_is_rejected(
    sshd_fleet: SshdFleet, tmp_path: Path
) -> None:
    host = sshd_fleet.hosts[2]
    empty = tmp_path / "known_hosts"
    empty.write_text("")

    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        await asyncssh.connect(
            host.host,
            port=host.port,
            username=host.user,
            client_keys=[str(host.client_key)],
            known_hosts=str(empty),
        )
