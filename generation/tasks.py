"""Provides the django-q2 entry points of the generation engine (ids in; safe to run twice)."""


def campaign_jobs_create(campaign_id: int) -> int:
    from generation.services import campaign_jobs_create as create

    return create(campaign_id=campaign_id)


def job_run(job_id: int) -> None:
    from generation.services import job_run as run

    run(job_id=job_id)


def job_complete(job_id: int, outcome: dict) -> None:
    from generation.services import job_complete as complete

    complete(job_id=job_id, outcome=outcome)


def job_resume(job_id: int) -> None:
    from generation.services import job_resume as resume

    resume(job_id=job_id)


def job_poll(job_id: int) -> None:
    from generation.services import job_poll as poll

    poll(job_id=job_id)


def job_provider_cancel(job_id: int) -> None:
    from generation.services import job_provider_cancel as cancel

    cancel(job_id=job_id)


def jobs_reconcile() -> int:
    from generation.services import jobs_reconcile as reconcile

    return reconcile()
