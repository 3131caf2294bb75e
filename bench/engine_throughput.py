"""Measures the generation engine's throughput, per-job overhead and CPU against the fake provider.

usage (PostgreSQL required; bench/README.md):

    bash .ci/services.sh .venv/bin/python bench/engine_throughput.py \\
        --briefs 2000 --latencies 0.5,2,8 --workers 2 [--naive-briefs 40]

For each provider latency it builds a campaign of N briefs (a brand without a logo, so no
refinement step; one 64×64 WebP channel format; a routing rule to fal "fal-ai/flux/dev"),
starts a LocalStack (bench/stack.py: the fake provider at that fixed latency, a web server for
the webhooks, a qcluster with --workers workers), launches the campaign and waits until every
job has succeeded. Then, at 2 s, the naive baseline: ``naive_generate`` (below) submits, polls
and downloads inside one task, on the same stack and workers. Results are printed as a
markdown table and kept in bench/results/ (git-ignored).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: bench/ is sys.path[0], the project is not
    sys.path.insert(0, str(ROOT))

NAIVE_TASK = "bench.engine_throughput.naive_generate"
NAIVE_MODEL = "fal-ai/flux/dev"
NAIVE_POLL_SECONDS = 0.25
NAIVE_LATENCY = 2.0
ENGINE_TASKS = {
    "generation.tasks.job_run": "run",
    "generation.tasks.job_complete": "complete",
    "generation.tasks.job_poll": "poll",
    "review.tasks.job_review_prepare": "review",
}
# Keep every Success row (django-q2 prunes to save_limit otherwise): the per-task timings come
# from them. This also skips the pruning query the monitor runs per result (see README).
BENCH_ENV = {"BRANDFORGE_Q_SAVE_LIMIT": "0"}
POLL_DB_SECONDS = 0.25


def say(text: str) -> None:
    print(text, flush=True)  # noqa: T201 - a command-line tool


# --- the naive baseline: a django-q task, run by the cluster ----------------------------------


def naive_generate(brief_id: int) -> str:
    """Generate one brief the naive way: submit to fal without a webhook, poll the status URL
    every 0.25 s until COMPLETED, fetch the result, download the image, store the master.

    The worker is busy for the whole provider latency, which is what the engine's webhook flow
    avoids."""
    from django.conf import settings

    from assets.services import asset_create
    from brandforge.net import fetch_image
    from campaigns.models import Brief
    from campaigns.services import brief_render_prompt
    from generation.http import download_client, provider_client

    brief = Brief.objects.select_related("campaign__brand", "template_version").get(pk=brief_id)
    options = settings.BRANDFORGE_PROVIDERS["fal"]["options"]
    auth = {"Authorization": f"Key {options['api_key']}"}
    size = settings.BRANDFORGE_MASTER_SIZE
    prompt = brief_render_prompt(brief=brief).prompt
    seed = int.from_bytes(hashlib.sha256(str(brief.uid).encode()).digest()[:4], "big")
    client = provider_client()
    submitted = client.post(
        f"{options['queue_url'].rstrip('/')}/{NAIVE_MODEL}",
        json={
            "prompt": prompt,
            "image_size": {"width": size, "height": size},
            "seed": seed,
            "num_images": 1,
            "output_format": "jpeg",
        },
        headers=auth,
    )
    submitted.raise_for_status()
    queued = submitted.json()
    deadline = time.monotonic() + 300
    while True:
        time.sleep(NAIVE_POLL_SECONDS)
        status = client.get(queued["status_url"], headers=auth)
        status.raise_for_status()
        if status.json().get("status") == "COMPLETED":
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"fal request {queued['request_id']} did not complete")
    result = client.get(queued["response_url"], headers=auth)
    result.raise_for_status()
    _, image = fetch_image(result.json()["images"][0]["url"], client=download_client())
    asset, _ = asset_create(
        brand=brief.campaign.brand,
        key=f"naive:{brief.uid}",
        image=image,
        recipe={"provider": "fal", "model": NAIVE_MODEL, "prompt": prompt, "seed": seed},
    )
    return asset.key


# --- set-up -----------------------------------------------------------------------------------


def django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brandforge.settings")
    import django

    django.setup()


def require_postgres() -> None:
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    if not engine.endswith("postgresql"):
        sys.exit(
            "engine_throughput needs PostgreSQL (found "
            f"{engine.rsplit('.', 1)[-1]}): SQLite serialises every write, which is not what "
            "the engine is measured on. Set DATABASE_URL=postgres://..., e.g. run it as\n"
            "  bash .ci/services.sh .venv/bin/python bench/engine_throughput.py ..."
        )


def database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    from urllib.parse import quote

    user, password = db.get("USER") or "", db.get("PASSWORD") or ""
    auth = ""
    if user:
        auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "") + "@"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}{port}/{quote(db['NAME'], safe='')}"


def prepare_database() -> None:
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    if settings.AWS_STORAGE_BUCKET_NAME:
        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=settings.AWS_S3_ENDPOINT_URL,
            region_name=settings.AWS_S3_REGION_NAME,
            aws_access_key_id=settings.AWS_ACCESS_KEY_ID,
            aws_secret_access_key=settings.AWS_SECRET_ACCESS_KEY,
        )
        names = {bucket["Name"] for bucket in s3.list_buckets().get("Buckets", [])}
        if settings.AWS_STORAGE_BUCKET_NAME not in names:
            s3.create_bucket(Bucket=settings.AWS_STORAGE_BUCKET_NAME)


def build_campaign(tag: str, briefs: int, *, route: bool = True):
    """A brand without a logo, a template version, one 64×64 WebP format, a campaign of
    ``briefs`` briefs and (``route``) a routing rule to fal for this campaign only."""
    from django.db import transaction

    from assets.models import Brand
    from campaigns.models import Campaign, ChannelFormat, PromptTemplate
    from campaigns.services import brief_create, prompt_template_version_create
    from generation.models import ProviderCircuit, RoutingRule

    with transaction.atomic():
        brand = Brand.objects.create(
            name=f"Bench {tag}",
            slug=f"bench-{tag}",
            palette=["#1F3A5F", "#E07A5F", "#F2CC8F"],
            style_tokens=["studio light"],
        )
        template = PromptTemplate.objects.create(brand=brand, name="bench")
        version = prompt_template_version_create(
            template=template, body="A {{product}} on a table for {{brand}}", variables=["product"]
        )
        square, _ = ChannelFormat.objects.get_or_create(
            name="bench-64", defaults={"width": 64, "height": 64, "file_format": "WEBP"}
        )
        campaign = Campaign.objects.create(brand=brand, name=f"bench {tag}", locales=["en-GB"])
        campaign.formats.set([square])
        for n in range(briefs):
            brief_create(
                campaign=campaign,
                template_version=version,
                variables={"product": f"mug {n}"},
                locale="en-GB",
            )
        if route:
            RoutingRule.objects.create(
                name=f"bench {tag}",
                priority=-1000,
                campaign=campaign,
                provider="fal",
                model="fal-ai/flux/dev",
            )
        # A circuit left open by an earlier run would defer every job.
        ProviderCircuit.objects.filter(provider="fal").delete()
    return campaign


# --- measurement helpers -----------------------------------------------------------------------


def git_commit() -> str:
    """The commit measured (``+`` when the working tree has changes), or ``unknown``."""
    import subprocess

    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - git from PATH
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+" if dirty else "")


def calibrate() -> float:
    """CPU milliseconds of a fixed pure-Python workload (best of 3): how fast this machine is
    right now. Shared or virtual machines drift; compare runs only at similar figures."""
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        sum(i * i for i in range(2_000_000))
        best = min(best, time.process_time() - started)
    return 1000 * best


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


class Meter:
    """CPU seconds of the stack's processes, the services, this process and the machine."""

    def __init__(self, stack) -> None:
        from django.conf import settings

        from bench.stack import service_pids

        self.stack = stack
        ports = {"postgres": settings.DATABASES["default"].get("PORT")}
        if settings.REDIS_URL:
            from urllib.parse import urlsplit

            ports["redis"] = urlsplit(settings.REDIS_URL).port
        if getattr(settings, "AWS_S3_ENDPOINT_URL", None):
            from urllib.parse import urlsplit

            ports["s3"] = urlsplit(settings.AWS_S3_ENDPOINT_URL).port
        self.services = {
            name: service_pids(int(port)) for name, port in ports.items() if port is not None
        }

    def sample(self) -> dict[str, float]:
        from bench.stack import machine_busy_seconds, tree_cpu_seconds

        cpu = self.stack.cpu_seconds()
        own = resource.getrusage(resource.RUSAGE_SELF)
        data = {
            "web": cpu["web"],
            "cluster": cpu["cluster"],
            "bench+fake": own.ru_utime + own.ru_stime,
            "machine": machine_busy_seconds(),
            "wall": time.monotonic(),
        }
        for name, pids in self.services.items():
            data[name] = sum(tree_cpu_seconds(pid) for pid in pids)
        return data

    @staticmethod
    def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        return {key: after[key] - before[key] for key in before}


def wait_until(label: str, count, target: int, *, timeout: float, started: float) -> float:
    """Poll ``count()`` every 0.25 s until it reaches ``target``; print progress; return the
    monotonic time it did."""
    last_change, last_value, last_print = time.monotonic(), -1, 0.0
    while True:
        value = count()
        now = time.monotonic()
        if value != last_value:
            last_change, last_value = now, value
        if value >= target:
            say(f"    {now - started:7.1f}s  {value}/{target} {label}")
            return now
        if now - last_print >= 5:
            say(f"    {now - started:7.1f}s  {value}/{target} {label}")
            last_print = now
        if now - started > timeout:
            raise TimeoutError(f"{label}: {value}/{target} after {timeout:.0f}s")
        if now - last_change > 120:
            raise TimeoutError(f"{label}: stuck at {value}/{target} for 120s")
        time.sleep(POLL_DB_SECONDS)


def task_times(since, job_ids: set[int]) -> tuple[dict[int, dict[str, float]], dict[str, list]]:
    """Execution seconds of the engine's tasks per job (django_q Success rows, ``stopped -
    started``; the instrumented cluster stamps ``started`` at execution start), and every
    task's duration by kind (``jobs`` is campaign_jobs_create)."""
    from django_q.models import Failure, Success

    per_job: dict[int, dict[str, float]] = {}
    by_kind: dict[str, list[float]] = {}
    rows = Success.objects.filter(started__gte=since).values_list(
        "func", "args", "started", "stopped"
    )
    for func, args, started, stopped in rows:
        seconds = (stopped - started).total_seconds()
        kind = ENGINE_TASKS.get(func)
        if func == "generation.tasks.campaign_jobs_create":
            by_kind.setdefault("jobs", []).append(seconds)
        if kind is None or not args or args[0] not in job_ids:
            continue
        by_kind.setdefault(kind, []).append(seconds)
        entry = per_job.setdefault(args[0], {})
        entry[kind] = entry.get(kind, 0.0) + seconds
    failures = Failure.objects.filter(started__gte=since).count()
    by_kind["failures"] = [failures]
    return per_job, by_kind


def fake_counts(fake) -> dict[str, Any]:
    stats = fake.stats(log=False)
    return {
        "submits": stats["submits"]["total"],
        "duplicate_submits": stats["submits"]["duplicates"],
        "webhooks_delivered": stats["webhooks"]["succeeded"],
        "webhook_failed_attempts": stats["webhooks"]["failed_attempts"],
        "webhooks_gave_up": stats["webhooks"]["gave_up"],
        "status_polls": stats["requests"].get("fal.status", 0),
        "result_fetches": stats["requests"].get("fal.result", 0),
        "downloads": stats["requests"].get("files.file", 0),
    }


# --- the runs ---------------------------------------------------------------------------------


def run_engine(stack, campaign, *, timeout: float) -> dict[str, Any]:
    from django.db.models import Max, Min
    from django.utils import timezone

    from campaigns.services import campaign_launch
    from generation.models import GenerationJob, ProviderWebhookEvent
    from review.models import ReviewItem

    n = campaign.briefs.count()
    jobs = GenerationJob.objects.filter(campaign=campaign)
    meter = Meter(stack)
    before = meter.sample()
    roles_before = stack.cluster_cpu_by_role()
    launched_at = timezone.now()
    started = time.monotonic()
    campaign_launch(campaign=campaign)
    wait_until(
        "jobs succeeded",
        lambda: jobs.filter(status=GenerationJob.Status.SUCCEEDED).count(),
        n,
        timeout=timeout,
        started=started,
    )
    at_succeeded = meter.sample()
    wait_until(
        "review items",
        lambda: ReviewItem.objects.filter(campaign=campaign).count(),
        n,
        timeout=timeout,
        started=started,
    )
    at_reviewed = meter.sample()
    roles_after = stack.cluster_cpu_by_role()
    times = jobs.aggregate(first=Min("finished_at"), last=Max("finished_at"))
    finished = sorted(jobs.values_list("finished_at", flat=True))
    span = (times["last"] - launched_at).total_seconds()
    # Steady state: between the 10th and the 90th percentile finish (ramp-up and tail cut off).
    lo, hi = finished[int(0.1 * (n - 1))], finished[int(0.9 * (n - 1))]
    steady = (int(0.9 * (n - 1)) - int(0.1 * (n - 1))) / max((hi - lo).total_seconds(), 1e-9)
    job_ids = set(jobs.values_list("pk", flat=True))
    per_job, by_kind = task_times(launched_at, job_ids)
    # Only jobs whose every task row is there (a save_limit > 0 prunes Success rows).
    engine = [
        1000 * (t["run"] + t["complete"] + t.get("poll", 0))
        for t in per_job.values()
        if "run" in t and "complete" in t
    ]
    with_review = [
        1000 * sum(t.values())
        for t in per_job.values()
        if "run" in t and "complete" in t and "review" in t
    ]
    cpu = Meter.delta(before, at_reviewed)
    cpu_gen = Meter.delta(before, at_succeeded)
    return {
        "briefs": n,
        "gen_per_s": n / span,
        "steady_gen_per_s": steady,
        "pipeline_jobs_per_s": n / (at_reviewed["wall"] - before["wall"]),
        "span_s": span,
        "first_finished_s": (times["first"] - launched_at).total_seconds(),
        "jobs_with_timings": len(engine),
        "pipeline_s": at_reviewed["wall"] - before["wall"],
        "overhead_ms_p50": percentile(engine, 50),
        "overhead_ms_p95": percentile(engine, 95),
        "with_review_ms_p50": percentile(with_review, 50),
        "with_review_ms_p95": percentile(with_review, 95),
        "jobs_with_review": len(with_review),
        "task_ms_p50": {
            kind: 1000 * statistics.median(values)
            for kind, values in by_kind.items()
            if kind != "failures"
        },
        "task_counts": {
            kind: len(values) for kind, values in by_kind.items() if kind != "failures"
        },
        "task_failures": by_kind["failures"][0],
        "attempts_max": jobs.aggregate(m=Max("attempts"))["m"],
        "cpu_s": cpu,
        "cpu_s_until_succeeded": cpu_gen,
        "cluster_cpu_s_by_role": Meter.delta(roles_before, roles_after),
        "cpu_ms_per_job": 1000 * (cpu["web"] + cpu["cluster"]) / n,
        "webhook_events": ProviderWebhookEvent.objects.filter(job__campaign=campaign).count(),
        **fake_counts(stack.fake),
    }


def run_naive(stack, campaign, *, timeout: float) -> dict[str, Any]:
    from django.db.models import Max
    from django.utils import timezone
    from django_q.tasks import async_task

    from assets.models import Asset

    briefs = list(campaign.briefs.values_list("pk", flat=True))
    assets = Asset.objects.filter(brand=campaign.brand, key__startswith="naive:")
    submits_before = stack.fake.stats(log=False)["submits"]["total"]
    meter = Meter(stack)
    before = meter.sample()
    launched_at = timezone.now()
    started = time.monotonic()
    for brief_id in briefs:
        async_task(NAIVE_TASK, brief_id)
    wait_until("naive masters", assets.count, len(briefs), timeout=timeout, started=started)
    after = meter.sample()
    span = (assets.aggregate(last=Max("created_at"))["last"] - launched_at).total_seconds()
    cpu = Meter.delta(before, after)
    return {
        "briefs": len(briefs),
        "gen_per_s": len(briefs) / span,
        "span_s": span,
        "cpu_s": cpu,
        "cpu_ms_per_job": 1000 * (cpu["web"] + cpu["cluster"]) / len(briefs),
        "submits": stack.fake.stats(log=False)["submits"]["total"] - submits_before,
    }


def run_latency(latency: float, args, stamp: str, *, briefs: int, naive: int) -> dict[str, Any]:
    from bench.stack import LocalStack

    tag = f"{stamp}-{str(latency).replace('.', 'p')}"
    say(f"\n== latency {latency:g} s: building {briefs} + {naive} briefs")
    campaign = build_campaign(tag, briefs) if briefs else None
    naive_campaign = build_campaign(f"{tag}-naive", naive, route=False) if naive else None
    extra = {**BENCH_ENV, **dict(item.split("=", 1) for item in args.env)}
    fake = {"latency": latency, "latency_dist": "fixed", "image_size": 64}
    log_dir = Path(args.logs) / tag if args.logs else None
    speed = calibrate()
    say(f"   calibration: {speed:.0f} ms CPU for the fixed workload (lower is faster)")
    with LocalStack(
        database_url=database_url(),
        workers=args.workers,
        fake_config=fake,
        extra_env=extra,
        web=args.web,
        log_dir=log_dir,
    ) as stack:
        say(f"   stack up: web {stack.public_url}, {args.workers} workers")
        result: dict[str, Any] = {"latency_s": latency, "calibration_ms": speed}
        if campaign is not None:
            result["engine"] = run_engine(stack, campaign, timeout=args.timeout)
        result["calibration_after_ms"] = calibrate()
        if naive_campaign is not None:
            say(f"== naive baseline at {latency:g} s: {naive} briefs")
            result["naive"] = run_naive(stack, naive_campaign, timeout=args.timeout)
    result["stack_cpu_s"] = stack.cpu_report
    return result


# --- report -----------------------------------------------------------------------------------


def _ms(values: tuple[float, float], covered: int, total: int) -> str:
    if not covered:
        return "n/a"
    text = f"{values[0]:.0f} / {values[1]:.0f}"
    return text if covered == total else f"{text} ({covered} jobs)"


def cpu_table(results: list[dict[str, Any]]) -> str:
    """Where the machine's CPU went, launch to last review item, in cores (CPU s / wall s)."""
    names = ("cluster", "web", "postgres", "redis", "s3", "bench+fake")
    lines = [
        "| provider latency | launch → last review (s) | machine busy (cores) | "
        + " | ".join(names)
        + " | other processes |",
        "|---:" * (len(names) + 4) + "|",
    ]
    for result in results:
        if "engine" not in result:
            continue
        cpu, wall = result["engine"]["cpu_s"], result["engine"]["pipeline_s"]
        ours = sum(cpu.get(name, 0.0) for name in names)
        cells = " | ".join(f"{cpu.get(name, 0.0) / wall:.2f}" for name in names)
        lines.append(
            f"| {result['latency_s']:g} s | {wall:.0f} | {cpu['machine'] / wall:.2f} | {cells} "
            f"| {(cpu['machine'] - ours) / wall:.2f} |"
        )
    return "\n".join(lines)


def table(results: list[dict[str, Any]], args) -> str:
    lines = [
        "| provider latency | calibration before / after (ms) | briefs | gen/s | steady gen/s "
        "| through review, jobs/s "
        "| engine overhead p50 / p95 (ms) "
        "| with review p50 / p95 (ms) | CPU per job (ms, web + cluster) | services CPU per job "
        "(ms, PG + Redis + S3) | submits (duplicates) | webhooks delivered |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        if "engine" not in result:
            continue
        e = result["engine"]
        n = e["briefs"]
        services = sum(e["cpu_s"].get(k, 0.0) for k in ("postgres", "redis", "s3"))
        engine = _ms((e["overhead_ms_p50"], e["overhead_ms_p95"]), e["jobs_with_timings"], n)
        review = _ms((e["with_review_ms_p50"], e["with_review_ms_p95"]), e["jobs_with_review"], n)
        speed = (result.get("calibration_ms", 0), result.get("calibration_after_ms", 0))
        lines.append(
            f"| {result['latency_s']:g} s | {speed[0]:.0f} / {speed[1]:.0f} "
            f"| {n} "
            f"| {e['gen_per_s']:.1f} "
            f"| {e['steady_gen_per_s']:.1f} | {e['pipeline_jobs_per_s']:.1f} "
            f"| {engine} | {review} "
            f"| {e['cpu_ms_per_job']:.0f} | {1000 * services / e['briefs']:.0f} "
            f"| {e['submits']} ({e['duplicate_submits']}) | {e['webhooks_delivered']} |"
        )
    naive = next((r for r in results if "naive" in r), None)
    if naive is not None:
        n = naive["naive"]
        lines.append("")
        lines.append(
            f"Naive baseline (submit + poll every {NAIVE_POLL_SECONDS} s inside the task) at "
            f"{naive['latency_s']:g} s: {n['briefs']} briefs, {n['gen_per_s']:.2f} gen/s "
            f"({n['cpu_ms_per_job']:.0f} ms CPU per job)."
        )
        if "engine" in naive:
            ratio = naive["engine"]["gen_per_s"] / n["gen_per_s"]
            lines.append(f"Engine / naive at {naive['latency_s']:g} s: {ratio:.1f}×.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--briefs", type=int, default=2000)
    parser.add_argument(
        "--latencies", default="0.5,2,8", help="Provider latencies (s), comma-separated."
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--naive-briefs", type=int, default=40, help="0 skips the baseline.")
    parser.add_argument("--timeout", type=float, default=900, help="Seconds per run.")
    parser.add_argument("--web", choices=("runserver", "gunicorn"), default="runserver")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="Extra environment for the stack's processes (repeatable).",
    )
    parser.add_argument("--logs", default="", help="Keep the stack's logs under this folder.")
    args = parser.parse_args(argv)
    latencies = [float(x) for x in args.latencies.split(",") if x.strip()]

    django_setup()
    require_postgres()
    from django.conf import settings

    prepare_database()
    stamp = datetime.now().strftime("%Y%m%d%H%M%S")
    commit = git_commit()
    storage = (
        f"S3 {settings.AWS_S3_ENDPOINT_URL or ''}".strip()
        if settings.AWS_STORAGE_BUCKET_NAME
        else "local files"
    )
    say(
        f"BrandForge engine throughput at {commit}: {args.briefs} briefs × latencies {latencies}, "
        f"{args.workers} workers, broker {'Redis' if settings.REDIS_URL else 'ORM'}, storage "
        f"{storage}, web {args.web}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
    )
    results = []
    naive_done = False
    for latency in latencies:
        naive = args.naive_briefs if latency == NAIVE_LATENCY and not naive_done else 0
        results.append(run_latency(latency, args, stamp, briefs=args.briefs, naive=naive))
        naive_done = naive_done or bool(naive)
    if args.naive_briefs and not naive_done:
        results.append(
            run_latency(NAIVE_LATENCY, args, stamp + "n", briefs=0, naive=args.naive_briefs)
        )

    report = (
        f"Commit {commit}, {args.workers} workers.\n\n"
        + table(results, args)
        + "\n\nCPU by process group:\n\n"
        + cpu_table(results)
    )
    say("\n" + report)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"engine-{stamp}.json"
    path.write_text(
        json.dumps(
            {
                "commit": commit,
                "args": vars(args),
                "cpus": os.cpu_count(),
                "broker": "redis" if settings.REDIS_URL else "orm",
                "storage": "s3" if settings.AWS_STORAGE_BUCKET_NAME else "local",
                "results": results,
                "table": report,
            },
            indent=2,
            default=str,
        )
    )
    say(f"\nkept {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
