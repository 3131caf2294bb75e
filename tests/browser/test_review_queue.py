"""Drives the review queue in Chromium as a creative editor: keys, dialogs, claims, the audit."""

import pytest
from django.contrib.auth.models import Group, Permission

from assets.models import AuditEvent
from campaigns.services import campaign_launch
from generation.models import GenerationJob
from review.models import ReviewItem
from review.roles import apply_roles
from tests.browser.helpers import admin_login, name_page, shot
from tests.factories import campaign_with_briefs

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "Review-queue-2026!"
QUEUE = "/admin/review/reviewitem/queue/"


@pytest.fixture
def editors(django_user_model):
    apply_roles(Group=Group, Permission=Permission)
    group = Group.objects.get(name="Creative editor")
    made = []
    for name in ("erin", "omar"):
        user = django_user_model.objects.create_user(name, password=PASSWORD, is_staff=True)
        user.groups.add(group)
        made.append(user)
    return made


@pytest.fixture
def waiting(queue):
    campaign = campaign_with_briefs(count=3)
    campaign_launch(campaign=campaign)
    queue.run()
    assert ReviewItem.objects.filter(status="pending").count() == 3
    return campaign


def card_ids(page) -> list[int]:
    return [
        int(i) for i in page.locator(".bf-card").evaluate_all("cs => cs.map(c => c.dataset.item)")
    ]


def current(page) -> int:
    return int(page.locator(".bf-card.is-current").get_attribute("data-item"))


def wait_decided(page, item_id: int) -> None:
    page.locator(f"#item-{item_id}").wait_for(state="hidden")


def test_an_editor_approves_rejects_and_regenerates_with_the_keyboard(
    page, live_server, editors, waiting
):
    erin = editors[0]
    admin_login(page, live_server, erin, PASSWORD)
    page.goto(f"{live_server.url}{QUEUE}")
    first, second, third = card_ids(page)
    page.locator(".bf-card.is-current").wait_for()
    assert current(page) == first
    # The card in focus is claimed for this editor, and its brand's references are shown.
    page.wait_for_function("() => document.querySelector('.bf-refs:not([hidden])') !== null")
    assert ReviewItem.objects.get(pk=first).claimed_by == erin
    shot(page, "queue-loaded")

    page.keyboard.press("j")
    page.wait_for_function(f"() => document.querySelector('#item-{second}.is-current')")
    page.keyboard.press("k")
    page.wait_for_function(f"() => document.querySelector('#item-{first}.is-current')")

    page.keyboard.press("a")
    wait_decided(page, first)
    assert current(page) == second
    shot(page, "after-approve")

    page.keyboard.press("r")
    dialog = page.locator("#bf-reject-dialog")
    dialog.wait_for(state="visible")
    page.fill("#bf-reason", "Logo too small on the story format")
    shot(page, "reject-dialog")
    page.click("#bf-reject-confirm")
    wait_decided(page, second)

    page.keyboard.press("g")
    wait_decided(page, third)
    page.locator("#bf-status").filter(has_text="Regenerated").wait_for()
    shot(page, "after-regenerate")

    approved, rejected, regenerated = (ReviewItem.objects.get(pk=i) for i in card_ids(page))
    assert (approved.status, approved.decided_by) == ("approved", erin)
    assert (rejected.status, rejected.reason) == ("rejected", "Logo too small on the story format")
    assert regenerated.status == "regenerated"
    job = GenerationJob.objects.get(brief=regenerated.brief, variant=1)
    assert job.status == "queued" and job.history[0]["by"] == "editor"

    decisions = AuditEvent.objects.filter(actor=erin, action__startswith="review_")
    assert sorted(decisions.values_list("action", "source", "review_item_id")) == sorted(
        [
            ("review_approved", "admin", approved.pk),
            ("review_rejected", "admin", rejected.pk),
            ("review_regenerated", "admin", regenerated.pk),
        ]
    )
    assert page.locator("#bf-status").inner_text()


def test_edit_the_prompt_then_regenerate(page, live_server, editors, waiting):
    admin_login(page, live_server, editors[0], PASSWORD)
    page.goto(f"{live_server.url}{QUEUE}")
    page.locator(".bf-card.is-current").wait_for()
    item_id = current(page)
    page.keyboard.press("e")
    prompt = page.locator("#bf-prompt")
    prompt.wait_for(state="visible")
    assert prompt.input_value() == ReviewItem.objects.get(pk=item_id).asset.recipe["prompt"]
    prompt.fill("A teal ceramic mug on slate, seen from above")
    shot(page, "edit-dialog")
    page.click("#bf-edit-confirm")
    wait_decided(page, item_id)
    job = GenerationJob.objects.get(brief__review_items=item_id, variant=1)
    assert job.prompt_override == "A teal ceramic mug on slate, seen from above"


def test_a_second_editor_skips_the_claimed_card_and_bulk_approves_the_rest(
    page, chromium, live_server, editors, waiting
):
    erin, omar = editors
    admin_login(page, live_server, erin, PASSWORD)
    page.goto(f"{live_server.url}{QUEUE}")
    page.locator(".bf-card.is-current").wait_for()
    held = current(page)

    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    other = context.new_page()
    name_page(other, "test_review_queue--second-editor")
    try:
        admin_login(other, live_server, omar, PASSWORD)
        other.goto(f"{live_server.url}{QUEUE}")
        other.locator(".bf-card.is-current").wait_for()
        assert current(other) != held
        assert "Claimed by erin" in other.locator(f"#item-{held}").inner_text()
        shot(other, "second-editor")

        rest = [i for i in card_ids(other) if i != held]
        for item_id in rest:
            other.locator(f"#item-{item_id} .bf-check").check()
        other.click("[data-bulk=approve]")
        for item_id in rest:
            wait_decided(other, item_id)
    finally:
        name_page(other, None)
        context.close()
    assert ReviewItem.objects.get(pk=held).status == "pending"
    assert set(ReviewItem.objects.filter(pk__in=rest).values_list("status", flat=True)) == {
        "approved"
    }
    assert AuditEvent.objects.filter(actor=omar, action="review_approved").count() == 2
