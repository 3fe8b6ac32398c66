"""Runs catalog operations on containers through the Docker Engine API, one client per host.

The docker SDK blocks, so every call runs on a bounded thread pool under `call.timeout_s`;
remote failures (missing container, unreachable engine, timeout, API error) come back as data.
"""

from shared.lib.executors.docker.executor import DockerExecutor
from shared.lib.executors.docker.operations import OPERATIONS

__all__ = ["OPERATIONS", "DockerExecutor"]
