"""Provides the per-provider circuit breaker, shared by every worker through the database.

Closed: calls go ahead. After `BRANDFORGE_BREAKER_FAILURES` consecutive failures the circuit
opens for `BRANDFORGE_BREAKER_OPEN_SECONDS`: no calls at all. Then one worker at a time gets to
send a probe (half-open); its success closes the circuit, its failure opens it again.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from generation.models import ProviderCircuit

State = ProviderCircuit.State
PROBE_SECONDS = 60


def circuit_acquire(*, provider: str) -> bool:
    """Return whether a call to `provider` may go ahead now.

    The closed state is read without a lock, so a healthy provider costs one indexed read per
    call; only a circuit that is not closed takes the row lock to hand out the single probe.
    """
    state = (
        ProviderCircuit.objects.filter(provider=provider).values_list("state", flat=True).first()
    )
    if state in (None, State.CLOSED):
        return True
    now = timezone.now()
    with transaction.atomic():
        circuit = ProviderCircuit.objects.select_for_update().get(provider=provider)
        if circuit.state == State.CLOSED:
            return True
        if circuit.state == State.OPEN and circuit.open_until and circuit.open_until > now:
            return False
        if circuit.probe_until and circuit.probe_until > now:
            return False  # another worker's probe is in flight
        circuit.state = State.HALF_OPEN
        circuit.probe_until = now + timedelta(seconds=PROBE_SECONDS)
        circuit.save(update_fields=["state", "probe_until", "updated_at"])
        return True


def circuit_record(*, provider: str, ok: bool, error: str = "") -> None:
    """Record the result of a call: success closes the circuit, failures may open it."""
    if (
        ok
        and not ProviderCircuit.objects.filter(provider=provider)
        .exclude(state=State.CLOSED, failures=0)
        .exists()
    ):
        return  # the common case: healthy and nothing to reset
    ProviderCircuit.objects.get_or_create(provider=provider)
    now = timezone.now()
    with transaction.atomic():
        circuit = ProviderCircuit.objects.select_for_update().get(provider=provider)
        if ok:
            circuit.state, circuit.failures = State.CLOSED, 0
            circuit.open_until = circuit.probe_until = None
        else:
            circuit.failures += 1
            circuit.last_error = error[:1000]
            threshold = settings.BRANDFORGE_BREAKER_FAILURES
            if circuit.state == State.HALF_OPEN or circuit.failures >= threshold:
                circuit.state = State.OPEN
                circuit.opened_at = now
                circuit.open_until = now + timedelta(
                    seconds=settings.BRANDFORGE_BREAKER_OPEN_SECONDS
                )
                circuit.probe_until = None
        circuit.save()


def circuit_open_until(*, provider: str):
    """When an open circuit lets the next probe through (None when closed)."""
    return (
        ProviderCircuit.objects.filter(provider=provider, state=State.OPEN)
        .values_list("open_until", flat=True)
        .first()
    )
