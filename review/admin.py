"""Provides the admin for quality gates, the review queue, scores and the audit trail."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import ValidationError
from django.utils.html import format_html, format_html_join

from assets.admin import thumb
from review.models import AuditEvent, QualityGate, ReviewItem, Score
from review.services import review_item_approve, review_item_reject


@admin.register(QualityGate)
class QualityGateAdmin(admin.ModelAdmin):
    list_display = ["name", "brand", "campaign", "thresholds", "on_fail"]
    list_filter = ["brand", "on_fail"]
    search_fields = ["name"]
    list_select_related = ["brand", "campaign"]


class ScoreInline(admin.TabularInline):
    model = Score
    fk_name = "asset"
    extra = 0
    can_delete = False
    fields = ["subject", "scorer", "scorer_version", "value", "passed"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class ReviewActionForm(ActionForm):
    reason = forms.CharField(required=False, max_length=1000, label="Reason (needed to reject)")


@admin.register(ReviewItem)
class ReviewItemAdmin(admin.ModelAdmin):
    action_form = ReviewActionForm
    actions = ["approve", "reject"]
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
        "gate_summary",
        "prompt",
        "decided_by",
        "decided_at",
        "reason",
        "published_at",
        "trail",
    ]
    fields = readonly_fields

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("asset__renditions")

    def has_add_permission(self, request):
        return False

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
        return format_html_join(
            "",
            "<div>{} · {} · {} → {} · {} {}</div>",
            (
                (
                    e.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                    e.action,
                    e.from_status or "∅",
                    e.to_status,
                    e.actor or e.source,
                    e.reason,
                )
                for e in obj.audit_events.select_related("actor").order_by("id")
            ),
        )

    def _decide(self, request, queryset, decide, verb):
        done = 0
        for item in queryset.select_related("asset", "brief"):
            try:
                decide(item)
            except ValidationError as exc:
                self.message_user(request, " ".join(exc.messages), messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(request, f"{verb} {done} item(s).", messages.SUCCESS)

    @admin.action(description="Approve selected (publishes them)", permissions=["change"])
    def approve(self, request, queryset):
        reason = request.POST.get("reason", "")
        self._decide(
            request,
            queryset,
            lambda item: review_item_approve(item=item, actor=request.user, reason=reason),
            "Approved",
        )

    @admin.action(description="Reject selected (give a reason)", permissions=["change"])
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


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "action",
        "from_status",
        "to_status",
        "actor",
        "source",
        "asset",
        "reason",
    ]
    list_filter = ["action", "source", "to_status"]
    search_fields = ["asset__uid", "reason", "actor__username"]
    list_select_related = ["actor", "asset"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
