"""The iCal feeds parse with `icalendar` and hold exactly the function's shifts; the CLI says the same."""

from datetime import UTC, date, datetime, time, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone
from icalendar import Calendar

from escalation.models import Layer, Override
from escalation.schedules import shifts
from escalation.schedules.load import load_schedules
from escalation.services.schedule_feeds import (
    FEED_AHEAD,
    FEED_BEHIND,
    person_feed,
    person_feed_rotate,
    person_feed_token,
    schedule_feed,
)
from tests.personas import ANNA, MICHAEL, TONY, make_person
from tests.schedule_personas import make_schedule

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 20, 12, tzinfo=UTC)


@pytest.fixture
def primary():
    tony, michael, anna = (make_person(*p) for p in (TONY, MICHAEL, ANNA))
    schedule = make_schedule("Primary", [michael, tony], handoff=date(2026, 3, 2))
    Layer.objects.create(schedule=schedule, position=1, name="Nights", handoff_date=date(2026, 3, 2),
                         handoff_time=time(9), unit="days", restrict_start=time(22), restrict_end=time(6))
    # Business hours above: layer 0 becomes restricted, so the night layer (nobody in it) leaves gaps.
    Layer.objects.filter(schedule=schedule, position=0).update(restrict_weekdays="0,1,2,3,4",
                                                               restrict_start=time(9), restrict_end=time(17))
    Override.objects.create(schedule=schedule, person=anna, start=NOW + timedelta(days=3),
                            end=NOW + timedelta(days=3, hours=5))
    return schedule


def events(ics: bytes) -> list[tuple]:
    calendar = Calendar.from_ical(ics)
    return sorted((str(e["summary"]), e.decoded("dtstart"), e.decoded("dtend"), str(e["uid"]))
                  for e in calendar.walk("VEVENT"))


def expected_runs(schedule, person_names: dict[int, str]) -> list[tuple]:
    start, end = NOW - FEED_BEHIND, NOW + FEED_AHEAD
    rules = load_schedules([schedule.pk], start=start, end=end)[schedule.pk].rules
    runs = []
    for person_id, name in person_names.items():
        for shift in shifts.person_shifts(shifts.shifts_between(rules, start, end), person_id):
            if runs and runs[-1][0] == name and runs[-1][2] == shift.start:
                runs[-1] = (name, runs[-1][1], shift.end)
            else:
                runs.append((name, shift.start, shift.end))
    return sorted((f"{name} on call: {schedule.name}", begin, finish) for name, begin, finish in runs)


def test_it_feeds_a_year_of_the_schedule_s_shifts_in_utc_with_stable_uids(primary):
    names = {p.pk: p.name for p in primary.layers.get(position=0).people.all()}
    names[Override.objects.get().person_id] = "Anna"
    feed = events(schedule_feed(primary, now=NOW))
    assert [(s, b, e) for s, b, e, _ in feed] == expected_runs(primary, names)
    assert all(b.tzinfo == UTC or b.utcoffset() == timedelta(0) for _, b, _, _ in feed)
    assert max(e for _, _, e, _ in feed) >= NOW + FEED_AHEAD - timedelta(days=4)  # a year ahead
    assert len({uid for *_, uid in feed}) == len(feed)
    assert [uid for *_, uid in events(schedule_feed(primary, now=NOW + timedelta(hours=1)))][:5] == \
        [uid for *_, uid in feed][:5]


def test_it_feeds_a_person_only_their_own_shifts(client, primary):
    anna = primary.overrides.get().person
    feed = events(person_feed(anna, now=NOW))
    assert [(s, b, e) for s, b, e, _ in feed] == [("Anna on call: Primary", NOW + timedelta(days=3),
                                                   NOW + timedelta(days=3, hours=5))]
    soon = timezone.now().replace(microsecond=0) + timedelta(days=1)
    Override.objects.create(schedule=primary, person=anna, start=soon, end=soon + timedelta(hours=2))
    token = person_feed_token(anna)
    response = client.get(reverse("person-feed", args=[token]))  # served at the real now
    assert response.status_code == 200 and response["Content-Type"].startswith("text/calendar")
    assert [(s, b, e) for s, b, e, _ in events(response.content)] == [
        ("Anna on call: Primary", soon, soon + timedelta(hours=2))]
    person_feed_rotate(anna)
    assert client.get(reverse("person-feed", args=[token])).status_code == 404
    assert client.get(reverse("person-feed", args=["not-a-token"])).status_code == 404


def test_it_prints_who_is_on_call_from_the_command_line(primary, capsys):
    call_command("oncall", "Primary", "--at", "2026-03-20T12:00")  # a Friday, business hours in London
    assert capsys.readouterr().out == "Primary: Michael until Fri 20 Mar 17:00 (Europe/London).\n"
    call_command("oncall", "Primary", "--at", "2026-03-21T12:00:00+00:00")
    assert capsys.readouterr().out.startswith("Primary: nobody is on call (until ")
    with pytest.raises(CommandError, match="not an ISO-8601"):
        call_command("oncall", "Primary", "--at", "tomorrow")
    with pytest.raises(CommandError, match="No schedule named 'Secondary'"):
        call_command("oncall", "Secondary")
