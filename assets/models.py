"""Provides the brand kit (Brand and its profiles and reference images) and the asset store."""

import re
from pathlib import PurePath

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import FileExtensionValidator, MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from assets.layouts import validate_layers
from brandforge.models import PublicIdModel, TimeStampedModel
from brandforge.slots import SLOT_NAME

HEX_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")


def validate_palette(value: object) -> None:
    if not isinstance(value, list) or not value:
        raise ValidationError("The palette is a list of at least one colour, e.g. #0B3D91.")
    if len(value) > 16:
        raise ValidationError("A palette has at most 16 colours.")
    for colour in value:
        if not isinstance(colour, str) or not HEX_COLOUR.match(colour):
            raise ValidationError(
                "%(colour)s is not a hex colour; write colours as #RRGGBB, e.g. #0B3D91.",
                code="invalid_colour",
                params={"colour": repr(colour)},
            )


def validate_string_list(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError("Expected a list of strings.")


def brand_upload_to(instance: "BrandOwned", filename: str) -> str:
    # The client's file name never reaches storage: names come from ids (see reliability §5.2).
    return f"brands/{instance.brand_key()}/{instance._meta.model_name}/{instance.uid}.png"


def font_upload_to(instance: "BrandFont", filename: str) -> str:
    # Only the extension survives, and only one the upload form itself chose.
    ext = PurePath(filename).suffix.lower().lstrip(".")
    return (
        f"brands/{instance.brand_key()}/brandfont/{instance.uid}.{ext if ext == 'otf' else 'ttf'}"
    )


def validate_sample_values(value: object) -> None:
    if not isinstance(value, dict):
        raise ValidationError('Sample values are an object of name → text, e.g. {"headline": "…"}.')
    for name, text in value.items():
        if not isinstance(name, str) or not SLOT_NAME.fullmatch(name) or not isinstance(text, str):
            raise ValidationError(
                "Sample value %(name)s: names are lowercase letters, digits and _, values text.",
                code="invalid_sample",
                params={"name": repr(name)},
            )


class BrandOwned(PublicIdModel):
    """A row that belongs to one brand, which is the tenant boundary."""

    class Meta:
        abstract = True

    def brand_key(self) -> str:
        return str(self.brand.uid)


class Anchor(models.TextChoices):
    TOP_LEFT = "top-left"
    TOP = "top"
    TOP_RIGHT = "top-right"
    LEFT = "left"
    CENTER = "center"
    RIGHT = "right"
    BOTTOM_LEFT = "bottom-left"
    BOTTOM = "bottom"
    BOTTOM_RIGHT = "bottom-right"


class Brand(PublicIdModel):
    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=60, unique=True)
    palette = models.JSONField(
        default=list,
        validators=[validate_palette],
        help_text='Hex colours, main colour first, e.g. ["#0B3D91", "#FC3D21", "#FFFFFF"].',
    )
    fonts = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_string_list],
        help_text="Font families in order of preference.",
    )
    logo = models.ImageField(upload_to=brand_upload_to, blank=True)
    watermark_anchor = models.CharField(
        max_length=16, choices=Anchor.choices, default=Anchor.BOTTOM_RIGHT
    )
    watermark_margin = models.FloatField(
        default=0.04,
        validators=[MinValueValidator(0.0), MaxValueValidator(0.25)],
        help_text="Gap to the edges, as a fraction of the shorter side.",
    )
    watermark_opacity = models.FloatField(
        default=0.8, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    watermark_scale = models.FloatField(
        default=0.18,
        validators=[MinValueValidator(0.02), MaxValueValidator(0.5)],
        help_text="Logo width as a fraction of the image width.",
    )
    style_tokens = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_string_list],
        help_text='Appended to every prompt, e.g. ["flat pastel lighting", "minimal"].',
    )
    negative_prompt = models.TextField(blank=True, max_length=2000)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def brand_key(self) -> str:
        return str(self.uid)

    @property
    def brand(self) -> "Brand":
        return self

    def watermark_params(self) -> dict:
        return {
            "anchor": self.watermark_anchor,
            "margin": self.watermark_margin,
            "opacity": self.watermark_opacity,
            "scale": self.watermark_scale,
        }


class LoraProfile(BrandOwned):
    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="lora_profiles")
    name = models.CharField(max_length=120)
    path = models.CharField(max_length=500, help_text="Weights URL or model path at the provider.")
    scale = models.FloatField(
        default=1.0, validators=[MinValueValidator(0.0), MaxValueValidator(4.0)]
    )
    trigger_words = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["brand", "name"]
        constraints = [
            models.UniqueConstraint(fields=["brand", "name"], name="lora_unique_name_per_brand")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.scale:g})"


class SeedProfile(BrandOwned):
    class Strategy(models.TextChoices):
        FIXED = "fixed", "Same seed for every brief"
        PER_BRIEF = "per_brief", "Seed derived from the base seed and the brief"

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="seed_profiles")
    name = models.CharField(max_length=120)
    base_seed = models.BigIntegerField(
        default=0, validators=[MinValueValidator(0), MaxValueValidator(2**32 - 1)]
    )
    strategy = models.CharField(max_length=16, choices=Strategy.choices, default=Strategy.PER_BRIEF)

    class Meta:
        ordering = ["brand", "name"]
        constraints = [
            models.UniqueConstraint(fields=["brand", "name"], name="seed_unique_name_per_brand")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.base_seed}, {self.get_strategy_display()})"


class ControlReference(BrandOwned):
    class Kind(models.TextChoices):
        CANNY = "canny"
        DEPTH = "depth"
        POSE = "pose"
        STYLE = "style"

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="control_references")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    image = models.ImageField(upload_to=brand_upload_to)
    strength = models.FloatField(
        default=0.6, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )

    class Meta:
        ordering = ["brand", "name"]
        constraints = [
            models.UniqueConstraint(fields=["brand", "name"], name="control_unique_name_per_brand")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class ReferenceImage(BrandOwned):
    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="reference_images")
    image = models.ImageField(upload_to=brand_upload_to)
    caption = models.CharField(max_length=200, blank=True)
    # Perceptual hash and colour histogram, computed once by the review stage so that brand
    # consistency scoring does not read every reference image for every asset.
    fingerprint = models.JSONField(default=dict, blank=True, editable=False)

    class Meta:
        ordering = ["brand", "-created_at"]

    def __str__(self) -> str:
        return self.caption or f"Reference {self.uid}"


class BrandFont(BrandOwned):
    """A font file of the brand; layouts name it by ``family``."""

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="brand_fonts")
    family = models.CharField(
        max_length=100, help_text='The name layouts use for it, e.g. "Inter Bold".'
    )
    file = models.FileField(
        upload_to=font_upload_to,
        max_length=300,
        validators=[FileExtensionValidator(["ttf", "otf"])],
        help_text="TrueType or OpenType font (.ttf, .otf).",
    )

    class Meta:
        ordering = ["brand", "family"]
        constraints = [
            models.UniqueConstraint(fields=["brand", "family"], name="font_unique_family_per_brand")
        ]

    def __str__(self) -> str:
        return self.family


class Layout(BrandOwned):
    """Text and logo overlays on a design canvas, as data (see assets/layouts.py for the layers)."""

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="layouts")
    name = models.CharField(max_length=120)
    width = models.PositiveIntegerField(
        validators=[MinValueValidator(16), MaxValueValidator(12000)],
        help_text="Design canvas width in px; boxes are given on this canvas.",
    )
    height = models.PositiveIntegerField(
        validators=[MinValueValidator(16), MaxValueValidator(12000)],
        help_text="Design canvas height in px.",
    )
    layers = models.JSONField(default=list, help_text="Layers, painted in order (bottom first).")
    sample_values = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_sample_values],
        help_text='Values for the preview, e.g. {"headline": "Summer sale", "cta": "Shop now"}.',
    )

    class Meta:
        ordering = ["brand", "name"]
        constraints = [
            models.UniqueConstraint(fields=["brand", "name"], name="layout_unique_name_per_brand")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.width}×{self.height})"

    def clean(self) -> None:
        super().clean()
        if not self.brand_id or not self.width or not self.height:
            return  # the field errors already say what is missing
        families = set(
            BrandFont.objects.filter(brand_id=self.brand_id).values_list("family", flat=True)
        )
        try:
            validate_layers(
                self.layers,
                width=self.width,
                height=self.height,
                fonts=families,
                palette_size=len(self.brand.palette),
            )
        except ValidationError as exc:
            raise ValidationError({"layers": exc.messages}) from exc


class Asset(BrandOwned):
    """One image in the lineage tree: a generated master or the output of one refinement step."""

    class Status(models.TextChoices):
        GENERATED = "generated"
        INTERMEDIATE = "intermediate", "Intermediate (refined further)"
        RENDERED = "rendered", "Renditions built"
        IN_REVIEW = "in_review", "In review"
        APPROVED = "approved"
        REJECTED = "rejected"
        PUBLISHED = "published"

    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="assets")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    # Names the work that made this asset (a job's output, or a step applied to a parent), so a
    # second delivery of the same task finds the asset instead of making another.
    key = models.CharField(max_length=200, unique=True)
    file = models.FileField(max_length=300)
    thumbnail = models.FileField(max_length=300, blank=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    file_format = models.CharField(max_length=8)
    size_bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.GENERATED, db_index=True
    )
    step = models.CharField(max_length=60, blank=True, help_text="Refinement step that made it.")
    recipe = models.JSONField(default=dict)
    # Set by hand in the admin; image layers and reframing crop around it (the centre when unset).
    focal_x = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Focal point set by hand: 0 = left edge, 1 = right edge.",
    )
    focal_y = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Focal point set by hand: 0 = top edge, 1 = bottom edge.",
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["brand", "status"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(parent__isnull=True) | ~Q(step=""), name="asset_child_names_its_step"
            ),
            models.CheckConstraint(
                condition=Q(focal_x__isnull=True, focal_y__isnull=True)
                # NULL passes a CHECK, so the coordinates are tested for NULL explicitly.
                | Q(
                    focal_x__isnull=False,
                    focal_y__isnull=False,
                    focal_x__gte=0.0,
                    focal_x__lte=1.0,
                    focal_y__gte=0.0,
                    focal_y__lte=1.0,
                ),
                name="asset_focal_point_in_frame",
                violation_error_message="Set both focal_x and focal_y (from 0 to 1), or neither.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.brand.slug}/{self.uid}"

    @property
    def focal_point(self) -> tuple[float, float] | None:
        """The hand-set focal point, or None: callers then find one or use the centre."""
        if self.focal_x is None or self.focal_y is None:
            return None
        return (self.focal_x, self.focal_y)


class Rendition(TimeStampedModel):
    """The asset rendered for one channel format; built once per (asset, spec)."""

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="renditions")
    spec = models.CharField(
        max_length=200, help_text="Everything that shapes the bytes, e.g. 1080x1920.webp.q85."
    )
    format_name = models.CharField(max_length=60)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    file_format = models.CharField(max_length=8)
    file = models.FileField(max_length=300)
    # A small WebP for review screens, so a page of cards does not load full-size renditions.
    thumbnail = models.FileField(max_length=300, blank=True)
    size_bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    published_name = models.CharField(max_length=400, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["asset", "format_name"]
        constraints = [
            models.UniqueConstraint(fields=["asset", "spec"], name="rendition_unique_per_spec")
        ]

    def __str__(self) -> str:
        return f"{self.asset} · {self.format_name}"


class AuditEvent(models.Model):
    """One transition of an asset or a review item: who, from what, to what, why. Append-only.

    It lives with the assets because every asset transition goes through
    ``assets.services.asset_set_status``, which writes the event in the same transaction as the
    conditional update: one transition, one event. Review items (a higher app) are named by id.
    """

    class Source(models.TextChoices):
        ADMIN = "admin"
        API = "api"
        WORKER = "worker"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source = models.CharField(max_length=8, choices=Source.choices)
    action = models.CharField(max_length=40)
    asset = models.ForeignKey(
        Asset, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    review_item_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16, blank=True)
    reason = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("export_auditevent", "Can export the audit trail as CSV")]

    def __str__(self) -> str:
        return f"{self.action}: {self.from_status or '∅'} → {self.to_status}"
