"""Provides the admin for the brand kit and the asset store (thumbnails, lineage, recipe)."""

import json

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.db import models
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from assets.layouts import MAX_FONT_BYTES, font_format
from assets.models import (
    Asset,
    AuditEvent,
    Brand,
    BrandFont,
    ControlReference,
    Layout,
    LoraProfile,
    ReferenceImage,
    Rendition,
    SeedProfile,
)
from assets.services import asset_set_focal_point, layout_preview
from brandforge.adminkit import ReadOnlyAdmin
from brandforge.csvexport import csv_response
from brandforge.forms import SafeImageField

PREVIEW_MIN_SIDE = 16
PREVIEW_MAX_SIDE = 4096


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


class FontFileField(forms.FileField):
    """A font upload that FreeType can draw with, stored under a name the server chooses."""

    def to_python(self, data):
        upload = super().to_python(data)
        if upload is None:
            return None
        # One byte past the cap is enough for font_format to refuse an oversized file.
        content = upload.read(MAX_FONT_BYTES + 1)
        ext = font_format(content, name=f"“{upload.name}”")
        return ContentFile(content, name=f"font.{ext}")


class BrandFontForm(forms.ModelForm):
    file = FontFileField(help_text="TrueType or OpenType font (.ttf, .otf), up to 10 MB.")

    class Meta:
        model = BrandFont
        fields = ["family", "file"]


class LoraInline(admin.TabularInline):
    model = LoraProfile
    extra = 0
    fields = ["name", "path", "scale", "trigger_words"]


class SeedInline(admin.TabularInline):
    model = SeedProfile
    extra = 0
    fields = ["name", "base_seed", "strategy"]


class BrandFontInline(admin.TabularInline):
    model = BrandFont
    form = BrandFontForm
    extra = 0
    fields = ["family", "file"]


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
    inlines = [LoraInline, SeedInline, BrandFontInline, ReferenceInline]
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
        "trail",
        "created_at",
    ]
    # Assets are immutable records (transitions happen through the review services); only the
    # hand-set focal point can be edited here.
    fields = [
        "preview_large",
        "focal_x",
        "focal_y",
        *(name for name in readonly_fields if name != "preview_large"),
    ]

    def has_add_permission(self, request):
        return False

    def save_model(self, request, obj, form, change):
        asset_set_focal_point(
            asset=obj,
            focal_x=form.cleaned_data.get("focal_x"),
            focal_y=form.cleaned_data.get("focal_y"),
        )

    @admin.display(description="")
    def preview(self, obj):
        return thumb(obj.thumbnail, 56)

    @admin.display(description="Preview")
    def preview_large(self, obj):
        return thumb(obj.thumbnail, 256)

    @admin.display(description="Size")
    def dimensions(self, obj):
        return f"{obj.width}×{obj.height}"

    @admin.display(description="Audit trail")
    def trail(self, obj):
        """Every transition of this asset and of its review item, gate decisions included."""
        return audit_trail_html(
            AuditEvent.objects.filter(asset=obj).select_related("actor").order_by("id")
        )

    @admin.display(description="Lineage")
    def lineage(self, obj):
        """The whole tree, from the generated master down every refinement step; this asset
        is marked."""
        from assets.selectors import asset_tree

        root, children = asset_tree(obj)

        def branch(node) -> str:
            label = node.step or "generated"
            steps = node.recipe.get("steps") or [{}]
            version = steps[-1].get("version") if node.step else None
            below = format_html_join("", "{}", ((branch(c),) for c in children.get(node.pk, [])))
            return format_html(
                '<li class="{}"><a href="../../{}/change/">{} {}{} · {}×{}</a>{}</li>',
                "bf-tree-here" if node.pk == obj.pk else "",
                node.pk,
                thumb(node.thumbnail, 40),
                label,
                f" v{version}" if version else "",
                node.width,
                node.height,
                format_html('<ul class="bf-tree">{}</ul>', below) if below else "",
            )

        return format_html('<ul class="bf-tree">{}</ul>', branch(root))

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


class PrettyJSONField(forms.JSONField):
    """JSON shown indented, so a layout's layers can be read and edited in the textarea."""

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=False, indent=2, cls=self.encoder)


class LayoutForm(forms.ModelForm):
    layers = PrettyJSONField(
        widget=forms.Textarea(attrs={"rows": 28, "cols": 90, "class": "bf-code"}),
        help_text="Layers, painted in order (bottom first); see the layer reference below.",
    )
    sample_values = PrettyJSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 5, "cols": 90, "class": "bf-code"}),
        help_text='Values for the preview, e.g. {"headline": "Summer sale", "cta": "Shop now"}.',
    )

    class Meta:
        model = Layout
        fields = ["brand", "name", "width", "height", "layers", "sample_values"]

    def clean_sample_values(self):
        return self.cleaned_data["sample_values"] or {}


@admin.register(Layout)
class LayoutAdmin(admin.ModelAdmin):
    form = LayoutForm
    list_display = ["name", "brand", "canvas", "layer_count", "updated_at"]
    list_filter = ["brand"]
    search_fields = ["name"]
    list_select_related = ["brand"]
    readonly_fields = ["preview"]
    fieldsets = [
        (None, {"fields": ["brand", "name", ("width", "height")]}),
        ("Layers", {"fields": ["layers", "sample_values"]}),
        ("Preview", {"fields": ["preview"]}),
    ]

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<path:object_id>/preview.png",
                self.admin_site.admin_view(self.preview_view),
                name="{}_{}_preview".format(*info),
            ),
            *super().get_urls(),
        ]

    def preview_view(self, request, object_id):
        """The layout rendered with its sample values as PNG; ?w=&h= for a channel size."""
        layout = self.get_object(request, unquote(object_id))
        if layout is None:
            raise Http404("No such layout.")
        if not self.has_view_permission(request, layout):
            raise PermissionDenied
        try:
            width, height = _preview_size(request.GET, layout)
            png = layout_preview(layout=layout, width=width, height=height)
        except ValidationError as exc:
            return HttpResponseBadRequest("; ".join(exc.messages), content_type="text/plain")
        response = HttpResponse(png, content_type="image/png")
        response["Cache-Control"] = "private, no-cache"
        return response

    @admin.display(description="Canvas")
    def canvas(self, obj):
        return f"{obj.width}×{obj.height}"

    @admin.display(description="Layers")
    def layer_count(self, obj):
        return len(obj.layers) if isinstance(obj.layers, list) else "—"

    @admin.display(description="Preview with the sample values")
    def preview(self, obj):
        if not obj.pk:
            return "Save the layout to see a preview."
        url = reverse("admin:assets_layout_preview", args=[obj.pk])
        # The save time in the URL makes the browser fetch the new rendering after each save.
        stamp = int(obj.updated_at.timestamp())
        scale = min(2.0, PREVIEW_MAX_SIDE / max(obj.width, obj.height))
        larger = round(obj.width * scale)
        return format_html(
            '<img src="{}?v={}" alt="Layout preview" class="bf-layout-preview"><br>'
            '<a href="{}?v={}" target="_blank" rel="noopener">full size</a> · '
            '<a href="{}?w={}" target="_blank" rel="noopener">at {} px wide</a> · '
            "any channel size: add ?w=…&amp;h=… (up to {} px a side)",
            url,
            stamp,
            url,
            stamp,
            url,
            larger,
            larger,
            PREVIEW_MAX_SIDE,
        )


def _preview_size(query, layout: Layout) -> tuple[int, int]:
    """Read ?w=&h= (one alone keeps the layout's aspect) and check both sides against the caps."""
    sides = {}
    for key in ("w", "h"):
        raw = query.get(key, "").strip()
        if raw and not raw.isdigit():
            raise ValidationError(f"{key} must be a whole number of px, got {raw!r}.")
        sides[key] = int(raw) if raw else None
    width, height = sides["w"], sides["h"]
    if width is None and height is None:
        # The layout's own size, shrunk to the cap for very large canvases.
        scale = min(1.0, PREVIEW_MAX_SIDE / max(layout.width, layout.height))
        width, height = round(layout.width * scale), round(layout.height * scale)
    elif height is None:
        height = round(width * layout.height / layout.width)
    elif width is None:
        width = round(height * layout.width / layout.height)
    for key, value in (("width", width), ("height", height)):
        if not PREVIEW_MIN_SIDE <= value <= PREVIEW_MAX_SIDE:
            raise ValidationError(
                f"The preview {key} is {value} px; previews are {PREVIEW_MIN_SIDE} to "
                f"{PREVIEW_MAX_SIDE} px per side."
            )
    return width, height


AUDIT_COLUMNS = [
    "created_at",
    "action",
    "from_status",
    "to_status",
    "actor",
    "source",
    "asset",
    "review_item_id",
    "reason",
]


def audit_trail_html(events) -> str:
    """Audit events as lines: when, what, from → to, who (or which source), why."""
    lines = format_html_join(
        "",
        '<div class="bf-event">{} · {} · {} → {} · {} {}</div>',
        (
            (
                e.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                e.action,
                e.from_status or "∅",
                e.to_status,
                e.actor or e.source,
                e.reason,
            )
            for e in events
        ),
    )
    return lines or "—"


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """The audit trail: read-only for everyone; the export keeps the list's filters."""

    list_display = AUDIT_COLUMNS
    list_filter = ["action", "source", "to_status"]
    search_fields = ["asset__uid", "reason", "actor__username"]
    list_select_related = ["actor", "asset__brand"]
    date_hierarchy = "created_at"
    actions = None

    def has_export_permission(self, request):
        return request.user.has_perm("assets.export_auditevent")

    def get_urls(self):
        export = self.admin_site.admin_view(self.export_view)
        return [path("export.csv", export, name="assets_auditevent_export"), *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        extra = {"can_export": self.has_export_permission(request), **(extra_context or {})}
        return super().changelist_view(request, extra_context=extra)

    def export_view(self, request):
        if not self.has_export_permission(request):
            raise PermissionDenied
        # The changelist's own query: whatever the filters, search and dates show is exported.
        changelist = self.get_changelist_instance(request)
        events = changelist.get_queryset(request).order_by("id").iterator(chunk_size=2000)
        rows = (
            (
                e.created_at.isoformat(),
                e.action,
                e.from_status,
                e.to_status,
                e.actor.get_username() if e.actor else "",
                e.source,
                str(e.asset.uid) if e.asset else "",
                e.review_item_id or "",
                e.reason,
            )
            for e in events
        )
        header = [AuditEvent._meta.get_field(c).verbose_name for c in AUDIT_COLUMNS]
        return csv_response("audit-trail.csv", header, rows)
