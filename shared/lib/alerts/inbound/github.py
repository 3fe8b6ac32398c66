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
)
from shared.lib.alerts.store import AlertNotice
from shared.lib.targets import TargetResolver

SIGNATURE_HEADER = "X-Hub-Signature-256"
EVENT_HEADER = "X-GitHub-Event"
DELIVERY_HEADER = "X-GitHub-Delivery"

_FAILED = frozenset({"failure", "timed_out", "startup_failure"})
_FAILED_DEPLOY = frozenset({"failure", "error"})


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
    repository = payload.get("repository") or {}
    repo = str(repository.get("full_name") or "")
    principal = repo or str((payload.get("sender") or {}).get("login") or "github")
    action = str(payload.get("action") or "")
    name = f"{event}.{action}" if action else event
    if event == "ping":
        return Reading(name, principal, pong=True)
    if not repo and event in {"workflow_run", "deployment_status", "check_suite"}:
        raise MalformedDeliveryError(f"the GitHub {event} payload has no repository.full_name")
    signal: Signal | None = None
    if event == "workflow_run" and action == "completed":
        signal = _workflow_run(payload.get("workflow_run") or {}, repository, resolver)
    elif event == "deployment_status":
        signal = _deployment_status(payload, repository, resolver)
    elif event == "check_suite" and action == "completed":
        signal = _check_suite(payload.get("check_suite") or {}, repository, resolver)
    if signal is None:
        return Reading(name, principal, ignored=f"GitHub {name} is neither a failure nor a fix")
    return Reading(name, principal, signals=[signal])


def _workflow_run(
    run: dict[str, Any], repository: dict[str, Any], resolver: TargetResolver
) -> Signal | None:
    conclusion = run.get("conclusion")
    repo = str(repository["full_name"])
    labels = {
        "alertname": "GitHubWorkflowFailed",
        "workflow": run.get("name"),
        "branch": run.get("head_branch"),
        "trigger": run.get("event"),
        "run_attempt": run.get("run_attempt"),
    }
    key = ("workflow_run", repo, run.get("workflow_id") or run.get("path"), run.get("head_branch"))
    started = run.get("run_started_at") or run.get("created_at")
    return _signal(conclusion, key, labels, repo, resolver, started, run.get("html_url"))


def _deployment_status(
    payload: dict[str, Any], repository: dict[str, Any], resolver: TargetResolver
) -> Signal | None:
    status = payload.get("deployment_status") or {}
    deployment = payload.get("deployment") or {}
    repo = str(repository["full_name"])
    environment = status.get("environment") or deployment.get("environment")
    state = str(status.get("state") or "")
    conclusion = "failure" if state in _FAILED_DEPLOY else state
    labels = {
        "alertname": "GitHubDeploymentFailed",
        "ref": deployment.get("ref"),
        "sha": deployment.get("sha"),
        "deployment_state": state,
    }
    link = status.get("target_url") or status.get("log_url") or repository.get("html_url")
    return _signal(
        conclusion,
        ("deployment", repo, environment),
        labels,
        repo,
        resolver,
        status.get("created_at"),
        link,
        environment=environment,
    )


def _check_suite(
    suite: dict[str, Any], repository: dict[str, Any], resolver: TargetResolver
) -> Signal | None:
    repo = str(repository["full_name"])
    app = (suite.get("app") or {}).get("slug")
    labels = {"alertname": "GitHubCheckSuiteFailed", "branch": suite.get("head_branch"), "app": app}
    link = f"{repository.get('html_url')}/commit/{suite.get('head_sha')}"
    return _signal(
        suite.get("conclusion"),
        ("check_suite", repo, suite.get("head_branch"), app),
        labels,
        repo,
        resolver,
        suite.get("created_at"),
        link,
    )


def _signal(
    conclusion: object,
    key: tuple[object, ...],
    labels: dict[str, object],
    repo: str,
    resolver: TargetResolver,
    started: object,
    link: object,
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
        starts_at=_time(started),
        source="github",
        links=clean({"github": link}),
    )
    return Signal(
        "firing" if status == "firing" else "resolved", notice, only_if_firing=status == "resolved"
    )


def _time(value: object) -> datetime:
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return datetime.now(UTC)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return datetime.now(UTC)
