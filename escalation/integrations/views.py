"""`POST /integrations/<token>/`: where Alertmanager, Grafana or a script sends its alerts.

Answers: 200 with what was done per alert; 404 (the site's ordinary page) for any token that is not an
integration's, so a caller learns nothing about which tokens exist; 403 for a disabled integration; 413
for an oversized body; 400 naming what is wrong with the body; 422 when the roster cannot be paged.
Alertmanager retries 5xx but not 4xx, so every answer about the request itself is a 4xx, and every
notification that reaches an integration is recorded with its answer (a refused one raises an alarm).
"""

import json
import logging
from datetime import datetime

from django.http import Http404, HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from escalation.bodies import declared_length
from escalation.integrations.parse import BadPayload, parse
from escalation.models import Integration
from escalation.ops.recorded import alerts_received
from escalation.ratelimit import rate_limited
from escalation.services.alert_receipts import receipt_record
from escalation.services.escalations import FireRefused
from escalation.services.integrations import integration_find, integration_receive

# Alertmanager sends a whole alert group in one body (capped by its `max_alerts`); a few hundred alerts with
# labels and annotations fit comfortably, anything larger is not an alert.
MAX_BODY_BYTES = 1024 * 1024

log = logging.getLogger(__name__)



@csrf_exempt
@rate_limited
@require_POST
def receive(request: HttpRequest, token: str) -> JsonResponse:
    integration = integration_find(token=token)
    if integration is None:
        raise Http404
    received_at = timezone.now()
    # Django never reads past the declared length (a missing one reads nothing), so checking it is enough.
    oversized = declared_length(request) > MAX_BODY_BYTES
    body = b"" if oversized else request.body
    status, answer, text = _answer(integration, body, oversized=oversized, received_at=received_at)
    receipt_record(integration=integration, received_at=received_at, status_code=status, text=text, body=body)
    _observe(integration, status, answer)
    return JsonResponse(answer, status=status)


def _observe(integration: Integration, status: int, answer: dict) -> None:
    """The alerts counter of /metrics, and a log line per alert with the ids an operator searches by."""
    if status != 200:
        alerts_received(integration.name, [f"refused_{status}"])
        return
    alerts_received(integration.name, [result["result"] for result in answer["results"]])
    for result in answer["results"]:
        log.info("alert %s from integration %s: %s", result["dedup_key"], integration.name, result["result"],
                 extra={"integration_id": integration.pk, "escalation_id": result.get("escalation_id")})


def _answer(integration: Integration, raw: bytes, *, oversized: bool, received_at: datetime
            ) -> tuple[int, dict, str]:
    """The status, the JSON answer, and what the record says about it."""
    if not integration.is_enabled:
        return _problem(403, f"The integration {integration.name} is disabled.")
    if oversized:
        return _problem(413, f"The body is larger than {MAX_BODY_BYTES} bytes.")
    try:
        body = json.loads(raw)
    except ValueError as e:  # also UnicodeDecodeError
        return _problem(400, f"The body is not JSON: {e}")
    except RecursionError:
        return _problem(400, "The body is not JSON we accept: it is nested too deeply.")
    try:
        notices = parse(integration.format, body)
    except BadPayload as e:
        return _problem(400, f"Not a {integration.get_format_display()} notification: {e}.")
    try:
        outcomes = integration_receive(integration=integration, notices=notices, now=received_at)
    except FireRefused as e:
        return _problem(422, "The roster cannot be paged: " + " ".join(e.messages))
    done = "; ".join(f"{o.result}" + (f" #{o.escalation_id}" if o.escalation_id else "") + f": {o.dedup_key}"
                     for o in outcomes)
    return 200, {"results": [o.as_dict() for o in outcomes]}, done


def _problem(status: int, error: str) -> tuple[int, dict, str]:
    return status, {"error": error}, error
