import json

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponseBadRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from escalation.services.demo import message_escalations


@csrf_exempt  # called by the local emulator's phones page, server to server, never by a browser form
@require_POST
def phones_escalations(request: HttpRequest) -> JsonResponse:
    """For the demo's phones page: which escalation each message belongs to, and its state. Demo only."""
    if not settings.DEMO_PHONES_URL:
        raise Http404("only in the demo")
    try:
        uuids = json.loads(request.body or b"[]")
    except ValueError:
        return HttpResponseBadRequest("expected a JSON list of message uuids")
    if not isinstance(uuids, list):
        return HttpResponseBadRequest("expected a JSON list of message uuids")
    return JsonResponse(message_escalations(uuids))
