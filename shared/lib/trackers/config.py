"""config/trackers.yml: which tracker receives incidents and how hard delivery tries;
a bad file stops start-up naming the file, line and field."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.lib.config_errors import process_environ, read_yaml

log = logging.getLogger(__name__)

ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class TrackerDelivery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    attempts: int = Field(default=3, ge=1, le=10)
    """Tries in one round, the first included."""
    backoff_s: float = Field(default=1.0, gt=0, le=60)
    max_backoff_s: float = Field(default=30.0, gt=0, le=600)
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    retry_after_s: float = Field(default=60.0, gt=0, le=86400)
    """After a round fails (a dead letter), the wait before the next; doubled each round."""
    max_rounds: int = Field(default=20, ge=1, le=1000)
    poll_s: float = Field(default=5.0, gt=0, le=600)


class GitHubTracker(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["github"]
    repository: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
    token_env: str = Field(default="GITHUB_TOKEN", pattern=ENV_NAME)
    api_url: str = Field(default="https://api.github.com", pattern=r"^https?://")
    labels: tuple[str, ...] = ("devops-agent",)


class LinearTracker(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["linear"]
    team_id: str = Field(min_length=1)
    api_key_env: str = Field(default="LINEAR_API_KEY", pattern=ENV_NAME)
    api_url: str = Field(default="https://api.linear.app/graphql", pattern=r"^https?://")
    done_state_id: str | None = None
    """The workflow state a resolved incident moves to; by default the team's first
    `completed` state."""


class JiraTracker(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["jira"]
    server: str = Field(pattern=r"^https?://")
    project_key: str = Field(pattern=r"^[A-Z][A-Z0-9_]+$")
    email: str = Field(min_length=3)
    token_env: str = Field(default="JIRA_API_TOKEN", pattern=ENV_NAME)
    issue_type: str = "Task"
    done_transition: str = "Done"


TrackerSpec = Annotated[GitHubTracker | LinearTracker | JiraTracker, Field(discriminator="kind")]


class TrackersFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    delivery: TrackerDelivery = Field(default_factory=TrackerDelivery)
    tracker: TrackerSpec | None = None


@dataclass(frozen=True)
class TrackerConfig:
    """The validated file: no tracker means incidents stay in the agent's own records."""

    tracker: GitHubTracker | LinearTracker | JiraTracker | None = None
    token: str = field(default="", repr=False)
    delivery: TrackerDelivery = field(default_factory=TrackerDelivery)


def load_trackers(
    path: Path, *, required: bool = True, environ: Mapping[str, str] | None = None
) -> TrackerConfig:
    if not required and not path.exists():
        log.info("no trackers file; incidents are not sent to a tracker")
        return TrackerConfig()
    environ = process_environ() if environ is None else environ
    document = read_yaml(path, environ=environ, what="trackers")
    if document.data is None:
        document.data = {}
    parsed = document.validate(TrackersFile, context="docs/integrations.md")
    spec = parsed.tracker
    if spec is None:
        return TrackerConfig(delivery=parsed.delivery)
    variable = spec.api_key_env if isinstance(spec, LinearTracker) else spec.token_env
    token = environ.get(variable, "")
    if not token:
        field_name = "api_key_env" if isinstance(spec, LinearTracker) else "token_env"
        raise document.error(
            f"environment variable {variable} is not set",
            at=("tracker", field_name),
            fix=f"export {variable} with the {spec.kind} token (docs/integrations.md)",
        )
    return TrackerConfig(tracker=spec, token=token, delivery=parsed.delivery)
