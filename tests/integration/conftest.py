"""Fixtures shared by the chat tests: in-memory executors and the scripted OpenAI stub."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.lib.executors.fake import FakeExecutor
from tests.integration.service_support import fake_executors
from tests.testbed.openai_stub import OpenAIStub


@pytest.fixture
def fakes() -> dict[str, FakeExecutor]:
    return fake_executors()


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub() as server:
        yield server
