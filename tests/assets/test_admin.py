"""Tests the brand admin: bad palettes and uploads get a clear error on the form, nothing saved."""

import struct
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from assets.models import Brand
from tests.factories import png_bytes

pytestmark = pytest.mark.django_db


def bomb_png(width=30_000, height=30_000) -> bytes:
    """A tiny PNG whose header claims a huge canvas (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def brand_post(**overrides) -> dict:
    data = {
        "name": "Acme",
        "slug": "acme",
        "palette": "#0B3D91, #FC3D21",
        "fonts": "[]",
        "watermark_anchor": "bottom-right",
        "watermark_margin": "0.04",
        "watermark_opacity": "0.8",
        "watermark_scale": "0.18",
        "style_tokens": "[]",
        "negative_prompt": "",
    }
    for prefix in ("lora_profiles", "seed_profiles", "brand_fonts", "reference_images"):
        data |= {f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"}
    data.update(overrides)
    return data


def test_a_brand_is_created_from_the_admin_with_its_logo_re_encoded(admin_client):
    polyglot = png_bytes() + b"<html><script>alert(1)</script></html>"
    logo = SimpleUploadedFile("logo.png", polyglot, content_type="text/html")
    response = admin_client.post(reverse("admin:assets_brand_add"), brand_post(logo=logo))
    assert response.status_code == 302, response.content.decode()[:2000]
    brand = Brand.objects.get(slug="acme")
    assert brand.palette == ["#0B3D91", "#FC3D21"]
    assert brand.logo.name.endswith(".png") and "logo" not in brand.logo.name
    stored = brand.logo.read()
    assert b"<script>" not in stored
    brand.logo.open()
    assert Image.open(brand.logo).size == (64, 64)


@pytest.mark.parametrize(
    ("palette", "message"),
    [
        ("#0B3D91, #12345G", "&#x27;#12345G&#x27; is not a hex colour"),
        ("navy", "&#x27;navy&#x27; is not a hex colour"),
        ("", "This field is required"),
    ],
    ids=["bad_digit_case", "name_case", "empty_case"],
)
def test_an_invalid_palette_is_reported_on_the_form(admin_client, palette, message):
    response = admin_client.post(reverse("admin:assets_brand_add"), brand_post(palette=palette))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Brand.objects.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is not an image at all", "not a recognised image"),
        (bomb_png(), "too many pixels"),
    ],
    ids=["text_case", "bomb_case"],
)
def test_a_bad_logo_is_reported_on_the_form(admin_client, content, message):
    logo = SimpleUploadedFile("logo.png", content, content_type="image/png")
    response = admin_client.post(reverse("admin:assets_brand_add"), brand_post(logo=logo))
    assert response.status_code == 200
    assert message in response.content.decode().lower()
    assert not Brand.objects.exists()
