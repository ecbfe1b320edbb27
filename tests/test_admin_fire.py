"""Firing a roster from the admin, and cancelling or acknowledging on someone's behalf, through the test client."""

import re

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from escalation.admin.fire import DEFAULT_MESSAGE
from escalation.models import Escalation, EscalationState, Event, EventKind, Page, PageState, Roster, Sender
from tests.history_rows import active_escalation
from tests.personas import ANNA, MICHAEL, TONY, make_person, make_roster

pytestmark = pytest.mark.django_db

ROSTERS_URL = reverse("admin:escalation_roster_changelist")
ESCALATIONS_URL = reverse("admin:escalation_escalation_changelist")


def staff(username: str, *codenames: str) -> User:
    user = User.objects.create(username=username, is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="escalation", codename__in=codenames))
    return user


ROSTER_EDITOR = ("view_roster", "change_roster", "view_escalation")


@pytest.fixture
def editor(client):
    """May edit rosters and read the history, but not fire."""
    client.force_login(staff("eddie", *ROSTER_EDITOR))
    return client


@pytest.fixture
def firer(client):
    user = staff("fiona", *ROSTER_EDITOR, "fire_escalation")
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def roster() -> Roster:
    return make_roster(TONY, MICHAEL)


def fire_url(roster: Roster) -> str:
    return reverse("admin:escalation_roster_fire", args=[roster.pk])


def action_post(client, url: str, action: str, pks: list[int], **data):
    return client.post(url, {"action": action, ACTION_CHECKBOX_NAME: [str(pk) for pk in pks], **data})


def test_without_the_permission_the_action_and_button_are_absent(editor, roster):
    assert "fire_escalation" not in editor.get(ROSTERS_URL).content.decode()
    page = editor.get(reverse("admin:escalation_roster_change", args=[roster.pk])).content.decode()
    assert fire_url(roster) not in page


def test_without_the_permission_a_direct_post_is_refused(editor, roster):
    assert action_post(editor, ROSTERS_URL, "fire_escalation", [roster.pk], post="yes",
                       message="hi").status_code == 403
    assert editor.get(fire_url(roster)).status_code == 403
    assert editor.post(fire_url(roster), {"post": "yes", "message": "hi"}).status_code == 403
    assert not Escalation.objects.exists()


def test_with_the_permission_the_action_and_button_are_offered(firer, roster):
    assert 'value="fire_escalation"' in firer.get(ROSTERS_URL).content.decode()
    page = firer.get(reverse("admin:escalation_roster_change", args=[roster.pk])).content.decode()
    assert fire_url(roster) in page


def test_the_intermediate_page_shows_who_is_paged_in_which_order_on_which_channels(firer, roster):
    response = action_post(firer, ROSTERS_URL, "fire_escalation", [roster.pk])

    assert response.status_code == 200
    body = response.content.decode()
    assert DEFAULT_MESSAGE in body  # prefilled
    assert body.index("Tony") < body.index("Michael")
    for label, address in [("Facebook Messenger", "23037543461244470"), ("SMS", "447700900001"),
                           ("Viber", "447700900002"), ("WhatsApp", "447700900003"), ("SMS", "447700900004")]:
        assert re.search(rf"<td>{label}</td>\s*<td>{address}</td>", body), address
    # Tony has 2 channels of 1 minute each, so Michael is paged 2 minutes in at the latest; Michael waits 3.
    assert "2:00 at the latest" in body
    assert "waits 2:00 in all" in body and "waits 3:00 in all" in body
    # Each channel's length limit, and the limits next to the message box.
    assert "<td>640" in body and "<td>1000" in body and "<td>4096" in body
    assert "Facebook Messenger 640" in body
    # The confirming form carries the selection back to the action, like delete_selected.
    assert f'name="{ACTION_CHECKBOX_NAME}" value="{roster.pk}"' in body
    assert 'value="fire_escalation"' in body
    assert not Escalation.objects.exists()


def test_confirming_fires_one_escalation_per_roster_and_reports_links(firer, roster):
    other = Roster.objects.create(name="secondary")
    other.members.create(person=make_person(*ANNA), position=0)

    response = action_post(firer, ROSTERS_URL, "fire_escalation", [roster.pk, other.pk], post="yes",
                           message="DB down")

    assert response.status_code == 302
    assert response.url.startswith(ROSTERS_URL)
    fired = {e.roster_name: e for e in Escalation.objects.all()}
    assert set(fired) == {"primary", "secondary"}
    primary = fired["primary"]
    assert primary.state == EscalationState.ACTIVE
    assert primary.message == "DB down"
    assert primary.fired_by == firer.user and primary.fired_by_name == "fiona"
    assert [p["name"] for p in primary.plan["people"]] == ["Tony", "Michael"]
    listed = firer.get(response.url).content.decode()
    assert reverse("admin:escalation_escalation_change", args=[primary.pk]) in listed


def test_a_refused_fire_shows_why_on_the_intermediate_page_and_creates_nothing(firer, roster):
    Sender.objects.filter(channel_type="viber_service_msg").delete()

    response = action_post(firer, ROSTERS_URL, "fire_escalation", [roster.pk], post="yes", message="DB down")

    assert response.status_code == 200
    body = response.content.decode()
    assert "Nothing was fired" in body
    assert "No sender is configured for Viber (needed for Michael&#x27;s channel 1)." in body
    assert not Escalation.objects.exists()


def test_a_message_too_long_for_a_channel_is_refused_for_every_selected_roster(firer, roster):
    fine = Roster.objects.create(name="secondary")
    fine.members.create(person=make_person(*ANNA), position=0)  # WhatsApp and SMS: 1000 characters is fine
    long_text = "x" * 700  # over Messenger's 640, which only Tony has

    response = action_post(firer, ROSTERS_URL, "fire_escalation", [roster.pk, fine.pk], post="yes",
                           message=long_text)

    assert response.status_code == 200
    assert "Facebook Messenger allows 640" in response.content.decode()
    assert not Escalation.objects.exists()  # all or nothing: the fine roster did not fire either


def test_the_fire_button_page_fires_and_opens_the_timeline(firer, roster):
    page = firer.get(fire_url(roster))
    assert page.status_code == 200
    assert "Tony" in page.content.decode() and ACTION_CHECKBOX_NAME not in page.content.decode()

    response = firer.post(fire_url(roster), {"post": "yes", "message": "Disk full"})

    escalation = Escalation.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("admin:escalation_escalation_change", args=[escalation.pk])
    assert escalation.message == "Disk full"
    timeline = firer.get(response.url).content.decode()
    assert "Nobody has been paged yet." in timeline and 'http-equiv="refresh"' in timeline


def test_checking_the_message_again_does_not_fire(firer, roster):
    response = firer.post(fire_url(roster), {"check": "1", "message": "Short"})

    assert response.status_code == 200
    assert "Short</textarea>" in response.content.decode()
    assert not Escalation.objects.exists()


# --- cancel and acknowledge ----------------------------------------------------------------------------------


def test_without_the_permission_cancel_and_acknowledge_are_refused(editor):
    escalation = active_escalation()

    assert "cancel_escalations" not in editor.get(ESCALATIONS_URL).content.decode()
    assert action_post(editor, ESCALATIONS_URL, "cancel_escalations", [escalation.pk], post="yes").status_code == 403
    assert action_post(editor, ESCALATIONS_URL, "acknowledge_escalations", [escalation.pk],
                       post="yes").status_code == 403
    for name in ("cancel", "acknowledge"):
        url = reverse(f"admin:escalation_escalation_{name}", args=[escalation.pk])
        assert editor.get(url).status_code == 403
        assert editor.post(url, {"post": "yes"}).status_code == 403
    escalation.refresh_from_db()
    assert escalation.state == EscalationState.ACTIVE


def test_cancel_action_asks_then_cancels_only_active_escalations(firer):
    active = active_escalation()
    ended = active_escalation()
    Escalation.objects.filter(pk=ended.pk).update(state=EscalationState.EXHAUSTED, next_action_at=None)

    page = action_post(firer, ESCALATIONS_URL, "cancel_escalations", [active.pk, ended.pk])
    assert page.status_code == 200
    assert "Stop paging" in page.content.decode() and "Already ended" in page.content.decode()

    response = action_post(firer, ESCALATIONS_URL, "cancel_escalations", [active.pk, ended.pk], post="yes",
                           reason="false alarm")

    assert response.status_code == 302
    active.refresh_from_db()
    ended.refresh_from_db()
    assert active.state == EscalationState.CANCELLED
    assert active.outcome == "cancelled by fiona: false alarm"
    assert ended.state == EscalationState.EXHAUSTED
    assert Page.objects.get(escalation=active).state == PageState.STOPPED


def test_the_cancel_button_on_an_escalation_page(firer):
    escalation = active_escalation()
    change = reverse("admin:escalation_escalation_change", args=[escalation.pk])
    cancel = reverse("admin:escalation_escalation_cancel", args=[escalation.pk])
    assert cancel in firer.get(change).content.decode()

    response = firer.post(cancel, {"post": "yes"})

    assert response.status_code == 302 and response.url == change
    escalation.refresh_from_db()
    assert escalation.state == EscalationState.CANCELLED
    assert cancel not in firer.get(change).content.decode()  # no buttons on an ended escalation


def test_acknowledge_on_behalf_asks_which_paged_person_answered(firer):
    escalation = active_escalation()
    url = reverse("admin:escalation_escalation_acknowledge", args=[escalation.pk])

    form = firer.get(url).content.decode()
    assert f'name="person_{escalation.pk}"' in form
    # Issue 15 §5: nobody is credited by default, and the field asks the question.
    assert '<option value="" selected>choose…</option>' in form and form.count(" selected>") == 1
    assert '<option value="0">Tony</option>' in form and "Who answered?" in form
    assert "someone else (record me, fiona)" in form

    response = firer.post(url, {"post": "yes", f"person_{escalation.pk}": "0", "note": "called me"})

    assert response.status_code == 302
    escalation.refresh_from_db()
    assert escalation.state == EscalationState.ACKNOWLEDGED
    assert escalation.acknowledged_by_name == "Tony"
    assert escalation.outcome == "Tony: acknowledged in the admin by fiona: called me"
    assert Page.objects.get(escalation=escalation).state == PageState.ACKNOWLEDGED
    assert Event.objects.filter(escalation=escalation, kind=EventKind.ACKNOWLEDGED).exists()


def test_acknowledge_action_for_someone_not_paged(firer):
    escalation = active_escalation()

    response = action_post(firer, ESCALATIONS_URL, "acknowledge_escalations", [escalation.pk], post="yes",
                           **{f"person_{escalation.pk}": "else"})

    assert response.status_code == 302
    escalation.refresh_from_db()
    assert escalation.state == EscalationState.ACKNOWLEDGED
    assert escalation.acknowledged_by_name == "fiona"
    assert Page.objects.get(escalation=escalation).state == PageState.STOPPED


def test_acknowledging_without_saying_who_answered_records_nothing(firer):
    escalation = active_escalation()
    url = reverse("admin:escalation_escalation_acknowledge", args=[escalation.pk])

    response = firer.post(url, {"post": "yes", f"person_{escalation.pk}": ""})

    assert response.status_code == 400
    assert "Nothing was recorded: choose who answered." in response.content.decode()
    escalation.refresh_from_db()
    assert escalation.state == EscalationState.ACTIVE


def test_acknowledging_an_ended_escalation_changes_nothing(firer):
    escalation = active_escalation()
    url = reverse("admin:escalation_escalation_acknowledge", args=[escalation.pk])
    firer.post(reverse("admin:escalation_escalation_cancel", args=[escalation.pk]), {"post": "yes"})

    page = firer.get(url).content.decode()
    response = firer.post(url, {"post": "yes", f"person_{escalation.pk}": "0"}, follow=True)

    assert "Already ended" in page and f'name="person_{escalation.pk}"' not in page
    assert "Nothing acknowledged" in response.content.decode()
    escalation.refresh_from_db()
    assert escalation.state == EscalationState.CANCELLED


def test_the_intermediate_page_warns_when_the_roster_is_already_escalating(firer, roster):
    running = active_escalation(roster=roster)

    body = firer.get(fire_url(roster)).content.decode()

    assert "Already escalating" in body
    assert reverse("admin:escalation_escalation_change", args=[running.pk]) in body
