"""Small helpers for tests: wait on a condition with a deadline, never sleep-and-hope."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

KEYS = {
    "alice": "demo-operator-key",
    "bob": "demo-approver-key",
    "carol": "demo-ops-lead-key",
    "dave": "demo-admin-key",
    "erin": "demo-approver2-key",
}


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[name]}"}


def wait_for(
    probe: Callable[[], T],
    *,
    until: Callable[[T], bool],
    timeout_s: float = 30.0,
    interval_s: float = 0.05,
    what: str = "condition",
) -> T:
    """Call `probe` until `until(value)` holds; fail with the last value at the deadline."""
    deadline = time.monotonic() + timeout_s
    value = probe()
    while not until(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout_s}s; last value: {value!r}")
        time.sleep(interval_s)
        value = probe()
    return value
