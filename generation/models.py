"""Provides routing rules and the durable GenerationJob that turns one brief into an asset."""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from assets.models import Asset, Brand
from brandforge.models import PublicIdModel, TimeStampedModel
from campaigns.models import Brief, Campaign


class RoutingRule(TimeStampedModel):
    """Which provider and model make an image.

    Enabled rules are tried in priority order (lower first); the first whose conditions all
    hold wins. An empty condition matches everything. When the chosen provider's circuit is
    open, the job moves to the rule's fallback.
    """

    name = models.CharField(max_length=120, unique=True)
    priority = models.IntegerField(default=100, help_text="Lower runs first.")
    enabled = models.BooleanField(default=True)
    brand = models.ForeignKey(
        Brand, null=True, blank=True, on_delete=models.CASCADE, related_name="routing_rules"
    )
    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.CASCADE, related_name="routing_rules"
    )
    styles = models.JSONField(
        default=list, blank=True, help_text='Brief "style" values this rule serves, e.g. ["photo"].'
    )
    locales = models.JSONField(default=list, blank=True, help_text='e.g. ["de-DE"]; empty: any.')
    min_resolution = models.PositiveIntegerField(
        default=0,
        help_text="Only when the campaign's largest channel format side is at least this (px).",
    )
    provider = models.CharField(max_length=40, default="local")
    model = models.CharField(max_length=200, blank=True, help_text="Empty: the provider's default.")
    params = models.JSONField(default=dict, blank=True)
    price_per_image = models.DecimalField(
        max_digits=10, decimal_places=4, default=Decimal("0"), validators=[MinValueValidator(0)]
    )
    fallback = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Used while this rule's provider is failing (circuit open).",
    )
    refinement_chain = models.JSONField(
        default=list,
        blank=True,
        help_text='Steps after generation: [{"step": ..., "params": {...}}]',
    )

    class Meta:
        ordering = ["priority", "name"]

    def __str__(self) -> str:
        return f"{self.name} → {self.provider}"

    def clean(self) -> None:
        from generation.pipeline.registry import validate_chain
        from generation.providers.registry import provider_names

        errors = {}
        if self.provider not in provider_names():
            errors["provider"] = f"Unknown provider; known: {', '.join(provider_names())}."
        if not isinstance(self.params, dict):
            errors["params"] = "Params are a JSON object."
        for field in ("styles", "locales"):
            value = getattr(self, field)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                errors[field] = "A list of strings."
        if self.fallback_id and self.fallback_id == self.pk:
            errors["fallback"] = "A rule cannot fall back to itself."
        try:
            validate_chain(self.refinement_chain)
        except ValidationError as exc:
            errors["refinement_chain"] = exc.messages
        if errors:
            raise ValidationError(errors)


class RefinementChain(TimeStampedModel):
    """The steps after generation for a whole brand, or for one of its campaigns.

    Which chain a job runs: its campaign's, else its routing rule's, else its brand's, else the
    brand's watermark (when the brand has a logo). An empty chain means no refinement.
    """

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="refinement_chains")
    campaign = models.OneToOneField(
        Campaign,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="refinement_chain",
        help_text="Empty: the brand's default chain.",
    )
    steps = models.JSONField(
        default=list,
        blank=True,
        help_text='[{"step": "reframe", "params": {"aspect": "4:5"}}, {"step": "film_grain"}]',
    )

    class Meta:
        ordering = ["brand__name", "campaign__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["brand"], condition=Q(campaign=None), name="chain_one_default_per_brand"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.brand} · {self.campaign or 'brand default'}"

    def clean(self) -> None:
        from generation.pipeline.registry import validate_chain

        errors = {}
        if self.campaign_id and self.brand_id and self.campaign.brand_id != self.brand_id:
            errors["campaign"] = "The campaign belongs to another brand."
        try:
            validate_chain(self.steps)
        except ValidationError as exc:
            errors["steps"] = exc.messages
        if errors:
            raise ValidationError(errors)


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
        WAITING = "waiting", "Waiting on a refinement job"
        SUCCEEDED = "succeeded"
        FAILED = "failed", "Failed (will retry)"
        DEAD = "dead"
        CANCELLED = "cancelled"

    class Kind(models.TextChoices):
        GENERATE = "generate"
        UPSCALE = "upscale"
        FACE_RESTORE = "face_restore", "Face restore"
        OUTPAINT = "outpaint"

    TERMINAL = (Status.SUCCEEDED, Status.DEAD, Status.CANCELLED)

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="jobs")
    brief = models.ForeignKey(Brief, on_delete=models.CASCADE, related_name="jobs")
    variant = models.PositiveIntegerField(
        default=0, help_text="0 first take, n the n-th regeneration."
    )
    # A regeneration: the prompt an editor wrote instead of the template's (blank: the
    # template's), and the earlier attempts at this brief, oldest first, for the recipe.
    prompt_override = models.TextField(blank=True, max_length=4000)
    history = models.JSONField(default=list, blank=True)
    idempotency_key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.GENERATE)
    # A remote refinement step runs as a job of its own: it refines `source` for the `parent`
    # job, whose chain waits for it; `step` is the chain entry plus the key of the asset it makes.
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="step_jobs"
    )
    source = models.ForeignKey(
        Asset, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    step = models.JSONField(default=dict, blank=True)
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
    provider_urls = models.JSONField(default=dict, blank=True)
    sent = models.JSONField(default=dict, blank=True, help_text="Exactly what was submitted.")
    route_reasons = models.JSONField(
        default=list,
        blank=True,
        help_text="Which routing rule matched, and why the others did not.",
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
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
            models.UniqueConstraint(
                fields=["brief", "variant"],
                condition=Q(kind="generate"),
                name="job_unique_brief_variant",
            ),
            models.CheckConstraint(
                condition=Q(kind="generate", parent__isnull=True)
                | (~Q(kind="generate") & Q(parent__isnull=False, source__isnull=False)),
                name="job_step_has_parent_and_source",
            ),
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


class ProviderWebhookEvent(models.Model):
    """One inbound provider webhook, stored once: a second delivery of it is a no-op."""

    provider = models.CharField(max_length=40)
    delivery_id = models.CharField(max_length=300)
    request_id = models.CharField(max_length=200, db_index=True)
    job = models.ForeignKey(
        GenerationJob, null=True, blank=True, on_delete=models.CASCADE, related_name="webhooks"
    )
    state = models.CharField(max_length=16)
    outcome = models.JSONField(default=dict)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "delivery_id"], name="webhook_once")
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.delivery_id}"


class ProviderCircuit(models.Model):
    """The circuit breaker of one provider, shared by every worker through the database."""

    class State(models.TextChoices):
        CLOSED = "closed"
        OPEN = "open"
        HALF_OPEN = "half_open", "Half-open (probing)"

    provider = models.CharField(max_length=40, unique=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.CLOSED)
    failures = models.PositiveIntegerField(default=0, help_text="Consecutive failures.")
    opened_at = models.DateTimeField(null=True, blank=True)
    open_until = models.DateTimeField(null=True, blank=True)
    probe_until = models.DateTimeField(
        null=True, blank=True, help_text="A probe is in flight until then."
    )
    last_error = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider"]

    def __str__(self) -> str:
        return f"{self.provider}: {self.state}"


class CostEntry(models.Model):
    """The cost ledger: an estimate when a job is submitted, the actual cost when it completes."""

    class Kind(models.TextChoices):
        ESTIMATE = "estimate"
        ACTUAL = "actual"

    job = models.ForeignKey(GenerationJob, on_delete=models.CASCADE, related_name="costs")
    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="costs")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="costs")
    provider = models.CharField(max_length=40)
    model = models.CharField(max_length=200, blank=True)
    attempt = models.PositiveIntegerField()
    kind = models.CharField(max_length=8, choices=Kind.choices)
    amount = models.DecimalField(max_digits=10, decimal_places=4)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["job", "attempt", "kind"], name="cost_once_per_attempt")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} ({self.provider})"


class BriefRoute(Brief):
    """A brief seen from routing: the admin shows which rule serves it and why."""

    class Meta:
        proxy = True
        verbose_name = "brief routing"
        verbose_name_plural = "brief routing"
