"""Who is on call, as the fire plan, the index and the CLI ask it: overrides read from the instant onwards,
a day first and wider only for a schedule whose shift runs past that, in the same few queries for any number
of schedules."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from escalation.models import Roster, RosterMember
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
        assert [member.person.name for member in resolved] == ["Anna"] and len(skipped) == count - 1
        return len(captured)

    assert queries(1) == queries(6) == 3  # rules, the day's overrides, the people paged
