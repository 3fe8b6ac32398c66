"""Keeps one docker SDK client per engine URL, shared by the executor's worker threads."""

from __future__ import annotations

import threading

import docker

from shared.lib.executors.docker.context import Context


class DockerClientPool:
    """Docker clients by engine URL, built on first use and closed together."""

    def __init__(self, *, api_timeout_s: int) -> None:
        self._api_timeout_s = api_timeout_s
        self._clients: dict[str, docker.DockerClient] = {}
        self._lock = threading.Lock()

    def client(self, ctx: Context) -> docker.DockerClient:
        url = ctx.target.docker_url
        with self._lock:
            cached = self._clients.get(url)
        if cached is not None:
            return cached
        # Built outside the lock: version="auto" asks the engine, which may hang on a dead host.
        ctx.announce("GET /version")
        client = docker.DockerClient(base_url=url, version="auto", timeout=self._api_timeout_s)
        with self._lock:
            kept = self._clients.setdefault(url, client)
        if kept is not client:
            client.close()
        return kept

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()
