"""Tests the template admin: slots are checked on the form, versions are immutable."""

import pytest
from django.urls import reverse

from campaigns.models import PromptTemplate, PromptTemplateVersion
from tests.factories import BrandFactory

pytestmark = pytest.mark.django_db


def template_post(brand, body, variables='["product"]', total=1):
    return {
        "brand": brand.pk,
        "name": "Hero shot",
        "description": "",
        "versions-TOTAL_FORMS": str(total),
        "versions-INITIAL_FORMS": "0",
        "versions-0-body": body,
        "versions-0-variables": variables,
        "versions-0-negative_prompt": "",
    }


def test_a_template_with_an_unknown_slot_gets_a_form_error_and_nothing_is_saved(admin_client):
    brand = BrandFactory()
    response = admin_client.post(
        reverse("admin:campaigns_prompttemplate_add"), template_post(brand, "A {{prodcut}} mug")
    )
    assert response.status_code == 200
    assert "Unknown slot(s) {{prodcut}}" in response.content.decode()
    assert not PromptTemplate.objects.exists()
    assert not PromptTemplateVersion.objects.exists()


def test_saving_a_template_creates_version_one_and_old_versions_stay_read_only(admin_client):
    brand = BrandFactory()
    response = admin_client.post(
        reverse("admin:campaigns_prompttemplate_add"), template_post(brand, "A {{product}} mug")
    )
    assert response.status_code == 302
    version = PromptTemplateVersion.objects.get()
    assert (version.number, version.body) == (1, "A {{product}} mug")
    assert len(version.content_hash) == 64

    page = admin_client.get(
        reverse("admin:campaigns_prompttemplate_change", args=[version.template_id])
    ).content.decode()
    assert 'name="versions-0-body"' not in page  # the saved version is shown, not editable
