"""Provides the creative editor's review page and its claim and decision endpoints (admin)."""

import functools
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils.html import format_html_join
from django.views.decorators.http import require_GET, require_POST

from brandforge.errors import ApplicationError
from review.models import ReviewItem
from review.scoring.registry import get_scorer, scorer_names
from review.selectors import (
    CardRows,
    QueueFilters,
    brand_reference_images,
    claimed_by_other,
    queue_filter_choices,
    review_card_rows,
    review_queue_page,
)
from review.services import (
    DECIDE_PERMISSION,
    DECISIONS,
    review_item_claim,
    review_item_release,
    review_items_decide,
)

PER_PAGE = 50
MAX_PER_PAGE = 200
MAX_BULK = 500


@dataclass
class ScoreRow:
    label: str
    value: str
    passed: bool


@dataclass
class RenditionCheck:
    format_name: str
    thumb_url: str
    url: str
    size: str
    failed: list[str] = field(default_factory=list)


@dataclass
class Card:
    """What one review card shows, read from prefetched rows only (no query per card)."""

    item: ReviewItem
    master_scores: list[ScoreRow]
    renditions: list[RenditionCheck]
    claimed_by_other: bool
    prompt: str
    seed: object
    model: str
    steps: list[str]
    attempts: list[dict]

    # The two repeated parts of a card are built here rather than in template loops: with 200
    # cards the template engine spent most of the page's time on these ~3,000 rows.
    def scores_html(self) -> str:
        return format_html_join(
            "",
            '<tr class="{}"><th>{}</th><td>{}</td><td>{}</td></tr>',
            (
                ("is-pass" if s.passed else "is-fail", s.label, s.value, "✓" if s.passed else "✗")
                for s in self.master_scores
            ),
        )

    def renditions_html(self) -> str:
        return format_html_join(
            "",
            '<li class="{}"><a href="{}" target="_blank" rel="noopener">'
            '<img src="{}" alt="{}" loading="lazy"></a><span>{} <small>{}</small> {}</span></li>',
            (
                (
                    "is-fail" if r.failed else "",
                    r.url,
                    r.thumb_url,
                    r.format_name,
                    r.format_name,
                    r.size,
                    f"✗ {', '.join(r.failed)}" if r.failed else "✓",
                )
                for r in self.renditions
            ),
        )


@functools.cache
def _label(name: str) -> str:
    try:
        return get_scorer(name).label or name
    except ValidationError:  # a scorer removed since: show its stored name
        return name


def _card(item: ReviewItem, user, rows: CardRows, url) -> Card:
    asset = item.asset
    recipe = asset.recipe
    by_format: dict[str, list[str]] = {}
    master = []
    for subject, scorer, value, passed in rows.scores[asset.pk]:
        if subject == "master":
            master.append(ScoreRow(_label(scorer), f"{value:.3g}", passed))
        elif not passed:
            by_format.setdefault(subject, []).append(_label(scorer))
    renditions = [
        RenditionCheck(
            format_name=name,
            thumb_url=url(thumb or file),
            url=url(file),
            size=f"{width}×{height}",
            failed=by_format.get(name, []),
        )
        for name, width, height, file, thumb in rows.renditions[asset.pk]
    ]
    return Card(
        item=item,
        master_scores=master,
        renditions=renditions,
        claimed_by_other=claimed_by_other(item, user),
        prompt=recipe.get("prompt", ""),
        seed=recipe.get("seed", "?"),
        model=f"{recipe.get('provider', '?')} / {recipe.get('model', '?')}",
        steps=[s.get("step", "?") for s in recipe.get("steps", [])],
        attempts=list(recipe.get("attempts", [])),
    )


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _without_page(query):
    query = query.copy()
    query.pop("page", None)
    return query


def _require_editor(request) -> None:
    if not request.user.has_perm(DECIDE_PERMISSION):
        raise PermissionDenied("The review queue is for creative editors.")


@require_GET
def queue_view(request, admin_site):
    """The grid of assets waiting for review, filtered, a page at a time."""
    _require_editor(request)
    filters = QueueFilters(
        brand=_int(request.GET.get("brand")),
        campaign=_int(request.GET.get("campaign")),
        locale=request.GET.get("locale", "")[:10],
        score=request.GET.get("score", "")[:80],
    )
    per_page = min(_int(request.GET.get("per_page")) or PER_PAGE, MAX_PER_PAGE)
    page = Paginator(review_queue_page(filters=filters), per_page).get_page(request.GET.get("page"))
    items = list(page.object_list)
    rows = review_card_rows(asset_ids=[item.asset_id for item in items])
    url = default_storage.url
    cards = [_card(item, request.user, rows, url) for item in items]
    references = brand_reference_images(brand_ids={item.campaign.brand_id for item in items})
    brands = {item.campaign.brand_id: item.campaign.brand for item in items}
    context = {
        **admin_site.each_context(request),
        "title": "Review queue",
        "cards": cards,
        "page_obj": page,
        "filters": filters,
        "per_page": per_page,
        "choices": queue_filter_choices(),
        "scorers": [(name, _label(name)) for name in scorer_names()],
        "disabled": [
            (_label(name), why)
            for name in scorer_names()
            if (why := get_scorer(name).unavailable())
        ],
        "reference_sets": [(brands[pk], refs) for pk, refs in references.items()],
        "query": _without_page(request.GET),
    }
    return TemplateResponse(request, "admin/review/queue.html", context)


@require_POST
def claim_view(request, pk: int):
    """Hold an item while the editor looks at it (the page claims the card in focus)."""
    _require_editor(request)
    item = get_object_or_404(ReviewItem.objects.select_related("asset__brand"), pk=pk)
    if request.POST.get("release"):
        review_item_release(item=item, actor=request.user)
        return JsonResponse({"ok": True, "message": "Released."})
    try:
        review_item_claim(item=item, actor=request.user)
    except ApplicationError as exc:
        return JsonResponse({"ok": False, "message": " ".join(exc.messages)}, status=409)
    return JsonResponse({"ok": True, "message": f"You are reviewing {item.asset}."})


@require_POST
def decide_view(request):
    """Approve, reject or regenerate one item or a selection; answers per item."""
    _require_editor(request)
    action = request.POST.get("action", "")
    ids = [i for i in (_int(v) for v in request.POST.getlist("items")) if i]
    if action not in DECISIONS or not ids:
        return JsonResponse(
            {"ok": False, "message": "Choose items and one of: " + ", ".join(DECISIONS) + "."},
            status=400,
        )
    if len(ids) > MAX_BULK:
        message = f"{len(ids)} items chosen; decide at most {MAX_BULK} at once."
        return JsonResponse({"ok": False, "message": message}, status=400)
    try:
        results = review_items_decide(
            item_ids=ids,
            action=action,
            actor=request.user,
            reason=request.POST.get("reason", "")[:1000],
            prompt=request.POST.get("prompt", ""),
        )
    except ApplicationError as exc:
        return JsonResponse({"ok": False, "message": " ".join(exc.messages)}, status=400)
    return JsonResponse(
        {
            "ok": all(r.ok for r in results),
            "results": [{"id": r.item_id, "ok": r.ok, "message": r.message} for r in results],
        }
    )
