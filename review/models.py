"""Provides quality gates, automated scores, review items and the append-only audit trail."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from assets.models import Asset, Brand
from brandforge.models import TimeStampedModel
from campaigns.models import Brief, Campaign


class QualityGate(TimeStampedModel):
    """Which scorers must pass, per brand, optionally overridden for one campaign."""

    class OnFail(models.TextChoices):
        FLAG = "flag", "Flag for the reviewer"
        REJECT = "reject", "Reject automatically"

    name = models.CharField(max_length=120)
    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="quality_gates")
    campaign = models.OneToOneField(
        Campaign, null=True, blank=True, on_delete=models.CASCADE, related_name="quality_gate"
    )
    thresholds = models.JSONField(
        default=dict,
        blank=True,
        help_text='Scorer name → threshold; only these scorers decide, e.g. {"sharpness": 80}.',
    )
    on_fail = models.CharField(max_length=8, choices=OnFail.choices, default=OnFail.FLAG)

    class Meta:
        ordering = ["brand", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["brand"],
                condition=Q(campaign__isnull=True),
                name="gate_one_default_per_brand",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from review.scoring.registry import scorer_names

        if not isinstance(self.thresholds, dict):
            raise ValidationError({"thresholds": "A JSON object of scorer name → number."})
        known = set(scorer_names())
        for name, value in self.thresholds.items():
            if name not in known:
                raise ValidationError(
                    {"thresholds": f"Unknown scorer {name!r}; known: {', '.join(sorted(known))}."}
                )
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ValidationError({"thresholds": f"The threshold of {name} must be a number."})
        if self.campaign_id and self.brand_id and self.campaign.brand_id != self.brand_id:
            raise ValidationError({"campaign": "This campaign belongs to another brand."})


class Score(TimeStampedModel):
    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="scores")
    subject = models.CharField(max_length=200, help_text="'master' or the rendition's format.")
    scorer = models.CharField(max_length=60)
    scorer_version = models.PositiveIntegerField()
    value = models.FloatField()
    passed = models.BooleanField()
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["asset", "subject", "scorer"]
        constraints = [
            models.UniqueConstraint(
                fields=["asset", "subject", "scorer", "scorer_version"], name="score_unique"
            )
        ]

    def __str__(self) -> str:
        return (
            f"{self.scorer}@{self.subject}={self.value:.3g} ({'pass' if self.passed else 'fail'})"
        )


class ReviewItem(TimeStampedModel):
    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        REJECTED = "rejected"
        PUBLISHED = "published"

    DECIDED = (Status.APPROVED, Status.REJECTED, Status.PUBLISHED)

    asset = models.OneToOneField(Asset, on_delete=models.CASCADE, related_name="review_item")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="review_items")
    brief = models.ForeignKey(Brief, on_delete=models.CASCADE, related_name="review_items")
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    flagged = models.BooleanField(default=False, help_text="A gate scorer failed.")
    gate_summary = models.JSONField(default=dict, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True, max_length=1000)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["campaign", "status"])]

    def __str__(self) -> str:
        return f"Review of {self.asset}"


class AuditEvent(models.Model):
    """One transition of an asset or review item: who, from what, to what, why. Append-only."""

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
    review_item = models.ForeignKey(
        ReviewItem, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16, blank=True)
    reason = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action}: {self.from_status or '∅'} → {self.to_status}"
