"""Vonage's two webhook URLs. Thin: read the body within its limit, hand it to the service, answer.

CSRF-exempt because Vonage cannot carry our CSRF token; the signed JWT takes its place.
"""

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, UnreadablePostError
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from escalation.bodies import declared_length
from escalation.ops.recorded import refusals_counted
from escalation.ratelimit import rate_limited
from escalation.services.webhooks import WebhookRefused, webhook_receive

logger = logging.getLogger(__name__)


@csrf_exempt
@refusals_counted("status")
@rate_limited
def status(request: HttpRequest) -> HttpResponse:
    return _receive(request, kind_hint="status")


@csrf_exempt
@refusals_counted("inbound")
@rate_limited
def inbound(request: HttpRequest) -> HttpResponse:
    return _receive(request, kind_hint="inbound")


def _receive(request: HttpRequest, *, kind_hint: str) -> HttpResponse:
    if request.method != "POST":
        response = _error(405, "Vonage webhooks are POSTed.")
        response["Allow"] = "POST"
        return response
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    # Refuse by the declared length before reading anything, and never read more than one byte past the
    # limit whatever the header says (Django caps the stream at Content-Length; a missing one reads nothing).
    if declared_length(request) > limit:
        return _error(413, f"The body is larger than {limit} bytes.")
    try:
        raw_body = request.read(limit + 1)
    except UnreadablePostError:
        return _error(400, "The body could not be read.")
    if len(raw_body) > limit:
        return _error(413, f"The body is larger than {limit} bytes.")
    try:
        webhook_receive(
            kind_hint=kind_hint,
            raw_body=raw_body,
            authorization=request.headers.get("Authorization"),
            now=timezone.now(),
        )
    except WebhookRefused as e:
        logger.warning("Refused a webhook on /webhooks/%s (%s): %s", kind_hint, e.status, e)
        return _error(e.status, str(e))
    # Unknown ids and duplicates are successes too: any other answer makes Vonage retry for 24 hours.
    return HttpResponse(status=204)



def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)
