"""The delivery history in the admin: the escalation list, an escalation's timeline page, raw webhooks."""

import re
from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.admin.templatetags.admin_list import items_for_result
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import resolve, reverse
from django.utils import timezone
from django.utils.formats import date_format

from escalation.admin.escalations import EVENT_LOG_LIMIT, MARK_LIMIT, EscalationAdmin
from escalation.models import Escalation, EscalationState, Event, EventKind, Person, Roster, WebhookEvent
from escalation.templatetags.escalation_list import escalation_result_list, row_cells
from escalation.timeline import PLOT_LEFT, PLOT_RIGHT, build_timeline
from tests.history_rows import T0, acknowledged_escalation, active_escalation, at

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(User.objects.create(username="ann", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def viewer_client(client):
    """Staff who may read the history but not fire, cancel or acknowledge."""
    user = User.objects.create(username="vic", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_escalation", "view_webhookevent"]))
    client.force_login(user)
    return client


def change_url(escalation: Escalation) -> str:
    return reverse("admin:escalation_escalation_change", args=[escalation.pk])


LIST_URL = reverse("admin:escalation_escalation_changelist")
EVENTS_URL = reverse("admin:escalation_event_changelist")


def events_url(escalation: Escalation) -> str:
    return f"{EVENTS_URL}?escalation__id__exact={escalation.pk}"


def test_it_lists_state_roster_who_acknowledged_and_how_long_it_took(admin_client):
    roster = Roster.objects.create(name="primary")
    acknowledged_escalation(roster=roster)
    active_escalation(roster=roster)

    response = admin_client.get(LIST_URL)

    assert response.status_code == 200
    body = response.content.decode()
    assert 'esc-state-acknowledged">acknowledged<' in body
    assert 'esc-state-active">active<' in body
    assert "Michael" in body and "ann" in body and "primary" in body
    assert "2:20" in body  # fired at 09:00:00, read at 09:02:20


def test_it_filters_by_state_roster_and_person(admin_client):
    primary, secondary = Roster.objects.create(name="primary"), Roster.objects.create(name="secondary")
    tony = Person.objects.create(name="Tony")
    first = acknowledged_escalation(roster=primary, people={"Tony": tony})
    second = active_escalation(roster=secondary)

    def listed(query: str) -> set[int]:
        body = admin_client.get(LIST_URL + query).content.decode()
        return {int(pk) for pk in re.findall(r'name="_selected_action" value="(\d+)"', body)}

    assert listed("") == {first.pk, second.pk}
    assert listed("?state__exact=active") == {second.pk}
    assert listed(f"?roster__id__exact={primary.pk}") == {first.pk}
    assert listed(f"?person={tony.pk}") == {first.pk}
    assert listed("?person=not-a-number") == {first.pk, second.pk}


def test_the_timeline_of_a_finished_escalation_shows_each_person_and_status(admin_client):
    escalation = acknowledged_escalation()

    response = admin_client.get(change_url(escalation))

    assert response.status_code == 200
    body = response.content.decode()
    start = body.index('<svg class="esc-timeline"')
    svg = body[start:body.index("</svg>", start)]
    # One lane per person paged; Anna was never paged, so she has no lane.
    assert ">Tony<" in svg and ">Michael<" in svg and ">Anna<" not in svg
    assert "passed over" in svg and "acknowledged" in svg
    for status in ("delivered", "rejected", "submitted", "read"):
        assert f"bar bar-{status}" in svg
    assert "mark mark-error" in svg and "mark mark-read" in svg and "mark mark-delivered" in svg
    assert "acknowledged by Michael +2:20" in svg
    assert 'class="deadline"' in svg  # Tony's deadline fell inside the picture
    assert "not tried" in svg  # Michael's SMS was never needed
    # The log in words follows the picture.
    assert body.index("What happened, in words") > start + len(svg)
    assert "Tony&#x27;s SMS 447700900001: rejected (Invalid number)" in body
    assert "Acknowledged: Michael read on WhatsApp 447700900003." in body
    # A finished escalation does not reload itself.
    assert 'http-equiv="refresh"' not in body


def test_an_active_escalation_page_refreshes_itself_and_shows_now(admin_client):
    escalation = active_escalation()

    body = admin_client.get(change_url(escalation)).content.decode()

    assert '<meta http-equiv="refresh" content="3">' in body
    assert "moment moment-now" in body
    assert "being paged" in body


def test_the_page_is_read_only(admin_client):
    escalation = acknowledged_escalation()

    assert admin_client.get(reverse("admin:escalation_escalation_add")).status_code == 403
    response = admin_client.post(change_url(escalation), {"message": "edited", "state": "active"})

    assert response.status_code == 403
    escalation.refresh_from_db()
    assert escalation.message == "Production is down: please acknowledge"
    assert escalation.state == EscalationState.ACKNOWLEDGED
    assert admin_client.get(change_url(escalation)).status_code == 200


def test_the_history_is_readable_with_the_view_permission_only(viewer_client):
    escalation = active_escalation()

    body = viewer_client.get(change_url(escalation)).content.decode()

    assert "esc-timeline" in body
    assert "Cancel escalation" not in body and "Acknowledge on someone" not in body
    assert "Cancel escalation" not in viewer_client.get(LIST_URL).content.decode()


def count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_an_escalation_page_costs_the_same_queries_with_10_or_500_events(admin_client, django_assert_num_queries):
    small = acknowledged_escalation()
    large = acknowledged_escalation(start=T0 + timedelta(hours=1), extra_events=500)
    assert Event.objects.filter(escalation=large).count() > 500
    expected = count_queries(admin_client, change_url(small))

    with django_assert_num_queries(expected):
        response = admin_client.get(change_url(large))

    assert response.status_code == 200
    assert f"Showing the latest {EVENT_LOG_LIMIT} events." in response.content.decode()


def test_the_list_costs_the_same_queries_with_few_or_many_escalations(admin_client, django_assert_num_queries):
    roster = Roster.objects.create(name="primary")
    acknowledged_escalation(roster=roster)
    expected = count_queries(admin_client, LIST_URL)
    for hour in range(1, 60):
        acknowledged_escalation(roster=roster, start=T0 + timedelta(hours=hour))

    with django_assert_num_queries(expected):
        response = admin_client.get(LIST_URL)

    # Paginated: 60 escalations, 50 per page.
    assert response.content.decode().count('name="_selected_action"') == 50


def test_the_event_log_shows_the_latest_events_when_capped(admin_client):
    escalation = acknowledged_escalation(extra_events=EVENT_LOG_LIMIT + 20)

    body = admin_client.get(change_url(escalation)).content.decode()

    start = body.index('<table class="esc-event-log">')
    log = body[start:body.index("</table>", start)]
    assert log.count("<tr") == 1 + EVENT_LOG_LIMIT  # the header and the capped rows
    assert "Acknowledged: Michael read on WhatsApp" in body  # the latest are kept
    assert "Fired by ann" not in body  # the earliest are dropped
    assert f'<a class="esc-event-list-link" href="{events_url(escalation)}">' in body


def test_a_short_event_log_is_whole_and_still_links_to_the_event_list(admin_client):
    escalation = acknowledged_escalation()

    body = admin_client.get(change_url(escalation)).content.decode()

    assert "Showing the latest" not in body
    assert "Fired by ann" in body
    assert '<td class="nowrap">09:02:20</td>' in body  # Michael read at 09:02:20
    assert f'<a class="esc-event-list-link" href="{events_url(escalation)}">' in body


def test_the_event_list_shows_one_escalation_from_its_first_event_with_who_and_which_channel(admin_client):
    escalation = acknowledged_escalation(extra_events=150)
    other = acknowledged_escalation(start=T0 + timedelta(hours=1))

    first_page = admin_client.get(events_url(escalation)).content.decode()
    second_page = admin_client.get(events_url(escalation) + "&p=2").content.decode()

    assert "Every event of escalation #" in first_page
    assert first_page.count(f'href="{change_url(escalation)}"') == 100  # one page of the list
    assert change_url(other) not in first_page + second_page
    # In order from the fire: the first page starts the story, the last one ends it.
    assert "Fired by ann" in first_page and "Acknowledged: Michael read" not in first_page
    assert "Acknowledged: Michael read on WhatsApp 447700900003." in second_page
    assert "<td class=\"field-person\">Tony</td>" in first_page
    assert "<td class=\"field-channel\">SMS 447700900001</td>" in first_page
    assert "<td class=\"field-offset\">+1:02</td>" in first_page  # Tony's SMS rejected at +1:02
    rejected = admin_client.get(events_url(escalation) + "&kind__exact=rejected").content.decode()
    assert "rejected (Invalid number)" in rejected and "Fired by ann" not in rejected


def test_the_event_list_costs_the_same_queries_with_10_or_500_events(admin_client, django_assert_num_queries):
    small = acknowledged_escalation()
    large = acknowledged_escalation(start=T0 + timedelta(hours=1), extra_events=500)
    expected = count_queries(admin_client, events_url(small))

    with django_assert_num_queries(expected):
        assert admin_client.get(events_url(large)).status_code == 200


def test_the_event_list_is_read_only_and_readable_with_the_view_permission_on_escalations(viewer_client):
    escalation = acknowledged_escalation()
    event = Event.objects.filter(escalation=escalation).first()

    assert "Fired by ann" in viewer_client.get(events_url(escalation)).content.decode()
    assert viewer_client.get(reverse("admin:escalation_event_add")).status_code == 403
    response = viewer_client.post(reverse("admin:escalation_event_change", args=[event.pk]), {"text": "edited"})
    assert response.status_code == 403
    assert viewer_client.post(reverse("admin:escalation_event_delete", args=[event.pk])).status_code == 403
    event.refresh_from_db()
    assert event.text.startswith("Fired by ann")


def test_the_picture_marks_a_capped_number_of_events_and_says_so(admin_client):
    escalation = acknowledged_escalation()
    tony = escalation.pages.get(person_name="Tony")
    Event.objects.bulk_create(
        Event(escalation=escalation, page=tony, at=at(10 + n / 100), kind=EventKind.RETRIED, text=f"Retry {n}")
        for n in range(MARK_LIMIT + 5)
    )

    body = admin_client.get(change_url(escalation)).content.decode()

    start = body.index('<svg class="esc-timeline"')
    svg = body[start:body.index("</svg>", start)]
    assert svg.count(" Retry ") == MARK_LIMIT
    assert " Retry 0</title>" in svg and f" Retry {MARK_LIMIT}</title>" not in svg  # the first ones
    assert f"The picture marks the first {MARK_LIMIT} replies, retries and send failures" in body
    assert "Showing the latest" in body


def test_the_list_checkbox_is_djangos_own():
    escalation = acknowledged_escalation()
    model_admin = EscalationAdmin(Escalation, admin.site)

    assert model_admin.action_checkbox(escalation) == admin.ModelAdmin.action_checkbox(model_admin, escalation)


def test_a_person_page_links_their_recent_pages_and_responses(admin_client):
    michael = Person.objects.create(name="Michael")
    escalation = acknowledged_escalation(people={"Michael": michael})

    body = admin_client.get(reverse("admin:escalation_person_change", args=[michael.pk])).content.decode()

    assert "Recent pages and how Michael responded" in body
    assert change_url(escalation) in body
    assert "reached: read on WhatsApp 447700900003" in body
    assert "1:18" in body  # paged at +1:02, read at +2:20
    assert f"{LIST_URL}?person={michael.pk}" in body


def test_webhooks_are_listed_read_only_including_replies_tied_to_nothing(admin_client):
    escalation = acknowledged_escalation()
    WebhookEvent.objects.create(
        received_at=at(300), kind="inbound", dedup_key="a", result="reply kept: no active escalation paged this sender",
        body={"channel": "sms", "from": "447700900999", "text": "who is this?", "message_uuid": "x"},
    )
    WebhookEvent.objects.create(
        received_at=at(140), kind="status", dedup_key="b", result="status read: acknowledged", escalation=escalation,
        body={"status": "read", "message_uuid": "y", "to": "447700900003"},
    )
    url = reverse("admin:escalation_webhookevent_changelist")

    body = admin_client.get(url).content.decode()
    untied = admin_client.get(url + "?tied=no").content.decode()

    assert "from 447700900999 “who is this?”" in body
    assert "not tied: kept" in body
    assert change_url(escalation) in body
    assert "who is this?" in untied and "status read: acknowledged" not in untied
    assert admin_client.get(reverse("admin:escalation_webhookevent_add")).status_code == 403


def test_the_timeline_lays_everything_on_one_axis():
    escalation = acknowledged_escalation()
    pages = list(escalation.pages.order_by("round", "index"))
    messages = [m for page in pages for m in page.messages.all()]
    events = list(escalation.events.filter(kind=EventKind.REPLIED))

    timeline = build_timeline(escalation=escalation, pages=pages, messages=messages, events=events, now=at(3600))

    assert [lane.name for lane in timeline.lanes] == ["Tony", "Michael"]
    tony, michael = timeline.lanes
    assert tony.bottom < michael.y
    assert [row.status for row in tony.rows] == ["delivered", "rejected"]
    assert [row.status for row in michael.rows] == ["submitted", "read", ""]
    # A finished escalation's axis ends when it ended, not at `now`.
    assert timeline.end == at(140)
    read_bar = michael.rows[1].bar
    assert read_bar.x + read_bar.width == PLOT_RIGHT
    assert tony.rows[0].bar.x == pytest.approx(PLOT_LEFT + (PLOT_RIGHT - PLOT_LEFT) / 140, abs=0.1)
    # Michael's deadline (+4:02) is after the end: no line drawn outside the picture.
    assert tony.deadline_x is not None and michael.deadline_x is None
    assert [line.kind for line in timeline.lines] == ["acknowledged"]
    assert timeline.ticks[0].label == "+0:00"


def test_the_timeline_of_an_active_escalation_reaches_the_current_deadline():
    escalation = active_escalation(start=T0)
    pages = list(escalation.pages.all())

    timeline = build_timeline(escalation=escalation, pages=pages, messages=list(pages[0].messages.all()), events=[],
                              now=at(20))

    assert timeline.end == at(120)
    assert timeline.lanes[0].deadline_x == PLOT_RIGHT
    assert [line.kind for line in timeline.lines] == ["now"]
    assert timeline.lines[0].label == "now +0:20"


def test_an_escalation_links_to_its_raw_webhooks(admin_client):
    escalation = acknowledged_escalation()
    WebhookEvent.objects.create(received_at=at(140), kind="status", dedup_key="b", result="status read",
                                escalation=escalation, body={"status": "read"})
    WebhookEvent.objects.create(received_at=at(150), kind="status", dedup_key="c", result="unknown message",
                                body={"status": "delivered"})
    url = reverse("admin:escalation_webhookevent_changelist") + f"?escalation__id__exact={escalation.pk}"
    assert url.replace("&", "&amp;") in admin_client.get(change_url(escalation)).content.decode()

    body = admin_client.get(url).content.decode()

    assert "status read" in body and "unknown message" not in body


def test_the_list_rows_are_djangos_own_markup(rf, admin_user):
    # The list builds its rows itself (a fraction of Django's cost per cell): the same markup, cell by cell,
    # for every state, a filter kept in the links, and an empty roster name shown as Django shows it.
    acknowledged_escalation()
    active_escalation()
    Escalation.objects.filter(pk=acknowledged_escalation().pk).update(roster_name="", state=EscalationState.REACHED)
    request = rf.get(reverse("admin:escalation_escalation_changelist"), {"state__exact": "active", "o": "-3"})
    request.user, request.resolver_match = admin_user, resolve(request.path)
    model_admin = EscalationAdmin(Escalation, admin.site)
    cl = model_admin.get_changelist_instance(request)
    everything = model_admin.get_queryset(request)
    cl.result_list = everything  # every row, not only the filtered ones, against the filtered page's links

    ours = [list(row_cells(cl, row)) for row in everything]

    assert ours == [list(items_for_result(cl, row, None)) for row in everything]
    assert len(ours) == 3 and all(len(cells) == len(cl.list_display) for cells in ours)
    assert "_changelist_filters=" in ours[0][1]
    assert {'<td class="field-roster_display">-</td>'} <= {cell for cells in ours for cell in cells}
    assert escalation_result_list(cl)["results"] == ours


@pytest.mark.parametrize("zone", ["UTC", "Europe/London", "America/New_York", "Australia/Lord_Howe"])
def test_the_lists_time_reads_as_djangos_date_format(settings, zone):
    settings.TIME_ZONE = zone
    model_admin = EscalationAdmin(Escalation, admin.site)
    for moment in (T0, T0 + timedelta(days=180)):  # each side of a daylight-saving change
        escalation = Escalation(created_at=moment)
        assert model_admin.when(escalation) == date_format(timezone.localtime(moment), "Y-m-d H:i:s T")
