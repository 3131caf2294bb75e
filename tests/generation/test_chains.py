"""Tests which refinement chain a job runs, and how a chain is checked when it is saved."""

import pytest
from django.urls import reverse

from generation.models import GenerationJob, RefinementChain, RoutingRule
from generation.services.refine import chain_for
from tests.factories import BrandFactory, CampaignFactory, campaign_with_briefs

pytestmark = pytest.mark.django_db


def job_for(campaign, rule=None):
    brief = campaign.briefs.first()
    return GenerationJob(campaign=campaign, brief=brief, rule=rule, idempotency_key="k")


def step_names(job):
    return [entry["step"] for entry in chain_for(job=job)]


def test_the_most_specific_chain_wins():
    brand = BrandFactory(with_logo=True)
    campaign = campaign_with_briefs(brand=brand, count=1)
    other = campaign_with_briefs(brand=brand, count=1)
    rule = RoutingRule.objects.create(
        name="r", refinement_chain=[{"step": "upscale", "params": {"scale": 2}}]
    )
    assert step_names(job_for(campaign)) == ["watermark"]  # a logo and nothing else: watermark
    RefinementChain.objects.create(brand=brand, steps=[{"step": "face_restore"}])
    assert step_names(job_for(campaign)) == ["face_restore"]
    assert step_names(job_for(campaign, rule)) == ["upscale"]
    RefinementChain.objects.create(brand=brand, campaign=campaign, steps=[])
    assert step_names(job_for(campaign, rule)) == []  # the campaign says: no refinement
    assert step_names(job_for(other, rule)) == ["upscale"]


def test_a_brand_without_logo_and_chains_is_not_refined():
    campaign = campaign_with_briefs(brand=BrandFactory(with_logo=False), count=1)
    assert chain_for(job=job_for(campaign)) == []


def test_saving_a_chain_in_the_admin_names_the_bad_step_and_parameter(admin_client):
    brand = BrandFactory()
    url = reverse("admin:generation_refinementchain_add")
    response = admin_client.post(
        url,
        {
            "brand": brand.pk,
            "steps": '[{"step": "upscale", "params": {"scale": 20}}, {"step": "sparkle"}]',
        },
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["steps"]
    assert "step 1: upscale: 'scale' must be between 1 and 8" in errors
    assert any(e.startswith("step 2: unknown step 'sparkle'") for e in errors)
    assert not RefinementChain.objects.exists()


def test_a_campaign_chain_must_belong_to_the_brand(admin_client):
    campaign = CampaignFactory()
    response = admin_client.post(
        reverse("admin:generation_refinementchain_add"),
        {"brand": BrandFactory().pk, "campaign": campaign.pk, "steps": "[]"},
    )
    assert "The campaign belongs to another brand." in str(response.context["adminform"].errors)
    assert not RefinementChain.objects.exists()


def test_the_chain_admin_lists_the_available_steps(admin_client):
    response = admin_client.get(reverse("admin:generation_refinementchain_add"))
    body = response.content.decode()
    assert "upscale</b> v1" in body and "watermark</b> v1" in body
