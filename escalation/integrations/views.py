"""`POST /integrations/<token>/`: where Alertmanager, Grafana or a script sends its alerts.

Answers: 200 with what was done per alert; 404 (the site's ordinary page) for any token that is not an
integration's, so a caller learns nothing about which tokens exist; 403 for a disabled integration; 413
for an oversized body; 400 naming what is wrong with the body; 422 when the roster cannot be paged.
Alertmanager retries 5xx but not 4xx, so every answer about the request itself is a 4xx.
"""

import json
import logging

from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from escalation.integrations.parse import BadPayload, parse
from escalation.models import Integration
from escalation.ops.recorded import alerts_received
from escalation.ratelimit import rate_limited
from escalation.services.escalations import FireRefused
from escalation.services.integrations import integration_find, integration_receive

log = logging.getLogger(__name__)

# Alertmanager sends a whole alert group in one body (capped by its `max_alerts`); a few hundred alerts with
# labels and annotations fit comfortably, anything larger is not an alert.
MAX_BODY_BYTES = 1024 * 1024


def _problem(integration: Integration, status: int, error: str) -> JsonResponse:
    alerts_received(integration.name, [f"refused_{status}"])
    return JsonResponse({"error": error}, status=status)


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


@csrf_exempt
@rate_limited
@require_POST
def receive(request: HttpRequest, token: str) -> JsonResponse:
    integration = integration_find(token=token)
    if integration is None:
        raise Http404
    if not integration.is_enabled:
        return _problem(integration, 403, f"The integration {integration.name} is disabled.")
    # Django never reads past the declared length (a missing one reads nothing), so checking it is enough.
    if _declared_length(request) > MAX_BODY_BYTES:
        return _problem(integration, 413, f"The body is larger than {MAX_BODY_BYTES} bytes.")
    try:
        body = json.loads(request.body)
    except ValueError as e:  # also UnicodeDecodeError
        return _problem(integration, 400, f"The body is not JSON: {e}")
    except RecursionError:
        return _problem(integration, 400, "The body is not JSON we accept: it is nested too deeply.")
    try:
        alerts = parse(integration.format, body)
    except BadPayload as e:
        return _problem(integration, 400, f"Not a {integration.get_format_display()} notification: {e}.")
    try:
        results = integration_receive(integration=integration, alerts=alerts)
    except FireRefused as e:
        return _problem(integration, 422, "The roster cannot be paged: " + " ".join(e.messages))
    alerts_received(integration.name, [r.result for r in results])
    for result in results:
        log.info("alert %s from integration %s: %s", result.dedup_key, integration.name, result.result,
                 extra={"integration_id": integration.pk, "escalation_id": result.escalation_id})
    return JsonResponse({"results": [r.as_dict() for r in results]})
