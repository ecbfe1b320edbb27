"""Answers the probes and the metrics scrape before any other middleware.

So they cost no session, CSRF or auth work, and they answer a load balancer or Prometheus that uses the
pod's address as Host (which ALLOWED_HOSTS would refuse) over plain HTTP inside the network (which
SECURE_SSL_REDIRECT would redirect). Nothing else is answered here.
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from escalation.ops.health import healthz, healthz_worker, readyz
from escalation.ops.metrics import metrics

ROUTES: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/healthz": healthz,
    "/healthz/worker": healthz_worker,
    "/readyz": readyz,
    "/metrics": metrics,
}


class ProbeMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = ROUTES.get(request.path_info.rstrip("/") or "/")
        if view is None:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            response = HttpResponse("GET or HEAD\n", status=405, content_type="text/plain; charset=utf-8")
            response["Allow"] = "GET, HEAD"
            return response
        return view(request)
