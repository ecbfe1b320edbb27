"""`POST /v2/enqueue` (and `POST /integrations/<token>/v2/enqueue`): PagerDuty's Events API v2.

The routing key is the integration's own token: it is already the secret a sender holds, it is rotated
from the admin, and it needs no new field. A key that is no integration's answers 400 as PagerDuty does
for an invalid routing key (a sender does not retry a 4xx; tokens are random 43-character strings, so
the answer teaches nothing a guess could use). Answers have PagerDuty's shapes, so a sender's logs read
as they would against PagerDuty; every event that reaches an integration is recorded (AlertReceipt).
"""

import json
import logging
from datetime import datetime

from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from escalation.bodies import declared_length
from escalation.models import Integration
from escalation.ops.recorded import alerts_received
from escalation.pagerduty.parse import InvalidEvent, PagerDutyEvent, parse
from escalation.ratelimit import rate_limited
from escalation.services.alert_receipts import receipt_record
from escalation.services.alerts import AlertOutcome, alert_acknowledge, alert_resolve, alert_trigger
from escalation.services.escalations import FireRefused
from escalation.services.integrations import integration_find

MAX_BODY_BYTES = 512 * 1024  # PagerDuty: "payloads up to 512 KB"
INVALID = "Event object is invalid"

log = logging.getLogger(__name__)



@csrf_exempt
@rate_limited
@require_POST
def enqueue(request: HttpRequest, token: str | None = None) -> JsonResponse:
    received_at = timezone.now()
    # Django never reads past the declared length, so checking it is enough.
    if declared_length(request) > MAX_BODY_BYTES:
        status, answer, text = _invalid(413, f"the event is larger than {MAX_BODY_BYTES} bytes")
        integration = integration_find(token=token) if token else None
        if integration is not None:
            receipt_record(integration=integration, received_at=received_at, status_code=status, text=text)
        return JsonResponse(answer, status=status)
    raw = request.body
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # ValueError includes UnicodeDecodeError
        body = None
        event_or_errors: PagerDutyEvent | InvalidEvent = InvalidEvent(["the body is not a JSON object"])
    else:
        try:
            event_or_errors = parse(body)
        except InvalidEvent as e:
            event_or_errors = e
    integration = _integration(token, body)
    if integration is None:
        errors = ["routing_key is not the key of any integration"]
        if token:
            errors = ["the URL is not an integration's"]
        return JsonResponse(_invalid(400, *errors)[1], status=400)
    status, answer, text = _answer(integration, event_or_errors, token=token, received_at=received_at)
    receipt_record(integration=integration, received_at=received_at, status_code=status, text=text, body=raw)
    alerts_received(integration.name, [answer.get("result", f"refused_{status}")])
    answer.pop("result", None)
    return JsonResponse(answer, status=status)


def _integration(token: str | None, body: object) -> Integration | None:
    """The integration the URL names, else the one whose token is the body's routing_key."""
    if token:
        return integration_find(token=token)
    key = body.get("routing_key") if isinstance(body, dict) else None
    return integration_find(token=key) if isinstance(key, str) else None


def _answer(integration: Integration, event: PagerDutyEvent | InvalidEvent, *, token: str | None,
            received_at: datetime) -> tuple[int, dict, str]:
    if isinstance(event, InvalidEvent):
        return _invalid(400, *event.errors)
    if token and event.routing_key != integration.token:
        return _invalid(400, "routing_key is not the key of the integration this URL names")
    if not integration.is_enabled:
        return _invalid(400, f"the integration {integration.name} is disabled")
    try:
        outcome = _act(integration, event, received_at)
    except FireRefused as e:
        # Not the sender's fault, but nothing it can fix by retrying either: 4xx, recorded, alarmed.
        return _invalid(422, "the roster cannot be paged: " + " ".join(e.messages))
    log.info("PagerDuty event %s %s from integration %s: %s", event.action, event.dedup_key, integration.name,
             outcome.result, extra={"integration_id": integration.pk, "escalation_id": outcome.escalation_id})
    done = f"{event.action}: {outcome.result}" + (f" #{outcome.escalation_id}" if outcome.escalation_id else "")
    answer = {"status": "success", "message": "Event processed", "dedup_key": event.dedup_key,
              "result": outcome.result}
    return 202, answer, f"{done}: {event.dedup_key}"


def _act(integration: Integration, event: PagerDutyEvent, now: datetime) -> AlertOutcome:
    if event.action == "trigger":
        return alert_trigger(integration=integration, dedup_key=event.dedup_key, title=event.title,
                             summary=event.summary, now=now)
    if event.action == "acknowledge":
        by = f"integration {integration.name}" + (f" ({event.client})" if event.client else "")
        return alert_acknowledge(integration=integration, dedup_key=event.dedup_key, by_name=by, now=now)
    return alert_resolve(integration=integration, dedup_key=event.dedup_key, now=now)


def _invalid(status: int, *errors: str) -> tuple[int, dict, str]:
    answer = {"status": "invalid event", "message": INVALID, "errors": list(errors)}
    return status, answer, "; ".join(errors)
