"""Provides the four roles (Marketing, Creative editor, Publisher, Admin) as permission lists."""

CRUD = ("add", "change", "delete", "view")

BRAND_RULES = (
    "assets.brand",
    "assets.loraprofile",
    "assets.seedprofile",
    "assets.controlreference",
    "assets.referenceimage",
    "assets.brandfont",
    "assets.layout",
    "campaigns.prompttemplate",
    "campaigns.prompttemplateversion",
    "campaigns.campaign",
    "campaigns.brief",
    "campaigns.channelformat",
    "campaigns.formatlayout",
    "generation.refinementchain",
    "review.qualitygate",
)


def _all(model: str, verbs=CRUD) -> list[str]:
    app, name = model.split(".")
    return [f"{app}.{verb}_{name}" for verb in verbs]


def _view(*models: str) -> list[str]:
    return [perm for model in models for perm in _all(model, ("view",))]


# Admin has every permission of these apps (and manages users and groups).
ADMIN_APPS = ("assets", "campaigns", "generation", "review", "auth", "django_q")

ROLES: dict[str, list[str]] = {
    # Brand kits, prompt templates and campaigns; sees what came of them.
    "Marketing": [
        *(perm for model in BRAND_RULES for perm in _all(model)),
        *_view(
            "assets.asset",
            "assets.rendition",
            "generation.generationjob",
            "generation.routingrule",
            "review.reviewitem",
            "review.score",
        ),
    ],
    # The review queue: approve, reject, regenerate; may move a focal point.
    "Creative editor": [
        "review.decide_reviewitem",
        "assets.change_asset",
        *_view(
            "assets.asset",
            "assets.rendition",
            "assets.auditevent",
            "assets.brand",
            "assets.referenceimage",
            "campaigns.campaign",
            "campaigns.brief",
            "generation.generationjob",
            "review.reviewitem",
            "review.score",
        ),
    ],
    # Publishing and its record: publish approved items again, export the audit trail.
    "Publisher": [
        "review.publish_reviewitem",
        "assets.export_auditevent",
        *_view(
            "assets.asset",
            "assets.rendition",
            "assets.auditevent",
            "campaigns.campaign",
            "campaigns.brief",
            "review.reviewitem",
        ),
    ],
    "Admin": [],  # filled from ADMIN_APPS
}


def apply_roles(*, Group, Permission) -> None:
    """Create or update each role's group so it holds exactly its permissions."""
    for name, wanted in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        if name == "Admin":
            perms = list(Permission.objects.filter(content_type__app_label__in=ADMIN_APPS))
        else:
            perms = []
            for dotted in wanted:
                app, codename = dotted.split(".")
                perm = Permission.objects.filter(
                    content_type__app_label=app, codename=codename
                ).first()
                if perm is None:
                    raise LookupError(f"Role {name}: no permission {dotted}")
                perms.append(perm)
        group.permissions.set(perms)
