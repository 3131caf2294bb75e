"""Tests the audit trail (one event per transition, racing editors included), roles and export."""

import csv
import io
import itertools
import threading

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from assets.models import Asset, AuditEvent
from assets.services import audit_record
from brandforge.csvexport import FORMULA_TRIGGERS
from brandforge.errors import ApplicationError
from review.models import ReviewItem
from review.services import review_item_approve, review_item_regenerate, review_item_reject

pytestmark = pytest.mark.django_db(transaction=True)


def assert_trail_matches(events, final: str, *, start: str = "") -> None:
    """The events form one unbroken chain of transitions from `start` to the current status."""
    chain = [(start, start), *((e.from_status, e.to_status) for e in events)]
    assert len(chain) > 1, "no events"
    for (_, before), (after, _) in itertools.pairwise(chain):
        assert after == before, chain
    assert chain[-1][1] == final, chain


def test_every_transition_of_assets_and_items_is_audited_exactly_once(member, in_review, queue):
    in_review(4)
    editor = member("Creative editor", "erin")
    first, second, third, fourth = ReviewItem.objects.select_related("asset", "brief")
    review_item_approve(item=first, actor=editor)
    review_item_reject(item=second, actor=editor, reason="Logo too small")
    review_item_regenerate(item=third, actor=editor)
    queue.run(deliveries=2)  # every task twice: still one event per transition

    # Masters (generated → intermediate) and final assets (→ rendered → in review → …).
    for asset in Asset.objects.exclude(status="generated"):
        events = AuditEvent.objects.filter(asset=asset, action="asset_status").order_by("id")
        assert_trail_matches(events, asset.status, start="generated")
    for item in ReviewItem.objects.all():
        events = AuditEvent.objects.filter(review_item_id=item.pk).order_by("id")
        assert_trail_matches(events, item.status)
    assert ReviewItem.objects.get(pk=first.pk).status == "published"
    assert fourth.status == "pending"
    decided = AuditEvent.objects.filter(actor=editor).values_list("action", flat=True)
    assert sorted(decided) == [
        "asset_status",
        "asset_status",
        "asset_status",
        "review_approved",
        "review_regenerated",
        "review_rejected",
    ]


def test_a_second_editor_deciding_a_decided_item_is_refused_and_not_audited(member, in_review):
    in_review(1)
    item = ReviewItem.objects.select_related("asset__brand").get()
    erin, omar = member("Creative editor", "erin"), member("Creative editor", "omar")
    review_item_approve(item=item, actor=erin)
    with pytest.raises(ApplicationError, match="already approved by erin"):
        review_item_reject(item=ReviewItem.objects.get(pk=item.pk), actor=omar, reason="no")
    assert AuditEvent.objects.filter(review_item_id=item.pk).count() == 2  # created, approved


def race(targets):
    """Run each callable in its own thread, released together; return what each raised."""
    barrier = threading.Barrier(len(targets))
    outcomes = [None] * len(targets)

    def run(index, target):
        try:
            barrier.wait()
            target()
            outcomes[index] = "ok"
        except ApplicationError as exc:
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n, t)) for n, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.mark.services
def test_two_editors_racing_on_one_item_make_one_decision_one_event_one_publish(
    member, in_review, queue
):
    in_review(20)
    queue.purge()
    erin, omar = member("Creative editor", "erin"), member("Creative editor", "omar")
    for item in ReviewItem.objects.select_related("asset__brand", "brief"):
        outcomes = race(
            [
                lambda item=item: review_item_approve(item=item, actor=erin),
                lambda item=item: review_item_reject(item=item, actor=omar, reason="Too dark"),
            ]
        )
        assert sorted(o == "ok" for o in outcomes) == [False, True], outcomes
        loser = next(o for o in outcomes if o != "ok")
        assert "already" in str(loser)
        decisions = AuditEvent.objects.filter(
            review_item_id=item.pk, action__in=["review_approved", "review_rejected"]
        )
        assert decisions.count() == 1
        asset_moves = AuditEvent.objects.filter(asset=item.asset, from_status="in_review")
        assert asset_moves.count() == 1
    approved = ReviewItem.objects.filter(status="approved").count()
    assert queue.run() == approved  # one publish task per approval, none for the losers
    assert ReviewItem.objects.filter(status="published").count() == approved


def test_roles_are_enforced_in_the_admin(member, client_for, in_review):
    in_review(1)  # the admin shows actions only beside rows
    marketing = client_for(member("Marketing", "mia"))
    editor = client_for(member("Creative editor", "erin"))
    publisher = client_for(member("Publisher", "pat"))
    brand_add = reverse("admin:assets_brand_add")
    assert marketing.get(brand_add).status_code == 200
    assert editor.get(brand_add).status_code == 403
    assert publisher.get(brand_add).status_code == 403
    review_list = reverse("admin:review_reviewitem_changelist")
    assert "Approve selected" in editor.get(review_list).content.decode()
    assert "Approve selected" not in publisher.get(review_list).content.decode()
    assert "Publish approved items again" in publisher.get(review_list).content.decode()
    export = reverse("admin:assets_auditevent_export")
    assert editor.get(export).status_code == 403
    assert publisher.get(export).status_code == 200


def test_the_roles_migration_creates_the_four_groups():
    Group.objects.all().delete()
    executor = MigrationExecutor(connection)
    executor.migrate([("review", "0002_gate_rules_claims_audit_moved")])
    executor.loader.build_graph()
    executor.migrate([("review", "0003_roles")])
    groups = {group.name: group for group in Group.objects.prefetch_related("permissions")}
    assert set(groups) >= {"Marketing", "Creative editor", "Publisher", "Admin"}
    codes = {name: {p.codename for p in g.permissions.all()} for name, g in groups.items()}
    assert "decide_reviewitem" in codes["Creative editor"]
    assert "decide_reviewitem" not in codes["Marketing"]
    assert "change_brand" in codes["Marketing"] and "change_brand" not in codes["Publisher"]
    assert {"publish_reviewitem", "export_auditevent"} <= codes["Publisher"]
    assert codes["Admin"] >= codes["Marketing"] | codes["Creative editor"] | codes["Publisher"]


def test_the_csv_export_escapes_formulas_and_keeps_the_filters(member, client_for):
    nasty = ['=HYPERLINK("http://x")', "+1+1", "-2", "@SUM(A1)", "\tTab", "\rCR", "fine"]
    for reason in nasty:
        audit_record(action="review_rejected", source="admin", reason=reason, to_status="x")
    audit_record(action="asset_status", source="worker", reason="=other", to_status="y")
    publisher = client_for(member("Publisher", "pat"))
    url = reverse("admin:assets_auditevent_export")

    response = publisher.get(url, {"action__exact": "review_rejected"})
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], rows[1:]
    reasons = [row[header.index("reason")] for row in body]
    assert sorted(reasons) == sorted(
        ("'" + r if r.startswith(FORMULA_TRIGGERS) else r) for r in nasty
    )
    assert not any(cell.startswith(FORMULA_TRIGGERS) for row in body for cell in row)
    assert "'=other" not in text  # the filter kept the other action out
