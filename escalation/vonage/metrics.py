"""Vonage request latency and errors, counted where the requests are made (nothing records them elsewhere).

Plain prometheus_client metrics: per process, or shared by every process of the host through the library's
multiprocess mode when PROMETHEUS_MULTIPROC_DIR is set (see escalation/ops/metrics.py). Like the rest of the
Vonage client, this module calls nothing of ours.
"""

import time

from prometheus_client import Counter, Histogram

# Seconds: a healthy request takes tens of milliseconds; the read timeout is 10 s.
REQUEST_SECONDS = Histogram(
    "oncall_vonage_request_duration_seconds", "Time of one request to Vonage, by path and HTTP status "
    "('timeout' or 'unreachable' when no answer came).", ["path", "status"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0),
)
REQUEST_ERRORS = Counter(
    "oncall_vonage_request_errors", "Requests to Vonage that were not accepted (non-2xx or no answer), by path "
    "and status.", ["path", "status"],
)


def request_observed(path: str, status: int | str, started: float) -> None:
    """Record one request begun at `started` (time.monotonic()) that ended with `status`."""
    status = str(status)
    REQUEST_SECONDS.labels(path, status).observe(time.monotonic() - started)
    if not status.startswith("2"):
        REQUEST_ERRORS.labels(path, status).inc()
