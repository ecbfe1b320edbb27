from datetime import datetime

from django.utils import timezone

from escalation.models import Escalation, Event, Message, Page


def record_event(
    escalation: Escalation | int,
    kind: str,
    text: str,
    *,
    at: datetime,
    page: Page | None = None,
    message: Message | None = None,
) -> Event:
    event = new_event(escalation, kind, text, at=at, page=page, message=message)
    event.save(force_insert=True)
    return event


def new_event(
    escalation: Escalation | int,
    kind: str,
    text: str,
    *,
    at: datetime,
    page: Page | None = None,
    message: Message | None = None,
) -> Event:
    """An unsaved Event, for writers that save many at once (bulk_create)."""
    escalation_id = escalation if isinstance(escalation, int) else escalation.pk
    return Event(escalation_id=escalation_id, kind=kind, text=text[:500], at=at, page=page, message=message)


def clock(moment: datetime) -> str:
    """A moment as people on call read it, with its zone: "03:14:07 UTC"."""
    return timezone.localtime(moment).strftime("%H:%M:%S %Z")
