"""Provides reused reads of the brand kit and the asset store."""

from django.db.models import QuerySet
from PIL import Image

from assets.models import Asset, Brand, BrandFont
from brandforge.images import open_untrusted_image


def file_open_image(field_file) -> Image.Image:
    """Decode a stored image; stored files are still decoded with the untrusted-input guards."""
    with field_file.open("rb") as fh:
        return open_untrusted_image(fh.read(), formats=("PNG", "JPEG", "WEBP", "AVIF"))


def brand_logo_image(brand: Brand) -> Image.Image | None:
    return file_open_image(brand.logo) if brand.logo else None


def asset_lineage(asset: Asset) -> list[Asset]:
    """Return the asset's ancestors, root first, ending with the asset itself."""
    chain = [asset]
    while chain[-1].parent_id:
        chain.append(Asset.objects.select_related("parent").get(pk=chain[-1].parent_id))
    return list(reversed(chain))


def asset_tree(asset: Asset) -> tuple[Asset, dict[int | None, list[Asset]]]:
    """The whole lineage tree ``asset`` belongs to: its root, and each node's children (one
    query per generation of the tree; refinement chains are a few steps deep)."""
    root = asset_lineage(asset)[0]
    children: dict[int | None, list[Asset]] = {}
    level = [root.pk]
    while level:
        nodes = list(Asset.objects.filter(parent_id__in=level).order_by("created_at", "pk"))
        for node in nodes:
            children.setdefault(node.parent_id, []).append(node)
        level = [node.pk for node in nodes]
    return root, children


def asset_list(*, brand: Brand | None = None) -> QuerySet[Asset]:
    qs = Asset.objects.select_related("brand")
    return qs.filter(brand=brand) if brand else qs


def brand_fonts(brand: Brand) -> dict[str, bytes]:
    """Return the brand's font files by family, read from storage (one query)."""
    fonts = {}
    for font in BrandFont.objects.filter(brand=brand).only("family", "file"):
        with font.file.open("rb") as fh:
            fonts[font.family] = fh.read()
    return fonts
