"""Who may call the agent and in which roles: principals from config, found by API key hash."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field

from shared.lib.config_errors import YamlDocument, read_yaml

Role = Literal["operator", "approver", "ops-lead", "admin"]
KNOWN_ROLES: frozenset[str] = frozenset({"operator", "approver", "ops-lead", "admin"})

_SHA256_HEX = r"^[0-9a-f]{64}$"
_NAME = r"^[a-z][a-z0-9._-]*$"
_SLACK_USER_ID = r"^[UW][A-Z0-9]{2,31}$"


def hash_api_key(key: str) -> str:
    """The hex sha256 of an API key, as stored in principals.yml."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class Principal(BaseModel):
    """An authenticated caller: a name and the roles it holds."""

    model_config = ConfigDict(frozen=True)

    name: str
    roles: frozenset[str]

    def has_any(self, roles: Iterable[str]) -> bool:
        """Whether this principal holds at least one of `roles`."""
        return not self.roles.isdisjoint(roles)


class PrincipalEntry(BaseModel):
    """One principal as configured; the key is stored only as its sha256."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    roles: frozenset[Role] = Field(min_length=1)
    api_key_sha256: str = Field(pattern=_SHA256_HEX)
    description: str = ""
    slack_user_id: str | None = Field(default=None, pattern=_SLACK_USER_ID)
    """The Slack member id (U... or W...) whose button clicks act as this principal."""


class PrincipalsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    principals: dict[str, PrincipalEntry] = Field(min_length=1)


class PrincipalDirectory:
    """The configured principals; authenticates API keys without leaking which entry matched."""

    def __init__(self, *, config: PrincipalsFile) -> None:
        self._entries = [
            (Principal(name=name, roles=frozenset(entry.roles)), entry.api_key_sha256)
            for name, entry in config.principals.items()
        ]
        self._by_name = {principal.name: principal for principal, _ in self._entries}
        self._by_slack_user = {
            entry.slack_user_id: self._by_name[name]
            for name, entry in config.principals.items()
            if entry.slack_user_id
        }

    @classmethod
    def load(cls, path: Path) -> Self:
        """The directory from `path`, or a ConfigError naming the file, line and field."""
        document = read_yaml(path, what="principals")
        config = document.validate(PrincipalsFile, context="config/hitl/principals.yml")
        _check_names_and_keys(config, document)
        return cls(config=config)

    @property
    def principals(self) -> list[Principal]:
        return [principal for principal, _ in self._entries]

    def named(self, name: str) -> Principal | None:
        """The principal called `name` (a signed-in session names one), or None."""
        return self._by_name.get(name)

    def by_slack_user(self, slack_user_id: str) -> Principal | None:
        """The principal mapped to a Slack member id through `slack_user_id`, or None."""
        return self._by_slack_user.get(slack_user_id)

    def authenticate(self, api_key: str) -> Principal | None:
        """The principal whose key hash matches, or None; every entry is compared."""
        offered = hash_api_key(api_key).encode("ascii")
        found: Principal | None = None
        for principal, digest in self._entries:
            # No early exit: the time taken must not say how far down the list a key matched.
            if hmac.compare_digest(offered, digest.encode("ascii")):
                found = principal
        return found


def _check_names_and_keys(config: PrincipalsFile, document: YamlDocument) -> None:
    owners: dict[str, str] = {}
    slack_owners: dict[str, str] = {}
    for name, entry in config.principals.items():
        if entry.slack_user_id:
            slack_owner = slack_owners.setdefault(entry.slack_user_id, name)
            if slack_owner != name:
                raise document.error(
                    f"principals '{slack_owner}' and '{name}' share slack_user_id "
                    f"'{entry.slack_user_id}'",
                    at=("principals", name, "slack_user_id"),
                    fix="map every Slack member to one principal",
                )
        if not re.fullmatch(_NAME, name):
            raise document.error(
                f"principal name '{name}' is not a lower-case identifier",
                at=("principals", name),
                fix="use letters, digits, '.', '_' or '-', starting with a letter",
            )
        owner = owners.setdefault(entry.api_key_sha256, name)
        if owner != name:
            raise document.error(
                f"principals '{owner}' and '{name}' share one API key",
                at=("principals", name, "api_key_sha256"),
                fix="give every principal its own key",
            )


MISSING_KEY = "missing API key; send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
UNKNOWN_KEY = "unknown API key; ask an admin for a key listed in config/hitl/principals.yml"


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The API key a request presents: `Authorization: Bearer <key>` or `X-API-Key: <key>`."""
    header = headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return headers.get("X-API-Key") or None
