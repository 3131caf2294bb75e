"""Provides the admin for the brand kit and the asset store (thumbnails, lineage, recipe)."""

import json

from django import forms
from django.contrib import admin
from django.db import models
from django.utils.html import format_html, format_html_join

from assets.models import (
    Asset,
    Brand,
    ControlReference,
    LoraProfile,
    ReferenceImage,
    Rendition,
    SeedProfile,
)
from brandforge.forms import SafeImageField


def thumb(field_file, size: int = 64) -> str:
    """A small <img> of an already small file (never the full-size master)."""
    if not field_file:
        return "—"
    return format_html(
        '<img src="{}" alt="" loading="lazy" class="bf-thumb bf-thumb-{}">', field_file.url, size
    )


def swatches(palette: list[str]) -> str:
    return format_html_join(
        "",
        '<span class="bf-swatch" title="{0}" style="background:{0}"></span>',
        ((colour,) for colour in palette if isinstance(colour, str)),
    )


class PaletteWidget(forms.TextInput):
    def format_value(self, value):
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                return value
        return ", ".join(value) if isinstance(value, list) else value


class PaletteField(forms.JSONField):
    """Hex colours typed as '#0B3D91, #FC3D21'; validation happens on the model field."""

    widget = PaletteWidget

    def to_python(self, value):
        if isinstance(value, str) and not value.strip().startswith("["):
            return [part.strip() for part in value.split(",") if part.strip()]
        return super().to_python(value)


class BrandForm(forms.ModelForm):
    palette = PaletteField(help_text="Hex colours, main colour first: #0B3D91, #FC3D21, #FFFFFF")
    logo = SafeImageField(required=False, help_text="PNG, JPEG or WebP; stored re-encoded as PNG.")

    class Meta:
        model = Brand
        fields = [
            "name",
            "slug",
            "palette",
            "fonts",
            "logo",
            "watermark_anchor",
            "watermark_margin",
            "watermark_opacity",
            "watermark_scale",
            "style_tokens",
            "negative_prompt",
        ]


class BrandImageForm(forms.ModelForm):
    image = SafeImageField()


class LoraInline(admin.TabularInline):
    model = LoraProfile
    extra = 0
    fields = ["name", "path", "scale", "trigger_words"]


class SeedInline(admin.TabularInline):
    model = SeedProfile
    extra = 0
    fields = ["name", "base_seed", "strategy"]


class ReferenceInline(admin.TabularInline):
    model = ReferenceImage
    form = BrandImageForm
    extra = 0
    fields = ["preview", "image", "caption"]
    readonly_fields = ["preview"]

    @admin.display(description="")
    def preview(self, obj):
        return thumb(obj.image)


@admin.register(Brand)
class BrandAdmin(admin.ModelAdmin):
    form = BrandForm
    list_display = ["name", "logo_preview", "palette_swatches", "asset_count", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [LoraInline, SeedInline, ReferenceInline]
    fieldsets = [
        (None, {"fields": ["name", "slug", "palette", "fonts", "logo"]}),
        (
            "Watermark",
            {
                "fields": [
                    "watermark_anchor",
                    "watermark_margin",
                    "watermark_opacity",
                    "watermark_scale",
                ]
            },
        ),
        ("Prompting", {"fields": ["style_tokens", "negative_prompt"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(asset_total=models.Count("assets"))

    @admin.display(description="Logo")
    def logo_preview(self, obj):
        return thumb(obj.logo, 40)

    @admin.display(description="Palette")
    def palette_swatches(self, obj):
        return swatches(obj.palette)

    @admin.display(description="Assets", ordering="asset_total")
    def asset_count(self, obj):
        return obj.asset_total


@admin.register(LoraProfile)
class LoraProfileAdmin(admin.ModelAdmin):
    list_display = ["name", "brand", "path", "scale", "trigger_words"]
    list_filter = ["brand"]
    search_fields = ["name", "path", "trigger_words"]
    list_select_related = ["brand"]


@admin.register(SeedProfile)
class SeedProfileAdmin(admin.ModelAdmin):
    list_display = ["name", "brand", "base_seed", "strategy"]
    list_filter = ["brand", "strategy"]
    search_fields = ["name"]
    list_select_related = ["brand"]


@admin.register(ControlReference)
class ControlReferenceAdmin(admin.ModelAdmin):
    form = BrandImageForm
    list_display = ["preview", "name", "brand", "kind", "strength"]
    list_filter = ["brand", "kind"]
    search_fields = ["name"]
    list_select_related = ["brand"]

    @admin.display(description="")
    def preview(self, obj):
        return thumb(obj.image, 48)


@admin.register(ReferenceImage)
class ReferenceImageAdmin(admin.ModelAdmin):
    form = BrandImageForm
    list_display = ["preview", "caption", "brand", "created_at"]
    list_filter = ["brand"]
    search_fields = ["caption"]
    list_select_related = ["brand"]

    @admin.display(description="")
    def preview(self, obj):
        return thumb(obj.image, 48)


class RenditionInline(admin.TabularInline):
    model = Rendition
    extra = 0
    can_delete = False
    fields = [
        "format_name",
        "spec",
        "width",
        "height",
        "file_format",
        "size_bytes",
        "link",
        "published_name",
    ]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="File")
    def link(self, obj):
        return format_html('<a href="{}" target="_blank" rel="noopener">open</a>', obj.file.url)


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    list_display = [
        "preview",
        "uid",
        "brand",
        "status",
        "step",
        "dimensions",
        "file_format",
        "created_at",
    ]
    list_filter = ["status", "brand", "file_format", "step"]
    search_fields = ["uid", "sha256", "key"]
    list_select_related = ["brand"]
    date_hierarchy = "created_at"
    inlines = [RenditionInline]
    readonly_fields = [
        "preview_large",
        "uid",
        "brand",
        "status",
        "lineage",
        "step",
        "dimensions",
        "file_format",
        "size_bytes",
        "sha256",
        "key",
        "recipe_pretty",
        "created_at",
    ]
    fields = readonly_fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # Assets are immutable records; transitions happen through the review services.
        return False

    @admin.display(description="")
    def preview(self, obj):
        return thumb(obj.thumbnail, 56)

    @admin.display(description="Preview")
    def preview_large(self, obj):
        return thumb(obj.thumbnail, 256)

    @admin.display(description="Size")
    def dimensions(self, obj):
        return f"{obj.width}×{obj.height}"

    @admin.display(description="Lineage (root first)")
    def lineage(self, obj):
        from assets.selectors import asset_lineage

        return format_html_join(
            " → ",
            '<a href="../../{}/change/">{} {}</a>',
            (
                (node.pk, thumb(node.thumbnail, 40), node.step or "generated")
                for node in asset_lineage(obj)
            ),
        )

    @admin.display(description="Recipe")
    def recipe_pretty(self, obj):
        return format_html(
            '<pre class="bf-pre">{}</pre>',
            json.dumps(obj.recipe, indent=2, sort_keys=True),
        )


@admin.register(Rendition)
class RenditionAdmin(admin.ModelAdmin):
    list_display = [
        "asset",
        "format_name",
        "width",
        "height",
        "file_format",
        "size_bytes",
        "published_at",
    ]
    list_filter = ["format_name", "file_format", "asset__brand"]
    search_fields = ["asset__uid", "published_name"]
    list_select_related = ["asset__brand"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
