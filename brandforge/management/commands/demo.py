"""Provides `manage.py demo`: a demo campaign run through the whole pipeline by real workers."""

import contextlib
import io
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import httpx
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from PIL import Image, ImageDraw, ImageFont

from assets.models import Asset, Brand, BrandFont, Layout, Rendition, SeedProfile
from assets.services import brand_font_create, layout_create
from brandforge.images import sanitize_image_upload
from campaigns.models import Brief, Campaign, ChannelFormat, FormatLayout, PromptTemplate
from campaigns.services import brief_create, campaign_launch, prompt_template_version_create
from generation.models import GenerationJob, RefinementChain, RoutingRule
from review.models import QualityGate, ReviewItem
from review.services import review_item_approve, review_item_reject

# Logins the demo makes besides admin, one per role (same password), to try what each may do.
ROLE_USERS = {"editor": "Creative editor", "marketing": "Marketing", "publisher": "Publisher"}
PALETTE = ["#1F3A5F", "#E07A5F", "#F2CC8F", "#81B29A", "#F4F1DE"]
# The looks of seed 000 (film grain, warmth, a light vignette), then the watermark.
CHAIN = [
    {"step": "color_temperature", "params": {"shift": 0.15}},
    {"step": "film_grain", "params": {"amount": 0.03}},
    {"step": "vignette", "params": {"strength": 0.25}},
    {"step": "watermark", "params": {"anchor": "top-left", "safe_area": 0.02}},
]
DEMO_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")


def layout_layers(width: int, height: int, font: str | None) -> list[dict]:
    """A headline over a dark scrim at the bottom, and a call-to-action button under it."""

    def px(value: float) -> int:  # sizes are designed for a 1080 px wide canvas
        return round(value * width / 1080)

    bottom = height - px(64)
    return [
        {"type": "image"},
        {"type": "scrim", "box": [0, height // 2, width, height], "end_opacity": 0.7},
        {
            "type": "text",
            "box": [px(64), bottom - px(300), width - px(64), bottom - px(130)],
            "text": "{{product}}",
            "font": font,
            "size": px(84),
            "min_size": px(40),
            "colour": "#FFFFFF",
            "valign": "bottom",
            "max_lines": 2,
        },
        {
            "type": "shape",
            "box": [px(64), bottom - px(100), px(484), bottom],
            "colour": 1,
            "radius": px(50),
        },
        {
            "type": "text",
            "box": [px(64), bottom - px(100), px(484), bottom],
            "text": "Shop {{brand}}",
            "font": font,
            "size": px(40),
            "colour": "#FFFFFF",
            "align": "center",
            "valign": "middle",
            "max_lines": 1,
        },
    ]


FORMATS = [
    # name, width, height, file format, quality
    ("instagram-post", 1080, 1080, "WEBP", 85),
    ("instagram-story", 1080, 1920, "WEBP", 85),
    ("web-hero", 1920, 1080, "JPEG", 88),
]
PRODUCTS = {
    "en-GB": [
        ("espresso cup", "marble counter", "calm"),
        ("cold brew bottle", "picnic blanket", "sunny"),
        ("bag of beans", "wooden shelf", "warm"),
        ("oat latte", "cafe table", "cosy"),
        ("travel mug", "train window", "brisk"),
        ("pour-over kettle", "kitchen bench", "quiet"),
    ],
    "de-DE": [
        ("Espressotasse", "Marmortheke", "ruhig"),
        ("Cold-Brew-Flasche", "Picknickdecke", "sonnig"),
        ("Bohnenbeutel", "Holzregal", "warm"),
        ("Hafer-Latte", "Cafétisch", "gemütlich"),
        ("Thermobecher", "Zugfenster", "frisch"),
        ("Wasserkessel", "Küchenbank", "still"),
    ],
}


def make_logo() -> bytes:
    """Draw the demo brand's logo: a roundel with the initials, on a transparent background."""
    size = 512
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse([8, 8, size - 8, size - 8], fill=PALETTE[0], outline=PALETTE[2], width=18)
    font = ImageFont.load_default(size=210)
    draw.text((size / 2, size / 2), "NC", font=font, fill=PALETTE[4], anchor="mm")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return sanitize_image_upload(buffer.getvalue())


def _manage_py() -> str:
    return str(Path(settings.BASE_DIR) / "manage.py")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise CommandError(f"{url} did not come up within {timeout:.0f}s")


class Command(BaseCommand):
    help = "Build a demo brand and campaign, run the workers until everything is published, report."

    def add_arguments(self, parser):
        parser.add_argument("--briefs", type=int, default=12, help="Number of briefs (2 locales).")
        parser.add_argument("--timeout", type=int, default=600, help="Seconds to wait for workers.")
        parser.add_argument(
            "--workers", type=int, default=settings.Q_CLUSTER["workers"], help="qcluster workers."
        )
        parser.add_argument(
            "--provider",
            choices=["local", "fal", "replicate"],
            default="local",
            help="local: the built-in renderer. fal or replicate: the real adapters against the "
            "bundled fake provider, with signed webhooks to a web server the demo starts.",
        )

    def handle(self, *args, briefs: int, timeout: int, workers: int, provider: str, **options):
        started = time.monotonic()
        user, password = self._admin_user()
        with self._provider_stack(provider) as env:
            campaign = self._build(briefs, provider)
            campaign_launch(campaign=campaign)
            self.stdout.write(
                f"Launched {campaign.name}: {briefs} briefs × {len(FORMATS)} formats "
                f"via {provider}."
            )
            cluster = self._start_cluster(workers, env)
            try:
                self._wait(campaign, until_in_review=True, timeout=timeout, started=started)
                approved, rejected = self._decide(campaign, user)
                self.stdout.write(f"Approved {approved}, rejected {rejected} (as {user.username}).")
                self._wait(campaign, until_in_review=False, timeout=timeout, started=started)
            finally:
                self._stop_cluster(cluster)
        self._summary(campaign, user, password, time.monotonic() - started)

    @contextlib.contextmanager
    def _provider_stack(self, provider: str):
        """For a remote provider: the fake provider here, and a web server for its webhooks."""
        if provider == "local":
            yield {}
            return
        from generation.fakeprovider import FakeProvider

        with FakeProvider(latency=1.0, latency_jitter=0.5) as fake:
            web_port = _free_port()
            env = {
                "FAL_KEY": "demo",
                "FAL_QUEUE_URL": fake.fal_url,
                "FAL_JWKS_URL": fake.jwks_url,
                "FAL_USER_ID": fake.fal_user_id,
                "REPLICATE_API_TOKEN": "demo",
                "REPLICATE_BASE_URL": f"{fake.base_url}/replicate",
                "REPLICATE_WEBHOOK_SECRET": fake.replicate_secret,
                "BRANDFORGE_NET_ALLOW": fake.base_url.removeprefix("http://"),
                "BRANDFORGE_PUBLIC_URL": f"http://127.0.0.1:{web_port}",
            }
            self.stdout.write(f"Fake {provider} at {fake.base_url}; webhooks to port {web_port}.")
            web = subprocess.Popen(  # noqa: S603 (our own manage.py, no shell)
                [sys.executable, _manage_py(), "runserver", f"127.0.0.1:{web_port}", "--noreload"],
                env={**os.environ, **env},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                _wait_for_http(f"http://127.0.0.1:{web_port}/healthz")
                yield env
            finally:
                web.terminate()
                web.wait(timeout=10)

    def _admin_user(self):
        User = get_user_model()
        user = User.objects.filter(username="admin").first()
        password_file = Path(settings.VAR_DIR) / "demo-admin-password.txt"
        if user is None:
            password = secrets.token_urlsafe(12)
            user = User.objects.create_superuser("admin", "admin@example.com", password)
            password_file.parent.mkdir(parents=True, exist_ok=True)
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
            self._role_users(password)
        else:
            password = (
                password_file.read_text().strip()
                if password_file.exists()
                else "(unchanged; `manage.py changepassword admin` to reset)"
            )
        return user, password

    def _role_users(self, password: str) -> None:
        """One login per role besides admin (same password), to try the roles' views."""
        User = get_user_model()
        for username, role in ROLE_USERS.items():
            member = User.objects.create_user(username, f"{username}@example.com", password)
            member.is_staff = True
            member.save(update_fields=["is_staff"])
            member.groups.add(Group.objects.get(name=role))

    @transaction.atomic
    def _build(self, count: int, provider: str) -> Campaign:
        brand, created = Brand.objects.get_or_create(
            slug="northwind-coffee",
            defaults={
                "name": "Northwind Coffee",
                "palette": PALETTE,
                "fonts": ["Aileron"],
                "style_tokens": ["editorial product photo", "soft daylight"],
                "negative_prompt": "text, watermark, blurry, extra limbs",
            },
        )
        if created or not brand.logo:
            brand.logo.save("logo.png", ContentFile(make_logo()), save=True)
        seeds, _ = SeedProfile.objects.get_or_create(
            brand=brand, name="house seeds", defaults={"base_seed": 20261121}
        )
        QualityGate.objects.get_or_create(
            brand=brand,
            campaign=None,
            defaults={
                "name": "Northwind default",
                # Broken files are rejected (and regenerated once); softer misses are flagged
                # for the editor.
                "rules": {
                    "resolution": {"threshold": None, "action": "reject"},
                    "aspect": {"threshold": None, "action": "reject"},
                    "sharpness": {"threshold": None, "action": "reject"},
                    "exposure": {"threshold": None, "action": "flag"},
                    "palette": {"threshold": None, "action": "flag"},
                    "duplicate": {"threshold": None, "action": "flag"},
                    "nsfw": {"threshold": None, "action": "reject"},
                },
                "regenerate_attempts": 1,
            },
        )
        template, _ = PromptTemplate.objects.get_or_create(brand=brand, name="Product on location")
        version = prompt_template_version_create(
            template=template,
            body="A {{product}} on a {{surface}}, {{mood}} mood, for {{brand}} ({{locale}})",
            variables=["product", "surface", "mood"],
        )
        RefinementChain.objects.get_or_create(brand=brand, campaign=None, defaults={"steps": CHAIN})
        self._layouts(brand)
        formats = [
            ChannelFormat.objects.get_or_create(
                name=name,
                defaults={"width": w, "height": h, "file_format": fmt, "quality": q},
            )[0]
            for name, w, h, fmt, q in FORMATS
        ]
        number = Campaign.objects.filter(brand=brand).count() + 1
        campaign = Campaign.objects.create(
            brand=brand,
            name=f"Autumn launch #{number}",
            locales=list(PRODUCTS),
            seed_profile=seeds,
        )
        campaign.formats.set(formats)
        if provider != "local":
            model = {"fal": "fal-ai/flux/dev", "replicate": "black-forest-labs/flux-dev"}[provider]
            RoutingRule.objects.create(
                name=f"{campaign.name} via {provider}",
                campaign=campaign,
                provider=provider,
                model=model,
                price_per_image=Decimal("0.025"),
                priority=10,
            )
        for n in range(count):
            locale = list(PRODUCTS)[n % 2]
            product, surface, mood = PRODUCTS[locale][(n // 2) % len(PRODUCTS[locale])]
            brief_create(
                campaign=campaign,
                template_version=version,
                variables={"product": product, "surface": surface, "mood": mood},
                locale=locale,
                external_ref=f"NW-{number:02d}-{n + 1:03d}",
            )
        return campaign

    def _layouts(self, brand: Brand) -> None:
        """The brand's layouts for the two Instagram formats (the web hero stays a bare image)."""
        font = None
        if DEMO_FONT.exists():
            font = "DejaVu Sans Bold"
            if not BrandFont.objects.filter(brand=brand, family=font).exists():
                brand_font_create(brand=brand, family=font, data=DEMO_FONT.read_bytes())
        for name, w, h, *_ in FORMATS:
            if name == "web-hero":
                continue
            layout = Layout.objects.filter(brand=brand, name=name).first() or layout_create(
                brand=brand,
                name=name,
                width=w,
                height=h,
                layers=layout_layers(w, h, font),
                sample_values={"product": "Single-origin espresso", "brand": brand.name},
            )
            fmt, _ = ChannelFormat.objects.get_or_create(
                name=name, defaults={"width": w, "height": h, "file_format": "WEBP"}
            )
            FormatLayout.objects.get_or_create(
                brand=brand, channel_format=fmt, campaign=None, defaults={"layout": layout}
            )

    def _start_cluster(self, workers: int, env: dict) -> subprocess.Popen:
        env = {**os.environ, **env, "BRANDFORGE_WORKERS": str(workers)}
        self.stdout.write(f"Starting qcluster with {workers} workers…")
        return subprocess.Popen(  # noqa: S603 (our own manage.py, no shell)
            [sys.executable, _manage_py(), "qcluster"], env=env, start_new_session=True
        )

    def _stop_cluster(self, cluster: subprocess.Popen) -> None:
        # SIGTERM to the cluster's main process only: its sentinel then drains and stops the
        # workers in order (signalling the whole group makes every child stop on its own).
        if cluster.poll() is None:
            cluster.send_signal(signal.SIGTERM)
            try:
                cluster.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(cluster.pid, signal.SIGKILL)
                cluster.wait()

    def _wait(self, campaign: Campaign, *, until_in_review: bool, timeout: int, started: float):
        waiting_for = (
            [Brief.Status.PENDING, Brief.Status.GENERATING]
            if until_in_review
            else [Brief.Status.PENDING, Brief.Status.GENERATING, Brief.Status.IN_REVIEW]
        )
        total = campaign.briefs.count()
        last = None
        while True:
            open_briefs = campaign.briefs.filter(status__in=waiting_for).count()
            if open_briefs != last:
                stage = "generated" if until_in_review else "published"
                self.stdout.write(
                    f"  {time.monotonic() - started:6.1f}s  {total - open_briefs}/{total} {stage}"
                )
                last = open_briefs
            if not open_briefs:
                return
            if time.monotonic() - started > timeout:
                raise CommandError(f"Workers did not finish within {timeout}s.")
            time.sleep(0.5)

    def _decide(self, campaign: Campaign, user) -> tuple[int, int]:
        approved = rejected = 0
        for item in ReviewItem.objects.filter(
            campaign=campaign, status=ReviewItem.Status.PENDING
        ).select_related("asset", "brief"):
            if item.flagged:
                reason = "Demo: the quality gate flagged " + ", ".join(item.gate_summary["failed"])
                review_item_reject(item=item, actor=user, reason=reason)
                rejected += 1
            else:
                review_item_approve(item=item, actor=user, reason="Demo: approved by the demo run")
                approved += 1
        return approved, rejected

    def _summary(self, campaign: Campaign, user, password: str, elapsed: float) -> None:
        published = Rendition.objects.filter(
            asset__jobs__campaign=campaign, published_at__isnull=False
        )
        publish = storages["publish"]
        location = getattr(publish, "location", "") or getattr(publish, "bucket_name", "")
        jobs = GenerationJob.objects.filter(campaign=campaign)
        campaign.refresh_from_db()
        lines = [
            "",
            f"Campaign     {campaign.name} — {campaign.get_status_display()}",
            f"Briefs       {campaign.briefs.count()}",
            f"Jobs         {jobs.filter(status='succeeded').count()} succeeded, "
            f"{jobs.exclude(status='succeeded').count()} other",
            f"Assets       {Asset.objects.filter(brand=campaign.brand).count()} in the brand "
            f"(masters and each refinement step)",
            f"Renditions   {Rendition.objects.filter(asset__jobs__campaign=campaign).count()}, "
            f"published {published.count()}",
            f"Wall time    {elapsed:.1f}s",
            f"Files        {location}",
            "Admin        make serve, then http://127.0.0.1:8000/admin/",
            "Review queue http://127.0.0.1:8000/admin/review/reviewitem/queue/ (j/k, a, r, g, e)",
            f"Login        {user.username} / {password}",
            f"Roles        {', '.join(ROLE_USERS)} (same password): "
            + ", ".join(ROLE_USERS.values()),
        ]
        self.stdout.write("\n".join(lines))
        for rendition in published.order_by("published_name")[:3]:
            self.stdout.write(f"  e.g. {rendition.published_name}")
