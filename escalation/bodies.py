"""What the inbound views (webhooks, integrations, PagerDuty events) share about a request's body."""

from django.http import HttpRequest


def declared_length(request: HttpRequest) -> int:
    """The body's declared Content-Length (0 when missing or malformed). Django never reads past it, so checking
    it against a limit is enough to refuse an oversized body before reading any of it."""
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0
