"""Provides `enqueue` and `flow_emit`: how services hand work to the django-q2 workers."""

from django.conf import settings
from django.db import transaction
from django_q.conf import Conf
from django_q.tasks import async_task


def enqueue(func: str, *args, **kwargs) -> None:
    """Queue `func(*args, **kwargs)` so that it runs only if the current transaction commits.

    On the ORM broker the queue row is written in the same transaction as the data (a free
    transactional outbox); on Redis the push waits for the commit, and the reconciler recovers a
    push lost between the commit and the broker.
    """
    if Conf.ORM and not Conf.SYNC:
        async_task(func, *args, **kwargs)
    else:
        transaction.on_commit(lambda: async_task(func, *args, **kwargs))


def flow_emit(event: str, *args) -> None:
    """Hand a finished stage to the next one, as wired in settings.BRANDFORGE_FLOW."""
    enqueue(settings.BRANDFORGE_FLOW[event], *args)
