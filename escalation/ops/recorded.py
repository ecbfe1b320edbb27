"""Metrics counted where they happen, for what the database does not record: Vonage requests (the client
tells `vonage_request_observed` of each, engine/provider.py), worker passes, webhook refusals and alerts per
outcome.

Plain prometheus_client metrics: per process, or shared by every process of the host (gunicorn's workers and
the escalation workers) through the library's multiprocess mode when PROMETHEUS_MULTIPROC_DIR is set. A leaf
module: it imports nothing of ours, so the engine and the views can both use it.
"""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse
from prometheus_client import Counter, Histogram

# Seconds: a healthy request takes tens of milliseconds; the read timeout is 10 s.
VONAGE_REQUEST_SECONDS = Histogram(
    "oncall_vonage_request_duration_seconds", "Time of one request to Vonage, by path and HTTP status "
    "('timeout' or 'unreachable' when no answer came).", ["path", "status"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0),
)
VONAGE_REQUEST_ERRORS = Counter(
    "oncall_vonage_request_errors", "Requests to Vonage that were not accepted (non-2xx or no answer), by path "
    "and status.", ["path", "status"],
)
WORKER_PASSES = Counter("oncall_worker_passes", "Worker passes (apply webhooks, advance due escalations), by "
                        "outcome: completed, or failed (logged and retried).", ["outcome"])
WORKER_PASS_SECONDS = Histogram(
    "oncall_worker_pass_duration_seconds", "Time of one worker pass, including the Vonage requests it made.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
WEBHOOKS_REFUSED = Counter("oncall_webhooks_refused", "Webhook requests answered with an error and not stored, "
                           "by endpoint and HTTP status.", ["endpoint", "status"])
ALERTS_RECEIVED = Counter("oncall_alerts_received", "Alerts received from monitoring integrations, by integration "
                          "and outcome (fired, noted, cancelled, not active; or refused_<status> for a request "
                          "refused whole, counted once).", ["integration", "outcome"])


def vonage_request_observed(path: str, status: int | str, started: float) -> None:
    """Record one request to Vonage begun at `started` (time.monotonic()) that ended with `status`."""
    status = str(status)
    VONAGE_REQUEST_SECONDS.labels(path, status).observe(time.monotonic() - started)
    if not status.startswith("2"):
        VONAGE_REQUEST_ERRORS.labels(path, status).inc()


# A Django view, as refusals_counted wraps it.
View = Callable[..., HttpResponse]


@contextmanager
def worker_pass() -> Iterator[None]:
    """Count one worker pass and time it; a failure is counted and passed on."""
    started = time.monotonic()
    outcome = "failed"
    try:
        yield
        outcome = "completed"
    finally:
        WORKER_PASSES.labels(outcome).inc()
        WORKER_PASS_SECONDS.observe(time.monotonic() - started)


def webhook_refused(endpoint: str, status: int) -> None:
    WEBHOOKS_REFUSED.labels(endpoint, str(status)).inc()


def alerts_received(integration: str, outcomes: list[str]) -> None:
    for outcome in outcomes:
        ALERTS_RECEIVED.labels(integration, outcome.replace(" ", "_")).inc()


def refusals_counted(endpoint: str) -> Callable[[View], View]:
    """Decorate a webhook view: count every answer of 400 or more (rate limits included) as a refusal."""
    def decorate(view: View) -> View:
        @wraps(view)
        def counted(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            response = view(request, *args, **kwargs)
            if response.status_code >= 400:
                webhook_refused(endpoint, response.status_code)
            return response
        return counted
    return decorate
