"""iCal feeds of schedules and of people's shifts (RFC 5545 via `icalendar`), from the same shifts the
picture and the fire plan use.

Times are UTC, so every calendar shows them in its own zone. A shift's UID is made of the schedule, the
person and the shift's start, so a calendar that refreshes the feed updates events instead of duplicating
them; an event only changes UID when its shift really moves.
"""

from datetime import datetime, timedelta

from django.utils import timezone
from icalendar import Calendar, Event

from escalation.models import LayerParticipant, Override, Person, PersonFeed, Schedule
from escalation.schedules import shifts
from escalation.schedules.load import LoadedSchedule, load_schedules

FEED_AHEAD = timedelta(days=365)
FEED_BEHIND = timedelta(days=7)
PRODUCT_ID = "-//oncall-escalation//schedules//EN"


def feed_window(now: datetime) -> tuple[datetime, datetime]:
    return now - FEED_BEHIND, now + FEED_AHEAD


def _calendar(name: str) -> Calendar:
    calendar = Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", name)
    return calendar


def _event(loaded: LoadedSchedule, shift: shifts.Shift, person_id: int, stamp: datetime) -> Event:
    event = Event()
    schedule = loaded.schedule
    event.add("uid", f"schedule-{schedule.pk}-person-{person_id}-{shift.start:%Y%m%dT%H%M%SZ}@oncall")
    event.add("dtstamp", stamp)
    event.add("dtstart", shift.start)
    event.add("dtend", shift.end)
    event.add("summary", f"{loaded.names.get(person_id, person_id)} on call: {schedule.name}")
    return event


def _person_runs(loaded: LoadedSchedule, start: datetime, end: datetime, person_id: int) -> list[shifts.Shift]:
    """The person's time on call, neighbouring shifts joined: one calendar event per stretch on call."""
    runs: list[shifts.Shift] = []
    for shift in shifts.person_shifts(shifts.shifts_between(loaded.rules, start, end), person_id):
        if runs and runs[-1].end == shift.start:
            runs[-1] = shifts.Shift(runs[-1].start, shift.end, (person_id,))
        else:
            runs.append(shifts.Shift(shift.start, shift.end, (person_id,)))
    return runs


def schedule_feed(schedule: Schedule, *, now: datetime | None = None) -> bytes:
    now = now or timezone.now()
    start, end = feed_window(now)
    loaded = load_schedules([schedule.pk], start=start, end=end)[schedule.pk]
    calendar = _calendar(f"On call: {schedule.name}")
    people = sorted({pk for shift in shifts.shifts_between(loaded.rules, start, end) for pk in shift.people})
    for person_id in people:
        for run in _person_runs(loaded, start, end, person_id):
            calendar.add_component(_event(loaded, run, person_id, now))
    return calendar.to_ical()


def person_feed(person: Person, *, now: datetime | None = None) -> bytes:
    now = now or timezone.now()
    start, end = feed_window(now)
    ids = set(LayerParticipant.objects.filter(person=person).values_list("layer__schedule_id", flat=True))
    ids |= set(Override.objects.filter(person=person, end__gt=start).values_list("schedule_id", flat=True))
    calendar = _calendar(f"On call: {person.name}")
    for loaded in load_schedules(sorted(ids), start=start, end=end).values():
        for run in _person_runs(loaded, start, end, person.pk):
            calendar.add_component(_event(loaded, run, person.pk, now))
    return calendar.to_ical()


def person_feed_token(person: Person) -> str:
    return PersonFeed.objects.get_or_create(person=person)[0].token


def person_feed_rotate(person: Person) -> str:
    feed, _ = PersonFeed.objects.get_or_create(person=person)
    feed.token = PersonFeed._meta.get_field("token").default()
    feed.save(update_fields=["token"])
    return feed.token
