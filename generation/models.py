"""Provides routing rules and the durable GenerationJob that turns one brief into an asset."""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from assets.models import Asset
from brandforge.models import PublicIdModel, TimeStampedModel
from campaigns.models import Brief, Campaign


class RoutingRule(TimeStampedModel):
    """Which provider and model make an image; the enabled rule with the lowest priority wins."""

    name = models.CharField(max_length=120, unique=True)
    priority = models.IntegerField(default=100, help_text="Lower runs first.")
    enabled = models.BooleanField(default=True)
    provider = models.CharField(max_length=40, default="local")
    model = models.CharField(max_length=200, blank=True, help_text="Empty: the provider's default.")
    params = models.JSONField(default=dict, blank=True)
    price_per_image = models.DecimalField(
        max_digits=10, decimal_places=4, default=Decimal("0"), validators=[MinValueValidator(0)]
    )

    class Meta:
        ordering = ["priority", "name"]

    def __str__(self) -> str:
        return f"{self.name} → {self.provider}"

    def clean(self) -> None:
        from generation.providers.registry import provider_names

        if self.provider not in provider_names():
            raise ValidationError(
                {"provider": f"Unknown provider; known: {', '.join(provider_names())}."}
            )
        if not isinstance(self.params, dict):
            raise ValidationError({"params": "Params are a JSON object."})


class GenerationJob(PublicIdModel):
    """The source of truth for one generation; the queue only carries its id.

    Every change of status is a conditional update, and the attempt counter is written before
    each attempt, so a task delivered twice, or a worker killed mid-job, does no harm.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        SUBMITTING = "submitting"
        SUBMITTED = "submitted"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed", "Failed (will retry)"
        DEAD = "dead"
        CANCELLED = "cancelled"

    TERMINAL = (Status.SUCCEEDED, Status.DEAD, Status.CANCELLED)

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="jobs")
    brief = models.ForeignKey(Brief, on_delete=models.CASCADE, related_name="jobs")
    variant = models.PositiveIntegerField(
        default=0, help_text="0 first take, n the n-th regeneration."
    )
    idempotency_key = models.CharField(max_length=200, unique=True)
    rule = models.ForeignKey(
        RoutingRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=5)
    lease_expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    provider = models.CharField(max_length=40, blank=True)
    model = models.CharField(max_length=200, blank=True)
    seed = models.BigIntegerField(null=True, blank=True)
    provider_request_id = models.CharField(max_length=200, blank=True)
    cost = models.DecimalField(max_digits=10, decimal_places=4, default=Decimal("0"))
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    error_history = models.JSONField(default=list, blank=True)
    master = models.ForeignKey(
        Asset, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    output = models.ForeignKey(
        Asset, null=True, blank=True, on_delete=models.PROTECT, related_name="jobs"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["campaign", "status"])]
        constraints = [
            models.UniqueConstraint(fields=["brief", "variant"], name="job_unique_brief_variant"),
            models.UniqueConstraint(
                fields=["provider", "provider_request_id"],
                condition=~Q(provider_request_id=""),
                name="job_unique_provider_request",
            ),
        ]

    def __str__(self) -> str:
        return f"Job {self.uid} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL
