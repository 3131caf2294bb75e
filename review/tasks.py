"""Provides the django-q2 entry points of the review stage (ids in; safe to run twice)."""


def job_review_prepare(job_id: int) -> None:
    from review.services import job_review_prepare as prepare

    prepare(job_id=job_id)


def review_item_publish(item_id: int) -> None:
    from review.services import review_item_publish as publish

    publish(item_id=item_id)
