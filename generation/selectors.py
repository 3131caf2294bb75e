"""Provides reused reads of generation jobs and the routing decision for a brief."""

from dataclasses import dataclass, field

from django.db.models import Max, QuerySet

from campaigns.models import Brief
from generation.models import GenerationJob, RoutingRule


@dataclass(frozen=True)
class RouteDecision:
    """The rule that serves a brief (None: the built-in local route) and why, rule by rule."""

    rule: RoutingRule | None
    reasons: list[str] = field(default_factory=list)

    @property
    def provider(self) -> str:
        return self.rule.provider if self.rule else "local"


def _mismatch(rule: RoutingRule, brief: Brief, *, required: int, style: str) -> str:
    campaign = brief.campaign
    if rule.brand_id and rule.brand_id != campaign.brand_id:
        return f"brand is {campaign.brand}, rule is for another brand"
    if rule.campaign_id and rule.campaign_id != campaign.pk:
        return "rule is for another campaign"
    if rule.locales and brief.locale not in rule.locales:
        return f"locale {brief.locale} not in {', '.join(rule.locales)}"
    if rule.styles and style not in rule.styles:
        return f"style {style or '(none)'} not in {', '.join(rule.styles)}"
    if rule.min_resolution and required < rule.min_resolution:
        return f"largest format is {required}px, rule needs {rule.min_resolution}px"
    return ""


def route_for(*, brief: Brief) -> RouteDecision:
    """Try the enabled rules in priority order; the first whose conditions all hold wins."""
    campaign = brief.campaign
    sizes = campaign.formats.aggregate(w=Max("width"), h=Max("height"))
    required = max(sizes["w"] or 0, sizes["h"] or 0)
    style = str(brief.variables.get("style", ""))
    reasons = []
    for rule in RoutingRule.objects.filter(enabled=True).order_by("priority", "pk"):
        miss = _mismatch(rule, brief, required=required, style=style)
        if miss:
            reasons.append(f"{rule.name}: skipped, {miss}")
            continue
        reasons.append(f"{rule.name}: matched (priority {rule.priority})")
        return RouteDecision(rule, reasons)
    reasons.append("no rule matched: the built-in local provider")
    return RouteDecision(None, reasons)


def job_for_asset(*, asset_id: int) -> GenerationJob | None:
    return (
        GenerationJob.objects.select_related("brief", "campaign__brand")
        .filter(output_id=asset_id)
        .first()
    )


def jobs_of_campaign(*, campaign_id: int) -> QuerySet[GenerationJob]:
    return GenerationJob.objects.filter(campaign_id=campaign_id).select_related("brief", "output")
