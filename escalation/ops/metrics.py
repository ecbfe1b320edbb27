"""`GET /metrics`: the Prometheus text exposition, behind METRICS_ACCESS (never the admin session, which a
scraper does not have and which would put an admin's cookie in Prometheus' configuration)."""

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4

from escalation.ops.exposition import exposition


def metrics(request: HttpRequest) -> HttpResponse:
    if settings.METRICS_ACCESS == "off":
        return HttpResponse("Not found.\n", status=404, content_type="text/plain; charset=utf-8")
    if settings.METRICS_ACCESS == "token" and not _bearer_matches(request, settings.METRICS_TOKEN):
        response = HttpResponse("A bearer token is needed (METRICS_TOKEN).\n", status=401,
                                content_type="text/plain; charset=utf-8")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    # Our names are all classic ones, so the text is the 0.0.4 format every Prometheus version reads (the
    # library's newer 1.0.0 label only matters for UTF-8 names).
    response = HttpResponse(exposition(), content_type=CONTENT_TYPE_PLAIN_0_0_4)
    response["Cache-Control"] = "no-store"
    return response


def _bearer_matches(request: HttpRequest, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
