"""Provides the admin for quality gates, review items (and the review page), and scores."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from assets.admin import audit_trail_html, thumb
from review import views
from review.models import QualityGate, ReviewItem, Score
from review.selectors import review_item_trail
from review.services import (
    DECIDE_PERMISSION,
    PUBLISH_PERMISSION,
    review_item_approve,
    review_item_publish_again,
    review_item_reject,
)


@admin.register(QualityGate)
class QualityGateAdmin(admin.ModelAdmin):
    list_display = ["name", "brand", "campaign", "rules", "regenerate_attempts", "fast_track"]
    list_filter = ["brand"]
    search_fields = ["name"]
    list_select_related = ["brand", "campaign"]


class ReviewActionForm(ActionForm):
    reason = forms.CharField(required=False, max_length=1000, label="Reason (needed to reject)")


@admin.register(ReviewItem)
class ReviewItemAdmin(admin.ModelAdmin):
    action_form = ReviewActionForm
    actions = ["approve", "reject", "publish_again"]
    list_display = [
        "preview",
        "asset",
        "campaign",
        "locale",
        "status",
        "flagged",
        "renditions",
        "decided_by",
        "decided_at",
    ]
    list_filter = ["status", "flagged", "campaign__brand", "campaign", "brief__locale"]
    search_fields = ["asset__uid", "brief__external_ref", "campaign__name"]
    list_select_related = ["asset", "brief", "campaign", "decided_by"]
    readonly_fields = [
        "preview_large",
        "asset",
        "campaign",
        "brief",
        "status",
        "flagged",
        "gate",
        "prompt",
        "decided_by",
        "decided_at",
        "reason",
        "claimed_by",
        "claimed_at",
        "published_at",
        "trail",
    ]
    fields = readonly_fields

    def get_urls(self):
        site = self.admin_site
        return [
            path(
                "queue/",
                site.admin_view(views.queue_view),
                {"admin_site": site},
                name="review_reviewitem_queue",
            ),
            path(
                "queue/<int:pk>/claim/",
                site.admin_view(views.claim_view),
                name="review_reviewitem_claim",
            ),
            path(
                "queue/decide/",
                site.admin_view(views.decide_view),
                name="review_reviewitem_decide",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra = {"queue_url": reverse("admin:review_reviewitem_queue"), **(extra_context or {})}
        return super().changelist_view(request, extra_context=extra)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("asset__renditions")

    def has_add_permission(self, request):
        return False

    def has_decide_permission(self, request):
        return request.user.has_perm(DECIDE_PERMISSION)

    def has_publish_permission(self, request):
        return request.user.has_perm(PUBLISH_PERMISSION)

    @admin.display(description="")
    def preview(self, obj):
        return thumb(obj.asset.thumbnail, 64)

    @admin.display(description="Preview")
    def preview_large(self, obj):
        return thumb(obj.asset.thumbnail, 256)

    @admin.display(description="Locale", ordering="brief__locale")
    def locale(self, obj):
        return obj.brief.locale

    @admin.display(description="Renditions")
    def renditions(self, obj):
        return format_html_join(
            ", ",
            '<a href="{}" target="_blank" rel="noopener">{}</a>',
            ((r.file.url, r.format_name) for r in obj.asset.renditions.all()),
        )

    @admin.display(description="Quality gate")
    def gate(self, obj):
        summary = obj.gate_summary or {}
        failed = summary.get("failed") or {}
        disabled = summary.get("disabled") or {}
        return format_html(
            "{} · decision: <strong>{}</strong> · attempt {} of {}<br>{}{}",
            summary.get("gate") or "no gate (scorer defaults)",
            summary.get("decision", "?"),
            summary.get("attempt", 1),
            summary.get("attempts_allowed", 1),
            format_html_join(
                "", "<div>✗ {} → {}</div>", ((name, act) for name, act in failed.items())
            ),
            format_html_join(
                "", "<div>– {} off: {}</div>", ((name, why) for name, why in disabled.items())
            ),
        )

    @admin.display(description="Prompt · seed · model")
    def prompt(self, obj):
        recipe = obj.asset.recipe
        return format_html(
            "{}<br><small>seed {} · {} / {}</small>",
            recipe.get("prompt", ""),
            recipe.get("seed", "?"),
            recipe.get("provider", "?"),
            recipe.get("model", "?"),
        )

    @admin.display(description="Audit trail")
    def trail(self, obj):
        return audit_trail_html(review_item_trail(item_id=obj.pk))

    def _decide(self, request, queryset, decide, verb):
        done = 0
        for item in queryset.select_related("asset__brand", "brief"):
            try:
                decide(item)
            except (ValidationError, PermissionDenied) as exc:
                text = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
                self.message_user(request, text, messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(request, f"{verb} {done} item(s).", messages.SUCCESS)

    @admin.action(description="Approve selected (publishes them)", permissions=["decide"])
    def approve(self, request, queryset):
        reason = request.POST.get("reason", "")
        self._decide(
            request,
            queryset,
            lambda item: review_item_approve(item=item, actor=request.user, reason=reason),
            "Approved",
        )

    @admin.action(description="Reject selected (give a reason)", permissions=["decide"])
    def reject(self, request, queryset):
        reason = request.POST.get("reason", "")
        if not reason.strip():
            self.message_user(
                request, "Type a reason in the box beside the action to reject.", messages.ERROR
            )
            return
        self._decide(
            request,
            queryset,
            lambda item: review_item_reject(item=item, actor=request.user, reason=reason),
            "Rejected",
        )

    @admin.action(description="Publish approved items again", permissions=["publish"])
    def publish_again(self, request, queryset):
        queued = sum(review_item_publish_again(item=item, actor=request.user) for item in queryset)
        self.message_user(request, f"Queued {queued} approved item(s) for publishing.")


@admin.register(Score)
class ScoreAdmin(admin.ModelAdmin):
    list_display = ["asset", "subject", "scorer", "scorer_version", "value", "passed", "created_at"]
    list_filter = ["scorer", "passed", "subject"]
    search_fields = ["asset__uid"]
    list_select_related = ["asset"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
