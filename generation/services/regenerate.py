"""Provides regeneration: another attempt at a brief with a new seed, maybe a new prompt."""

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max

from assets.models import Asset
from brandforge.errors import ApplicationError
from brandforge.tasks import enqueue
from campaigns.models import Brief
from campaigns.services import brief_set_status, campaign_reopen
from generation.models import GenerationJob
from generation.services.jobs import JOB_TASK, job_key

MAX_PROMPT = 4000


def brief_regenerate(
    *, brief: Brief, previous: Asset, reason: str, by: str, prompt: str = ""
) -> GenerationJob:
    """Queue the next variant of `brief` (a new seed follows from the variant).

    `previous` is the asset being replaced; the new job's recipe history gains an entry naming
    it, its seed and why it was dropped, so the final asset records the whole chain of attempts.
    `by` says who asked ("gate" or "editor"). Callers hold the decision that makes this happen
    (a conditional update of the review item), so one decision makes one new job.
    """
    prompt = prompt.strip()
    if len(prompt) > MAX_PROMPT:
        raise ApplicationError(f"The prompt has {len(prompt)} characters; at most {MAX_PROMPT}.")
    recipe = previous.recipe
    entry = {
        "asset": str(previous.uid),
        "variant": recipe.get("variant"),
        "seed": recipe.get("seed"),
        "prompt": recipe.get("prompt", ""),
        "by": by,
        "reason": reason,
    }
    with transaction.atomic():
        # The brief row lock serialises two regenerations of one brief (say, a gate and an
        # editor at once), so each takes its own variant instead of colliding on the constraint.
        Brief.objects.select_for_update().filter(pk=brief.pk).first()
        last = brief.jobs.filter(kind=GenerationJob.Kind.GENERATE).aggregate(v=Max("variant"))
        variant = (last["v"] or 0) + 1
        try:
            with transaction.atomic():
                job = GenerationJob.objects.create(
                    campaign_id=brief.campaign_id,
                    brief=brief,
                    variant=variant,
                    idempotency_key=job_key(brief, variant),
                    max_attempts=settings.BRANDFORGE_JOB_MAX_ATTEMPTS,
                    prompt_override=prompt,
                    history=[*recipe.get("attempts", []), entry],
                )
        except IntegrityError as exc:
            raise ApplicationError(
                f"Variant {variant} of brief {brief} exists already; try again."
            ) from exc
        brief_set_status(brief=brief, to=Brief.Status.GENERATING)
        campaign_reopen(campaign_id=brief.campaign_id)
        enqueue(JOB_TASK, job.pk)
    return job
