"""One rule for a missing service: skip on a developer's machine, fail when CI=true."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def service_unavailable(service: str, reason: str) -> NoReturn:
    """Fail under CI (a missing service is a broken bed), skip elsewhere."""
    message = f"{service} is not available: {reason}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: a missing service is a failure)", pytrace=False)
    pytest.skip(message)  # not in CI: a developer without the service can still run the rest
