"""Measures the review page: server time and query count with 20 and 200 items waiting.

Run by hand (README, "Benchmarks"):

    .venv/bin/python bench/review_page.py                 # SQLite, in a temporary folder
    bash .ci/services.sh .venv/bin/python bench/review_page.py   # PostgreSQL + S3 (moto)

It fills a fresh database with real assets (a master, three renditions with their thumbnails,
every scorer's scores) in review, then times `GET /admin/review/reviewitem/queue/` through the
whole Django stack (middleware, admin, template) as a creative editor. Targets (issue 5): the
query count does not grow with the number of items, and the page renders in < 150 ms with 200
items waiting.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: bench/ is sys.path[0], the project is not
    sys.path.insert(0, str(ROOT))

TARGET_MS = 150
PALETTE = ["#1F3A5F", "#E07A5F", "#F2CC8F", "#81B29A", "#F4F1DE"]
FORMATS = [
    ("square", 1080, 1080, "WEBP"),
    ("story", 1080, 1920, "JPEG"),
    ("wide", 1920, 1080, "AVIF"),
]


def say(text: str) -> None:
    print(text, flush=True)  # noqa: T201 - a command-line tool


def isolate() -> None:
    """Without service variables, use a throwaway SQLite file and media folder."""
    if os.environ.get("DATABASE_URL"):
        return
    folder = Path(tempfile.mkdtemp(prefix="bf-review-bench-"))
    os.environ["BRANDFORGE_SQLITE_PATH"] = str(folder / "bench.sqlite3")
    os.environ["BRANDFORGE_MEDIA_ROOT"] = str(folder / "media")


def setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brandforge.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    call_command("migrate", verbosity=0)


def seed(count: int, *, start: int) -> None:
    """Put `count` more items in review, as the pipeline leaves them (small real images)."""
    from PIL import Image, ImageDraw

    from assets.models import Brand, ReferenceImage
    from assets.services import RenditionSpec, asset_create, rendition_create
    from campaigns.models import Campaign
    from review.models import ReviewItem, Score
    from review.scoring.registry import scorers_for
    from tests.factories import campaign_with_briefs

    brand = Brand.objects.filter(slug="bench").first()
    if brand is None:
        brand = Brand.objects.create(name="Bench", slug="bench", palette=PALETTE)
        for n in range(3):
            reference = ReferenceImage(brand=brand, caption=f"reference {n}")
            reference.image.save(f"ref{n}.png", _png(n), save=True)
    campaign = Campaign.objects.filter(brand=brand).first() or campaign_with_briefs(
        brand=brand, count=0
    )
    from campaigns.services import brief_create
    from tests.factories import template_version

    version = template_version(brand=brand)
    master_scorers = [s.name for s in scorers_for("master")]
    rendition_scorers = [s.name for s in scorers_for("rendition")]
    for n in range(start, start + count):
        brief, _ = brief_create(
            campaign=campaign,
            template_version=version,
            variables={"product": f"mug {n}"},
            locale=("en-GB", "de-DE")[n % 2],
            external_ref=f"bench-{n}",
        )
        image = Image.new("RGB", (512, 512), PALETTE[n % len(PALETTE)])
        ImageDraw.Draw(image).ellipse([64, 64, 448, 448], fill=PALETTE[(n + 1) % len(PALETTE)])
        recipe = {
            "prompt": f"A mug {n} on a table",
            "seed": n,
            "provider": "local",
            "model": "procedural-v1",
            "variant": 0,
            "steps": [{"step": "watermark"}],
        }
        asset, _ = asset_create(brand=brand, key=f"bench:{n}", image=image, recipe=recipe)
        scores = [
            Score(
                asset=asset,
                subject="master",
                scorer=name,
                scorer_version=1,
                value=n % 7,
                passed=bool(n % 5),
                details={},
            )
            for name in master_scorers
        ]
        for name, width, height, fmt in FORMATS:
            # Small stand-ins for the renditions: the page only shows their thumbnails.
            spec = RenditionSpec(name, f"{width}x{height}.{fmt}", width, height, fmt, 60)
            rendition_create(asset=asset, spec=spec, image=image.resize((width // 8, height // 8)))
            scores += [
                Score(
                    asset=asset,
                    subject=name,
                    scorer=scorer,
                    scorer_version=1,
                    value=1.0,
                    passed=True,
                    details={},
                )
                for scorer in rendition_scorers
            ]
        Score.objects.bulk_create(scores)
        ReviewItem.objects.create(
            asset=asset,
            campaign=campaign,
            brief=brief,
            flagged=not n % 5,
            gate_summary={"gate": None, "decision": "flag" if not n % 5 else "pass"},
        )


def _png(n: int):
    import io

    from django.core.files.base import ContentFile
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (320, 240), PALETTE[n]).save(buffer, format="PNG")
    return ContentFile(buffer.getvalue())


def editor_client():
    from django.contrib.auth.models import Group, User
    from django.test import Client

    user, _ = User.objects.get_or_create(username="bench-editor", defaults={"is_staff": True})
    user.groups.add(Group.objects.get(name="Creative editor"))
    client = Client()
    client.force_login(user)
    return client


def measure(client, *, per_page: int, repeats: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    url = "/admin/review/reviewitem/queue/"
    client.get(url, {"per_page": per_page})  # warm: templates compiled, sessions cached
    times = []
    for _ in range(repeats):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url, {"per_page": per_page})
            times.append(1000 * (time.perf_counter() - started))
        assert response.status_code == 200, response.status_code
    body = response.content.decode()
    return {
        "per_page": per_page,
        "cards": body.count('class="bf-card'),
        "queries": len(captured),
        "median_ms": round(statistics.median(times), 1),
        "p90_ms": round(sorted(times)[int(0.9 * (len(times) - 1))], 1),
        "html_kb": round(len(body) / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    isolate()
    setup()
    from django.db import connection

    say(f"database: {connection.vendor}")
    seed(20, start=0)
    client = editor_client()
    rows = [measure(client, per_page=p, repeats=args.repeats) | {"waiting": 20} for p in (50, 200)]
    seed(180, start=20)
    rows += [
        measure(client, per_page=p, repeats=args.repeats) | {"waiting": 200} for p in (50, 200)
    ]
    say(
        f"{'waiting':>8} {'per page':>8} {'cards':>6} {'queries':>8} {'median ms':>10} "
        f"{'p90 ms':>7} {'HTML kB':>8}"
    )
    for row in rows:
        say(
            f"{row['waiting']:>8} {row['per_page']:>8} {row['cards']:>6} {row['queries']:>8} "
            f"{row['median_ms']:>10} {row['p90_ms']:>7} {row['html_kb']:>8}"
        )
    flat = len({row["queries"] for row in rows}) == 1
    worst = max(row["median_ms"] for row in rows)
    say(
        f"queries constant: {'yes' if flat else 'NO'}; slowest median {worst} ms "
        f"(target < {TARGET_MS} ms): {'met' if worst < TARGET_MS else 'NOT met'}"
    )
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = out / f"review_page-{stamp}.json"
    path.write_text(json.dumps({"database": connection.vendor, "rows": rows}, indent=2))
    say(f"results: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
