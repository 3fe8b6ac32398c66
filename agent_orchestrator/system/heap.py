"""Start-up objects out of the garbage collector's way.

What start-up makes (modules, pydantic schemas, the compiled graph, config, pools) lives as long
as the process, yet every full collection walked all of it: under load that paused the event
loop for up to 190 ms, which showed as the tail of approve -> execution (docs/benchmarks.md,
docs/upstream-limits.md). Frozen, a full collection walks only what requests made since.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def startup_heap_frozen() -> Iterator[None]:
    """Freeze what is alive now until the block ends; then hand it back to the collector, so a
    process that builds several apps (the tests) can still reclaim a stopped one's cycles."""
    gc.collect()  # garbage from start-up goes first; only live objects are frozen
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
