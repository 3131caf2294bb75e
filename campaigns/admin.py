"""Provides the admin for templates (immutable versions), channel formats, campaigns and briefs."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.utils.html import format_html

from campaigns.models import (
    Brief,
    Campaign,
    ChannelFormat,
    FormatLayout,
    PromptTemplate,
    PromptTemplateVersion,
)
from campaigns.selectors import campaign_list_with_progress
from campaigns.services import campaign_launch, prompt_template_version_create


class VersionInline(admin.StackedInline):
    """Versions are immutable: old ones are shown read-only, edits are saved as a new version."""

    model = PromptTemplateVersion
    extra = 1
    can_delete = False
    fields = ["number", "body", "variables", "negative_prompt", "content_hash", "created_at"]
    readonly_fields = ["number", "content_hash", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(PromptTemplate)
class PromptTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "brand", "version_count", "updated_at"]
    list_filter = ["brand"]
    search_fields = ["name", "description", "versions__body"]
    list_select_related = ["brand"]
    inlines = [VersionInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(version_total=Count("versions"))

    @admin.display(description="Versions", ordering="version_total")
    def version_count(self, obj):
        return obj.version_total

    def save_formset(self, request, form, formset, change):
        if formset.model is not PromptTemplateVersion:
            return super().save_formset(request, form, formset, change)
        # New versions go through the service (numbering, hashing, dedupe); saved ones are
        # immutable, so there is nothing else to save.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for inline_form in formset.forms:
            if not inline_form.has_changed() or inline_form.instance.pk:
                continue
            data = inline_form.cleaned_data
            version = prompt_template_version_create(
                template=form.instance,
                body=data["body"],
                variables=data["variables"],
                negative_prompt=data.get("negative_prompt", ""),
            )
            formset.new_objects.append(version)
            self.message_user(request, f"Saved {version}.", messages.SUCCESS)


@admin.register(PromptTemplateVersion)
class PromptTemplateVersionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "template", "number", "short_hash", "created_at"]
    list_filter = ["template__brand"]
    search_fields = ["body", "template__name"]
    list_select_related = ["template"]
    readonly_fields = ["template", "number", "body", "variables", "negative_prompt", "content_hash"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="Hash")
    def short_hash(self, obj):
        return obj.content_hash[:12]


@admin.register(ChannelFormat)
class ChannelFormatAdmin(admin.ModelAdmin):
    list_display = ["name", "width", "height", "aspect", "file_format", "quality", "dpi"]
    list_filter = ["file_format"]
    search_fields = ["name"]

    @admin.display(description="Aspect")
    def aspect(self, obj):
        return f"{obj.width / obj.height:.3g}"


class BriefInlineForm(forms.ModelForm):
    class Meta:
        model = Brief
        fields = ["template_version", "locale", "variables", "external_ref"]


class BriefInline(admin.TabularInline):
    model = Brief
    form = BriefInlineForm
    extra = 0
    fields = ["template_version", "locale", "variables", "external_ref", "status"]
    readonly_fields = ["status"]
    autocomplete_fields = ["template_version"]
    show_change_link = True


def progress_bar(done: int, total: int) -> str:
    return format_html(
        '<div class="bf-progress" title="{} of {} briefs done">'
        '<progress value="{}" max="{}"></progress><span>{}/{}</span></div>',
        done,
        total,
        done,
        max(total, 1),
        done,
        total,
    )


@admin.register(FormatLayout)
class FormatLayoutAdmin(admin.ModelAdmin):
    """Which layout a brand's (or one campaign's) renditions of a channel format get."""

    list_display = ["channel_format", "layout", "brand", "campaign"]
    list_filter = ["brand", "channel_format"]
    list_select_related = ["channel_format", "layout", "brand", "campaign"]
    autocomplete_fields = ["campaign", "channel_format"]


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "brand",
        "status",
        "progress",
        "format_list",
        "locale_list",
        "launched_at",
    ]
    list_filter = ["status", "brand"]
    search_fields = ["name", "briefs__external_ref"]
    filter_horizontal = ["formats", "loras"]
    readonly_fields = ["status", "status_reason", "launched_at", "completed_at"]
    inlines = [BriefInline]
    actions = ["launch"]
    fieldsets = [
        (None, {"fields": ["brand", "name", "locales", "formats"]}),
        ("Consistency", {"fields": ["seed_profile", "loras"]}),
        ("State", {"fields": ["status", "status_reason", "launched_at", "completed_at"]}),
    ]

    def get_queryset(self, request):
        return campaign_list_with_progress().prefetch_related("formats")

    @admin.display(description="Progress")
    def progress(self, obj):
        return progress_bar(obj.briefs_done, obj.briefs_total)

    @admin.display(description="Formats")
    def format_list(self, obj):
        return ", ".join(f.name for f in obj.formats.all())

    @admin.display(description="Locales")
    def locale_list(self, obj):
        return ", ".join(obj.locales)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        campaign = form.instance
        foreign = campaign.loras.exclude(brand_id=campaign.brand_id)
        if foreign.exists():
            campaign.loras.remove(*foreign)
            self.message_user(
                request,
                f"Removed LoRA profiles of another brand: {', '.join(map(str, foreign))}.",
                messages.WARNING,
            )

    @admin.action(description="Launch selected campaigns")
    def launch(self, request, queryset):
        for campaign in queryset:
            try:
                campaign_launch(campaign=campaign)
            except ValidationError as exc:
                self.message_user(request, " ".join(exc.messages), messages.ERROR)
            else:
                self.message_user(
                    request, f"Launched {campaign.name}: workers are generating.", messages.SUCCESS
                )


@admin.register(Brief)
class BriefAdmin(admin.ModelAdmin):
    list_display = ["__str__", "campaign", "locale", "status", "template_version", "created_at"]
    list_filter = ["status", "locale", "campaign__brand", "campaign"]
    search_fields = ["external_ref", "uid"]
    list_select_related = ["campaign", "template_version__template"]
    readonly_fields = ["status", "fingerprint", "uid"]
    autocomplete_fields = ["template_version"]
