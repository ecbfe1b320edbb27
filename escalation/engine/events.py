from datetime import datetime

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
