"""GitHub webhooks: failed `workflow_run`s, failed `deployment_status`es and failed
`check_suite`s fire; a later success for the same workflow, environment or suite resolves.
Signed with the webhook's secret (`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from shared.lib.alerts.inbound.models import (
    DeliveryRejectedError,
    MalformedDeliveryError,
    Reading,
    Signal,
    clean,
    fingerprint,
    target_labels,
    text_at,
    time_at,
)
from shared.lib.alerts.store import AlertNotice
from shared.lib.targets import TargetResolver

SIGNATURE_HEADER = "X-Hub-Signature-256"
EVENT_HEADER = "X-GitHub-Event"
DELIVERY_HEADER = "X-GitHub-Delivery"

_FAILED = frozenset({"failure", "timed_out", "startup_failure"})
_FAILED_DEPLOY = frozenset({"failure", "error"})
_ALERT_EVENTS = frozenset({"workflow_run", "deployment_status", "check_suite"})


def verify(*, secret: str, body: bytes, headers: Mapping[str, str]) -> None:
    presented = (headers.get(SIGNATURE_HEADER) or "").strip().lower()
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not presented or not hmac.compare_digest(presented.encode(), expected.encode()):
        raise DeliveryRejectedError(
            f"missing or wrong {SIGNATURE_HEADER}; GitHub signs the raw body with the webhook's "
            "Secret, which must equal AGENT_GITHUB_WEBHOOK_SECRET"
        )


def read(event: str, payload: dict[str, Any], *, resolver: TargetResolver) -> Reading:
    """The signals in one GitHub delivery; events and outcomes that are not alerts are ignored."""
    repo = text_at(payload, "repository.full_name")
    sender = text_at(payload, "sender.login")
    principal = repo or sender or "github"
    action = text_at(payload, "action")
    name = f"{event}.{action}" if action else event
    if event == "ping":
        return Reading(name, principal, pong=True)
    signal: Signal | None = None
    if not repo:
        if event in _ALERT_EVENTS:
            raise MalformedDeliveryError(f"the GitHub {event} payload has no repository.full_name")
    elif event == "workflow_run" and action == "completed":
        signal = _workflow_run(payload, repo, resolver)
    elif event == "deployment_status":
        signal = _deployment_status(payload, repo, resolver)
    elif event == "check_suite" and action == "completed":
        signal = _check_suite(payload, repo, resolver)
    if signal is None:
        return Reading(name, principal, ignored=f"GitHub {name} is neither a failure nor a fix")
    return Reading(name, principal, signals=[signal])


def _workflow_run(payload: dict[str, Any], repo: str, resolver: TargetResolver) -> Signal | None:
    branch = text_at(payload, "workflow_run.head_branch")
    labels = {
        "alertname": "GitHubWorkflowFailed",
        "workflow": text_at(payload, "workflow_run.name"),
        "branch": branch,
        "trigger": text_at(payload, "workflow_run.event"),
        "run_attempt": text_at(payload, "workflow_run.run_attempt"),
    }
    workflow = text_at(payload, "workflow_run.workflow_id") or text_at(payload, "workflow_run.path")
    started = time_at(payload, "workflow_run.run_started_at") or time_at(
        payload, "workflow_run.created_at"
    )
    return _signal(
        text_at(payload, "workflow_run.conclusion"),
        ("workflow_run", repo, workflow, branch),
        labels,
        repo,
        resolver,
        started,
        text_at(payload, "workflow_run.html_url"),
    )


def _deployment_status(
    payload: dict[str, Any], repo: str, resolver: TargetResolver
) -> Signal | None:
    environment = text_at(payload, "deployment_status.environment") or text_at(
        payload, "deployment.environment"
    )
    state = text_at(payload, "deployment_status.state") or ""
    conclusion = "failure" if state in _FAILED_DEPLOY else state
    labels = {
        "alertname": "GitHubDeploymentFailed",
        "ref": text_at(payload, "deployment.ref"),
        "sha": text_at(payload, "deployment.sha"),
        "deployment_state": state,
    }
    link = (
        text_at(payload, "deployment_status.target_url")
        or text_at(payload, "deployment_status.log_url")
        or text_at(payload, "repository.html_url")
    )
    return _signal(
        conclusion,
        ("deployment", repo, environment),
        labels,
        repo,
        resolver,
        time_at(payload, "deployment_status.created_at"),
        link,
        environment=environment,
    )


def _check_suite(payload: dict[str, Any], repo: str, resolver: TargetResolver) -> Signal | None:
    branch = text_at(payload, "check_suite.head_branch")
    app = text_at(payload, "check_suite.app.slug")
    labels = {"alertname": "GitHubCheckSuiteFailed", "branch": branch, "app": app}
    home = text_at(payload, "repository.html_url")
    link = f"{home}/commit/{text_at(payload, 'check_suite.head_sha')}"
    return _signal(
        text_at(payload, "check_suite.conclusion"),
        ("check_suite", repo, branch, app),
        labels,
        repo,
        resolver,
        time_at(payload, "check_suite.created_at"),
        link,
    )


def _signal(
    conclusion: str | None,
    key: tuple[object, ...],
    labels: dict[str, str | None],
    repo: str,
    resolver: TargetResolver,
    started: datetime | None,
    link: str | None,
    *,
    environment: str | None = None,
) -> Signal | None:
    """Failure fires; success resolves what is firing; anything else (cancelled) is not news."""
    if conclusion in _FAILED:
        status = "firing"
    elif conclusion == "success":
        status = "resolved"
    else:
        return None
    alertname = str(labels["alertname"])
    all_labels = clean(
        {
            **labels,
            "source": "github",
            "repository": repo,
            **target_labels(resolver, repository=repo, environment=environment),
        }
    )
    notice = AlertNotice(
        fingerprint=fingerprint("github", *key),
        alertname=alertname,
        labels=all_labels,
        annotations=clean({"summary": f"{alertname} in {repo}"}),
        starts_at=started or datetime.now(UTC),
        source="github",
        links=clean({"github": link}),
    )
    return Signal(
        "firing" if status == "firing" else "resolved", notice, only_if_firing=status == "resolved"
    )
