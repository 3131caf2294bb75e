"""Tests T1 of the reliability plan with real processes: SIGKILLed workers lose no job.

A web server and a ``qcluster`` run as subprocesses (bench/stack.py) against the pytest test
database and the suite's broker; the fake fal provider answers after ~1 s and signs its
webhooks. While jobs are in flight, a worker that is executing a job task (``job_run`` or
``job_complete``) is SIGKILLed every ~0.5 s; this process runs the reconciler every second,
as the schedule would. On Redis a killed worker's task is lost and the reconciler re-queues
the job once its lease expires; on the ORM broker the task is also redelivered after ``retry``.
No in-process QueueRunner here: the cluster's own workers consume the queue.

A kill can land anywhere in those tasks: before the claim (the job stays queued with no task:
the reconciler re-queues it after ``BRANDFORGE_JOB_REQUEUE_AFTER_SECONDS``, 5 s here), after the
submit (the next attempt submits again: a duplicate submit, reported), or after the job's final
commit but before the review task reaches Redis (the reconciler hands the job to review again).

Only workers busy with a job task are killed, and each is stopped (SIGSTOP) and checked to be
still on that task before the kill: a worker killed while it waits for the next task holds the
cluster's task-queue read lock and stalls every other worker for good (django-q2#23), a liveness
problem of django-q2 that this test does not measure (bench/README.md).
"""

import logging
import time
from urllib.parse import quote

import pytest
from django.db import connection
from django.db.models import Count
from django_q.brokers import get_broker

from assets.models import Asset, Rendition
from bench.stack import LocalStack
from campaigns.services import campaign_launch
from generation.models import GenerationJob, RoutingRule
from generation.services import jobs_reconcile
from review.models import ReviewItem
from tests.factories import BrandFactory, ChannelFormatFactory, campaign_with_briefs

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

BRIEFS = 20
WORKERS = 2
KILLS = 8  # at most; each one on a worker running a job task
MIN_KILLS = 5
KILLS_PER_JOB = 2  # keeps every job well under its 5 attempts
KILL_EVERY = 0.5
RECONCILE_EVERY = 1.0
DEADLINE = 120.0
REVIEW_STALL = 20.0  # every job succeeded, yet no new review item for this long: one was lost
JOB_TASKS = ("run", "done")  # worker labels of job_run and job_complete


def database_url(db: dict) -> str:
    """A DATABASE_URL for the database this test process uses (the test database)."""
    user, password = db.get("USER") or "", db.get("PASSWORD") or ""
    auth = ""
    if user:
        auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "") + "@"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}{port}/{quote(db['NAME'], safe='')}"


def job_task(label: str) -> tuple[str, int] | None:
    """``("run", 17)`` for a worker label ``run:17``; None when idle or another task."""
    kind, _, arg = label.partition(":")
    return (kind, int(arg)) if kind in JOB_TASKS and arg.isdigit() else None


def pick_victim(stack: LocalStack, kills_by_job: dict[int, int]) -> tuple[int, str] | None:
    for pid, label in stack.worker_tasks().items():
        task = job_task(label)
        if task and kills_by_job.get(task[1], 0) < KILLS_PER_JOB:
            return pid, label
    return None


def diagnose(campaign, kills: list[dict]) -> str:
    """One line per job that is not done (not succeeded, or no review item), with its kills."""
    reviewed = set(ReviewItem.objects.filter(campaign=campaign).values_list("brief_id", flat=True))
    lines = []
    for job in GenerationJob.objects.filter(campaign=campaign).order_by("pk"):
        if job.status == GenerationJob.Status.SUCCEEDED and job.brief_id in reviewed:
            continue
        finished = f"{job.finished_at.timestamp():.3f}" if job.finished_at else "-"
        on_job = [(k["task"], f"{k['wall']:.3f}") for k in kills if k["job"] == job.pk]
        lines.append(
            f"job {job.pk}: {job.status}, attempts {job.attempts}, finished {finished}, review "
            f"item {job.brief_id in reviewed}, kills {on_job}, errors {job.error_history[-2:]}"
        )
    return "\n".join(lines)


def status_counts(campaign) -> dict[str, int]:
    rows = GenerationJob.objects.filter(campaign=campaign).values("status").annotate(n=Count("id"))
    return {row["status"]: row["n"] for row in rows}


def test_killed_workers_lose_no_job_and_duplicate_no_asset(settings, tmp_path, caplog):
    # A worker killed after the broker handed it a task but before it claimed the job leaves
    # the job queued with no task: the reconciler (run here) must not wait minutes for it.
    settings.BRANDFORGE_JOB_REQUEUE_AFTER_SECONDS = 5
    caplog.set_level(logging.WARNING, logger="httpx")  # the fake's webhook deliveries
    broker = get_broker()
    broker.purge_queue()  # nothing left over from other tests for the real workers to pick up
    RoutingRule.objects.create(name="fal", provider="fal", model="fal-ai/flux/dev")
    brand = BrandFactory()  # no logo: no watermark step, one asset (the master) per job
    square = ChannelFormatFactory(name="square-64", width=64, height=64, file_format="WEBP")
    campaign = campaign_with_briefs(brand=brand, count=BRIEFS, formats=[square])

    started = time.monotonic()
    stack = LocalStack(
        database_url=database_url(connection.settings_dict),
        workers=WORKERS,
        fake_config={"latency": 1.0, "latency_dist": "fixed", "image_size": 64},
        extra_env={
            "BRANDFORGE_JOB_LEASE_SECONDS": "3",
            "BRANDFORGE_JOB_POLL_AFTER_SECONDS": "3",
            "BRANDFORGE_TASK_RETRY": "10",
            "BRANDFORGE_TASK_TIMEOUT": "8",
            # The same broker, queue and signing key as this process, which enqueues too.
            "REDIS_URL": settings.REDIS_URL or "",
            "BRANDFORGE_Q_NAME": settings.Q_CLUSTER["name"],
            "DJANGO_SECRET_KEY": settings.SECRET_KEY,
            "BRANDFORGE_MEDIA_ROOT": str(tmp_path / "media"),
        },
    )
    kills: list[dict] = []
    kills_by_job: dict[int, int] = {}
    with stack:
        ready = time.monotonic()
        campaign_launch(campaign=campaign)
        launched = time.monotonic()
        next_kill, next_reconcile = launched + KILL_EVERY, launched + RECONCILE_EVERY
        last_reviewed, review_progress = -1, launched
        while True:
            now = time.monotonic()
            counts = status_counts(campaign)
            reviewed = ReviewItem.objects.filter(campaign=campaign).count()
            if counts.get("succeeded") == BRIEFS and reviewed == BRIEFS:
                break
            if counts.get("succeeded") != BRIEFS or reviewed != last_reviewed:
                last_reviewed, review_progress = reviewed, now
            stalled = now - review_progress > REVIEW_STALL  # every job done, reviews stopped
            if counts.get("dead") or stalled or now - launched > DEADLINE:
                pytest.fail(
                    f"jobs {counts}, review items {reviewed}, kills {kills}, "
                    f"workers {stack.worker_tasks()}, cluster {stack.describe()}, "
                    f"fake {stack.fake.stats(log=False)}\n"
                    f"{diagnose(campaign, kills)}\n{stack.log_tail()}"
                )
            if len(kills) < KILLS and now >= next_kill:
                victim = pick_victim(stack, kills_by_job)
                label = None
                if victim is not None:
                    pid, expected = victim
                    label = stack.kill_worker(pid, only_if=expected.__eq__)
                if label:
                    job_id = job_task(label)[1]
                    kills_by_job[job_id] = kills_by_job.get(job_id, 0) + 1
                    kills.append({"at": now, "wall": time.time(), "task": label, "job": job_id})
                    next_kill = now + KILL_EVERY
                else:
                    next_kill = now + 0.02  # nothing in flight right now: look again soon
            if now >= next_reconcile:
                jobs_reconcile()
                next_reconcile = now + RECONCILE_EVERY
            time.sleep(0.02)
        finished = time.monotonic()
        fake_stats = stack.fake.stats(log=False)
    broker.purge_queue()

    jobs = GenerationJob.objects.filter(campaign=campaign)
    finished_at = {job.pk: job.finished_at.timestamp() for job in jobs}
    wall_offset = time.time() - time.monotonic()
    recoveries = sorted(finished_at[k["job"]] - (k["at"] + wall_offset) for k in kills)
    submits = fake_stats["submits"]
    print(  # noqa: T201 - the figures T1 reports
        f"\nT1 reliability: {len(kills)} worker kills "
        f"({', '.join(k['task'] for k in kills)}); jobs lost "
        f"{BRIEFS - status_counts(campaign).get('succeeded', 0)}/{BRIEFS}; duplicate assets "
        f"{Asset.objects.filter(brand=brand).count() - BRIEFS}; provider submits "
        f"{submits['total']} ({submits['duplicates']} duplicate, {submits['unique']} unique); "
        f"webhooks {fake_stats['webhooks']['succeeded']}; attempts "
        f"{sorted(job.attempts for job in jobs)}; kill-to-success max "
        f"{max(recoveries, default=0):.1f}s; jobs done in {finished - launched:.1f}s "
        f"(stack up in {ready - started:.1f}s, test {time.monotonic() - started:.1f}s); "
        f"CPU web {stack.cpu_report['web']:.1f}s cluster {stack.cpu_report['cluster']:.1f}s"
    )

    assert len(kills) >= MIN_KILLS, f"only {len(kills)} kills landed on a job task: {kills}"
    # No job lost.
    assert status_counts(campaign) == {"succeeded": BRIEFS}
    assert all(job.output_id and job.output_id == job.master_id for job in jobs)
    # No duplicate asset: one master per job, one key per asset, one rendition per asset.
    assert Asset.objects.filter(brand=brand).count() == BRIEFS
    assert not Asset.objects.values("key").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert Rendition.objects.filter(asset__brand=brand).count() == BRIEFS
    # Every brief has exactly one review item.
    per_brief = ReviewItem.objects.filter(campaign=campaign).values("brief").annotate(n=Count("id"))
    assert sorted(row["n"] for row in per_brief) == [1] * BRIEFS
    # Duplicate provider submits are allowed (a job killed after its submit submits again on
    # its next attempt); the log line above reports them.
    assert submits["total"] >= BRIEFS
