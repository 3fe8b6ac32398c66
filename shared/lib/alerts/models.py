"""Alertmanager's webhook payload (version 4) and the webhook's reply."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from shared.lib.planning.models import PlannedOperation
from shared.lib.safe_input import SafeText, text_problem

# Alertmanager sends this for an alert that has not ended yet.
NO_END = datetime.fromisoformat("0001-01-01T00:00:00+00:00")

# Postgres stores any year, but psycopg reads back only years 1..9999 in the session's time zone:
# a time stored beyond them fails every later read of its row. These bounds keep a wide margin.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def time_problem(value: datetime) -> str | None:
    """Why the aware time `value` may not be stored, or None when it may."""
    if EARLIEST <= value < LATEST:
        return None
    return (
        f"is {value.isoformat()}, outside {EARLIEST.year}..{LATEST.year - 1} (UTC); "
        "send the real time"
    )


def _storable(value: datetime) -> datetime:
    """A time without an offset is UTC; one outside the bounds is refused, not stored."""
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    problem = time_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _storable_end(value: datetime | None) -> datetime | None:
    """Alertmanager's zero time (or anything before it) means "not ended" and is never stored."""
    if value is None:
        return None
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return value if value <= NO_END else _storable(value)


Outcome = Literal[
    "workflow_started",
    "duplicate",
    "escalated",
    "ignored",
    "resolved",
    "withdrawn",
    "refused",
    "queued",
]


class AlertmanagerAlert(BaseModel):
    """One alert of a notification; fields Alertmanager adds beyond these are ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    status: Literal["firing", "resolved"]
    labels: dict[SafeText, SafeText] = Field(default_factory=dict)
    annotations: dict[SafeText, SafeText] = Field(default_factory=dict)
    starts_at: Annotated[datetime, AfterValidator(_storable)] = Field(alias="startsAt")
    ends_at: Annotated[datetime | None, AfterValidator(_storable_end)] = Field(
        default=None, alias="endsAt"
    )
    fingerprint: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
    generator_url: SafeText | None = Field(default=None, alias="generatorURL")

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def ended_at(self) -> datetime | None:
        if self.ends_at is None or self.ends_at <= NO_END:
            return None
        return self.ends_at


class RefusedAlert(BaseModel):
    """An alert of a notification that is malformed; it is answered on its own."""

    index: int
    fingerprint: str
    alertname: str
    status: Literal["firing", "resolved"]
    reason: str

    @classmethod
    def of(cls, index: int, raw: Any, error: ValidationError) -> RefusedAlert:
        fields = raw if isinstance(raw, dict) else {}
        labels = fields.get("labels")
        labels = labels if isinstance(labels, dict) else {}
        problems = "; ".join(
            f"{'.'.join(str(part) for part in issue['loc']) or 'alert'}: {issue['msg']}"
            for issue in error.errors(include_url=False)[:5]
        )
        return cls(
            index=index,
            fingerprint=_printable(fields.get("fingerprint")),
            alertname=_printable(labels.get("alertname")),
            status="resolved" if fields.get("status") == "resolved" else "firing",
            reason=f"alerts[{index}] refused, nothing recorded: {problems}; fix the alert rule "
            "or its labels and annotations",
        )


def _printable(value: Any) -> str:
    if isinstance(value, str) and len(value) <= 128 and text_problem(value) is None:
        return value
    return ""


class AlertmanagerPayload(BaseModel):
    """A webhook notification: one group of alerts sharing `groupLabels`.

    Each alert is validated on its own (`parsed`), so one malformed alert never stops the others.
    """

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    version: Literal["4"]
    status: Literal["firing", "resolved"]
    receiver: str = ""
    group_key: str = Field(default="", alias="groupKey")
    truncated_alerts: int = Field(default=0, ge=0, alias="truncatedAlerts")
    alerts: list[Any] = Field(max_length=1000)  # each checked on its own, objects or not

    def parsed(self) -> list[AlertmanagerAlert | RefusedAlert]:
        found: list[AlertmanagerAlert | RefusedAlert] = []
        for index, raw in enumerate(self.alerts):
            try:
                found.append(AlertmanagerAlert.model_validate(raw))
            except ValidationError as error:
                found.append(RefusedAlert.of(index, raw, error))
        return found


class AlertOutcome(BaseModel):
    """What the agent did about one alert of the notification."""

    fingerprint: str
    alertname: str
    status: Literal["firing", "resolved"]
    outcome: Outcome
    alert_id: int | None
    """The recorded alert episode; None for a refused alert, which records nothing."""
    received: int
    """How many notifications this alert episode has had, this one included."""
    workflow_id: str | None = None
    workflow_status: str | None = None
    approval_id: UUID | None = None
    strategy: str | None = None
    target: str | None = None
    environment: str | None = None
    reason: str | None = None


class WebhookReply(BaseModel):
    received: int
    started: int
    duplicates: int
    escalated: int
    ignored: int
    resolved: int
    withdrawn: int
    refused: int = 0
    queued: int = 0
    """Recorded and answered at once; their workflows start (or merge) in the background."""
    alerts: list[AlertOutcome]

    @classmethod
    def of(cls, outcomes: list[AlertOutcome]) -> WebhookReply:
        def count(*names: str) -> int:
            return sum(1 for o in outcomes if o.outcome in names)

        return cls(
            received=len(outcomes),
            started=count("workflow_started"),
            duplicates=count("duplicate"),
            escalated=count("escalated"),
            ignored=count("ignored"),
            resolved=count("resolved", "withdrawn"),
            withdrawn=count("withdrawn"),
            refused=count("refused"),
            queued=count("queued"),
            alerts=outcomes,
        )


Action = Literal["workflow", "escalated", "ignored"]


class RecoveryDecision(BaseModel):
    """The outcome of triage; `steps` is empty unless the action is `workflow`."""

    model_config = ConfigDict(frozen=True)

    action: Action
    reason: str | None = None
    strategy: str | None = None
    target: str | None = None
    environment: str | None = None
    steps: tuple[PlannedOperation, ...] = ()
