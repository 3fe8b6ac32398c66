"""The inbox session: the secret that signs its cookie, and the CSRF token every form carries.

The cookie itself is Starlette's SessionMiddleware (itsdangerous-signed, timestamped, HttpOnly,
SameSite=Strict); this module only supplies the secret and the token checks.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from pathlib import Path

from shared.lib.settings import Settings

log = logging.getLogger(__name__)

SECRET_FILE = "inbox-session-secret"  # noqa: S105 (a file name)
CSRF_FIELD = "csrf_token"


def session_secret(settings: Settings) -> str:
    """AGENT_SESSION_SECRET, else the secret in the data dir, generated there the first time
    (readable by the service's user only). Replicas on separate disks must set the variable."""
    if settings.session_secret is not None:
        return settings.session_secret.get_secret_value()
    path = settings.data_dir / SECRET_FILE
    if path.is_file():
        return path.read_text().strip()
    return _create_secret(path)


def _create_secret(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another worker wrote it first: use theirs
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secret + "\n")
    log.info("generated the inbox session secret", extra={"path": str(path)})
    return secret


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_valid(expected: object, presented: object) -> bool:
    """Whether the form's token is the session's, compared in constant time."""
    if not isinstance(expected, str) or not isinstance(presented, str) or not expected:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())
