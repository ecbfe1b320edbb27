"""Schedules in the admin through the test client: the 14-day picture, covering a shift in two clicks,
who is on call now on the index and on a person's page, feeds and their rotation, bad input."""

from datetime import date, time, timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from escalation.models import Layer, LayerParticipant, Override, Person, Schedule
from escalation.services.schedules import schedule_on_call
from tests.personas import ANNA, MICHAEL, TONY, make_person
from tests.schedule_personas import make_schedule, make_schedule_roster

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    return make_person(*TONY), make_person(*MICHAEL), make_person(*ANNA)


@pytest.fixture
def primary(people):
    return make_schedule("Primary", [people[1], people[0]])  # Michael's week now, then Tony's


def test_it_draws_the_next_14_days_with_a_lane_per_layer_and_flags_gaps(admin_client, people, primary):
    Layer.objects.create(schedule=primary, position=1, name="Business hours", handoff_date=date(2026, 1, 5),
                         handoff_time=time(9), restrict_weekdays="0,1,2,3,4", restrict_start=time(9),
                         restrict_end=time(17))
    nights = make_schedule("Nights", [people[2]], unit="days")
    nights_layer = nights.layers.get()
    nights_layer.restrict_start, nights_layer.restrict_end = time(22), time(6)
    nights_layer.save()
    page = admin_client.get(reverse("admin:escalation_schedule_change", args=[primary.pk])).content.decode()
    assert page.count('class="lane"') == 3  # two layers and the overrides
    assert "Next 14 days" in page and "No gaps" in page and "Michael" in page
    page = admin_client.get(reverse("admin:escalation_schedule_change", args=[nights.pk])).content.decode()
    assert "gaps with nobody on call" in page and 'class="bar bar-gap"' in page


def test_it_draws_the_schedule_page_in_constant_queries(admin_client, people, primary):
    url = reverse("admin:escalation_schedule_change", args=[primary.pk])
    admin_client.get(url)
    with CaptureQueriesContext(connection) as few:
        admin_client.get(url)
    layer = primary.layers.get()
    for number in range(5):
        extra = Layer.objects.create(schedule=primary, position=number + 1, handoff_date=date(2026, 1, 1),
                                     handoff_time=time(8), shift_length=1, unit="days")
        LayerParticipant.objects.create(layer=extra, person=people[2])
    now = timezone.now()
    for hour in range(40):
        Override.objects.create(schedule=primary, person=people[hour % 3], start=now + timedelta(hours=hour * 3),
                                end=now + timedelta(hours=hour * 3 + 2))
    LayerParticipant.objects.create(layer=layer, person=people[2], position=9)
    admin_client.get(url)  # as before: the layers read once (they changed), then kept by this process
    with CaptureQueriesContext(connection) as many:
        admin_client.get(url)
    assert len(many) == len(few)


def test_it_lists_a_saved_schedule_s_layers_and_adds_one_on_its_own_page(admin_client, people, primary):
    Layer.objects.create(schedule=primary, position=3, name="Business hours", handoff_date=date(2026, 1, 5),
                         handoff_time=time(9), restrict_weekdays="0,1,2,3,4", restrict_start=time(9),
                         restrict_end=time(17))
    page = admin_client.get(reverse("admin:escalation_schedule_change", args=[primary.pk])).content.decode()
    assert 'id="layers-group"' not in page  # no layer forms: each layer is edited on its own page
    assert "<strong>Weekly</strong>: Every week, first hand-off" in page and "Michael → Tony" in page
    assert ("<strong>Business hours</strong>: Every week, first hand-off Mon 05 Jan 2026 09:00, only Mon Tue Wed Thu "
            "Fri 09:00-17:00; nobody yet") in page
    start = page.index('<a class="addlink" href="') + len('<a class="addlink" href="')
    add = page[start:page.index('"', start)].replace("&amp;", "&")
    form = admin_client.get(add)
    assert form.context["adminform"].form.initial == {"schedule": str(primary.pk), "position": "4"}
    new = admin_client.get(reverse("admin:escalation_schedule_add")).content.decode()
    assert 'id="layers-group"' in new  # a new schedule's first layers are made with it
    saved = admin_client.post(reverse("admin:escalation_schedule_change", args=[primary.pk]),
                              {"name": "Primary", "time_zone": "Europe/Paris", "description": ""})
    assert saved.status_code == 302 and primary.layers.count() == 2


def test_it_covers_a_shift_in_two_clicks_from_the_picture(admin_client, people, primary):
    page = admin_client.get(reverse("admin:escalation_schedule_change", args=[primary.pk])).content.decode()
    cover_url = reverse("admin:escalation_schedule_cover", args=[primary.pk])
    start = page.index(f'href="{cover_url}?')  # click 1: Michael's shift in the result lane
    link = page[start + 6:page.index('"', start + 6)].replace("&amp;", "&")
    query = parse_qs(urlparse(link).query)
    assert query["covered"] == ["Michael"]
    form = admin_client.get(link)
    assert "I'll cover" in form.content.decode()
    initial = form.context["form"].initial
    # Click 2: pick Anna and press Cover, with the shift's times as prefilled.
    response = admin_client.post(cover_url, {"person": people[2].pk, "start": initial["start"],
                                             "end": initial["end"], "mode": "replace"})
    assert response.status_code == 302
    override = Override.objects.get()
    assert (override.person, override.created_by_name) == (people[2], "admin")
    assert schedule_on_call(primary).people == [(people[2].pk, "Anna")]


def test_it_refuses_a_cover_that_ends_before_it_starts_and_changes_nothing(admin_client, people, primary):
    url = reverse("admin:escalation_schedule_cover", args=[primary.pk])
    response = admin_client.post(url, {"person": people[2].pk, "start": "2026-03-10T12:00",
                                       "end": "2026-03-10T09:00", "mode": "replace"})
    assert response.status_code == 200 and "The end must be after the start." in response.content.decode()
    response = admin_client.post(url, {"person": "junk", "start": "yesterday", "end": "", "mode": "steal"})
    assert response.status_code == 200
    assert admin_client.get(url + "?start=garbage&end=2026-13-99&person=x").status_code == 200
    assert not Override.objects.exists()


def test_it_shows_who_is_on_call_now_on_the_index_and_on_the_person_s_page(admin_client, people, primary):
    index = admin_client.get(reverse("admin:index")).content.decode()
    assert "On call now" in index and "<strong>Michael</strong> until" in index and "(Europe/London)" in index
    michael = admin_client.get(reverse("admin:escalation_person_change", args=[people[1].pk])).content.decode()
    assert "Now in" in michael and "Primary</a> until" in michael
    tony = admin_client.get(reverse("admin:escalation_person_change", args=[people[0].pk])).content.decode()
    assert "Not on call anywhere now." in tony and f"?person={people[0].pk}" in tony


def test_it_keeps_the_person_on_call_when_a_participant_is_added_in_the_admin(admin_client, people, primary):
    layer = primary.layers.get()
    assert schedule_on_call(primary).people[0][1] == "Michael"
    rows = list(layer.participants.order_by("position"))
    data = {"schedule": primary.pk, "position": 0, "name": layer.name, "shift_length": 1, "unit": "weeks",
            "handoff_date": layer.handoff_date.isoformat(), "handoff_time": "09:00", "restrict_weekdays": "",
            "participants-TOTAL_FORMS": "3", "participants-INITIAL_FORMS": "2",
            "participants-MIN_NUM_FORMS": "0", "participants-MAX_NUM_FORMS": "1000"}
    # Anna goes first in the list: by index alone she would now hold Michael's week.
    for index, (row, position) in enumerate(zip(rows, (1, 2), strict=True)):
        data.update({f"participants-{index}-id": row.pk, f"participants-{index}-layer": layer.pk,
                     f"participants-{index}-person": row.person_id, f"participants-{index}-position": position})
    data.update({"participants-2-id": "", "participants-2-layer": layer.pk, "participants-2-person": people[2].pk,
                 "participants-2-position": 0})
    response = admin_client.post(reverse("admin:escalation_layer_change", args=[layer.pk]), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert layer.participants.count() == 3
    assert schedule_on_call(primary).people[0][1] == "Michael"


def test_it_rotates_the_schedule_feed_url(client, admin_client, primary):
    old = primary.feed_token
    assert client.get(reverse("schedule-feed", args=[old])).status_code == 200
    assert admin_client.post(reverse("admin:escalation_schedule_rotate_feed", args=[primary.pk])).status_code == 302
    primary.refresh_from_db()
    assert primary.feed_token != old
    assert client.get(reverse("schedule-feed", args=[old])).status_code == 404
    assert client.get(reverse("schedule-feed", args=[primary.feed_token])).status_code == 200


def test_it_lists_a_schedule_among_a_roster_s_members(admin_client, people, primary):
    make_schedule_roster(primary, people[2], name="ops")
    page = admin_client.get(reverse("admin:escalation_roster_changelist")).content.decode()
    assert "on call in Primary → Anna" in page
    assert Schedule.objects.count() == 1 and Person.objects.filter(name="Anna").exists()


def test_it_shows_who_is_on_call_only_to_those_who_may_view_schedules(client, primary):
    client.force_login(User.objects.create(username="trainee", is_staff=True))
    index = client.get(reverse("admin:index")).content.decode()
    assert "On call now" not in index and "Michael" not in index


def test_it_lists_the_schedules_that_will_page_nobody_on_the_fire_page_before_firing(admin_client, people, primary):
    nights = make_schedule("Nights", [])
    away = make_schedule("Away", [people[0]])
    people[0].is_active = False
    people[0].save()
    roster = make_schedule_roster(nights, primary, away, name="ops")
    page = admin_client.get(reverse("admin:escalation_roster_fire", args=[roster.pk])).content.decode()
    assert '<li class="warning">Not paged: Schedule Nights: nobody is on call, skipped.</li>' in page
    assert '<li class="warning">Not paged: Schedule Away: Tony is on call but not active, skipped.</li>' in page
    assert "fire-button" in page and "<strong>Michael</strong>" in page
    # Firing records the same reasons on the escalation's timeline.
    fire = reverse("admin:escalation_roster_fire", args=[roster.pk])
    assert admin_client.post(fire, {"message": "Queue stuck", "post": "yes"}).status_code == 302
    texts = set(roster.escalations.get().events.values_list("text", flat=True))
    assert {"Schedule Nights: nobody is on call, skipped.",
            "Schedule Away: Tony is on call but not active, skipped."} <= texts
