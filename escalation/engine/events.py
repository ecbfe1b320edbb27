from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import NamedTuple

from django.db import connection
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
) -> None:
    save_events([new_event(escalation, kind, text, at=at, page=page, message=message)])


class NewEvent(NamedTuple):
    """An event to insert with others (`save_events`): a plain row, not a model instance, since the worker
    makes thousands a minute and Django's instance and INSERT machinery cost more than the rows' use."""

    escalation_id: int
    kind: str
    text: str
    at: datetime
    page: Page | None  # its id is read at save time: a page or message made in the same batch has none yet
    message: Message | None

    def row(self) -> tuple:
        return (self.escalation_id, self.page.pk if self.page is not None else None,
                self.message.pk if self.message is not None else None, self.at, self.kind, self.text)


def new_event(
    escalation: Escalation | int,
    kind: str,
    text: str,
    *,
    at: datetime,
    page: Page | None = None,
    message: Message | None = None,
) -> NewEvent:
    """An event to save with others by `save_events`."""
    escalation_id = escalation if isinstance(escalation, int) else escalation.pk
    return NewEvent(escalation_id, kind, text[:500], at, page, message)


@cache
def _insert_sql(vendor: str) -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(Event._meta.get_field(name).column)
                        for name in ("escalation", "page", "message", "at", "kind", "text"))
    return f"INSERT INTO {quote(Event._meta.db_table)} ({columns}) VALUES "


def save_events(events: Sequence[NewEvent]) -> None:
    """Insert `events` in one statement (without reading their ids back: nobody needs them)."""
    if not events:
        return
    adapt = connection.ops.adapt_datetimefield_value
    params = []
    for event in events:
        escalation_id, page_id, message_id, at, kind, text = event.row()
        params += (escalation_id, page_id, message_id, adapt(at), kind, text)
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(connection.vendor) + ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(events)),
                       params)


def clock(moment: datetime) -> str:
    """A moment as people on call read it, with its zone: "03:14:07 UTC"."""
    return timezone.localtime(moment).strftime("%H:%M:%S %Z")
