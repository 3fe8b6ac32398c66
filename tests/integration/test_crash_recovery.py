"""kill -9 at each boundary of a workflow's life, ten runs each, on real processes and containers.

Every workflow restarts one busybox container of its own (per kill point) through real `serve`
processes on one throwaway database. At each kill point the service is killed with SIGKILL the
moment an observable condition says the boundary is reached, a new process is started (recovery
grace 1 s, sweep 0.2 s), the remaining human steps are done (approve with as many approvers as
the request needs), and every workflow must end `completed`, or `failed` with its step marked
`outcome_unknown` for a human (flagged). Never reached is "lost"; a step with two ledger rows,
or a container stopped (SIGTERM) or restarted twice by one workflow, is a duplicate.

How each kill point is reached (all ten workflows of a point share one process life, except
mid_step, which needs one executor thread per interrupted stop and uses two lives of five).
Each point also counts how many runs were verifiably at the boundary when the kill came. The
first five points restart the same ten containers, so from the fourth on (after_pause,
after_decision) the flap breaker makes the plans critical: two approvers each (carol, dave).

- after_start: a test trigger on LangGraph's `checkpoints` table holds the first checkpoint
  after the input one (see `checkpoints_held`); kill once all ten threads have their input
  checkpointed and `__start__`'s writes saved, no node run yet. The POSTs get no answer.
- before_pause: the same hold on the checkpoint that would follow `request_approval`: the
  approval is requested (pending, listed) but the gate's pause is not in the checkpoint. The
  test approves all ten there (each resume is claimed and waits for its run), then kills: the
  issue's state, a settled approval whose workflow never reached its pause.
- after_201: kill as soon as the ten 201 answers are in (the issue's reproduction). The engine
  answers 201 only once the gate's pause is in the checkpoint.
- after_pause: kill once the checkpoint holds each thread's `__interrupt__` write and each
  workflow says `awaiting_approval`.
- after_decision: the test holds each workflow's advisory lock (the engine's per-thread lock),
  then approves: each approval is settled with `resumed_at` set, but the resume cannot begin.
  Kill once the rows say so; then release the locks. In the new process half get POST /resume,
  half are left to the sweeper's recovery.
- mid_step: restarts with a 8 s grace on containers whose PID 1 ignores SIGTERM; kill once
  each ledger row is `started` and Docker reports the SIGTERM (`kill` event, signal 15), with
  no `restart` event yet. Expected: flagged `outcome_unknown`, one SIGTERM per container.
- after_step: restarts with a 3 s grace; once every ledger row is written the test locks the
  ten workflow rows (FOR NO KEY UPDATE), so each run blocks on its `step_finished` update right
  after the step; kill once every ledger row is `ok` and each container shows one `restart`
  event; then release the rows. Expected: completed, the step's result reused, not re-run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import httpx
import psycopg
import pytest
from docker.models.containers import Container

from shared.lib.workflows.locks import lock_key
from tests.helpers import auth, wait_for
from tests.integration.crash_support import (
    Bed,
    Tally,
    approvals_of,
    approve_enough,
    by_target,
    checkpointed_at_step,
    checkpoints_held,
    count,
    events_of,
    ledger_by_workflow,
    paused_threads,
    posting_in_background,
    restart_bodies,
    restarts,
    see_it_through,
    sigterms,
    started_at,
    table,
    threads_with_write,
    wait_settled,
    workflow_ids,
)
from tests.integration.durability_support import (
    ledger_rows,
    orchestrate_all,
    workflow_statuses,
    write_environments,
)
from tests.testbed.docker_fixtures import ContainerFactory

pytestmark = [pytest.mark.slow, pytest.mark.docker]

RUNS = 10
MID_STEP_LIVES = 2
MID_STEP_GRACE_S = 8
AFTER_STEP_GRACE_S = 3
IGNORES_SIGTERM = ["sleep", "3600"]


def after_start(bed: Bed, names: Sequence[str], tally: Tally) -> None:
    since = datetime.now()
    first = bed.start("after-start-1")  # the first process also makes the schema
    known = workflow_ids(bed.db)
    bodies = restart_bodies([f"q{i}" for i in range(RUNS)])
    with (
        checkpoints_held(bed.db, "branch:to:intake"),
        posting_in_background(first.base_url, bodies),
    ):
        new = wait_for(
            lambda: threads_with_write(bed.db, workflow_ids(bed.db) - known, "branch:to:intake"),
            until=lambda ids: len(ids) == RUNS,
            timeout_s=60,
            what="ten runs begun (the input checkpointed, its first node not)",
        )
        first.kill()
    ids = sorted(new)
    tally.at_boundary += len(ids) - len(checkpointed_at_step(bed.db, ids, 0))
    second = bed.start("after-start-2")
    statuses = see_it_through(bed, second, ids, set())
    count(bed, tally, ids, by_target(bed.db, ids, names), statuses, since)
    second.stop()


def before_pause(bed: Bed, names: Sequence[str], tally: Tally) -> None:
    since = datetime.now()
    first = bed.start("before-pause-1")
    known = workflow_ids(bed.db)
    bodies = restart_bodies([f"q{i}" for i in range(RUNS)])
    with checkpoints_held(bed.db, "branch:to:gate"), posting_in_background(first.base_url, bodies):
        new = wait_for(
            lambda: threads_with_write(bed.db, workflow_ids(bed.db) - known, "branch:to:gate"),
            until=lambda ids: len(ids) == RUNS,
            timeout_s=60,
            what="ten approvals requested, their pauses not yet checkpointed",
        )
        ids = sorted(new)
        approved = {str(r["id"]) for r in approvals_of(bed.db, ids)}
        for approval_id in approved:  # each resume now waits for its run to reach the pause
            approve_enough(first.base_url, approval_id)
        wait_for(
            lambda: [r for r in approvals_of(bed.db, ids) if r["resumed_at"]],
            until=lambda rows: len(rows) == RUNS,
            what="ten resumes claimed",
        )
        first.kill()
    statuses = workflow_statuses(bed.db, ids)
    short = set(ids) - paused_threads(bed.db, ids)
    tally.at_boundary += sum(statuses[w] == "planning" for w in short)
    second = bed.start("before-pause-2")
    statuses = see_it_through(bed, second, ids, approved)
    count(bed, tally, ids, by_target(bed.db, ids, names), statuses, since)
    second.stop()


def after_201(bed: Bed, names: Sequence[str], tally: Tally) -> None:
    since = datetime.now()
    first = bed.start("after-201-1")
    created = orchestrate_all(first.base_url, restart_bodies([f"q{i}" for i in range(RUNS)]))
    first.kill()
    ids = [w["workflow_id"] for w in created]
    tally.at_boundary += sum(w["status"] == "awaiting_approval" for w in created)
    second = bed.start("after-201-2")
    statuses = see_it_through(bed, second, ids, set())
    count(bed, tally, ids, by_target(bed.db, ids, names), statuses, since)
    second.stop()


def after_pause(bed: Bed, names: Sequence[str], tally: Tally) -> None:
    since = datetime.now()
    first = bed.start("after-pause-1")
    created = orchestrate_all(first.base_url, restart_bodies([f"q{i}" for i in range(RUNS)]))
    ids = [w["workflow_id"] for w in created]

    def at_pause() -> set[str]:
        waiting = {w for w, s in workflow_statuses(bed.db, ids).items() if s == "awaiting_approval"}
        return paused_threads(bed.db, ids) & waiting

    wait_for(at_pause, until=lambda p: len(p) == RUNS, what="ten pauses in the checkpoint")
    first.kill()
    pending = {r["workflow_id"] for r in approvals_of(bed.db, ids) if r["status"] == "pending"}
    tally.at_boundary += len(at_pause() & pending)
    second = bed.start("after-pause-2")
    statuses = see_it_through(bed, second, ids, set())
    count(bed, tally, ids, by_target(bed.db, ids, names), statuses, since)
    second.stop()


def after_decision(bed: Bed, names: Sequence[str], tally: Tally) -> None:
    since = datetime.now()
    first = bed.start("after-decision-1")
    created = orchestrate_all(first.base_url, restart_bodies([f"q{i}" for i in range(RUNS)]))
    ids = [w["workflow_id"] for w in created]
    approved = {w["approval_id"] for w in created}
    with psycopg.connect(bed.db, autocommit=True) as holder:
        for workflow_id in ids:  # waits out each run's release of the lock after its pause
            holder.execute("SELECT pg_advisory_lock(%s)", (lock_key(workflow_id),))
        for workflow in created:
            approve_enough(first.base_url, workflow["approval_id"])

        def settled() -> list[dict[str, Any]]:
            rows = approvals_of(bed.db, ids)
            return [r for r in rows if r["status"] == "approved" and r["resumed_at"]]

        wait_for(settled, until=lambda rows: len(rows) == RUNS, what="ten resumes claimed")
        first.kill()
    ledger = ledger_by_workflow(bed.db, ids)
    waiting = workflow_statuses(bed.db, ids)
    tally.at_boundary += sum(
        not ledger[w] and waiting[w] == "awaiting_approval"
        for w in {r["workflow_id"] for r in settled()}
    )
    second = bed.start("after-decision-2")
    for workflow_id in ids[: RUNS // 2]:  # a person asks; the other half waits for the sweeper
        response = httpx.post(
            f"{second.base_url}/resume/{workflow_id}", headers=auth("carol"), timeout=60
        )
        assert response.status_code == 202, response.text
    statuses = see_it_through(bed, second, ids, approved)
    count(bed, tally, ids, by_target(bed.db, ids, names), statuses, since)
    second.stop()


def mid_step(bed: Bed, slow: Sequence[Container], tally: Tally) -> None:
    per_life = RUNS // MID_STEP_LIVES
    for life in range(MID_STEP_LIVES):
        first = life * per_life
        mid_step_life(bed, f"mid-step-{life}", slow[first : first + per_life], first, tally)


def mid_step_life(
    bed: Bed, label: str, boxes: Sequence[Container], first_index: int, tally: Tally
) -> None:
    names = [str(c.name) for c in boxes]
    before = {str(c.name): started_at(c) for c in boxes}
    since = datetime.now()
    first = bed.start(f"{label}-1")
    targets = [f"m{first_index + i}" for i in range(len(boxes))]
    created = orchestrate_all(first.base_url, restart_bodies(targets, MID_STEP_GRACE_S))
    ids = [w["workflow_id"] for w in created]
    for workflow in created:
        approve_enough(first.base_url, workflow["approval_id"])
    wait_for(
        lambda: [r["status"] for r in ledger_rows(bed.db, ids)],
        until=lambda s: s == ["started"] * len(boxes),
        what="the restarts' ledger rows",
    )
    wait_for(
        lambda: sigterms(bed.docker_client, names, since),
        until=lambda terms: set(terms) == set(names),
        what="dockerd to send SIGTERM to every container",
    )
    first.kill()
    ended = restarts(bed.docker_client, names, since)
    unfinished = [r for r in ledger_rows(bed.db, ids) if r["status"] == "started"]
    if len(unfinished) == len(boxes):
        tally.at_boundary += len(boxes) - len(ended)
    second = bed.start(f"{label}-2")
    statuses = see_it_through(bed, second, ids, set())
    wait_settled(boxes, before, timeout_s=MID_STEP_GRACE_S + 30)
    count(bed, tally, ids, dict(zip(ids, names, strict=True)), statuses, since)
    second.stop()


def after_step(bed: Bed, names: Sequence[str], tally: Tally) -> None:
    since = datetime.now()
    first = bed.start("after-step-1")
    targets = [f"a{i}" for i in range(RUNS)]
    created = orchestrate_all(first.base_url, restart_bodies(targets, AFTER_STEP_GRACE_S))
    ids = [w["workflow_id"] for w in created]
    for workflow in created:
        approve_enough(first.base_url, workflow["approval_id"])
    wait_for(lambda: ledger_rows(bed.db, ids), until=lambda r: len(r) == RUNS, what="ledger rows")
    with psycopg.connect(bed.db) as holder:  # one open transaction holds the ten row locks
        holder.execute(
            "SELECT id FROM workflows WHERE id = ANY(%s) FOR NO KEY UPDATE", (list(ids),)
        )
        early = events_of(bed.db, ids, "step_finished")
        wait_for(
            lambda: [r["status"] for r in ledger_rows(bed.db, ids)],
            until=lambda s: s == ["ok"] * RUNS,
            timeout_s=60,
            what="every step to finish",
        )
        ended = restarts(bed.docker_client, names, since)
        first.kill()
        holder.rollback()
    late = events_of(bed.db, ids, "step_finished")
    tally.at_boundary += sum(1 for n in names if ended.get(n) == 1) - len(early | late)
    second = bed.start("after-step-2")
    statuses = see_it_through(bed, second, ids, set())
    count(bed, tally, ids, by_target(bed.db, ids, names), statuses, since)
    second.stop()


# --- the test --------------------------------------------------------------------------------


def test_kill_9_at_every_boundary_loses_and_repeats_nothing(
    container_factory: ContainerFactory,
    docker_client: docker.DockerClient,
    docker_url: str,
    empty_database_url: str,
    tmp_path: Path,
) -> None:
    began = time.monotonic()
    quick = [container_factory(f"crash-q{i}") for i in range(RUNS)]
    slow = [container_factory(f"crash-m{i}", command=IGNORES_SIGTERM) for i in range(RUNS)]
    stepped = [container_factory(f"crash-a{i}", command=IGNORES_SIGTERM) for i in range(RUNS)]
    services = {f"q{i}": str(c.name) for i, c in enumerate(quick)}
    services |= {f"m{i}": str(c.name) for i, c in enumerate(slow)}
    services |= {f"a{i}": str(c.name) for i, c in enumerate(stepped)}
    bed = Bed(
        db=empty_database_url,
        tmp_path=tmp_path,
        environments=write_environments(
            tmp_path / "environments.yml", docker_url=docker_url, containers=services
        ),
        docker_client=docker_client,
    )
    quick_names = [str(c.name) for c in quick]
    stepped_names = [str(c.name) for c in stepped]
    points: list[tuple[str, Callable[[Tally], None]]] = [
        ("after_start", lambda t: after_start(bed, quick_names, t)),
        ("before_pause", lambda t: before_pause(bed, quick_names, t)),
        ("after_201", lambda t: after_201(bed, quick_names, t)),
        ("after_pause", lambda t: after_pause(bed, quick_names, t)),
        ("after_decision", lambda t: after_decision(bed, quick_names, t)),
        ("mid_step", lambda t: mid_step(bed, slow, t)),
        ("after_step", lambda t: after_step(bed, stepped_names, t)),
    ]
    tallies: list[Tally] = []
    try:
        for name, run in points:
            tally, phase_began = Tally(name), time.monotonic()
            run(tally)
            tally.seconds = time.monotonic() - phase_began
            tallies.append(tally)
    finally:
        for process in bed.processes:
            process.kill()
    duration = time.monotonic() - began
    print("\n" + table(tallies) + f"\nwhole test: {duration:.0f}s")
    problems = [f"{t.kill_point}: {p}" for t in tallies for p in t.problems]
    report = table(tallies) + "\n" + "\n".join(problems)
    assert [t.runs for t in tallies] == [RUNS] * len(points), report
    assert sum(t.lost for t in tallies) == 0, report
    assert sum(t.duplicates for t in tallies) == 0, report
    assert problems == [], report
    # Only a kill mid-operation leaves an outcome nobody can know; everything else completes.
    flagged = {t.kill_point: t.flagged for t in tallies}
    assert flagged == dict.fromkeys(flagged, 0) | {"mid_step": RUNS}, report
    assert [t.at_boundary for t in tallies] == [RUNS] * len(points), report
