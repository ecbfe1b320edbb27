"""Issue 15 §5: the smaller things a user hit, each as they hit it."""

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from escalation.models import Channel, Escalation, Event, EventKind, Page, Person
from tests.personas import MICHAEL, TONY, make_person, make_roster
from tests.test_admin_people import person_post

pytestmark = pytest.mark.django_db

ESCALATIONS_URL = reverse("admin:escalation_escalation_changelist")
T0 = timezone.now().replace(microsecond=0)


def test_a_person_with_one_channel_is_told_on_their_own_page(admin_client):
    solo = make_person("Solo", [("sms", "447700900041", 60, "delivered")])
    page = admin_client.get(reverse("admin:escalation_person_change", args=[solo.pk])).content.decode()
    assert ("Solo has 1 channel: a person on a roster needs at least 2, so Solo cannot join a roster until you "
            "add 1 more channel.") in page
    both = make_person("Both", [("sms", "447700900042", 60, "delivered"), ("whatsapp", "447700900043", 60, "read")])
    assert "cannot join a roster" not in admin_client.get(
        reverse("admin:escalation_person_change", args=[both.pk])).content.decode()


@pytest.mark.parametrize("written", ["+44 7700 900060", "+44-7700-900060", "(+44) 7700 900060", "0044 7700 900060",
                                     "447700900060", "+44.7700.900060"])
def test_it_accepts_numbers_as_people_write_them_and_stores_the_digits(written):
    channel = Channel(person=Person.objects.create(name="Pat"), type="sms", address=written, expiry_time=60,
                      condition="delivered")
    channel.full_clean()
    assert channel.address == "447700900060"


@pytest.mark.parametrize("written", ["07700 900060", "+44 7700 90006O", "call me"])
def test_it_still_refuses_what_is_not_an_international_number(written):
    channel = Channel(person=Person.objects.create(name="Pat"), type="sms", address=written, expiry_time=60,
                      condition="delivered")
    with pytest.raises(ValidationError):
        channel.full_clean()


def test_the_admin_says_what_it_stored(admin_client):
    response = admin_client.post(reverse("admin:escalation_person_add"), person_post(None, [
        {"position": "1", "type": "whatsapp", "address": "+44 7700 900060"},
        {"position": "2", "type": "sms", "address": "+44 7700-900061", "condition": "delivered"},
    ], name="Ann"), follow=True)
    assert list(Person.objects.get(name="Ann").channels.values_list("address", flat=True)) == [
        "447700900060", "447700900061"]
    page = response.content.decode()
    assert "Stored +44 7700 900060 as 447700900060." in page and "Stored +44 7700-900061 as 447700900061." in page


def paged(escalation: Escalation, *names: str) -> None:
    for index, name in enumerate(names):
        Page.objects.create(escalation=escalation, round=1, index=index, person_name=name, started_at=T0,
                            deadline=T0 + timedelta(seconds=60))


def history() -> list[Escalation]:
    roster = make_roster(TONY, MICHAEL)
    made = []
    for number, (text, names, credited) in enumerate([("disk 2 full", ["Tony"], ""),
                                                      ("API down", ["Tony", "Michael"], "Michael"),
                                                      ("queue stuck", ["Michael", "Tony"], "Michael")]):
        escalation = Escalation.objects.create(roster=roster, roster_name=roster.name, message=text, api="messages",
                                               plan={"rounds": 1, "people": []}, state="exhausted",
                                               created_at=T0 + timedelta(minutes=number), acknowledged_by_name=credited)
        paged(escalation, *names)
        made.append(escalation)
    return made


def found(client, query: str) -> list[int]:
    page = client.get(ESCALATIONS_URL, {"q": query}).content.decode()
    return sorted(int(n) for n in re.findall(r'name="_selected_action" value="(\d+)"', page))


def test_escalation_search_finds_people_paged_alert_text_and_numbers(admin_client):
    first, second, third = history()
    assert found(admin_client, "Tony") == [first.pk, second.pk, third.pk]
    assert found(admin_client, "API") == [second.pk]
    assert found(admin_client, f"#{second.pk}") == [second.pk]
    assert found(admin_client, str(second.pk)) == [second.pk]
    assert "#12 or 12" in admin_client.get(ESCALATIONS_URL).content.decode()


def test_a_message_too_long_keeps_the_plan_in_view(admin_client):
    roster = make_roster(TONY, MICHAEL)
    response = admin_client.post(reverse("admin:escalation_roster_fire", args=[roster.pk]),
                                 {"message": "x" * 700, "check": "1"})
    page = response.content.decode()
    assert "This roster cannot be fired" in page and "Facebook Messenger allows 640" in page
    assert 'class="fire-plan"' in page and "<strong>Tony</strong>" in page and "too long" in page
    assert "Fire now" not in page


def test_the_help_text_shows_the_page_as_it_arrives(admin_client):
    roster = make_roster(TONY, MICHAEL)
    page = admin_client.get(reverse("admin:escalation_roster_fire", args=[roster.pk])).content.decode()
    assert "Each person receives “[<em>their name</em>]: message”, e.g. “[Tony]: Production is down" in page
    # And the summary has no stray space before its full stop ("1:40 .").
    assert not re.search(r"\d:\d\d\s+\.", page)


def test_times_say_their_zone_and_the_setting_is_listed(admin_client, settings):
    env = (Path(__file__).resolve().parent.parent / ".env.example").read_text()
    assert re.search(r"^TIME_ZONE=UTC$", env, re.M)
    escalation = history()[0]
    listing = admin_client.get(ESCALATIONS_URL).content.decode()
    assert re.search(r"\d\d:\d\d:\d\d UTC", listing)
    page = admin_client.get(reverse("admin:escalation_escalation_change", args=[escalation.pk])).content.decode()
    assert "time (UTC)" in page and re.search(r"fired by .* at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\.", page)


def test_the_events_list_is_newest_first_and_one_escalation_reads_from_the_start(admin_client):
    escalation = history()[0]
    for seconds, text in ((0, "first"), (10, "second"), (20, "third")):
        Event.objects.create(escalation=escalation, at=T0 + timedelta(seconds=seconds), kind=EventKind.NOTE, text=text)
    url = reverse("admin:escalation_event_changelist")
    page = admin_client.get(url).content.decode()
    assert page.index("third") < page.index("second") < page.index("first")
    page = admin_client.get(url, {"escalation__id__exact": escalation.pk}).content.decode()
    assert page.index("first") < page.index("second") < page.index("third")


def test_the_site_header_names_the_product(admin_client):
    page = admin_client.get(reverse("admin:index")).content.decode()
    assert "On-call escalation" in page and "Django administration" not in page
