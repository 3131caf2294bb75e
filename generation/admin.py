"""Provides the admin for routing, jobs (dead letters, requeue, cancel), costs and circuits."""

import json

from django.contrib import admin, messages
from django.db.models import Sum
from django.utils.html import format_html, format_html_join

from brandforge.adminkit import ReadOnlyAdmin
from generation.models import (
    BriefRoute,
    CostEntry,
    GenerationJob,
    ProviderCircuit,
    ProviderWebhookEvent,
    RefinementChain,
    RoutingRule,
)
from generation.selectors import route_for
from generation.services import job_cancel, job_renditions_rebuild, job_requeue


def pretty_json(value) -> str:
    return format_html('<pre class="bf-pre">{}</pre>', json.dumps(value, indent=2, default=str))


def reasons_list(reasons: list[str]) -> str:
    return format_html_join("", "<div>{}</div>", ((reason,) for reason in reasons)) or "—"


@admin.register(RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "priority",
        "enabled",
        "provider",
        "model",
        "conditions",
        "fallback",
        "price_per_image",
    ]
    list_editable = ["priority", "enabled"]
    list_filter = ["enabled", "provider", "brand"]
    search_fields = ["name", "model"]
    list_select_related = ["brand", "campaign", "fallback"]
    autocomplete_fields = ["fallback"]
    fieldsets = [
        (None, {"fields": ["name", "priority", "enabled"]}),
        ("When", {"fields": ["brand", "campaign", "locales", "styles", "min_resolution"]}),
        ("Then", {"fields": ["provider", "model", "params", "price_per_image", "fallback"]}),
        ("Refinement", {"fields": ["refinement_chain"]}),
    ]

    @admin.display(description="Conditions")
    def conditions(self, obj):
        parts = [
            f"brand {obj.brand}" if obj.brand_id else "",
            f"campaign {obj.campaign}" if obj.campaign_id else "",
            f"locale in {', '.join(obj.locales)}" if obj.locales else "",
            f"style in {', '.join(obj.styles)}" if obj.styles else "",
            f"formats ≥ {obj.min_resolution}px" if obj.min_resolution else "",
        ]
        return "; ".join(p for p in parts if p) or "always"


@admin.register(BriefRoute)
class BriefRouteAdmin(ReadOnlyAdmin):
    """For each brief, the routing rule that serves it now and why (a preview, read-only)."""

    list_display = ["__str__", "campaign", "locale", "matched_rule"]
    list_filter = ["campaign__brand", "campaign", "locale"]
    search_fields = ["external_ref"]
    list_select_related = ["campaign__brand"]
    fields = ["campaign", "locale", "variables", "explanation"]
    readonly_fields = fields

    @admin.display(description="Rule")
    def matched_rule(self, obj):
        decision = route_for(brief=obj)
        return decision.rule.name if decision.rule else "built-in local"

    @admin.display(description="Why")
    def explanation(self, obj):
        return reasons_list(route_for(brief=obj).reasons)


class CostInline(admin.TabularInline):
    model = CostEntry
    extra = 0
    can_delete = False
    fields = ["attempt", "kind", "amount", "provider", "model", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(GenerationJob)
class GenerationJobAdmin(admin.ModelAdmin):
    list_display = [
        "uid",
        "kind",
        "campaign",
        "brief",
        "status",
        "attempts",
        "provider",
        "model",
        "latency_ms",
        "cost",
        "created_at",
    ]
    list_filter = ["status", "kind", "provider", "campaign__brand", "campaign"]
    search_fields = ["uid", "idempotency_key", "provider_request_id", "brief__external_ref"]
    list_select_related = ["campaign", "brief"]
    date_hierarchy = "created_at"
    actions = ["requeue", "cancel", "rebuild_renditions"]
    inlines = [CostInline]
    exclude = ["error_history", "route_reasons", "sent", "provider_urls", "step"]

    def get_readonly_fields(self, request, obj=None):
        # Jobs change only through the engine; the admin shows them, requeues and cancels.
        hidden = set(self.exclude)
        fields = [f.name for f in self.model._meta.fields if f.name not in hidden]
        return [
            *fields,
            "route",
            "chain_step",
            "waits_for",
            "errors",
            "submitted",
            "provider_links",
        ]

    def has_add_permission(self, request):
        return False

    @admin.display(description="Routing decision")
    def route(self, obj):
        return reasons_list(obj.route_reasons)

    @admin.display(description="Refinement step")
    def chain_step(self, obj):
        return pretty_json(obj.step) if obj.step else "—"

    @admin.display(description="Step jobs")
    def waits_for(self, obj):
        rows = obj.step_jobs.order_by("created_at").values_list("uid", "kind", "status", "error")
        return (
            format_html_join(
                "",
                "<div><code>{}</code> {} — {} {}</div>",
                ((*row[:3], row[3][:200]) for row in rows),
            )
            or "—"
        )

    @admin.display(description="Error history")
    def errors(self, obj):
        return pretty_json(obj.error_history)

    @admin.display(description="Sent to the provider")
    def submitted(self, obj):
        return pretty_json(obj.sent)

    @admin.display(description="Provider URLs")
    def provider_links(self, obj):
        return pretty_json(obj.provider_urls)

    @admin.action(
        description="Requeue selected dead, failed or cancelled jobs", permissions=["change"]
    )
    def requeue(self, request, queryset):
        moved = sum(job_requeue(job=job) for job in queryset)
        self.message_user(request, f"Requeued {moved} job(s).", messages.SUCCESS)
        if skipped := queryset.count() - moved:
            self.message_user(
                request, f"{skipped} job(s) were still live and were left alone.", messages.WARNING
            )

    @admin.action(
        description="Rebuild renditions (after a focal point or layout change)",
        permissions=["change"],
    )
    def rebuild_renditions(self, request, queryset):
        made = sum(job_renditions_rebuild(job=job) for job in queryset)
        self.message_user(request, f"Rebuilt {made} rendition(s).", messages.SUCCESS)

    @admin.action(description="Cancel selected jobs", permissions=["change"])
    def cancel(self, request, queryset):
        done = sum(job_cancel(job=job) for job in queryset)
        self.message_user(request, f"Cancelled {done} job(s).", messages.SUCCESS)


@admin.register(RefinementChain)
class RefinementChainAdmin(admin.ModelAdmin):
    """Chains for a brand (its default) or one of its campaigns; checked step by step on save."""

    list_display = ["__str__", "brand", "campaign", "summary", "updated_at"]
    list_filter = ["brand"]
    list_select_related = ["brand", "campaign"]
    autocomplete_fields = ["campaign"]
    fields = ["brand", "campaign", "steps", "known_steps"]
    readonly_fields = ["known_steps"]

    @admin.display(description="Steps")
    def summary(self, obj):
        names = [entry.get("step", "?") for entry in obj.steps if isinstance(entry, dict)]
        return " → ".join(names) or "(none)"

    @admin.display(description="Available steps")
    def known_steps(self, obj):
        from generation.pipeline.registry import get_step, step_names

        rows = []
        for name in step_names():
            step = get_step(name)
            params = ", ".join(f"{key}={spec.default!r}" for key, spec in step.params.items())
            rows.append((name, step.version, params))
        return format_html_join("", "<div><b>{}</b> v{}: {}</div>", rows)


@admin.register(CostEntry)
class CostEntryAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "kind",
        "amount",
        "provider",
        "model",
        "brand",
        "campaign",
        "attempt",
    ]
    list_filter = ["kind", "provider", "brand", "campaign"]
    search_fields = ["job__uid", "model"]
    list_select_related = ["brand", "campaign"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        try:
            qs = response.context_data["cl"].queryset
        except (AttributeError, KeyError):
            return response
        totals = {
            row["kind"]: row["total"] for row in qs.values("kind").annotate(total=Sum("amount"))
        }
        self.message_user(
            request,
            f"Filtered total: actual {totals.get('actual', 0)}, "
            f"estimated {totals.get('estimate', 0)}.",
            messages.INFO,
        )
        return response


@admin.register(ProviderCircuit)
class ProviderCircuitAdmin(admin.ModelAdmin):
    list_display = ["provider", "state", "failures", "opened_at", "open_until", "last_error"]
    readonly_fields = [f.name for f in ProviderCircuit._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(ProviderWebhookEvent)
class ProviderWebhookEventAdmin(admin.ModelAdmin):
    list_display = ["received_at", "provider", "delivery_id", "state", "job"]
    list_filter = ["provider", "state"]
    search_fields = ["delivery_id", "request_id"]
    list_select_related = ["job"]
    readonly_fields = [f.name for f in ProviderWebhookEvent._meta.fields]

    def has_add_permission(self, request):
        return False
