"""Provides the inbound provider webhook endpoint: verify on the raw body, answer fast."""

import logging

from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from generation.providers.base import ProviderError, WebhookVerificationError
from generation.providers.registry import UnknownProviderError
from generation.services import provider_webhook_receive

logger = logging.getLogger(__name__)


@csrf_exempt  # authenticated by the provider's signature, not a session
@require_POST
def provider_webhook(request: HttpRequest, provider: str) -> JsonResponse:
    try:
        result = provider_webhook_receive(
            provider=provider,
            headers=request.headers,
            body=request.body,
            job_uid=request.GET.get("job"),
        )
    except UnknownProviderError as exc:
        raise Http404 from exc
    except WebhookVerificationError as exc:
        logger.warning("Rejected %s webhook: %s", provider, exc)
        return JsonResponse({"error": str(exc)}, status=401)
    except ProviderError as exc:
        # The verification keys could not be fetched; the provider will deliver again.
        logger.warning("Could not verify %s webhook: %s", provider, exc)
        return JsonResponse({"error": "verification keys unavailable"}, status=503)
    return JsonResponse({"status": result})
