"""The one interface every executor (Docker, SSH, HTTP, in-memory fake) implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from shared.lib.execution.models import ExecutionResult, OperationCall


@runtime_checkable
class Executor(Protocol):
    """Runs catalog operations on targets of one kind; never raises for remote failures."""

    kind: str

    def supports(self, operation: str) -> bool:
        """Whether this executor implements the catalog operation."""
        ...

    async def execute(self, call: OperationCall) -> ExecutionResult:
        """Run the call; every remote failure comes back as a result with a status."""
        ...

    async def aclose(self) -> None:
        """Release connections and clients."""
        ...
