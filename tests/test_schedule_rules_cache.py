"""Each process keeps the layers and overrides it read under the schedule's rules version, which the database
changes with any row they were read from (migration 0016's triggers). A cache that missed one kind of change would page
the wrong person, so every kind is tried here, written the ways that bypass Django's signals too (queryset
update, bulk create, a cascade), on both databases."""

import threading
from collections.abc import Callable
from datetime import date, time, timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from escalation.models import Layer, LayerParticipant, Override, Person, Schedule
from escalation.services.schedules import override_create, resolve_members, schedules_keep
from tests.conftest import requires_postgres
from tests.personas import ANNA, MICHAEL, TONY, make_person
from tests.schedule_personas import make_schedule, make_schedule_roster

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup():
    """Primary: a weekly layer of Tony then Michael (Tony on call now), and Anna covered an hour of it
    yesterday; Other: Anna alone."""
    tony, michael, anna = make_person(*TONY), make_person(*MICHAEL), make_person(*ANNA)
    primary = make_schedule("Primary", [tony, michael])
    other = make_schedule("Other", [anna])
    yesterday = timezone.now() - timedelta(days=1)
    override_create(schedule=primary, person=anna, start=yesterday, end=yesterday + timedelta(hours=1))
    return primary, other, tony, michael, anna


def version(schedule: Schedule) -> int:
    return Schedule.objects.values_list("rules_version", flat=True).get(pk=schedule.pk)


def weekly(primary: Schedule) -> Layer:
    return primary.layers.get()


def add_layer(primary, other, tony, michael, anna):
    Layer.objects.create(schedule=primary, position=1, handoff_date=date(2026, 1, 5), handoff_time=time(9))
    return [primary]


def save_layer(primary, other, tony, michael, anna):
    layer = weekly(primary)
    layer.handoff_time = time(10)
    layer.save()
    return [primary]


def update_layers(primary, other, tony, michael, anna):
    Layer.objects.filter(schedule=primary).update(anchor_index=1)
    return [primary]


def delete_layer(primary, other, tony, michael, anna):
    weekly(primary).delete()  # its participants go first, in the same cascade
    return [primary]


def move_layer(primary, other, tony, michael, anna):
    Layer.objects.filter(schedule=primary).update(schedule=other)
    return [primary, other]


def add_participants(primary, other, tony, michael, anna):
    LayerParticipant.objects.bulk_create([LayerParticipant(layer=weekly(primary), person=anna, position=2)])
    return [primary]


def reorder_participants(primary, other, tony, michael, anna):
    LayerParticipant.objects.filter(layer=weekly(primary), person=tony).update(position=5)
    return [primary]


def swap_participant(primary, other, tony, michael, anna):
    LayerParticipant.objects.filter(layer=weekly(primary), person=tony).update(person=anna)
    return [primary]


def remove_participant(primary, other, tony, michael, anna):
    LayerParticipant.objects.filter(layer=weekly(primary), person=tony).delete()
    return [primary]


def rename_person(primary, other, tony, michael, anna):
    tony.name = "Antony"
    tony.save()
    return [primary]


def deactivate_person(primary, other, tony, michael, anna):
    Person.objects.filter(pk=anna.pk).update(is_active=False)
    return [primary, other]  # her override and her layer


def cover(schedule: Schedule, person: Person) -> Override:
    now = timezone.now()
    return override_create(schedule=schedule, person=person, start=now - timedelta(hours=1),
                           end=now + timedelta(hours=1))


def add_override(primary, other, tony, michael, anna):
    cover(primary, anna)
    return [primary]


def move_override(primary, other, tony, michael, anna):
    Override.objects.filter(schedule=primary).update(end=timezone.now() - timedelta(hours=1))
    return [primary]


def delete_override(primary, other, tony, michael, anna):
    Override.objects.filter(schedule=primary).delete()
    return [primary]


def rename_override_person(primary, other, tony, michael, anna):
    Person.objects.filter(pk=anna.pk).update(name="Annie")  # Anna is in Other's layer and Primary's override
    return [primary, other]


CHANGES = [add_layer, save_layer, update_layers, delete_layer, move_layer, add_participants, reorder_participants,
           swap_participant, remove_participant, rename_person, deactivate_person, add_override, move_override,
           delete_override, rename_override_person]


@pytest.mark.parametrize("change", CHANGES, ids=lambda change: change.__name__)
def test_every_change_to_what_the_rules_are_read_from_changes_the_version(setup, change: Callable):
    before = {schedule.pk: version(schedule) for schedule in setup[:2]}
    changed = change(*setup)
    after = {schedule.pk: version(schedule) for schedule in setup[:2]}
    assert {pk for pk in before if before[pk] != after[pk]} == {schedule.pk for schedule in changed}


def test_what_the_layers_are_not_read_from_leaves_the_version(setup):
    primary, other, tony, michael, anna = setup
    before = version(primary)
    now = timezone.now()
    Person.objects.filter(pk=tony.pk).update(notes="Call the landline first.")
    Schedule.objects.filter(pk=primary.pk).update(handoff_planned_at=now, description="Ops")
    assert version(primary) == before


def on_call(roster, at):
    resolved, skipped = resolve_members(roster.ordered_members(), at=at)
    return [member.name for member in resolved], skipped


@pytest.mark.parametrize(("change", "expected"), [
    (swap_participant, (["Anna"], [])),
    (rename_person, (["Antony"], [])),
    (remove_participant, (["Michael"], [])),
    (delete_layer, ([], ["Schedule Primary: nobody is on call, skipped."])),
    (lambda primary, other, tony, *_: Person.objects.filter(pk=tony.pk).update(is_active=False),
     ([], ["Schedule Primary: Tony is on call but not active, skipped."])),
    (add_override, (["Anna"], [])),
], ids=["swap", "rename", "remove", "delete layer", "deactivate", "override"])
def test_a_fire_after_a_change_pages_by_the_new_rules_not_the_ones_this_process_kept(setup, change, expected):
    primary = setup[0]
    roster = make_schedule_roster(primary)
    now = timezone.now()
    assert on_call(roster, now) == (["Tony"], [])  # read and kept
    change(*setup)
    assert on_call(roster, now) == expected


def test_a_schedule_saved_from_a_stale_copy_does_not_bring_back_the_old_version(setup):
    """A copy of the row read before a change and saved after it (the admin's form, a script) writes the old
    version back with its other fields; the database makes that a new one, or kept rules would pass for
    current."""
    primary = setup[0]
    roster = make_schedule_roster(primary)
    now = timezone.now()
    stale = Schedule.objects.get(pk=primary.pk)
    assert on_call(roster, now) == (["Tony"], [])
    swap_participant(*setup)
    stale.description = "Saved from a form opened before the swap."
    stale.save()
    assert version(primary) != stale.rules_version
    assert on_call(roster, now) == (["Anna"], [])


def test_a_new_web_process_reads_the_schedules_rosters_page_before_its_first_fire(setup):
    """oncall/wsgi.py keeps them at start: a 3 a.m. alert is often the first request a web process serves."""
    primary, other = setup[:2]
    roster = make_schedule_roster(primary)
    members = roster.ordered_members()
    now = timezone.now()
    assert schedules_keep(now=now) == 1  # Other is on no roster
    with CaptureQueriesContext(connection) as captured:
        resolve_members(members, at=now)
    assert len(captured) == 0


def test_an_unchanged_schedule_costs_no_query(setup):
    tony, michael, anna = setup[2:]
    primary, other = (make_schedule(name, people, unit="days")  # daily: the day's overrides are all it reads
                      for name, people in (("Daily", [tony, michael]), ("Daily too", [anna])))
    roster = make_schedule_roster(primary, other)
    members = roster.ordered_members()
    now = timezone.now()

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            resolve_members(members, at=now)
        return len(captured)

    assert queries() == 2  # the layers and the day's overrides, read for the first time here
    assert queries() == 0  # both are this process's
    cover(other, tony)
    members = roster.ordered_members()  # the rows a fire reads, with the new version
    assert queries() == 2
    assert queries() == 0


@pytest.mark.postgres
@requires_postgres
@pytest.mark.django_db(transaction=True)  # committed rows: no foreign key check pending, which TRUNCATE refuses
@pytest.mark.parametrize("table", ["escalation_override", "escalation_layerparticipant", "escalation_layer"])
def test_emptying_a_table_by_hand_changes_every_version(setup, table):
    """TRUNCATE fires no row trigger; PostgreSQL's statement trigger covers it (SQLite has no TRUNCATE)."""
    before = {schedule.pk: version(schedule) for schedule in setup[:2]}
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {table} CASCADE")
    assert all(version(schedule) != before[schedule.pk] for schedule in setup[:2])


@pytest.mark.postgres
@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_another_process_s_change_is_seen_once_committed_and_not_before(setup):
    """What another process (here a thread with its own connection) changes is invisible to this one until it
    commits, rows and version alike, so a fire never pairs kept rows with a version they were not read under."""
    primary, anna = setup[0], setup[4]
    roster = make_schedule_roster(primary)
    now = timezone.now()
    assert on_call(roster, now) == (["Tony"], [])
    changed, commit = threading.Event(), threading.Event()

    def other_process() -> None:
        try:
            with transaction.atomic():
                LayerParticipant.objects.filter(layer=weekly(primary), person=setup[2]).update(person=anna)
                changed.set()
                commit.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=other_process)
    thread.start()
    assert changed.wait(10)
    assert on_call(roster, now) == (["Tony"], [])  # not committed yet
    commit.set()
    thread.join(10)
    assert on_call(roster, now) == (["Anna"], [])
