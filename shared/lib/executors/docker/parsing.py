"""Parses what the engine sends back: the multiplexed exec output stream, read under a
deadline, and a stats sample turned into the figures `docker stats` shows.
"""

from __future__ import annotations

import select
import struct
import time
from typing import Any

from docker.utils.socket import read as socket_read

from shared.lib.execution.models import ExecutionStatus
from shared.lib.executors.docker.context import Stop

FRAME_HEADER = struct.Struct(">BxxxL")  # stream id, 3 pad bytes, payload size
STDOUT_STREAM, STDERR_STREAM = 1, 2


def read_frames(sock: Any, deadline: float, *, limit: int) -> tuple[dict[int, bytearray], bool]:
    """Split the multiplexed exec stream into stdout/stderr, keeping at most `limit` bytes each."""
    streams = {STDOUT_STREAM: bytearray(), STDERR_STREAM: bytearray()}
    overflow = False
    while (header := _read_exactly(sock, FRAME_HEADER.size, deadline)) is not None:
        stream, size = FRAME_HEADER.unpack(header)
        payload = _read_exactly(sock, size, deadline) or b""
        buffer = streams.get(stream, streams[STDOUT_STREAM])
        room = max(limit - len(buffer), 0)
        overflow = overflow or len(payload) > room
        buffer += payload[:room]
    return streams, overflow


def _read_exactly(sock: Any, size: int, deadline: float) -> bytes | None:
    """`size` bytes from the socket, or None at the end of the stream."""
    data = bytearray()
    while len(data) < size:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([sock], [], [], remaining)[0]:
            raise Stop(ExecutionStatus.TIMEOUT, "exec output did not end before the deadline")
        chunk: bytes | None = socket_read(sock, size - len(data))
        if chunk is None:  # an interrupted read: try again
            continue
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def stats_figures(sample: dict[str, Any]) -> dict[str, Any]:
    """CPU and memory figures computed the way `docker stats` does (page cache is not usage)."""
    cpu, pre = sample.get("cpu_stats") or {}, sample.get("precpu_stats") or {}
    cpu_delta = _cpu_total(cpu) - _cpu_total(pre)
    system_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    cpus = cpu.get("online_cpus") or len(cpu.get("cpu_usage", {}).get("percpu_usage") or [1])
    busy = cpu_delta > 0 and system_delta > 0
    memory = sample.get("memory_stats") or {}
    details = memory.get("stats") or {}
    cache = details.get("inactive_file", details.get("total_inactive_file", 0))
    usage, limit = max(memory.get("usage", 0) - cache, 0), memory.get("limit", 0)
    return {
        "cpu_percent": round(cpu_delta / system_delta * cpus * 100, 3) if busy else 0.0,
        "online_cpus": cpus,
        "memory_usage_bytes": usage,
        "memory_limit_bytes": limit,
        "memory_percent": round(usage / limit * 100, 3) if limit else 0.0,
        "pids": (sample.get("pids_stats") or {}).get("current"),
        "read_at": sample.get("read"),
    }


def _cpu_total(cpu_stats: dict[str, Any]) -> int:
    total: int = (cpu_stats.get("cpu_usage") or {}).get("total_usage", 0)
    return total
