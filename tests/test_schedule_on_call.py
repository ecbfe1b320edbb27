"""Who is on call, as the fire plan, the index and the CLI ask it: overrides read from the instant onwards,
a day first and wider only for a schedule whose shift runs past that, in the same few queries for any number
of schedules."""

from datetime import date, time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from escalation.models import Layer, Override, Person, Roster, RosterMember, Schedule
from escalation.models.schedules import layer_label
from escalation.schedules.load import load_overrides, load_rules, rotation_of
from escalation.services.schedules import override_create, resolve_members, schedule_on_call
from tests.personas import ANNA, MICHAEL, TONY, make_person
from tests.schedule_personas import make_schedule

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    return make_person(*TONY), make_person(*MICHAEL), make_person(*ANNA)


def test_it_ends_a_weekly_shift_at_an_override_days_ahead_and_at_the_hand_off_without_one(people):
    tony, michael, anna = people
    primary = make_schedule("Primary", [tony, michael], zone="UTC")
    now = timezone.now()
    on_call = schedule_on_call(primary, at=now)
    assert on_call.people == [(tony.pk, "Tony")] and on_call.until > now + timedelta(days=5)
    cover = override_create(schedule=primary, person=anna, start=now + timedelta(days=3), end=now + timedelta(days=4))
    assert schedule_on_call(primary, at=now).until == cover.start  # read in the second window, not the first


def test_it_finds_the_end_of_a_long_gap_in_the_widest_window_and_none_beyond_it(people):
    nights = make_schedule("Nights", [])
    now = timezone.now()
    assert schedule_on_call(nights, at=now).until is None
    far = override_create(schedule=nights, person=people[2], start=now + timedelta(days=30),
                          end=now + timedelta(days=31))
    assert schedule_on_call(nights, at=now).until == far.start
    assert schedule_on_call(nights, at=far.start).people == [(people[2].pk, "Anna")]


def test_it_resolves_any_number_of_schedules_in_the_same_queries(people):
    tony, michael, anna = people
    now = timezone.now()

    def queries(count: int) -> int:
        schedules = [make_schedule(f"S{count}-{number}", [tony, michael, anna], unit="days") for number in range(count)]
        for schedule in schedules:
            override_create(schedule=schedule, person=anna, start=now - timedelta(hours=1),
                            end=now + timedelta(hours=1))
        roster = Roster.objects.create(name=f"r{count}")
        for position, schedule in enumerate(schedules):
            RosterMember.objects.create(roster=roster, schedule=schedule, position=position)
        members = roster.ordered_members()
        with CaptureQueriesContext(connection) as captured:
            resolved, skipped = resolve_members(members, at=now)
        assert [member.name for member in resolved] == ["Anna"] and len(skipped) == count - 1
        return len(captured)

    assert queries(1) == queries(6) == 2  # rules and the day's overrides, each with its people's names


def test_it_skips_an_inactive_person_whether_their_turn_or_an_override_put_them_on_call(people):
    tony, michael, anna = people
    now = timezone.now()
    primary = make_schedule("Primary", [tony], zone="UTC")
    cover = make_schedule("Cover", [michael], zone="UTC")
    override_create(schedule=cover, person=anna, start=now - timedelta(hours=1), end=now + timedelta(hours=1))
    tony.is_active = anna.is_active = False
    tony.save(), anna.save()
    roster = Roster.objects.create(name="Both")
    RosterMember.objects.create(roster=roster, schedule=primary, position=0)
    RosterMember.objects.create(roster=roster, schedule=cover, position=1)
    resolved, skipped = resolve_members(roster.ordered_members(), at=now)
    assert resolved == []
    assert skipped == ["Schedule Primary: Tony is on call but not active, skipped.",
                       "Schedule Cover: Anna is on call but not active, skipped."]


def test_its_sql_reads_what_the_orm_reads(people):
    """load_rules and load_overrides read in SQL of their own (for speed): the same rows as the ORM, with
    the window's ends exclusive, restrictions, empty layers, inactive people and aware datetimes."""
    tony, michael, anna = people
    anna.is_active = False
    anna.save()
    primary = make_schedule("Primary", [michael, tony, anna], zone="America/New_York")
    Layer.objects.create(schedule=primary, position=1, name="Nobody yet", shift_length=12, unit="hours",
                         handoff_date=date(2026, 3, 8), handoff_time=time(2, 30), restrict_weekdays="0,4",
                         restrict_start=time(22), restrict_end=time(6), anchor_shift=3, anchor_index=1)
    other = make_schedule("Other", [anna])
    start = timezone.now().replace(microsecond=250_000)
    end = start + timedelta(days=1)
    hour = timedelta(hours=1)
    periods = [(start - 2 * hour, start), (start - hour, start + timedelta(seconds=1)),  # ends at start: not read
               (end - timedelta(microseconds=1), end + hour), (end, end + hour),  # starts at end: not read
               (start + 3 * hour, start + 4 * hour)]
    for schedule in (primary, other):
        for begin, finish in periods:
            override_create(schedule=schedule, person=anna if begin > start else tony, start=begin, end=finish,
                            mode="add")

    loaded = load_rules(Schedule.objects.filter(pk__in=[primary.pk, other.pk]))
    load_overrides(loaded.values(), start=start, end=end)
    for schedule in (primary, other):
        entry = loaded[schedule.pk]
        layers = list(schedule.layers.order_by("position", "id"))
        assert entry.rules.layers == tuple(
            rotation_of(layer, tuple(layer.participants.order_by("position", "id").values_list("person_id", flat=True)))
            for layer in layers)
        assert entry.layer_names == [layer_label(layer.name, layer.position) for layer in layers]
        expected = Override.objects.filter(schedule=schedule, end__gt=start, start__lt=end).order_by("id")
        assert [(o.pk, o.start, o.end, o.person_id, o.mode) for o in entry.overrides] == [
            (o.pk, o.start, o.end, o.person_id, o.mode) for o in expected]
        assert len(entry.overrides) == 3 and all(o.start.tzinfo is not None for o in entry.overrides)
        named = {pk for layer in entry.rules.layers for pk in layer.participants} | {o.person_id for o in expected}
        assert entry.names == {pk: Person.objects.get(pk=pk).name for pk in named}
        assert entry.inactive == ({anna.pk} & named)
