"""One worker pass over many escalations: their reads in a few queries, their writes saved together.

A worker's pass decides for up to a few hundred escalations at once. Asking the database row by row would
cost a dozen statements per escalation, each a round trip and a query built by the ORM; a `Batch` reads
what the decisions need for the whole set at once (current pages, their messages, the pending webhooks) and
keeps what they write (new pages, messages and events, changed rows) until `save()`, which writes each
kind in one or a few statements. The caller holds the escalations' row locks throughout, so what was read
stays true until the writes are saved.
"""

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import Any, Literal, NamedTuple

from django.db import connection
from django.db.backends.utils import CursorWrapper
from django.db.models import Field, Min, Model, QuerySet
from django.db.models.query import RawQuerySet

from escalation.engine.events import NewEvent, new_event, save_events
from escalation.models import Escalation, Message, Page, Person, WebhookEvent


class Unread(Enum):
    """A value not read from the database yet (None is a value read: nothing was found)."""

    UNREAD = "unread"


class PageKey(NamedTuple):
    """A page by its step (unique per escalation), known before the page is saved and has a primary key."""

    escalation_id: int
    round: int
    index: int

    @classmethod
    def of(cls, page: Page) -> "PageKey":
        return cls(page.escalation_id, page.round, page.index)


class Batch:
    def __init__(self, now: datetime, escalations: list[Escalation] = ()) -> None:
        self.now = now
        self.escalations = list(escalations)
        self.events: list[NewEvent] = []
        self._new: dict[type[Model], list[Model]] = defaultdict(list)
        # model -> pk -> (instance, the fields changed on it)
        self._changed: dict[type[Model], dict[int, tuple[Model, set[str]]]] = defaultdict(dict)
        self._pages: dict[int, Page] | None = None
        self._messages: dict[PageKey, dict[int, Message]] = {}  # page -> channel index -> message
        self._people: set[int] | None = None
        self._earliest_pending: datetime | None | Literal[Unread.UNREAD] = Unread.UNREAD
        self._unmatched: set[str] | None = None

    # Reads, each made once for the whole batch when first needed.

    def current_page(self, escalation: Escalation) -> Page | None:
        if self._pages is None:
            self._load_pages()
        return self._pages.get(escalation.pk)

    def message(self, page: Page, channel_index: int) -> Message | None:
        return self._page_messages(page).get(channel_index)

    def last_message(self, page: Page) -> Message | None:
        messages = self._page_messages(page)
        return messages[max(messages)] if messages else None

    def reload_messages(self, page: Page) -> None:
        """Forget what was read of `page`'s messages: something outside the batch has written them."""
        self._messages[PageKey.of(page)] = {}
        self._messages_of([page])

    def person_exists(self, person_id: int | None) -> bool:
        """The plan outlives the person: a deleted person is still paged from it, linked to nobody."""
        if person_id is None:
            return False
        if self._people is None:
            wanted = {p["person_id"] for e in self.escalations for p in e.plan["people"]} - {None}
            self._people = set(Person.objects.filter(pk__in=wanted).order_by().values_list("pk", flat=True))
        return person_id in self._people

    def webhooks_pending_since(self, moment: datetime) -> bool:
        """Is an event received at or before `moment` still waiting to be applied?"""
        if self._earliest_pending is Unread.UNREAD:
            pending = WebhookEvent.objects.filter(applied_at=None).aggregate(earliest=Min("received_at"))
            self._earliest_pending = pending["earliest"]
        return self._earliest_pending is not None and self._earliest_pending <= moment

    def unmatched_dispatch(self, page: Page) -> bool:
        """Was an event of this page's workflow applied as unknown (it raced our record of the workflow)?"""
        if self._unmatched is None:
            self._unmatched = workflows_applied_unmatched([
                p.dispatch_uuid for p in (self._pages or {}).values()
                if p.dispatch_uuid is not None and p.deadline <= self.now])
        return str(page.dispatch_uuid) in self._unmatched

    def _load_pages(self) -> None:
        by_id = {e.pk: e for e in self.escalations}
        wanted = [(e.pk, e.current_round, e.current_index) for e in self.escalations if e.current_round]
        pages = list(_pages_at(wanted)) if wanted else []
        self._pages = {}
        for page in pages:
            page.escalation = by_id[page.escalation_id]
            self._pages[page.escalation_id] = page
            self._messages[PageKey.of(page)] = {}
        self._messages_of(pages)

    def _messages_of(self, pages: list[Page]) -> None:
        by_id = {p.pk: p for p in pages}
        if not by_id:
            return
        for message in Message.objects.filter(page_id__in=list(by_id)).order_by():
            message.page = by_id[message.page_id]
            self._messages[PageKey.of(message.page)][message.channel_index] = message

    def _page_messages(self, page: Page) -> dict[int, Message]:
        key = PageKey.of(page)
        if key not in self._messages:
            if page.pk is None:  # started in this batch, so it has no messages in the database
                self._messages[key] = {}
            else:
                self.reload_messages(page)
        return self._messages[key]

    # Writes, kept until save().

    def add(self, instance: Model) -> Model:
        """A new row, inserted by save() with the others of its kind."""
        self._new[type(instance)].append(instance)
        if isinstance(instance, Message):
            self._page_messages(instance.page)[instance.channel_index] = instance
        return instance

    def update(self, instance: Model, **fields: Any) -> None:
        """Change fields of a row (on the instance now, in the database at save())."""
        for name, value in fields.items():
            setattr(instance, name, value)
        if instance.pk is not None:  # a new row is inserted with its fields as they are then
            _, names = self._changed[type(instance)].setdefault(instance.pk, (instance, set()))
            names.update(fields)

    def event(self, escalation: Escalation | int, kind: str, text: str, *, page: Page | None = None,
              message: Message | None = None) -> None:
        self.events.append(new_event(escalation, kind, text, at=self.now, page=page, message=message))

    def save(self) -> None:
        # Parents before children, so each child's foreign key is known when it is inserted.
        for model in (Page, Message):
            if self._new[model]:
                model.objects.bulk_create(self._new[model])
        for model, changed in self._changed.items():
            save_changes(model, changed.values())
        save_events(self.events)


def _pages_at(positions: list[tuple[int, int, int]]) -> RawQuerySet:
    """The pages at these (escalation, round, index) positions, in one query matching row values: the ORM
    would build and compile an OR of a Q per escalation, a sixth of a busy pass's CPU (issue 18)."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(c) for c in ("escalation_id", "round", "index"))
    rows = ", ".join(["(%s, %s, %s)"] * len(positions))
    return Page.objects.raw(f"SELECT * FROM {quote(Page._meta.db_table)} WHERE ({columns}) IN (VALUES {rows})",
                            [value for position in positions for value in position])


def save_changes(model: type[Model], changed: Iterable[tuple[Model, set[str]]]) -> None:
    """Write changed rows in as few UPDATEs as their values allow, each writing only the changed columns.

    Rows given the same new values (the usual case: one batch's decisions share `now` and often the plan)
    take one `UPDATE ... WHERE id IN (...)` per distinct set of values; the rest, one UPDATE per set of
    changed fields: `UPDATE ... FROM (VALUES ...)` on PostgreSQL, executemany elsewhere. The SQL is built
    here rather than by the ORM: Django's `bulk_update` compiles a CASE WHEN per row and field, which
    profiled at a third of a busy worker's CPU (issue 18).
    """
    same_values: dict[tuple, list[Model]] = defaultdict(list)
    for instance, names in changed:
        fields = sorted((model._meta.get_field(name) for name in names), key=lambda f: f.column)
        # Compared by repr: a JSON field's value (a dict) is not hashable.
        values = tuple((field, repr(getattr(instance, field.attname))) for field in fields)
        same_values[values].append(instance)
    one_off: dict[tuple, list[Model]] = defaultdict(list)
    with connection.cursor() as cursor:
        for values, instances in same_values.items():
            fields = tuple(field for field, _ in values)
            if len(instances) > 1:
                _update_same(cursor, model, [(f, getattr(instances[0], f.attname)) for f in fields],
                             [i.pk for i in instances])
            else:
                one_off[fields].append(instances[0])
        for fields, instances in one_off.items():
            if len(instances) == 1:
                _update_same(cursor, model, [(f, getattr(instances[0], f.attname)) for f in fields],
                             [instances[0].pk])
            else:
                _update_each(cursor, model, fields, instances)


def _update_same(cursor: CursorWrapper, model: type[Model], values: list[tuple[Field, object]], pks: list) -> None:
    """One UPDATE giving these rows the same values."""
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(field.column)} = %s" for field, _ in values)
    params = [field.get_db_prep_save(value, connection) for field, value in values]
    cursor.execute(f"UPDATE {quote(model._meta.db_table)} SET {assignments} "
                   f"WHERE {quote(model._meta.pk.column)} IN ({', '.join(['%s'] * len(pks))})", [*params, *pks])


def _update_each(cursor: CursorWrapper, model: type[Model], fields: tuple, instances: list[Model]) -> None:
    """One statement giving each row its own values for the same fields."""
    quote = connection.ops.quote_name
    table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
    rows = [[*(f.get_db_prep_save(getattr(i, f.attname), connection) for f in fields), i.pk] for i in instances]
    if connection.vendor == "postgresql":
        # Each cell is cast to its column's type: VALUES would otherwise type a uuid or timestamp as text.
        casts = [f"%s::{f.db_type(connection)}" for f in fields]
        row = f"({', '.join([*casts, f'%s::{model._meta.pk.db_type(connection)}'])})"
        names = [f"c{n}" for n in range(len(fields))]
        assignments = ", ".join(f"{quote(f.column)} = v.{name}" for f, name in zip(fields, names, strict=True))
        cursor.execute(f"UPDATE {table} SET {assignments} FROM (VALUES {', '.join([row] * len(rows))}) "
                       f"AS v({', '.join(names)}, id) WHERE {table}.{pk} = v.id",
                       [param for values in rows for param in values])
    else:
        assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)
        cursor.executemany(f"UPDATE {table} SET {assignments} WHERE {pk} = %s", rows)


def workflows_applied_unmatched(dispatch_uuids: list) -> set[str]:
    """Which of these workflows have events applied as unknown (they raced our record of the workflow):
    the ones `replay_unmatched_dispatch` has something to do for. One query for them all."""
    if not dispatch_uuids:
        return set()
    return {str(u) for u in applied_unmatched(dispatch_uuids).order_by().values_list("dispatch_uuid", flat=True)}


def applied_unmatched(dispatch_uuids: list) -> QuerySet:
    """Events of these workflows applied as unknown: they arrived before our record of the workflow."""
    return WebhookEvent.objects.filter(dispatch_uuid__in=dispatch_uuids, message=None, escalation=None) \
        .exclude(applied_at=None)
