"""Tests with a Hypothesis state machine that every review transition is audited exactly once.

Two editors claim, approve, reject and regenerate four items through the services, bulk
decisions and the admin action, and workers publish, in any order Hypothesis finds. A simple
model says what must succeed; after every step, each item's and asset's audit trail must be one
unbroken chain ending at its current status, with one event per transition.
"""

import itertools
import uuid

import pytest
from django.test import Client
from django.urls import reverse
from django_q.signing import SignedPackage
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from PIL import Image

from assets.models import Asset, AuditEvent
from assets.services import asset_create, audit_record
from brandforge.errors import ApplicationError
from campaigns.models import Brief
from review.models import ReviewItem
from review.services import (
    review_item_approve,
    review_item_claim,
    review_item_publish,
    review_item_regenerate,
    review_item_reject,
    review_items_decide,
)
from tests.factories import campaign_with_briefs

pytestmark = pytest.mark.django_db(transaction=True)

ITEMS = 4
PUBLISH = "review.tasks.review_item_publish"


def pending_item(campaign, brief) -> ReviewItem:
    """An item as the review stage leaves it, made directly (the pipeline is tested elsewhere)."""
    asset, _ = asset_create(
        brand=campaign.brand,
        key=f"stateful:{uuid.uuid4()}",
        image=Image.new("RGB", (32, 32), (200, 40, 40)),
        recipe={"prompt": "a mug", "seed": 1, "variant": 0, "steps": []},
    )
    Asset.objects.filter(pk=asset.pk).update(status=Asset.Status.IN_REVIEW)
    Brief.objects.filter(pk=brief.pk).update(status=Brief.Status.IN_REVIEW)
    item = ReviewItem.objects.create(asset=asset, campaign=campaign, brief=brief)
    audit_record(
        action="review_item_created",
        source="worker",
        asset=asset,
        review_item_id=item.pk,
        to_status="pending",
    )
    return item


def chain_ok(events, start: str, final: str) -> bool:
    chain = [(start, start), *((e.from_status, e.to_status) for e in events)]
    linked = all(after == before for (_, before), (after, _) in itertools.pairwise(chain))
    return linked and chain[-1][1] == final


def test_any_sequence_of_decisions_is_audited_once_per_transition(member, queue):
    editors = [member("Creative editor", "erin"), member("Creative editor", "omar")]
    clients = []
    for editor in editors:
        client = Client()
        client.force_login(editor)
        clients.append(client)
    changelist = reverse("admin:review_reviewitem_changelist")

    class Review(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            campaign = campaign_with_briefs(count=ITEMS)
            self.items = [pending_item(campaign, brief) for brief in campaign.briefs.all()]
            self.status = ["pending"] * ITEMS
            self.claim: list[int | None] = [None] * ITEMS
            self.transitions = [1] * ITEMS  # review_item_created

        def _free(self, i: int, who: int) -> bool:
            return self.status[i] == "pending" and self.claim[i] in (None, who)

        def _decided(self, i: int, to: str) -> None:
            self.status[i], self.claim[i] = to, None
            self.transitions[i] += 1

        def _item(self, i: int) -> ReviewItem:
            return ReviewItem.objects.select_related("asset__brand", "brief").get(
                pk=self.items[i].pk
            )

        @rule(i=st.integers(0, ITEMS - 1), who=st.integers(0, 1))
        def claim(self, i, who):
            allowed = self._free(i, who)
            try:
                review_item_claim(item=self._item(i), actor=editors[who])
            except ApplicationError:
                assert not allowed
            else:
                assert allowed
                self.claim[i] = who

        @rule(
            i=st.integers(0, ITEMS - 1),
            who=st.integers(0, 1),
            decision=st.sampled_from(["approve", "reject", "regenerate"]),
        )
        def decide(self, i, who, decision):
            allowed = self._free(i, who)
            decide = {
                "approve": lambda item: review_item_approve(item=item, actor=editors[who]),
                "reject": lambda item: review_item_reject(
                    item=item, actor=editors[who], reason="Off-brand"
                ),
                "regenerate": lambda item: review_item_regenerate(item=item, actor=editors[who]),
            }[decision]
            try:
                decide(self._item(i))
            except ApplicationError:
                assert not allowed
            else:
                assert allowed
                to = {"approve": "approved", "reject": "rejected"}.get(decision, "regenerated")
                self._decided(i, to)

        @rule(picked=st.sets(st.integers(0, ITEMS - 1), min_size=1), who=st.integers(0, 1))
        def bulk_approve(self, picked, who):
            ids = [self.items[i].pk for i in sorted(picked)]
            results = review_items_decide(item_ids=ids, action="approve", actor=editors[who])
            for i, result in zip(sorted(picked), results, strict=True):
                assert result.ok == self._free(i, who), result.message
                if result.ok:
                    self._decided(i, "approved")

        @rule(i=st.integers(0, ITEMS - 1), who=st.integers(0, 1))
        def admin_reject(self, i, who):
            allowed = self._free(i, who)
            clients[who].post(
                changelist,
                {"action": "reject", "_selected_action": [self.items[i].pk], "reason": "Blurry"},
            )
            if allowed:
                self._decided(i, "rejected")

        @rule()
        def workers_publish(self):
            # Only the publishing tasks: regenerations' generation jobs are not this test's.
            while queue.broker.queue_size():
                for ack_id, payload in queue.broker.dequeue() or []:
                    task = SignedPackage.loads(payload)
                    if task["func"] == PUBLISH:
                        review_item_publish(item_id=task["args"][0])
                    queue.broker.acknowledge(ack_id)
            for i in range(ITEMS):
                if self.status[i] == "approved":
                    self._decided(i, "published")

        @invariant()
        def every_transition_has_exactly_one_event(self):
            for i, item in enumerate(self.items):
                current = ReviewItem.objects.select_related("asset").get(pk=item.pk)
                assert current.status == self.status[i]
                events = AuditEvent.objects.filter(review_item_id=item.pk).order_by("id")
                assert events.count() == self.transitions[i]
                assert chain_ok(events, "", current.status)
                moves = AuditEvent.objects.filter(
                    asset=current.asset, action="asset_status"
                ).order_by("id")
                assert chain_ok(moves, "in_review", current.asset.status)

    run_state_machine_as_test(
        Review,
        settings=settings(
            max_examples=25,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
            derandomize=True,
        ),
    )
