"""Send incidents to the configured tracker, off every workflow's path.

Callers (the alert service, the engine's status hook) only write an outbox row and return:
the tracker being slow or down never holds a workflow. A worker delivers rows in order per
incident, retrying with tenacity; a round that fails becomes a dead letter, kept with its
error and tried again later, until `max_rounds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from prometheus_client import Counter
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from shared.lib.alerts.store import AlertRecord
from shared.lib.approvals.store import ApprovalStore
from shared.lib.trackers import render
from shared.lib.trackers.config import TrackerDelivery
from shared.lib.trackers.protocol import (
    IssueRef,
    IssueTracker,
    TrackerRefusedError,
    TrackerUnavailableError,
)
from shared.lib.trackers.store import OutboxRow, TrackerStore
from shared.lib.workflows.store import WorkflowStore

log = logging.getLogger(__name__)

TRACKER_DELIVERIES = Counter(
    "orchestrator_tracker_deliveries_total",
    "Messages to the issue tracker, by tracker, kind and result.",
    ["tracker", "kind", "status"],
)

LEASE_S = 300.0


class TrackerService:
    def __init__(
        self,
        *,
        tracker: IssueTracker,
        store: TrackerStore,
        workflows: WorkflowStore,
        approvals: ApprovalStore,
        delivery: TrackerDelivery,
        public_url: str,
    ) -> None:
        self._tracker = tracker
        self._store = store
        self._workflows = workflows
        self._approvals = approvals
        self._delivery = delivery
        self._public_url = public_url.rstrip("/")
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()

    # What the alert service calls (its IncidentSink).
    async def escalated(self, record: AlertRecord) -> None:
        body = render.alert_body(record, public_url=self._public_url)
        await self._enqueue(record.fingerprint, "open", render.alert_title(record), body)

    async def resolved(self, record: AlertRecord) -> None:
        if not await self._store.knows(tracker=self._tracker.name, fingerprint=record.fingerprint):
            return
        body = f"Resolved: {record.source} reported {record.alertname} resolved."
        await self._enqueue(record.fingerprint, "resolve", render.alert_title(record), body)

    # What the engine's status hook calls.
    def workflow_status(self, workflow_id: str, status: str) -> None:
        """Schedule the check and return at once; the workflow goes on."""
        if status not in {"failed", "completed"}:
            return
        task = asyncio.create_task(self._workflow_ended(workflow_id, status))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _workflow_ended(self, workflow_id: str, status: str) -> None:
        try:
            workflow = await self._workflows.get(workflow_id)
            alert = workflow.request.get("alert") or {}
            fingerprint = str(alert.get("fingerprint") or f"workflow:{workflow.id}")
            if status == "completed":
                if await self._store.knows(tracker=self._tracker.name, fingerprint=fingerprint):
                    link = f"{self._public_url}/inbox/workflows/{workflow.id}"
                    body = f"Workflow {workflow.id} completed: {link}"
                    await self._enqueue(fingerprint, "update", workflow.id, body)
                return
            unknown = any(r.get("status") == "outcome_unknown" for r in workflow.results)
            outcome = "outcome_unknown" if unknown else "failed"
            approval = None
            if workflow.approval_id is not None:
                approval = await self._approvals.get(workflow.approval_id)
            title = render.workflow_title(workflow, outcome=outcome)
            body = render.workflow_body(
                workflow, approval, outcome=outcome, public_url=self._public_url
            )
            await self._enqueue(fingerprint, "open", title, body)
        except Exception:  # the tracker must never be why a workflow's hook fails
            log.exception("could not queue a tracker issue", extra={"workflow_id": workflow_id})

    async def _enqueue(self, fingerprint: str, kind: str, title: str, body: str) -> None:
        try:
            await self._store.enqueue(
                tracker=self._tracker.name,
                fingerprint=fingerprint,
                kind=kind,  # type: ignore[arg-type]
                title=title,
                body=body,
            )
        except Exception:
            log.exception("could not queue a tracker message", extra={"fingerprint": fingerprint})
            return
        self._wake.set()

    # The worker.
    async def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.create_task(self._work(), name=f"tracker-{self._tracker.name}")

    async def aclose(self) -> None:
        for task in list(self._pending):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, timeout=5)
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        await self._tracker.aclose()

    async def deliver_due(self) -> int:
        """Deliver every message that is due now; how many were handled."""
        handled = 0
        while (
            row := await self._store.claim(tracker=self._tracker.name, lease_s=LEASE_S)
        ) is not None:
            await self._deliver(row)
            handled += 1
        return handled

    async def _work(self) -> None:
        while True:
            try:
                await self.deliver_due()
            except Exception:  # a bug or a database hiccup: try again next round
                log.exception("tracker delivery round failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._delivery.poll_s)

    async def _deliver(self, row: OutboxRow) -> None:
        policy = self._delivery
        attempts = 0
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(policy.attempts),
                wait=wait_exponential_jitter(multiplier=policy.backoff_s, max=policy.max_backoff_s),
                retry=retry_if_exception_type(TrackerUnavailableError),
                reraise=True,
            ):
                with attempt:
                    attempts += 1
                    await self._send(row)
        except TrackerUnavailableError as error:
            rounds = row.rounds + 1
            retry_in = None
            if rounds < policy.max_rounds:
                retry_in = min(policy.retry_after_s * 2 ** (rounds - 1), 86400.0)
            await self._store.failed(
                row.id, attempts=attempts, error=str(error), retry_in_s=retry_in
            )
            self._count(row, "dead_letter" if retry_in is not None else "abandoned")
            log.warning(
                "tracker unavailable; kept as a dead letter",
                extra={"outbox_id": row.id, "error": str(error), "retry_in_s": retry_in},
            )
        except TrackerRefusedError as error:
            await self._store.failed(row.id, attempts=attempts, error=str(error), retry_in_s=None)
            self._count(row, "abandoned")
            log.error("tracker refused a message", extra={"outbox_id": row.id, "error": str(error)})
        else:
            await self._store.delivered(row.id, attempts=attempts)
            self._count(row, "delivered")

    async def _send(self, row: OutboxRow) -> None:
        name = self._tracker.name
        issue = await self._store.open_issue(tracker=name, fingerprint=row.fingerprint)
        if row.kind == "open" and issue is None:
            ref = await self._tracker.open_issue(title=row.title, body=row.body)
            await self._store.record_issue(
                tracker=name, fingerprint=row.fingerprint, key=ref.key, url=ref.url, title=row.title
            )
            return
        if issue is None:
            return  # nothing was opened for this incident: nothing to update or close
        ref = IssueRef(key=issue.issue_key, url=issue.issue_url)
        if row.kind == "resolve":
            await self._tracker.close(ref, body=row.body)
            await self._store.touch(issue.id, closed=True)
        else:
            await self._tracker.comment(ref, body=row.body)
            await self._store.touch(issue.id)

    def _count(self, row: OutboxRow, status: str) -> None:
        TRACKER_DELIVERIES.labels(tracker=self._tracker.name, kind=row.kind, status=status).inc()
