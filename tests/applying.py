"""What a worker's pass does with the webhooks that requests stored, for tests that check their effect."""

from datetime import datetime

from django.utils import timezone

from escalation.engine.intake import webhooks_apply, webhooks_pending


def apply_stored_webhooks(now: datetime | None = None) -> int:
    """Apply every pending webhook event as the worker does; returns how many were applied."""
    return webhooks_apply(webhooks_pending(limit=10_000), now=now or timezone.now())
