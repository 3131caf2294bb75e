"""Tests templates, briefs and launching: versions are immutable, briefs are not duplicated."""

import pytest
from django.core.exceptions import ValidationError
from django_q.models import OrmQ

from campaigns.models import Brief, Campaign
from campaigns.services import (
    brief_create,
    brief_render_prompt,
    campaign_launch,
    prompt_template_version_create,
)
from generation.models import GenerationJob
from tests.factories import (
    BrandFactory,
    CampaignFactory,
    ChannelFormatFactory,
    PromptTemplateFactory,
    campaign_with_briefs,
    template_version,
)

pytestmark = pytest.mark.django_db


def test_versions_are_numbered_and_the_same_wording_is_not_saved_twice():
    template = PromptTemplateFactory()
    v1 = prompt_template_version_create(template=template, body="A {{x}}", variables=["x"])
    v2 = prompt_template_version_create(template=template, body="Two {{x}}", variables=["x"])
    again = prompt_template_version_create(template=template, body="A {{x}}", variables=["x"])
    assert (v1.number, v2.number) == (1, 2)
    assert again.pk == v1.pk
    assert v1.content_hash != v2.content_hash


def test_a_template_with_an_unknown_slot_is_refused_and_nothing_is_saved():
    template = PromptTemplateFactory()
    with pytest.raises(ValidationError) as exc:
        prompt_template_version_create(template=template, body="A {{colour}} mug", variables=[])
    assert "{{colour}}" in str(exc.value)
    assert template.versions.count() == 0


def test_resubmitting_a_brief_returns_the_existing_one():
    campaign = CampaignFactory()
    version = template_version(brand=campaign.brand)
    first, created = brief_create(
        campaign=campaign,
        template_version=version,
        variables={"product": "mug"},
        locale="en-GB",
        external_ref="B-1",
    )
    again, created_again = brief_create(
        campaign=campaign,
        template_version=version,
        variables={"product": "mug"},
        locale="en-GB",
        external_ref="B-1",
    )
    same_content, created_third = brief_create(
        campaign=campaign, template_version=version, variables={"product": "mug"}, locale="en-GB"
    )
    assert (created, created_again, created_third) == (True, False, False)
    assert again.pk == first.pk == same_content.pk
    assert Brief.objects.count() == 1


def test_a_reused_external_ref_with_other_content_is_an_error():
    campaign = CampaignFactory()
    version = template_version(brand=campaign.brand)
    brief_create(
        campaign=campaign,
        template_version=version,
        variables={"product": "mug"},
        locale="en-GB",
        external_ref="B-1",
    )
    with pytest.raises(ValidationError, match="already exists"):
        brief_create(
            campaign=campaign,
            template_version=version,
            variables={"product": "cup"},
            locale="en-GB",
            external_ref="B-1",
        )


@pytest.mark.parametrize(
    ("variables", "locale", "message"),
    [
        ({}, "en-GB", "Missing variable(s): product"),
        ({"product": "mug", "extra": "x"}, "en-GB", "Unknown variable(s): extra"),
        ({"product": "mug"}, "fr-FR", "not one of the campaign's locales"),
    ],
    ids=["missing_case", "unknown_case", "locale_case"],
)
def test_invalid_briefs_are_refused(variables, locale, message):
    campaign = CampaignFactory()
    version = template_version(brand=campaign.brand)
    with pytest.raises(ValidationError) as exc:
        brief_create(
            campaign=campaign, template_version=version, variables=variables, locale=locale
        )
    assert message in str(exc.value)
    assert Brief.objects.count() == 0


def test_a_brief_cannot_use_another_brands_template():
    campaign = CampaignFactory()
    foreign = template_version(brand=BrandFactory())
    with pytest.raises(ValidationError, match="another brand"):
        brief_create(
            campaign=campaign, template_version=foreign, variables={"product": "x"}, locale="en-GB"
        )


def test_prompt_adds_brand_style_and_merges_negatives():
    campaign = campaign_with_briefs(count=1)
    brief = campaign.briefs.get()
    rendered = brief_render_prompt(brief=brief)
    assert rendered.prompt == f"A mug 0 on a table for {campaign.brand.name}, clean studio light"
    assert rendered.negative_prompt == "blurry, watermark text"
    assert rendered.template_hash == brief.template_version.content_hash


def test_launch_without_channel_formats_is_refused_and_nothing_is_queued():
    campaign = campaign_with_briefs(count=2, formats=[])
    with pytest.raises(ValidationError, match="no channel format"):
        campaign_launch(campaign=campaign)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT
    assert OrmQ.objects.count() == 0 and GenerationJob.objects.count() == 0


def test_launch_without_briefs_is_refused():
    campaign = CampaignFactory()
    campaign.formats.set([ChannelFormatFactory()])
    with pytest.raises(ValidationError, match="no briefs"):
        campaign_launch(campaign=campaign)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT


def test_launching_twice_is_refused():
    campaign = campaign_with_briefs(count=1)
    campaign_launch(campaign=campaign)
    with pytest.raises(ValidationError, match="cannot be launched"):
        campaign_launch(campaign=campaign)
