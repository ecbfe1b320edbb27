"""Schedules for the tests: a weekly rotation whose current week belongs to the first person given."""

from datetime import date, time, timedelta

from django.utils import timezone

from escalation.models import Layer, LayerParticipant, Person, Roster, RosterMember, Schedule
from tests.personas import make_person, make_senders


def make_schedule(name: str, people: list[Person], *, zone: str = "Europe/London", handoff: date | None = None,
                  at: time = time(9), unit: str = "weeks") -> Schedule:
    """One layer rotating through `people`; by default its first shift began yesterday, so people[0] is on."""
    schedule = Schedule.objects.create(name=name, time_zone=zone)
    layer = Layer.objects.create(schedule=schedule, name="Weekly", shift_length=1, unit=unit,
                                 handoff_date=handoff or timezone.localdate() - timedelta(days=1),
                                 handoff_time=at)
    for position, person in enumerate(people):
        LayerParticipant.objects.create(layer=layer, person=person, position=position)
    return schedule


def make_schedule_roster(*members, name: str = "primary") -> Roster:
    """A roster of persons (as persona tuples) and schedules, in the order given."""
    make_senders()
    roster = Roster.objects.create(name=name)
    for position, member in enumerate(members):
        if isinstance(member, Schedule):
            RosterMember.objects.create(roster=roster, schedule=member, position=position)
        else:
            person = member if isinstance(member, Person) else make_person(*member)
            RosterMember.objects.create(roster=roster, person=person, position=position)
    return roster
