"""Tests renditions as the engine builds them: layouts per format, provenance, DPI, focal point."""

import io

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from PIL import Image

from assets.selectors import file_open_image
from brandforge.images import DIGITAL_SOURCE_TYPE, encode_image
from campaigns.models import FormatLayout
from campaigns.services import campaign_launch
from generation.models import GenerationJob, RefinementChain
from generation.pipeline.base import StepContext
from generation.pipeline.focal import find_focal_point
from generation.pipeline.looks import VignetteStep
from generation.services.refine import rendition_image
from tests.factories import BrandFactory, ChannelFormatFactory, LayoutFactory, campaign_with_briefs

pytestmark = pytest.mark.django_db(transaction=True)

GREEN, PURPLE = "#00C853", "#AA00FF"  # in no brand palette and no generated image
# A layout that paints a solid block in its top-left quarter: easy to find in the output.
BLOCK = [{"type": "image"}, {"type": "shape", "box": [0, 0, 60, 40], "colour": GREEN}]


def output_of(campaign):
    return GenerationJob.objects.get(campaign=campaign).output


def pixel(rendition, fx, fy):
    image = file_open_image(rendition.file).convert("RGB")
    return np.asarray(image)[int(image.height * fy), int(image.width * fx)].astype(int)


def close_to(rgb, hex_colour, tolerance=24):
    target = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
    return np.abs(rgb - target).max() <= tolerance


def test_each_format_gets_its_layout_the_campaign_choice_over_the_brand(queue):
    brand = BrandFactory()
    campaign = campaign_with_briefs(brand=brand, count=1)
    square, story = campaign.formats.order_by("name")
    brand_layout = LayoutFactory(brand=brand, layers=BLOCK)
    override = LayoutFactory(brand=brand, layers=[BLOCK[0], {**BLOCK[1], "colour": PURPLE}])
    FormatLayout.objects.create(brand=brand, channel_format=square, layout=brand_layout)
    FormatLayout.objects.create(brand=brand, channel_format=story, layout=brand_layout)
    FormatLayout.objects.create(
        brand=brand, channel_format=story, layout=override, campaign=campaign
    )
    campaign_launch(campaign=campaign)
    queue.run()

    renditions = {r.format_name: r for r in output_of(campaign).renditions.all()}
    assert close_to(pixel(renditions["square"], 0.1, 0.1), GREEN)  # the brand's layout
    assert close_to(pixel(renditions["story"], 0.1, 0.1), PURPLE)  # the campaign's own
    assert not close_to(pixel(renditions["square"], 0.9, 0.9), GREEN)  # outside the block


def test_text_in_a_layout_comes_from_the_brief(queue):
    brand = BrandFactory()
    campaign = campaign_with_briefs(brand=brand, count=1)
    square = campaign.formats.get(name="square")
    layers = [
        {"type": "shape", "box": [0, 0, 120, 80], "colour": "#FFFFFF"},
        {"type": "text", "box": [4, 4, 116, 76], "text": "{{product}}", "size": 30, "colour": 0},
    ]
    FormatLayout.objects.create(
        brand=brand, channel_format=square, layout=LayoutFactory(brand=brand, layers=layers)
    )
    campaign_launch(campaign=campaign)
    queue.run()

    rendition = output_of(campaign).renditions.get(format_name="square")
    ink = np.asarray(file_open_image(rendition.file).convert("L")) < 128
    assert 0.02 < ink.mean() < 0.5  # "mug 0" written in dark ink on white


def test_a_layout_of_another_brand_is_refused():
    fmt = ChannelFormatFactory()
    with pytest.raises(ValidationError, match="another brand"):
        FormatLayout(brand=BrandFactory(), channel_format=fmt, layout=LayoutFactory()).full_clean()


def test_renditions_say_they_are_ai_made_and_name_their_recipe(queue):
    campaign = campaign_with_briefs(count=1)
    campaign_launch(campaign=campaign)
    queue.run()

    asset = output_of(campaign)
    for rendition in asset.renditions.all():
        with Image.open(rendition.file.open("rb")) as image:
            packet = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp")
        packet = packet.decode() if isinstance(packet, bytes) else packet
        assert DIGITAL_SOURCE_TYPE in packet
        assert f'brandforge:RecipeId="{asset.uid}"' in packet
        assert "exif" not in image.info


def test_a_print_format_carries_its_dpi(queue):
    brand = BrandFactory()
    poster = ChannelFormatFactory(name="poster", width=80, height=112, file_format="JPEG", dpi=300)
    campaign = campaign_with_briefs(brand=brand, count=1, formats=[poster])
    campaign_launch(campaign=campaign)
    queue.run()

    rendition = output_of(campaign).renditions.get()
    with Image.open(rendition.file.open("rb")) as image:
        assert image.info["dpi"] == pytest.approx((300, 300))
        assert image.size == (80, 112)


def test_a_hand_set_focal_point_decides_the_crop_and_auto_keeps_the_subject():
    left_red = Image.new("RGB", (200, 100), (20, 20, 200))
    left_red.paste((220, 20, 20), (0, 0, 40, 100))
    ctx = StepContext(logo=None, palette=(), seed=0)

    def red_share(focal, fill):
        image = rendition_image(
            left_red, width=50, height=100, focal_point=focal, overlays=[], ctx=ctx, fill=fill
        )
        return (np.asarray(image)[:, :, 0] > 150).mean()

    assert red_share((0.1, 0.5), "crop") > 0.6
    assert red_share((0.9, 0.5), "crop") == 0  # cropped where the editor pointed
    assert red_share((0.9, 0.5), "auto") > 0.6  # auto will not cut the subject away


def test_rebuilding_renditions_after_a_focal_point_change_crops_there(queue):
    from assets.services import asset_set_focal_point
    from generation.services import job_renditions_rebuild

    campaign = campaign_with_briefs(brand=BrandFactory(with_logo=False), count=1)
    campaign_launch(campaign=campaign)
    queue.run()
    job = GenerationJob.objects.get(campaign=campaign)
    before = {r.format_name: r.sha256 for r in job.output.renditions.all()}
    master_image = file_open_image(job.master.file)
    # The side the automatic framing did not choose, so the new crop must differ.
    fx = 0.0 if find_focal_point(master_image)[0] > 0.5 else 1.0
    asset_set_focal_point(asset=job.master, focal_x=fx, focal_y=0.5)

    assert job_renditions_rebuild(job=job) == 2
    assert job_renditions_rebuild(job=job) == 0  # nothing changed since

    story = job.output.renditions.get(format_name="story")
    assert story.sha256 != before["story"]
    expected = rendition_image(
        master_image,
        width=story.width,
        height=story.height,
        focal_point=(fx, 0.5),
        overlays=[],
        ctx=StepContext(logo=None, palette=(), seed=0),
        fill="crop",
    )
    # Through the same codec, so only a different crop could differ.
    expected = Image.open(io.BytesIO(encode_image(expected, fmt="JPEG", quality=80)))
    got = np.asarray(file_open_image(story.file), dtype=float)
    assert np.abs(got - np.asarray(expected, dtype=float)).mean() < 1


def test_a_step_that_fails_fails_its_job_naming_the_step(queue, monkeypatch):
    def broken(self, image, params, ctx):
        raise ValueError("no luck")

    monkeypatch.setattr(VignetteStep, "run", broken)
    brand = BrandFactory()
    campaign = campaign_with_briefs(brand=brand, count=1)
    RefinementChain.objects.create(
        brand=brand, steps=[{"step": "film_grain"}, {"step": "vignette"}]
    )
    campaign_launch(campaign=campaign)
    queue.run()

    job = GenerationJob.objects.get(campaign=campaign)
    assert job.status == GenerationJob.Status.DEAD
    assert job.error == "step 2 (vignette): ValueError: no luck"
    assert job.attempts == 1  # not retried: the same input fails the same way


def test_the_asset_page_shows_the_whole_lineage_tree_with_thumbnails(queue, admin_client):
    brand = BrandFactory(with_logo=True)
    campaign = campaign_with_briefs(brand=brand, count=1)
    RefinementChain.objects.create(
        brand=brand, steps=[{"step": "film_grain"}, {"step": "watermark"}]
    )
    campaign_launch(campaign=campaign)
    queue.run()
    job = GenerationJob.objects.get(campaign=campaign)
    grain = job.output.parent

    page = admin_client.get(f"/admin/assets/asset/{grain.pk}/change/").content.decode()

    tree = page[page.index('<ul class="bf-tree">') :]
    for node, label in [
        (job.master, "generated"),
        (grain, "film_grain v1"),
        (job.output, "watermark v1"),
    ]:
        assert f'href="../../{node.pk}/change/"' in tree
        assert label in tree
        assert node.thumbnail.name in tree  # (S3 signs each URL differently)
    assert tree.index("generated") < tree.index("film_grain") < tree.index("watermark")
    assert f'<li class="bf-tree-here"><a href="../../{grain.pk}/change/"' in tree


def test_rebuild_renditions_is_an_admin_action_on_jobs(queue, admin_client):
    campaign = campaign_with_briefs(count=1)
    campaign_launch(campaign=campaign)
    queue.run()
    job = GenerationJob.objects.get(campaign=campaign)
    job.output.renditions.filter(format_name="story").delete()

    response = admin_client.post(
        "/admin/generation/generationjob/",
        {"action": "rebuild_renditions", "_selected_action": [job.pk]},
        follow=True,
    )
    assert "Rebuilt 1 rendition(s)." in response.content.decode()
    assert job.output.renditions.count() == 2


def test_a_print_format_must_be_a_file_type_that_carries_dpi():
    with pytest.raises(ValidationError, match="Only PNG and JPEG files carry a DPI"):
        ChannelFormatFactory.build(name="print", file_format="WEBP", dpi=300).full_clean()
