"""Escalations written straight into the run tables, as the engine would have left them.

The history pages only read these rows, so their tests build them directly, with explicit times, instead
of running the engine against the emulator.
"""

from datetime import UTC, datetime, timedelta

from django.utils import timezone

from escalation.models import (
    Escalation,
    EscalationState,
    Event,
    EventKind,
    Message,
    MessageStatus,
    Page,
    PageState,
    Person,
    Roster,
)

T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def plan_for(people: list[tuple[Person | None, str, list[tuple[str, str, int, str]]]], rounds: int = 1) -> dict:
    return {
        "rounds": rounds,
        "people": [
            {"person_id": person.pk if person else None, "name": name,
             "channels": [{"type": t, "address": a, "expiry_time": e, "condition": c, "sender": "x"}
                          for t, a, e, c in channels]}
            for person, name, channels in people
        ],
    }


TONY_CHANNELS = [("messenger", "23037543461244470", 60, "read"), ("sms", "447700900001", 60, "delivered")]
MICHAEL_CHANNELS = [("viber_service_msg", "447700900002", 60, "read"), ("whatsapp", "447700900003", 60, "read"),
                    ("sms", "447700900004", 60, "delivered")]
ANNA_CHANNELS = [("whatsapp", "447700900005", 30, "read"), ("sms", "447700900006", 30, "delivered")]


def acknowledged_escalation(*, roster: Roster | None = None, people: dict[str, Person] | None = None,
                            start: datetime = T0, extra_events: int = 0) -> Escalation:
    """Tony ignores Messenger and his SMS is rejected; Michael reads WhatsApp at +2:20; Anna is never paged.

    `extra_events` adds that many status notes, to grow the history without changing the picture.
    """
    people = people or {}

    def t(seconds: float) -> datetime:
        return start + timedelta(seconds=seconds)

    plan = plan_for([(people.get("Tony"), "Tony", TONY_CHANNELS), (people.get("Michael"), "Michael", MICHAEL_CHANNELS),
                     (people.get("Anna"), "Anna", ANNA_CHANNELS)])
    escalation = Escalation.objects.create(
        roster=roster, roster_name=roster.name if roster else "primary",
        message="Production is down: please acknowledge", api="messages", plan=plan,
        state=EscalationState.ACKNOWLEDGED, fired_by_name="ann", created_at=t(0),
        ended_at=t(140), acknowledged_by=people.get("Michael"), acknowledged_by_name="Michael",
        outcome="Michael: read on WhatsApp 447700900003", current_round=1, current_index=1,
    )
    event = _event_writer(escalation)
    event(0, EventKind.FIRED, "Fired by ann: Tony, Michael, Anna; 1 round, via Messages API v1.")

    tony = Page.objects.create(escalation=escalation, round=1, index=0, person=people.get("Tony"), person_name="Tony",
                               state=PageState.PASSED_OVER, started_at=t(1), deadline=t(121), ended_at=t(62),
                               outcome="every channel failed or expired")
    event(1, EventKind.PAGED, "Paging Tony (round 1).", page=tony)
    tony_messenger = Message.objects.create(
        page=tony, channel_index=0, channel_type="messenger", to_address="23037543461244470", condition="read",
        expiry_time=60, status=MessageStatus.DELIVERED, status_rank=2, created_at=t(1), sent_at=t(1),
        delivered_at=t(3), deadline=t(61))
    event(1, EventKind.SENT, "Messenger to 23037543461244470 accepted.", page=tony, message=tony_messenger)
    event(3, EventKind.DELIVERED, "Tony's Messenger 23037543461244470: delivered", page=tony, message=tony_messenger)
    tony_sms = Message.objects.create(
        page=tony, channel_index=1, channel_type="sms", to_address="447700900001", condition="delivered",
        expiry_time=60, status=MessageStatus.REJECTED, status_rank=3, created_at=t(61), sent_at=t(61),
        failed_at=t(62), deadline=t(121), error="Invalid number")
    event(61, EventKind.SENT, "SMS to 447700900001 accepted.", page=tony, message=tony_sms)
    event(62, EventKind.REJECTED, "Tony's SMS 447700900001: rejected (Invalid number)", page=tony, message=tony_sms)
    event(62, EventKind.PASSED_OVER, "Tony passed over: every channel failed or expired", page=tony)

    michael = Page.objects.create(escalation=escalation, round=1, index=1, person=people.get("Michael"),
                                  person_name="Michael", state=PageState.REACHED, started_at=t(62), deadline=t(242),
                                  ended_at=t(140), outcome="read on WhatsApp 447700900003")
    event(62, EventKind.PAGED, "Paging Michael (round 1).", page=michael)
    viber = Message.objects.create(
        page=michael, channel_index=0, channel_type="viber_service_msg", to_address="447700900002", condition="read",
        expiry_time=60, status=MessageStatus.SUBMITTED, status_rank=1, created_at=t(62), sent_at=t(62),
        deadline=t(122))
    event(62, EventKind.SENT, "Viber to 447700900002 accepted.", page=michael, message=viber)
    whatsapp = Message.objects.create(
        page=michael, channel_index=1, channel_type="whatsapp", to_address="447700900003", condition="read",
        expiry_time=60, status=MessageStatus.READ, status_rank=3, created_at=t(122), sent_at=t(122),
        delivered_at=t(124), read_at=t(140), deadline=t(182))
    event(122, EventKind.SENT, "WhatsApp to 447700900003 accepted.", page=michael, message=whatsapp)
    event(124, EventKind.DELIVERED, "Michael's WhatsApp 447700900003: delivered", page=michael, message=whatsapp)
    Event.objects.bulk_create(
        Event(escalation=escalation, page=michael, message=whatsapp, kind=EventKind.NOTE, text=f"Status note {n}",
              at=t(124 + n * 15 / extra_events))
        for n in range(extra_events)
    )
    event(140, EventKind.READ, "Michael's WhatsApp 447700900003: read", page=michael, message=whatsapp)
    event(140, EventKind.ACKNOWLEDGED, "Acknowledged: Michael read on WhatsApp 447700900003.", page=michael)
    return escalation


def active_escalation(*, roster: Roster | None = None, start: datetime | None = None) -> Escalation:
    """Tony is being paged on Messenger right now (sent 20 s ago, delivered)."""
    start = start or timezone.now() - timedelta(seconds=20)
    plan = plan_for([(None, "Tony", TONY_CHANNELS), (None, "Michael", MICHAEL_CHANNELS)])
    escalation = Escalation.objects.create(
        roster=roster, roster_name=roster.name if roster else "primary", message="Disk full on db-1", api="messages",
        plan=plan, state=EscalationState.ACTIVE, fired_by_name="ann", created_at=start,
        next_action_at=start + timedelta(seconds=61), current_round=1, current_index=0,
    )
    page = Page.objects.create(escalation=escalation, round=1, index=0, person_name="Tony", state=PageState.ACTIVE,
                               started_at=start, deadline=start + timedelta(seconds=120))
    Message.objects.create(page=page, channel_index=0, channel_type="messenger", to_address="23037543461244470",
                           condition="read", expiry_time=60, status=MessageStatus.DELIVERED, status_rank=2,
                           created_at=start, sent_at=start, delivered_at=start + timedelta(seconds=2),
                           deadline=start + timedelta(seconds=60))
    Event.objects.create(escalation=escalation, page=page, at=start, kind=EventKind.PAGED,
                         text="Paging Tony (round 1).")
    return escalation


def _event_writer(escalation: Escalation):
    def event(seconds: float, kind: str, text: str, *, page: Page | None = None,
              message: Message | None = None) -> Event:
        return Event.objects.create(escalation=escalation, page=page, message=message, kind=kind, text=text,
                                    at=escalation.created_at + timedelta(seconds=seconds))
    return event
