"""A per-client-IP token bucket in front of the public endpoints (Vonage's webhooks, alert intake).

Its only job is to keep one flooding address from starving the database the workers need, so the
default (RATE_LIMIT_PER_SECOND, RATE_LIMIT_BURST) is far above anything Vonage or a monitoring system
sends: a big escalation storm is hundreds of webhooks a second. The buckets live in each web process,
so the effective limit is the setting times the number of gunicorn workers. A refused request gets 429
with Retry-After, which Vonage and Alertmanager both retry, so nothing is lost, only delayed.
RATE_LIMIT_PER_SECOND = 0 turns it off.
"""

import math
import threading
import time
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

# Beyond this many addresses the idle (full) buckets are forgotten, so the table cannot grow without bound.
MAX_TRACKED_ADDRESSES = 10_000


class TokenBuckets:
    """Thread-safe buckets by key; `take` spends one token or says how long until one is there."""

    def __init__(self, *, max_keys: int = MAX_TRACKED_ADDRESSES) -> None:
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when they were counted)

    def take(self, key: str, *, rate: float, burst: float, now: float) -> float:
        """0.0 if a token was spent, else the seconds until the next token (the request is refused)."""
        with self._lock:
            tokens, counted_at = self._buckets.get(key, (burst, now))
            tokens = min(burst, tokens + max(now - counted_at, 0.0) * rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                if len(self._buckets) > self.max_keys:
                    self._forget_idle(rate=rate, burst=burst, now=now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / rate

    def _forget_idle(self, *, rate: float, burst: float, now: float) -> None:
        refill = burst / rate
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < refill}
        if len(self._buckets) > self.max_keys:
            # Thousands of addresses busy at once: forget them all rather than grow (fails open).
            self._buckets.clear()

    def clear(self) -> None:
        with self._lock:
            self._buckets.clear()


buckets = TokenBuckets()


def client_address(request: HttpRequest) -> str:
    """REMOTE_ADDR, or behind a proxy the header it sets (RATE_LIMIT_IP_HEADER, e.g. X-Real-IP).

    The last entry of a list is taken: a proxy appends the address it saw to X-Forwarded-For, while
    anything before it was written by the client.
    """
    header = settings.RATE_LIMIT_IP_HEADER
    if header:
        value = request.headers.get(header, "")
        if value.strip():
            return value.rsplit(",", 1)[-1].strip()
    return request.META.get("REMOTE_ADDR", "")


def rate_limited(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def limited(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        rate = settings.RATE_LIMIT_PER_SECOND
        if rate > 0:
            address = client_address(request)
            wait = buckets.take(address, rate=rate, burst=max(settings.RATE_LIMIT_BURST, 1), now=time.monotonic())
            if wait:
                seconds = max(1, math.ceil(wait))
                response = JsonResponse(
                    {"error": f"Too many requests from {address}: retry in {seconds} s."}, status=429
                )
                response["Retry-After"] = str(seconds)
                return response
        return view(request, *args, **kwargs)

    return limited
