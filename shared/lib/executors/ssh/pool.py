"""Pools one asyncssh connection per (host, port, user, key, known_hosts): connects with
verified host keys, bounds the channels open per host and closes connections left idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from shared.lib.targets.models import SshTarget

ConnectionKey = tuple[str, int, str, str | None, str | None]


class Unreachable(Exception):
    """No usable SSH session to the host."""


@dataclass
class Pooled:
    conn: asyncssh.SSHClientConnection
    last_used: float
    in_use: int = 0


@dataclass
class Slot:
    """Pool state for one (host, port, user, key, known_hosts)."""

    channels: asyncio.Semaphore
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pooled: Pooled | None = None


class SshConnectionPool:
    """One pooled connection and a channel semaphore per host; a reaper closes idle ones."""

    def __init__(
        self,
        *,
        connect_timeout_s: float,
        keepalive_interval_s: float,
        keepalive_count_max: int,
        idle_timeout_s: float,
        reap_interval_s: float | None,
        channels_per_host: int,
        clock: Callable[[], float],
    ) -> None:
        self._connect_timeout_s = connect_timeout_s
        self._keepalive_interval_s = keepalive_interval_s
        self._keepalive_count_max = keepalive_count_max
        self._idle_timeout_s = idle_timeout_s
        self._reap_interval_s = reap_interval_s or min(idle_timeout_s / 2, 30.0)
        self._channels_per_host = channels_per_host
        self._clock = clock
        self._slots: dict[ConnectionKey, Slot] = {}
        self._reaper: asyncio.Task[None] | None = None
        self.connections_opened = 0

    def pooled_connection(self, target: SshTarget) -> asyncssh.SSHClientConnection | None:
        """The live pooled connection for the target, if any (for tests and diagnostics)."""
        slot = self._slots.get(_key(target))
        return slot.pooled.conn if slot and slot.pooled else None

    @property
    def size(self) -> int:
        return sum(1 for slot in self._slots.values() if slot.pooled is not None)

    def slot(self, target: SshTarget) -> Slot:
        key = _key(target)
        if key not in self._slots:
            self._slots[key] = Slot(channels=asyncio.Semaphore(self._channels_per_host))
        return self._slots[key]

    async def checkout(self, slot: Slot, target: SshTarget) -> Pooled:
        """The pooled connection (reconnecting when it is closed or idle too long), marked busy."""
        async with slot.lock:
            pooled = slot.pooled
            if pooled is not None and (pooled.conn.is_closed() or self._expired(pooled)):
                self.discard(slot, pooled)
                pooled = None
            if pooled is None:
                pooled = Pooled(conn=await self._connect(target), last_used=self._clock())
                slot.pooled = pooled
                self._start_reaper()
            pooled.in_use += 1
            return pooled

    def release(self, pooled: Pooled) -> None:
        pooled.in_use -= 1
        pooled.last_used = self._clock()

    def discard(self, slot: Slot, pooled: Pooled) -> None:
        if slot.pooled is pooled:
            slot.pooled = None
        pooled.conn.close()

    async def stop_reaper(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None

    async def close_all(self) -> None:
        conns = [slot.pooled.conn for slot in self._slots.values() if slot.pooled]
        for slot in self._slots.values():
            slot.pooled = None
        for conn in conns:
            conn.close()
        for conn in conns:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.wait_closed(), timeout=5)

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
            raise Unreachable(_host_key_reason(target)) from exc
        except asyncssh.PermissionDenied as exc:
            key = target.key_path or "the default keys"
            raise Unreachable(
                f"authentication as {endpoint(target)} with {key} was denied: {exc}"
            ) from exc
        except ConnectionRefusedError as exc:
            raise Unreachable(f"connection to {target.host}:{target.port} refused") from exc
        except socket.gaierror as exc:
            raise Unreachable(f"cannot resolve host {target.host!r}: {exc.strerror}") from exc
        except TimeoutError as exc:
            raise Unreachable(
                f"no SSH answer from {target.host}:{target.port} "
                f"within {self._connect_timeout_s:g} s"
            ) from exc
        except OSError as exc:
            what = f"cannot read {exc.filename}" if exc.filename else "cannot connect"
            raise Unreachable(f"{what} for {target.host}:{target.port}: {exc}") from exc
        except (asyncssh.Error, asyncssh.KeyImportError) as exc:
            raise Unreachable(f"ssh to {endpoint(target)} failed: {exc}") from exc
        self.connections_opened += 1
        return conn

    def _expired(self, pooled: Pooled) -> bool:
        return pooled.in_use == 0 and self._clock() - pooled.last_used > self._idle_timeout_s

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
                    self.discard(slot, pooled)


def endpoint(target: SshTarget) -> str:
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
