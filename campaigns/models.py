"""Provides prompt templates with immutable versions, channel formats, campaigns and briefs."""

import hashlib
import json
import re

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from assets.models import Brand, Layout, LoraProfile, SeedProfile
from brandforge.models import PublicIdModel, TimeStampedModel
from campaigns import prompting

LOCALE = re.compile(r"^[a-z]{2,3}(-[A-Z]{2})?$")


def validate_locales(value: object) -> None:
    if not isinstance(value, list) or not value:
        raise ValidationError('List at least one locale, e.g. ["en-GB", "de-DE"].')
    for locale in value:
        if not isinstance(locale, str) or not LOCALE.match(locale):
            raise ValidationError(
                "%(locale)s is not a locale code like en, en-GB or de-DE.",
                code="invalid_locale",
                params={"locale": repr(locale)},
            )
    if len(set(value)) != len(value):
        raise ValidationError("Each locale may be listed once.")


class PromptTemplate(PublicIdModel):
    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="prompt_templates")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["brand", "name"]
        constraints = [
            models.UniqueConstraint(fields=["brand", "name"], name="template_unique_name_per_brand")
        ]

    def __str__(self) -> str:
        return self.name


class PromptTemplateVersion(TimeStampedModel):
    """One immutable wording of a template; briefs and recipes point at a version, never a draft."""

    template = models.ForeignKey(PromptTemplate, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField(editable=False)
    body = models.TextField(
        max_length=prompting.MAX_BODY,
        help_text="Prompt with {{slots}}, e.g. 'A {{product}} on a table, {{mood}} light'. "
        "Built-in slots: {{brand}}, {{locale}}.",
    )
    variables = models.JSONField(
        default=list, blank=True, help_text='Names the briefs fill in, e.g. ["product", "mood"].'
    )
    negative_prompt = models.TextField(blank=True, max_length=2000)
    content_hash = models.CharField(max_length=64, editable=False)

    class Meta:
        ordering = ["template", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["template", "number"], name="template_version_number"),
            models.UniqueConstraint(
                fields=["template", "content_hash"], name="template_version_unique_content"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.template.name} v{self.number}"

    def clean(self) -> None:
        if not isinstance(self.variables, list):
            raise ValidationError({"variables": 'A list of names, e.g. ["product"].'})
        try:
            prompting.validate_template(self.body, self.variables)
        except ValidationError as exc:
            raise ValidationError({"body": exc.messages}) from exc

    def compute_hash(self) -> str:
        canonical = json.dumps(
            {
                "body": self.body,
                "variables": sorted(self.variables),
                "negative": self.negative_prompt,
            },
            sort_keys=True,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


class ChannelFormat(TimeStampedModel):
    class FileFormat(models.TextChoices):
        PNG = "PNG"
        JPEG = "JPEG"
        WEBP = "WEBP", "WebP"
        AVIF = "AVIF"

    name = models.CharField(max_length=60, unique=True, help_text="e.g. instagram-story")
    width = models.PositiveIntegerField(
        validators=[MinValueValidator(16), MaxValueValidator(12000)]
    )
    height = models.PositiveIntegerField(
        validators=[MinValueValidator(16), MaxValueValidator(12000)]
    )
    file_format = models.CharField(
        max_length=4, choices=FileFormat.choices, default=FileFormat.WEBP
    )
    quality = models.PositiveSmallIntegerField(
        default=85, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    dpi = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Print formats only, written into the file."
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.width}×{self.height} {self.file_format})"

    def clean(self) -> None:
        if self.dpi and self.file_format not in (self.FileFormat.PNG, self.FileFormat.JPEG):
            raise ValidationError(
                {"dpi": "Only PNG and JPEG files carry a DPI; use one of them for print."}
            )

    @property
    def spec(self) -> str:
        """Everything that shapes a rendition's bytes; a rendition is unique per (asset, spec)."""
        dpi = f".{self.dpi}dpi" if self.dpi else ""
        return f"{self.width}x{self.height}.{self.file_format.lower()}.q{self.quality}{dpi}"


class FormatLayout(TimeStampedModel):
    """The layout a brand's renditions of one channel format get; a campaign may pick its own.

    A campaign's renditions use the campaign's choice for the format, else the brand's, else no
    layout (the picture alone, reframed to the format).
    """

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="format_layouts")
    channel_format = models.ForeignKey(
        "ChannelFormat", on_delete=models.CASCADE, related_name="layouts"
    )
    campaign = models.ForeignKey(
        "Campaign",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="format_layouts",
        help_text="Empty: every campaign of the brand.",
    )
    layout = models.ForeignKey(Layout, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["brand", "channel_format"]
        constraints = [
            models.UniqueConstraint(
                fields=["brand", "channel_format"],
                condition=Q(campaign=None),
                name="format_layout_one_per_brand",
            ),
            models.UniqueConstraint(
                fields=["campaign", "channel_format"], name="format_layout_one_per_campaign"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel_format.name} → {self.layout.name}"

    def clean(self) -> None:
        errors = {}
        if self.brand_id and self.layout_id and self.layout.brand_id != self.brand_id:
            errors["layout"] = "This layout belongs to another brand."
        if self.brand_id and self.campaign_id and self.campaign.brand_id != self.brand_id:
            errors["campaign"] = "This campaign belongs to another brand."
        if errors:
            raise ValidationError(errors)


class Campaign(PublicIdModel):
    class Status(models.TextChoices):
        DRAFT = "draft"
        RUNNING = "running"
        PAUSED = "paused"
        COMPLETED = "completed"

    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="campaigns")
    name = models.CharField(max_length=120)
    formats = models.ManyToManyField(ChannelFormat, related_name="campaigns", blank=True)
    locales = models.JSONField(default=list, validators=[validate_locales])
    seed_profile = models.ForeignKey(
        SeedProfile, null=True, blank=True, on_delete=models.PROTECT, related_name="campaigns"
    )
    loras = models.ManyToManyField(LoraProfile, related_name="campaigns", blank=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True
    )
    status_reason = models.CharField(max_length=300, blank=True)
    budget = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Spending cap; no job is submitted once spend plus commitments would pass it.",
    )
    launched_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["brand", "name"], name="campaign_unique_name_per_brand")
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.seed_profile_id and self.brand_id and self.seed_profile.brand_id != self.brand_id:
            raise ValidationError({"seed_profile": "This seed profile belongs to another brand."})


class Brief(PublicIdModel):
    class Status(models.TextChoices):
        PENDING = "pending"
        GENERATING = "generating"
        IN_REVIEW = "in_review", "In review"
        PUBLISHED = "published"
        REJECTED = "rejected"
        FAILED = "failed"

    DONE = (Status.PUBLISHED, Status.REJECTED, Status.FAILED)

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="briefs")
    template_version = models.ForeignKey(
        PromptTemplateVersion, on_delete=models.PROTECT, related_name="briefs"
    )
    variables = models.JSONField(default=dict, blank=True)
    locale = models.CharField(max_length=10)
    external_ref = models.CharField(
        max_length=120, blank=True, help_text="The brief's id in the system it came from."
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    # Hash of what the brief asks for, so the same brief submitted twice is not made twice.
    fingerprint = models.CharField(max_length=64, editable=False)

    class Meta:
        ordering = ["campaign", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "fingerprint"], name="brief_unique_content"
            ),
            models.UniqueConstraint(
                fields=["campaign", "external_ref"],
                condition=~Q(external_ref=""),
                name="brief_unique_external_ref",
            ),
        ]

    def __str__(self) -> str:
        return self.external_ref or f"Brief {self.pk}"

    def clean(self) -> None:
        errors: dict[str, list] = {}
        if self.campaign_id and self.locale and self.locale not in self.campaign.locales:
            errors["locale"] = [
                f"{self.locale} is not one of the campaign's locales "
                f"({', '.join(self.campaign.locales)})."
            ]
        if self.template_version_id:
            version = self.template_version
            if self.campaign_id and version.template.brand_id != self.campaign.brand_id:
                errors["template_version"] = ["This template belongs to another brand."]
            try:
                prompting.validate_values(version.variables, self.variables)
            except ValidationError as exc:
                errors["variables"] = exc.messages
        if errors:
            raise ValidationError(errors)
        if self.template_version_id:
            self.fingerprint = self.compute_fingerprint()
            duplicate = Brief.objects.filter(
                campaign_id=self.campaign_id, fingerprint=self.fingerprint
            ).exclude(pk=self.pk)
            if duplicate.exists():
                raise ValidationError(
                    "The campaign already has this brief (same template, variables, locale)."
                )

    def compute_fingerprint(self) -> str:
        canonical = json.dumps(
            [self.template_version.content_hash, self.variables, self.locale], sort_keys=True
        )
        return hashlib.sha256(canonical.encode()).hexdigest()
