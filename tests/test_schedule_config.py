"""Schedules in the JSON config: a roster with a schedule member exports and imports back unchanged, the
seed's own sample still imports as before, and a bad SCHEDULES section is refused with every reason."""

import json

import pytest

from escalation.models import Layer, Person, Roster, Schedule
from escalation.services.config import ConfigError, config_dumps, config_export, config_import
from tests.personas import ANNA, MICHAEL, TONY, make_person
from tests.schedule_personas import make_schedule, make_schedule_roster

pytestmark = pytest.mark.django_db

SCHEDULED = {
    "FROM": {"SMS": "OnCall", "WHATSAPP": "447700900000"},
    "USERS": [{"schedule": "Primary"},
              {"name": "Anna", "channels": [
                  {"type": "whatsapp", "id_num": "447700900005"},
                  {"type": "sms", "id_num": "447700900006", "condition_status": "delivered"}]}],
    "PEOPLE": [{"name": "Tony", "channels": [{"type": "sms", "id_num": "447700900001", "condition_status": "delivered"},
                                             {"type": "whatsapp", "id_num": "447700900003"}]}],
    "SCHEDULES": [{"name": "Primary", "time_zone": "Europe/London", "layers": [
        {"name": "Business hours", "shift_length": 1, "unit": "weeks", "first_handoff": "2026-03-02T09:00",
         "restriction": {"weekdays": [0, 1, 2, 3, 4], "start": "09:00", "end": "17:00"},
         "participants": ["Anna"]},
        {"name": "Weekly", "shift_length": 1, "unit": "weeks", "first_handoff": "2026-03-02T09:00",
         "participants": ["Tony", "Anna"]}]}],
}


def test_it_imports_a_roster_whose_first_member_is_a_schedule():
    result = config_import(raw=json.dumps(SCHEDULED).encode(), roster_name="ops")
    members = result.roster.ordered_members()
    assert [(m.schedule and m.schedule.name, m.person and m.person.name) for m in members] == [
        ("Primary", None), (None, "Anna")]
    layers = list(Schedule.objects.get(name="Primary").layers.order_by("position"))
    assert [layer.name for layer in layers] == ["Business hours", "Weekly"]
    assert (layers[0].restrict_weekdays, f"{layers[0].restrict_start:%H:%M}") == ("0,1,2,3,4", "09:00")
    assert Person.objects.filter(name="Tony").exists()


def test_it_exports_a_schedule_roster_that_imports_back_unchanged():
    config_import(raw=json.dumps(SCHEDULED).encode(), roster_name="ops")
    exported = config_export(roster=Roster.objects.get(name="ops"))
    config_import(raw=config_dumps(exported).encode(), roster_name="ops")
    assert config_export(roster=Roster.objects.get(name="ops")) == exported
    assert Layer.objects.count() == 2
    assert exported["SCHEDULES"][0]["layers"][1]["participants"] == ["Tony", "Anna"]


def test_it_exports_a_roster_of_people_only_without_the_new_sections(db):
    tony, michael, anna = (make_person(*p) for p in (TONY, MICHAEL, ANNA))
    make_schedule("Primary", [michael, tony])
    roster = make_schedule_roster(tony, anna)
    assert set(config_export(roster=roster)) == {"FROM", "USERS"}


@pytest.mark.parametrize("change,expected", [
    (lambda c: c["SCHEDULES"][0].update(time_zone="Mars/Olympus"), "time_zone 'Mars/Olympus' is not an IANA"),
    (lambda c: c["SCHEDULES"][0]["layers"][0].update(first_handoff="2026-03-02T09:00+01:00"), "first_handoff"),
    (lambda c: c["SCHEDULES"][0]["layers"][0].update(unit="fortnights"), "unit 'fortnights' is not one of"),
    (lambda c: c["SCHEDULES"][0]["layers"][0].update(shift_length=0), "shift_length 0 is not a whole number"),
    (lambda c: c["SCHEDULES"][0]["layers"][0].update(participants=["Zoe"]), "participant 'Zoe' is not a person"),
    (lambda c: c["SCHEDULES"][0]["layers"][0]["restriction"].update(weekdays=[7]), "weekdays must be numbers"),
    (lambda c: c["SCHEDULES"][0]["layers"][0]["restriction"].update(start="9am"), "'9am' is not a local time"),
    (lambda c: c["USERS"].insert(0, {"schedule": "Secondary"}), "schedule 'Secondary' is not one of"),
    (lambda c: c.update(SCHEDULES={"name": "Primary"}), "SCHEDULES: must be a list"),
], ids=["zone", "offset", "unit", "length", "participant", "weekday", "start", "unknown-schedule", "not-a-list"])
def test_it_refuses_a_bad_schedules_section_and_changes_nothing(change, expected):
    config = json.loads(json.dumps(SCHEDULED))
    change(config)
    with pytest.raises(ConfigError) as refused:
        config_import(raw=json.dumps(config).encode(), roster_name="ops")
    assert any(expected in problem for problem in refused.value.problems), refused.value.problems
    assert not Schedule.objects.exists() and not Person.objects.exists()
