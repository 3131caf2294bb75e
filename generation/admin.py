"""Provides the admin for routing rules and generation jobs (with the dead-letter requeue)."""

import json

from django.contrib import admin, messages
from django.utils.html import format_html

from generation.models import GenerationJob, RoutingRule
from generation.services import job_requeue


@admin.register(RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "priority", "enabled", "provider", "model", "price_per_image"]
    list_editable = ["priority", "enabled"]
    list_filter = ["enabled", "provider"]
    search_fields = ["name", "model"]


@admin.register(GenerationJob)
class GenerationJobAdmin(admin.ModelAdmin):
    list_display = [
        "uid",
        "campaign",
        "brief",
        "status",
        "attempts",
        "provider",
        "model",
        "seed",
        "latency_ms",
        "cost",
        "created_at",
    ]
    list_filter = ["status", "provider", "campaign__brand", "campaign"]
    search_fields = ["uid", "idempotency_key", "provider_request_id", "brief__external_ref"]
    list_select_related = ["campaign", "brief"]
    date_hierarchy = "created_at"
    actions = ["requeue"]
    exclude = ["error_history"]
    readonly_fields = ["errors"]

    def get_readonly_fields(self, request, obj=None):
        # Jobs change only through the engine; the admin shows them and requeues dead ones.
        return [f.name for f in self.model._meta.fields if f.name != "error_history"] + ["errors"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="Error history")
    def errors(self, obj):
        return format_html('<pre class="bf-pre">{}</pre>', json.dumps(obj.error_history, indent=2))

    @admin.action(description="Requeue selected dead or failed jobs", permissions=["change"])
    def requeue(self, request, queryset):
        moved = sum(job_requeue(job=job) for job in queryset)
        skipped = queryset.count() - moved
        self.message_user(request, f"Requeued {moved} job(s).", messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                f"{skipped} job(s) were not dead or failed and were left alone.",
                messages.WARNING,
            )
