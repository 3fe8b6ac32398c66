"""Read config/notifications.yml into receivers; a bad file stops start-up naming the line."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.lib.config_errors import YamlDocument, process_environ, read_yaml
from shared.lib.notifications.models import (
    DeliveryPolicy,
    NotificationEvent,
    NotificationsConfig,
    Receiver,
    ReceiverFormat,
)

log = logging.getLogger(__name__)

MIN_SECRET_LENGTH = 16


class ReceiverEntry(BaseModel):
    """One receiver as written in the file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9._-]*$", max_length=64)
    url: str = Field(max_length=2000)
    format: ReceiverFormat = "json"
    secret: str | None = Field(default=None, min_length=MIN_SECRET_LENGTH)
    secret_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    events: list[NotificationEvent] | None = Field(default=None, min_length=1)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("not an http(s) URL; write it as https://host/path")
        return value

    @model_validator(mode="after")
    def _one_secret(self) -> Self:
        if (self.secret is None) == (self.secret_env is None):
            raise ValueError("set exactly one of `secret` and `secret_env`")
        return self


class NotificationsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    delivery: DeliveryPolicy = Field(default_factory=DeliveryPolicy)
    receivers: list[ReceiverEntry] = Field(default_factory=list)


def load_notifications(
    path: Path, *, required: bool = True, environ: Mapping[str, str] | None = None
) -> NotificationsConfig:
    """The receivers in `path`, or a ConfigError naming the file, line and field.

    `${VAR}` in values is replaced from the environment (a Slack webhook URL is a secret too).
    A file that is not `required` and absent means no receivers.
    """
    if not required and not path.exists():
        log.info("no notifications file; notifications are off", extra={"path": str(path)})
        return NotificationsConfig()
    environ = process_environ() if environ is None else environ
    document = read_yaml(path, environ=environ, what="notifications")
    if document.data is None:
        document.data = {}
    parsed = document.validate(NotificationsFile, context="docs/notifications.md")
    receivers = tuple(
        _receiver(entry, index, document, environ) for index, entry in enumerate(parsed.receivers)
    )
    document.require_unique(
        [receiver.name for receiver in receivers],
        section="receivers",
        field="name",
        problem="receiver name '{key}' is used twice",
        fix="give every receiver its own name (it labels logs and metrics)",
    )
    return NotificationsConfig(receivers=receivers, delivery=parsed.delivery)


def _receiver(
    entry: ReceiverEntry, index: int, document: YamlDocument, environ: Mapping[str, str]
) -> Receiver:
    secret = entry.secret
    if entry.secret_env is not None:
        secret = environ.get(entry.secret_env)
        if not secret:
            raise document.error(
                f"environment variable {entry.secret_env} is not set",
                at=("receivers", index, "secret_env"),
                fix=f"export {entry.secret_env} with the receiver's shared secret",
            )
        if len(secret) < MIN_SECRET_LENGTH:
            raise document.error(
                f"the secret in {entry.secret_env} has {len(secret)} characters",
                at=("receivers", index, "secret_env"),
                fix=f"use a random secret of at least {MIN_SECRET_LENGTH} characters",
            )
    assert secret is not None  # the model requires one of the two
    events = frozenset(entry.events) if entry.events else frozenset(NotificationEvent)
    return Receiver(
        name=entry.name, url=entry.url, format=entry.format, secret=secret, events=events
    )
