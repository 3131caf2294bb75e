"""Provides quality gates, automated scores and review items (the audit trail is in assets)."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q

from assets.models import Asset, Brand
from brandforge.models import TimeStampedModel
from campaigns.models import Brief, Campaign


class QualityGate(TimeStampedModel):
    """Which scorers decide, and what a failure does, per brand; a campaign may have its own."""

    class Action(models.TextChoices):
        REJECT = "reject", "Reject (or regenerate while attempts remain)"
        FLAG = "flag", "Flag for the reviewer"
        PASS = "pass", "Record only"

    name = models.CharField(max_length=120)
    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="quality_gates")
    campaign = models.OneToOneField(
        Campaign, null=True, blank=True, on_delete=models.CASCADE, related_name="quality_gate"
    )
    rules = models.JSONField(
        default=dict,
        blank=True,
        help_text='Scorer → {"threshold": number or null for the scorer\'s default, "action": '
        '"reject", "flag" or "pass"}, e.g. {"sharpness": {"threshold": 80, "action": "reject"}}. '
        "Only these scorers decide; the others are recorded.",
    )
    regenerate_attempts = models.PositiveSmallIntegerField(
        default=0,
        validators=[MaxValueValidator(10)],
        help_text="When a reject rule fails, try again with a new seed up to this many times "
        "before rejecting.",
    )
    fast_track = models.JSONField(
        default=dict,
        blank=True,
        help_text='Scorer → high bar, e.g. {"sharpness": 400, "palette": 8}: when no rule failed '
        "and every one of these clears its bar, the asset is approved without a reviewer. "
        "Empty: off.",
    )

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
        errors = {}
        if problems := _rule_problems(self.rules):
            errors["rules"] = problems
        if problems := _fast_track_problems(self.fast_track):
            errors["fast_track"] = problems
        if self.campaign_id and self.brand_id and self.campaign.brand_id != self.brand_id:
            errors["campaign"] = "This campaign belongs to another brand."
        if errors:
            raise ValidationError(errors)

    def rule(self, scorer: str) -> dict | None:
        return self.rules.get(scorer)


def _scorer_problem(name: object) -> str | None:
    from review.scoring.registry import get_scorer, scorer_names

    if name not in scorer_names():
        return f"Unknown scorer {name!r}; known: {', '.join(scorer_names())}."
    if why := get_scorer(name).unavailable():
        return f"{name}: {why}"
    return None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _rule_problems(rules: object) -> list[str]:
    if not isinstance(rules, dict):
        return ['A JSON object of scorer → {"threshold": …, "action": …}.']
    problems = []
    actions = QualityGate.Action.values
    for name, rule in rules.items():
        if problem := _scorer_problem(name):
            problems.append(problem)
        elif not isinstance(rule, dict) or set(rule) - {"threshold", "action"}:
            problems.append(f'{name}: write {{"threshold": number or null, "action": "…"}}.')
        elif rule.get("threshold") is not None and not _is_number(rule["threshold"]):
            problems.append(f"{name}: the threshold must be a number (or null for the default).")
        elif rule.get("action", "flag") not in actions:
            problems.append(f"{name}: the action must be one of {', '.join(actions)}.")
    return problems


def _fast_track_problems(bars: object) -> list[str]:
    if not isinstance(bars, dict):
        return ["A JSON object of scorer → bar."]
    problems = []
    for name, bar in bars.items():
        if problem := _scorer_problem(name):
            problems.append(problem)
        elif not _is_number(bar):
            problems.append(f"{name}: the bar must be a number.")
    return problems


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
        REGENERATED = "regenerated", "Regenerated (replaced by a new attempt)"

    DECIDED = (Status.APPROVED, Status.REJECTED, Status.PUBLISHED, Status.REGENERATED)

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
    # An editor who opened the item holds it for BRANDFORGE_REVIEW_CLAIM_SECONDS, so two editors
    # do not review the same asset; the claim lapses by itself.
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["campaign", "status"])]
        permissions = [
            ("decide_reviewitem", "Can approve, reject and regenerate in the review queue"),
            ("publish_reviewitem", "Can publish approved items again"),
        ]

    def __str__(self) -> str:
        return f"Review of {self.asset}"
