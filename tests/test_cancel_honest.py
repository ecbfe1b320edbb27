"""Issue 15 §2: cancel (and acknowledge on someone's behalf) say what they can and cannot stop.

Messages mode: the app sends each message itself, so nothing more goes out after the end. Dispatch mode: Vonage
runs the person's failover and has no call to recall it, so the pages list what it may still deliver, and the
timeline labels such a message.
"""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from escalation.ahead import clock
from escalation.engine.apply import apply_status
from escalation.engine.worker import run_due
from escalation.models import Escalation, Message, Page
from escalation.services.escalations import escalation_acknowledge, escalation_cancel, escalation_fire
from escalation.vonage.payloads import StatusUpdate
from tests.personas import MICHAEL, TONY, make_roster

pytestmark = pytest.mark.django_db

T0 = timezone.now().replace(microsecond=0)


def at(seconds: float):
    return T0 + timedelta(seconds=seconds)


def fire() -> Escalation:
    return escalation_fire(roster=make_roster(TONY, MICHAEL), message="disk full", fired_by_name="test", now=T0)


@pytest.mark.parametrize("end", ["cancel", "acknowledge"])
def test_it_sends_nothing_after_the_end_in_messages_mode(messages_mode, end):
    escalation = fire()
    run_due(now=at(0))
    assert len(messages_mode.requests()) == 1  # Tony's Messenger
    if end == "cancel":
        assert escalation_cancel(escalation=escalation, by_name="ops", now=at(10))
    else:
        assert escalation_acknowledge(escalation=escalation, person_index=None, by_name="ops", how="by phone",
                                      now=at(10))
    for second in (60, 61, 120, 180, 400, 3600):
        run_due(now=at(second))
    assert len(messages_mode.requests()) == 1
    assert Message.objects.filter(page__escalation=escalation).count() == 1


def test_the_cancel_page_says_nothing_more_is_sent_in_messages_mode(messages_mode, admin_client):
    escalation = fire()
    run_due(now=at(0))
    page = admin_client.get(reverse("admin:escalation_escalation_cancel", args=[escalation.pk])).content.decode()
    assert "nothing more will be sent" in page


@pytest.mark.parametrize("control", ["cancel", "acknowledge"])
def test_the_control_pages_list_what_vonage_may_still_deliver_in_dispatch_mode(dispatch_mode, admin_client, control):
    escalation = fire()
    run_due(now=at(0))
    started = Page.objects.get(escalation=escalation).started_at
    page = admin_client.get(reverse(f"admin:escalation_escalation_{control}", args=[escalation.pk])).content.decode()
    # Tony's Messenger waits 60 s; then Vonage's failover sends his SMS, whatever we do.
    expected = f"Tony's SMS, at about {clock(started + timedelta(seconds=60))}: Vonage's failover cannot be recalled"
    assert expected.replace("'", "&#x27;") in page


def test_the_timeline_labels_a_message_vonage_sent_after_the_end(dispatch_mode, admin_client):
    escalation = fire()
    run_due(now=at(0))
    page = Page.objects.get(escalation=escalation)
    escalation_cancel(escalation=escalation, by_name="ops", now=at(10))
    sms = page.escalation.plan["people"][0]["channels"][1]
    apply_status(StatusUpdate(message_uuid="0b8e3c8a-0000-4000-8000-0000000000aa", status="delivered",
                              timestamp=at(61), to_address=sms["address"], channel_type=sms["type"],
                              dispatch_uuid=str(page.dispatch_uuid)), now=at(61))
    escalation.refresh_from_db()
    assert escalation.state == "cancelled"  # a delivery after the end changes nothing
    html = admin_client.get(reverse("admin:escalation_escalation_change", args=[escalation.pk])).content.decode()
    label = "sent by Vonage&#x27;s failover after the escalation ended"
    assert html.count(label) >= 3  # the picture's row, the story's card and the log in words
