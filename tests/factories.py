"""Provides factory_boy factories and small in-memory images for the whole suite."""

import io

import factory
from django.core.files.base import ContentFile
from PIL import Image, ImageDraw

from assets.models import Brand, BrandFont, Layout, LoraProfile, SeedProfile
from campaigns.models import Campaign, ChannelFormat, PromptTemplate
from campaigns.services import brief_create, prompt_template_version_create


def png_bytes(size=(64, 64), colour=(200, 30, 30, 255), mode="RGBA") -> bytes:
    image = Image.new(mode, size, colour)
    ImageDraw.Draw(image).ellipse(
        [4, 4, size[0] - 4, size[1] - 4], fill=(255, 255, 255, 255)[: len(mode)]
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class BrandFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Brand
        django_get_or_create = ["slug"]

    name = factory.Sequence(lambda n: f"Brand {n}")
    slug = factory.Sequence(lambda n: f"brand-{n}")
    palette = ["#0B3D91", "#FC3D21", "#F5F5F0"]
    style_tokens = ["clean studio light"]
    negative_prompt = "blurry, watermark text"

    class Params:
        with_logo = factory.Trait(
            logo=factory.LazyFunction(lambda: ContentFile(png_bytes(), name="logo.png"))
        )


class SeedProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SeedProfile

    brand = factory.SubFactory(BrandFactory)
    name = factory.Sequence(lambda n: f"seeds {n}")
    base_seed = 1234


class LoraProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LoraProfile

    brand = factory.SubFactory(BrandFactory)
    name = factory.Sequence(lambda n: f"lora {n}")
    path = "https://example.invalid/brand-style.safetensors"
    scale = 0.8


class PromptTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PromptTemplate

    brand = factory.SubFactory(BrandFactory)
    name = factory.Sequence(lambda n: f"template {n}")


def template_version(
    brand=None, body="A {{product}} on a table for {{brand}}", variables=("product",)
):
    template = PromptTemplateFactory(brand=brand or BrandFactory())
    return prompt_template_version_create(template=template, body=body, variables=list(variables))


class ChannelFormatFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ChannelFormat
        django_get_or_create = ["name"]

    name = "square"
    width = 96
    height = 96
    file_format = "WEBP"
    quality = 80


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    brand = factory.SubFactory(BrandFactory)
    name = factory.Sequence(lambda n: f"campaign {n}")
    locales = ["en-GB", "de-DE"]


def campaign_with_briefs(*, brand=None, count=2, formats=None, **campaign_kwargs) -> Campaign:
    """A draft campaign with `count` briefs and the given channel formats (square + story)."""
    brand = brand or BrandFactory(with_logo=True)
    campaign = CampaignFactory(brand=brand, **campaign_kwargs)
    if formats is None:
        formats = [
            ChannelFormatFactory(name="square", width=96, height=96, file_format="WEBP"),
            ChannelFormatFactory(name="story", width=54, height=96, file_format="JPEG"),
        ]
    campaign.formats.set(formats)
    version = template_version(brand=brand)
    for n in range(count):
        brief_create(
            campaign=campaign,
            template_version=version,
            variables={"product": f"mug {n}"},
            locale=campaign.locales[n % len(campaign.locales)],
            external_ref=f"ref-{n}",
        )
    return campaign


# --- brand fonts and layouts (assets/layouts.py) ---------------------------------------------

# A real TrueType font for tests; Debian ships it in fonts-dejavu-core (see .ci/run).
TEST_FONT_PATH = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def font_bytes() -> bytes:
    """The bytes of a real TrueType font, or a clear failure naming the package to install."""
    try:
        with open(TEST_FONT_PATH, "rb") as fh:
            return fh.read()
    except FileNotFoundError as exc:
        raise RuntimeError(
            f"{TEST_FONT_PATH} is missing: install the Debian package fonts-dejavu-core"
        ) from exc


class BrandFontFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BrandFont

    brand = factory.SubFactory(BrandFactory)
    family = factory.Sequence(lambda n: f"Sans {n}")
    file = factory.LazyFunction(lambda: ContentFile(font_bytes(), name="font.ttf"))


class LayoutFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Layout

    brand = factory.SubFactory(BrandFactory)
    name = factory.Sequence(lambda n: f"layout {n}")
    width = 120
    height = 80
    layers = factory.LazyFunction(
        lambda: [
            {"type": "image"},
            {"type": "text", "box": [8, 8, 112, 48], "text": "{{headline}}", "size": 16},
        ]
    )
    sample_values = factory.LazyFunction(lambda: {"headline": "Summer sale"})
