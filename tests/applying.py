"""What a worker's pass does with the webhooks that requests stored, for tests that check their effect."""

from datetime import datetime

from django.utils import timezone

from escalation.services.webhooks import webhook_apply, webhooks_pending


def apply_stored_webhooks(now: datetime | None = None) -> int:
    """Apply every pending webhook event, oldest first; returns how many were applied."""
    applied = 0
    for event_id in webhooks_pending(limit=10_000):
        if webhook_apply(event_id, now=now or timezone.now()) is not None:
            applied += 1
    return applied
