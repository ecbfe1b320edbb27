"""A roster whose first member is a schedule, end to end over real HTTP in both API modes: the person on
call at fire time is paged, an override made before firing counts, one made after changes nothing."""

from datetime import timedelta

import pytest
from django.utils import timezone

from escalation.models import EventKind, Person
from escalation.services.escalations import FireRefused, escalation_fire, fire_preview
from escalation.services.schedules import override_create
from tests import test_end_to_end as e2e
from tests.personas import ANNA, MICHAEL, TONY, make_person
from tests.schedule_personas import make_schedule, make_schedule_roster
from tests.test_end_to_end import pages, run_until_done

pytestmark = pytest.mark.django_db(transaction=True)
worker = e2e.worker  # the end-to-end tests' worker thread on a stepped clock


@pytest.fixture(params=["dispatch_mode", "messages_mode"])
def api(request, app_emulator):
    return request.getfixturevalue(request.param)


@pytest.fixture
def primary():
    michael, tony = make_person(*MICHAEL), make_person(*TONY)
    return make_schedule("Primary", [michael, tony])


def test_it_pages_whoever_is_on_call_in_the_roster_s_first_schedule(api, worker, primary):
    api.scenario("447700900002", "read", channel="viber_service_msg", after=1)
    roster = make_schedule_roster(primary, ANNA)
    escalation = escalation_fire(roster=roster, message="DB down", fired_by_name="e2e")
    via = escalation.plan["people"][0]["via"]
    assert via["schedule"] == "Primary" and via["text"].startswith("on call in Primary until ")
    assert via["text"].endswith(" 09:00 (Europe/London)")
    escalation = run_until_done(escalation, api, worker)
    assert escalation.acknowledged_by_name == "Michael"
    assert pages(escalation) == [("Michael", "acknowledged")]
    assert escalation.events.filter(kind=EventKind.NOTE, text__startswith="Michael — on call in Primary").exists()


def test_it_respects_an_override_made_a_minute_before_firing(api, worker, primary):
    anna = make_person(*ANNA)
    api.scenario("447700900005", "read", channel="whatsapp", after=1)
    now = timezone.now()
    override_create(schedule=primary, person=anna, start=now - timedelta(minutes=1), end=now + timedelta(hours=2))
    escalation = escalation_fire(roster=make_schedule_roster(primary), message="API 500s", fired_by_name="e2e")
    assert [p["name"] for p in escalation.plan["people"]] == ["Anna"]
    escalation = run_until_done(escalation, api, worker)
    assert pages(escalation) == [("Anna", "acknowledged")]


def test_it_ignores_an_override_made_after_firing(api, worker, primary):
    anna = make_person(*ANNA)
    api.scenario("447700900002", "read", channel="viber_service_msg", after=1)
    escalation = escalation_fire(roster=make_schedule_roster(primary), message="Disk full", fired_by_name="e2e")
    override_create(schedule=primary, person=anna, start=timezone.now() - timedelta(minutes=5),
                    end=timezone.now() + timedelta(hours=2))
    escalation = run_until_done(escalation, api, worker)
    assert pages(escalation) == [("Michael", "acknowledged")]
    assert not any(m["to"] == "447700900005" for m in api.messages())


def test_it_skips_a_schedule_with_nobody_on_call_and_records_why(primary):
    empty = make_schedule("Nights", [])
    roster = make_schedule_roster(empty, primary)
    escalation = escalation_fire(roster=roster, message="Queue stuck", fired_by_name="e2e")
    assert [p["name"] for p in escalation.plan["people"]] == ["Michael"]
    assert escalation.events.filter(kind=EventKind.NOTE, text="Schedule Nights: nobody is on call, skipped.").exists()


def test_it_refuses_a_roster_that_resolves_to_nobody_and_says_why():
    roster = make_schedule_roster(make_schedule("Nights", []))
    with pytest.raises(FireRefused) as refused:
        fire_preview(roster=roster, message="Queue stuck")
    assert refused.value.messages == [
        "Roster primary has no active people to page. Schedule Nights: nobody is on call, skipped."]


def test_it_does_not_page_a_person_twice_when_the_schedule_names_someone_already_on_the_roster(primary):
    michael = Person.objects.get(name="Michael")
    roster = make_schedule_roster(michael, primary)
    escalation = escalation_fire(roster=roster, message="Queue stuck", fired_by_name="e2e")
    assert [p["name"] for p in escalation.plan["people"]] == ["Michael"]
    assert "via" not in escalation.plan["people"][0]
