"""Tests the layout admin (form errors, preview PNG and its permissions), font uploads and focus."""

import io
import json

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from assets.models import Asset, Brand, BrandFont, Layout
from assets.services import asset_create
from tests.assets.test_admin import brand_post
from tests.factories import BrandFactory, BrandFontFactory, LayoutFactory, font_bytes

pytestmark = pytest.mark.django_db


def preview_url(layout, **query):
    url = reverse("admin:assets_layout_preview", args=[layout.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def png_size(response) -> tuple[int, int]:
    assert response["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "PNG"
    return image.size


def staff(*permissions: str) -> User:
    user = User.objects.create_user("editor", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=permissions))
    return user


def layout_post(brand, **overrides) -> dict:
    data = {
        "brand": brand.pk,
        "name": "Story",
        "width": "1080",
        "height": "1920",
        "layers": json.dumps(
            [
                {"type": "image"},
                {"type": "text", "box": [80, 1500, 1000, 1700], "text": "{{headline}}"},
            ]
        ),
        "sample_values": json.dumps({"headline": "Summer sale"}),
    }
    return data | overrides


# --- preview ----------------------------------------------------------------------------------


def test_the_preview_is_a_png_at_the_layout_size_or_the_requested_one(admin_client):
    layout = LayoutFactory(brand=BrandFactory(with_logo=True))

    assert png_size(admin_client.get(preview_url(layout))) == (120, 80)
    assert png_size(admin_client.get(preview_url(layout, w=240, h=160))) == (240, 160)
    assert png_size(admin_client.get(preview_url(layout, w=60))) == (60, 40)
    assert png_size(admin_client.get(preview_url(layout, h=160))) == (240, 160)


def test_the_preview_uses_the_sample_values(client):
    layout = LayoutFactory(sample_values={"headline": "Hello"})
    client.force_login(staff("view_layout"))
    with_text = client.get(preview_url(layout)).content
    layout.sample_values = {}
    layout.save()
    without_text = client.get(preview_url(layout)).content
    assert with_text != without_text


def test_a_staff_user_with_the_view_permission_gets_the_preview(client):
    layout = LayoutFactory()
    client.force_login(staff("view_layout"))
    response = client.get(preview_url(layout, w=100, h=50))
    assert response.status_code == 200
    assert png_size(response) == (100, 50)


def test_a_staff_user_without_the_permission_is_refused(client):
    layout = LayoutFactory()
    client.force_login(staff("view_brand"))
    assert client.get(preview_url(layout)).status_code == 403


def test_someone_who_is_not_staff_is_sent_to_the_login_page(client):
    layout = LayoutFactory()
    response = client.get(preview_url(layout))
    assert response.status_code == 302 and "/login/" in response["Location"]

    client.force_login(User.objects.create_user("visitor", password="pw"))
    response = client.get(preview_url(layout))
    assert response.status_code == 302 and "/login/" in response["Location"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"w": 5000, "h": 100}, "previews are 16 to 4096 px per side"),
        ({"h": 4000}, "width is 6000 px"),
        ({"w": 8}, "width is 8 px"),
        ({"w": "abc"}, "w must be a whole number of px"),
    ],
)
def test_a_preview_size_outside_the_caps_is_a_bad_request(admin_client, query, message):
    layout = LayoutFactory(width=1200, height=800)
    response = admin_client.get(preview_url(layout, **query))
    assert response.status_code == 400
    assert message in response.content.decode()


def test_an_unknown_layout_is_not_found(admin_client):
    response = admin_client.get(reverse("admin:assets_layout_preview", args=[999_999]))
    assert response.status_code in (302, 404)  # the admin redirects unknown ids to the index


# --- the layout form --------------------------------------------------------------------------


def test_a_layout_is_saved_and_its_change_page_shows_the_preview(admin_client):
    brand = BrandFactory()
    response = admin_client.post(
        reverse("admin:assets_layout_add"), layout_post(brand, sample_values="")
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    layout = Layout.objects.get()
    assert layout.layers[1]["text"] == "{{headline}}"
    assert layout.sample_values == {}

    page = admin_client.get(reverse("admin:assets_layout_change", args=[layout.pk]))
    assert preview_url(layout) in page.content.decode()
    assert "Layer reference" in page.content.decode()


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        (
            [{"type": "text", "box": [900, 40, 1200, 200], "text": "x"}],
            "layer 1 (text): box 900,40,1200,200 is outside the 1080×1920 canvas",
        ),
        (
            [{"type": "text", "box": [0, 0, 100, 100], "text": "x", "font": "Inter"}],
            "layer 1 (text): unknown font family &#x27;Inter&#x27;",
        ),
        ([{"type": "sticker"}], "layer 1: unknown type &#x27;sticker&#x27;"),
    ],
    ids=["box_outside", "unknown_font", "unknown_type"],
)
def test_a_bad_layout_is_reported_on_the_form_and_not_saved(admin_client, layers, message):
    response = admin_client.post(
        reverse("admin:assets_layout_add"),
        layout_post(BrandFactory(), layers=json.dumps(layers)),
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Layout.objects.exists()


def test_a_layout_may_use_a_font_uploaded_for_its_brand(admin_client):
    brand = BrandFactory()
    BrandFontFactory(brand=brand, family="Inter")
    layers = [{"type": "text", "box": [0, 0, 100, 100], "text": "x", "font": "Inter"}]
    response = admin_client.post(
        reverse("admin:assets_layout_add"), layout_post(brand, layers=json.dumps(layers))
    )
    assert response.status_code == 302
    assert png_size(admin_client.get(preview_url(Layout.objects.get()))) == (1080, 1920)


# --- brand fonts on the brand admin ---------------------------------------------------------


def brand_with_font(upload) -> dict:
    return brand_post(
        **{
            "brand_fonts-TOTAL_FORMS": "1",
            "brand_fonts-INITIAL_FORMS": "0",
            "brand_fonts-0-family": "Brand Sans",
            "brand_fonts-0-file": upload,
        }
    )


def test_a_real_font_is_uploaded_on_the_brand_and_stored_under_a_server_name(admin_client):
    upload = SimpleUploadedFile("My Font.ttf", font_bytes(), content_type="font/ttf")
    response = admin_client.post(reverse("admin:assets_brand_add"), brand_with_font(upload))
    assert response.status_code == 302, response.content.decode()[:3000]

    font = BrandFont.objects.get()
    assert font.family == "Brand Sans"
    assert font.file.name.endswith(f"{font.uid}.ttf") and "My Font" not in font.file.name
    assert font.file.read() == font_bytes()


def test_a_text_file_renamed_ttf_is_rejected_with_a_clear_message(admin_client):
    upload = SimpleUploadedFile("notes.ttf", b"Remember to buy milk.\n", content_type="font/ttf")
    response = admin_client.post(reverse("admin:assets_brand_add"), brand_with_font(upload))
    assert response.status_code == 200
    assert "“notes.ttf” is not a TrueType/OpenType font" in response.content.decode()
    assert not Brand.objects.exists() and not BrandFont.objects.exists()


# --- focal point on the asset admin ------------------------------------------------------------


def asset_post(**fields) -> dict:
    return {"renditions-TOTAL_FORMS": "0", "renditions-INITIAL_FORMS": "0"} | fields


def test_the_focal_point_is_edited_on_the_asset_admin(admin_client):
    image = Image.new("RGB", (64, 64), (10, 20, 30))
    asset, _ = asset_create(brand=BrandFactory(), key="a", image=image, recipe={"seed": 1})
    url = reverse("admin:assets_asset_change", args=[asset.pk])

    response = admin_client.post(url, asset_post(focal_x="0.2", focal_y="0.8"))
    assert response.status_code == 302
    asset.refresh_from_db()
    assert asset.focal_point == (0.2, 0.8)

    response = admin_client.post(url, asset_post(focal_x="0.2", focal_y=""))
    assert response.status_code == 200
    assert "Set both focal_x and focal_y" in response.content.decode()
    assert Asset.objects.get().focal_point == (0.2, 0.8)
