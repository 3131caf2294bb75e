"""Provides every write to the brand kit and the asset store: assets, renditions, publishing."""

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from PIL import Image

from assets.layouts import font_format, placeholder_image, render_layout
from assets.models import (
    Asset,
    AuditEvent,
    Brand,
    BrandFont,
    Layout,
    ReferenceImage,
    Rendition,
)
from assets.selectors import brand_fonts, brand_logo_image
from brandforge.images import (
    CONTENT_TYPES,
    EXTENSIONS,
    encode_image,
    provenance_xmp,
    sha256_hex,
    thumbnail,
)
from brandforge.storage import publish_storage, storage_put


def _key_dir(brand: Brand, key: str) -> str:
    # Storage names derive from the asset key, so a retried task writes the same object again
    # instead of leaving an orphan beside it.
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return f"assets/{brand.uid}/{digest}"


def asset_create(
    *,
    brand: Brand,
    key: str,
    image: Image.Image,
    recipe: Mapping,
    parent: Asset | None = None,
    step: str = "",
    file_format: str = "PNG",
) -> tuple[Asset, bool]:
    """Store `image` as the asset named `key`, or return the asset a previous attempt stored."""
    existing = Asset.objects.filter(key=key).first()
    if existing is not None:
        return existing, False

    # Masters and intermediate nodes stay in our storage, lossless; speed matters more there.
    data = encode_image(image, fmt=file_format, fast=True)
    folder = _key_dir(brand, key)
    name = storage_put(
        f"{folder}/image.{EXTENSIONS[file_format]}", data, content_type=CONTENT_TYPES[file_format]
    )
    thumb = storage_put(
        f"{folder}/thumb.webp",
        encode_image(thumbnail(image), fmt="WEBP", quality=80),
        content_type=CONTENT_TYPES["WEBP"],
    )
    asset = Asset(
        brand=brand,
        parent=parent,
        key=key,
        file=name,
        thumbnail=thumb,
        width=image.width,
        height=image.height,
        file_format=file_format,
        size_bytes=len(data),
        sha256=sha256_hex(data),
        step=step,
        recipe=dict(recipe),
    )
    # Field checks only: uniqueness, the brand and the constraints are the database's job (an
    # IntegrityError below), which saves four queries per asset on the hot path.
    asset.full_clean(
        exclude=["file", "thumbnail", "brand", "parent"],
        validate_unique=False,
        validate_constraints=False,
    )
    try:
        with transaction.atomic():
            asset.save()
    except IntegrityError:
        # Another delivery of the same task won the race; it stored the same bytes, same name.
        return Asset.objects.get(key=key), False
    return asset, True


RENDITION_THUMB = 240  # px, long side: a review card shows several side by side


@dataclass(frozen=True)
class RenditionSpec:
    format_name: str
    spec: str
    width: int
    height: int
    file_format: str
    quality: int
    dpi: int | None = None


def recipe_digest(recipe: Mapping) -> str:
    """A stable digest of a recipe (canonical JSON), to tell two recipes apart at a glance."""
    canonical = json.dumps(recipe, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def rendition_create(*, asset: Asset, spec: RenditionSpec, image: Image.Image) -> Rendition:
    """Encode `image` for `spec` and record it, once per (asset, spec).

    The file says it was made by a model (IPTC DigitalSourceType) and names the asset whose
    recipe made it. A second call for the same spec writes the same bytes to the same name and
    returns the rendition already recorded; callers that render in bulk skip known specs first.
    """
    data = encode_image(
        image,
        fmt=spec.file_format,
        quality=spec.quality,
        dpi=spec.dpi,
        xmp=provenance_xmp(recipe_id=str(asset.uid), recipe_hash=recipe_digest(asset.recipe)),
    )
    ext = EXTENSIONS[spec.file_format]
    spec_digest = hashlib.sha256(spec.spec.encode()).hexdigest()[:8]
    name = storage_put(
        f"{_key_dir(asset.brand, asset.key)}/{spec.format_name}-{spec_digest}.{ext}",
        data,
        content_type=CONTENT_TYPES[spec.file_format],
    )
    thumb = storage_put(
        f"{_key_dir(asset.brand, asset.key)}/{spec.format_name}-{spec_digest}-thumb.webp",
        encode_image(thumbnail(image, size=RENDITION_THUMB), fmt="WEBP", quality=75),
        content_type=CONTENT_TYPES["WEBP"],
    )
    rendition = Rendition(
        asset=asset,
        spec=spec.spec,
        format_name=spec.format_name,
        width=spec.width,
        height=spec.height,
        file_format=spec.file_format,
        file=name,
        thumbnail=thumb,
        size_bytes=len(data),
        sha256=sha256_hex(data),
    )
    try:
        with transaction.atomic():
            rendition.save()
    except IntegrityError:
        return Rendition.objects.get(asset=asset, spec=spec.spec)
    return rendition


def audit_record(
    *,
    action: str,
    source: str,
    actor=None,
    asset: Asset | None = None,
    review_item_id: int | None = None,
    from_status: str = "",
    to_status: str = "",
    reason: str = "",
    data: Mapping | None = None,
) -> AuditEvent:
    """Append one event to the audit trail; callers write it in the transition's transaction."""
    return AuditEvent.objects.create(
        action=action,
        source=source,
        actor=actor if actor is not None and actor.is_authenticated else None,
        asset=asset,
        review_item_id=review_item_id,
        from_status=from_status,
        to_status=to_status,
        reason=reason,
        data=dict(data or {}),
    )


def asset_set_status(
    *,
    asset: Asset,
    to: Asset.Status,
    from_status: Asset.Status,
    source: str = AuditEvent.Source.WORKER,
    actor=None,
    reason: str = "",
) -> bool:
    """Move the asset from `from_status` to `to`; return whether it moved.

    The move and its audit event commit together, and only the caller whose conditional update
    changed the row writes the event, so a transition is audited exactly once however many
    workers or editors race on it.
    """
    with transaction.atomic():
        moved = Asset.objects.filter(pk=asset.pk, status=from_status).update(
            status=to, updated_at=timezone.now()
        )
        if not moved:
            return False
        audit_record(
            action="asset_status",
            source=source,
            actor=actor,
            asset=asset,
            from_status=from_status,
            to_status=to,
            reason=reason,
        )
    asset.status = to
    return True


def asset_publish(*, asset: Asset, prefix: str, metadata: Mapping[str, str]) -> list[Rendition]:
    """Copy every rendition of `asset` to the publish storage under `prefix`.

    Names follow `<prefix>/<format>.<ext>`; writing them again replaces the same objects, so a
    second delivery of the publishing task is harmless.
    """
    target = publish_storage()
    published = []
    for rendition in asset.renditions.order_by("format_name"):
        with rendition.file.open("rb") as fh:
            data = fh.read()
        target_name = f"{prefix}/{rendition.format_name}.{EXTENSIONS[rendition.file_format]}"
        name = storage_put(
            target_name,
            data,
            content_type=CONTENT_TYPES[rendition.file_format],
            metadata={**metadata, "format": rendition.format_name, "sha256": rendition.sha256},
            storage=target,
        )
        if not rendition.published_at or rendition.published_name != name:
            rendition.published_name = name
            rendition.published_at = timezone.now()
            rendition.save(update_fields=["published_name", "published_at", "updated_at"])
        published.append(rendition)
    return published


_FOCAL_FIELDS = ("focal_x", "focal_y")


def asset_set_focal_point(*, asset: Asset, focal_x: float | None, focal_y: float | None) -> Asset:
    """Set (or clear, with None) the hand-picked focal point that crops centre on."""
    asset.focal_x, asset.focal_y = focal_x, focal_y
    others = [field.name for field in Asset._meta.fields if field.name not in _FOCAL_FIELDS]
    asset.full_clean(exclude=others, validate_unique=False)
    asset.save(update_fields=[*_FOCAL_FIELDS, "updated_at"])
    return asset


def brand_font_create(*, brand: Brand, family: str, data: bytes) -> BrandFont:
    """Store a TrueType/OpenType font for the brand under ``family``; bad bytes raise first."""
    ext = font_format(data)
    font = BrandFont(brand=brand, family=family)
    font.full_clean(exclude=["file"])
    with transaction.atomic():
        font.file.save(f"font.{ext}", ContentFile(data), save=False)
        font.save()
    return font


def layout_create(
    *,
    brand: Brand,
    name: str,
    width: int,
    height: int,
    layers: list,
    sample_values: Mapping[str, str] | None = None,
) -> Layout:
    layout = Layout(
        brand=brand,
        name=name,
        width=width,
        height=height,
        layers=layers,
        sample_values=dict(sample_values or {}),
    )
    layout.full_clean()
    layout.save()
    return layout


def layout_preview(
    *,
    layout: Layout,
    width: int | None = None,
    height: int | None = None,
    image: Image.Image | None = None,
) -> bytes:
    """Render ``layout`` with its sample values as PNG bytes, at its own size by default.

    Give ``width`` or ``height`` alone to keep the layout's aspect. Without ``image`` a neutral
    gradient stands in for the picture.
    """
    if width is None and height is None:
        width, height = layout.width, layout.height
    elif height is None:
        height = max(1, round(width * layout.height / layout.width))
    elif width is None:
        width = max(1, round(height * layout.width / layout.height))
    brand = layout.brand
    rendered = render_layout(
        layout.layers,
        image=image if image is not None else placeholder_image(width, height),
        width=width,
        height=height,
        design_size=(layout.width, layout.height),
        variables=layout.sample_values,
        palette=brand.palette,
        fonts=brand_fonts(brand),
        logo=brand_logo_image(brand),
    )
    return encode_image(rendered, fmt="PNG")


def reference_image_set_fingerprint(*, reference: ReferenceImage, fingerprint: Mapping) -> None:
    """Record a reference image's fingerprint (computed by the review stage's scorers)."""
    ReferenceImage.objects.filter(pk=reference.pk).update(
        fingerprint=dict(fingerprint), updated_at=timezone.now()
    )
    reference.fingerprint = dict(fingerprint)
