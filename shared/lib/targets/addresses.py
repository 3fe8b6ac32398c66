"""Host and endpoint strings as config, alerts and settings write them: `host`, `host:port`,
`[v6]:port`; one reading of them for target resolution and alert triage alike."""

from __future__ import annotations

import ipaddress


def host_of(endpoint: str) -> str:
    """The host part of `host`, `host:port`, `[v6]:port` or a bare IPv6 address, lowercased."""
    value = endpoint.strip().lower()
    if _is_ip(value):
        return value
    if value.startswith("["):
        return value[1:].partition("]")[0]
    host, sep, port = value.rpartition(":")
    if sep and port.isdigit() and (":" not in host or _is_ip(host)):
        return host
    return value


def names_host(host: str, names: frozenset[str] | set[str]) -> bool:
    """Whether `host` (lowercased, as `host_of` gives it) is one of `names`, a host name given
    short (`agent-host-1`) or fully qualified (`agent-host-1.example.com`) on either side: the
    same machine written two ways. Two different domains, IP addresses and loopback names must
    match whole."""
    wanted = {name.strip().lower() for name in names}
    if host in wanted:
        return True
    if _is_ip(host):
        return False
    short = host.partition(".")[0]
    return any(
        "." not in name or "." not in host
        for name in wanted
        if not _is_ip(name) and not is_loopback(name) and name.partition(".")[0] == short
    )


def is_loopback(host: str) -> bool:
    """Loopback names mean "this machine" to whoever reads them, so they never identify a
    remote target on their own."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
