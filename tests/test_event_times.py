"""Times recorded from webhooks are when things happened, not when a worker got round to applying them.

The worker is "down" simply by not running a pass: webhooks are stored by the request's service with an
injected clock (`webhook_receive(now=...)`), and the worker "restarts" with a later `run_due(now=...)`.
Sends go to the emulator (its webhooks off); nothing sleeps.
"""

import json
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from escalation.admin.escalations import time_to_ack
from escalation.engine.event_time import CLOCK_SKEW, event_time
from escalation.engine.worker import run_due
from escalation.models import Escalation, Event, Message, Page
from escalation.services.escalations import escalation_fire
from escalation.services.webhooks import webhook_receive
from tests.personas import MICHAEL, SENDERS, TONY, make_roster

pytestmark = pytest.mark.django_db

T0 = timezone.now().replace(microsecond=0)
TONY_MESSENGER = TONY[1][0][1]


def at(seconds: float):
    return T0 + timedelta(seconds=seconds)


def vonage_time(seconds: float) -> str:
    return at(seconds).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def fire() -> Escalation:
    escalation = escalation_fire(roster=make_roster(TONY, MICHAEL), message="Main server down", fired_by_name="t",
                                 now=T0)
    run_due(now=at(0))
    return escalation


def store(body: dict, seconds: float, kind: str = "status") -> None:
    """The web process stores a webhook that reached us `seconds` after the fire; no worker applies it."""
    webhook_receive(kind_hint=kind, raw_body=json.dumps(body).encode(), authorization=None, now=at(seconds))


def v1_read(message: Message, timestamp: str) -> dict:
    return {"message_uuid": str(message.message_uuid), "to": message.to_address, "from": SENDERS["messenger"],
            "timestamp": timestamp, "status": "read", "channel": "messenger", "client_ref": message.client_ref}


def refreshed(escalation: Escalation) -> Escalation:
    escalation.refresh_from_db()
    return escalation


# Vonage's timestamp is taken when plausible; else the time the webhook reached us (10 s).
PLAUSIBLE = [(9.8, 9.8), (10.0, 10.0), (12.0, 10.0), (500.0, 10.0), (-60.0, 10.0)]


@pytest.mark.parametrize(("timestamp", "expected"), PLAUSIBLE)
def test_a_read_applied_after_a_worker_restart_is_recorded_when_it_happened(messages_mode, timestamp, expected):
    escalation = fire()
    message = Message.objects.get(page__escalation=escalation)
    store(v1_read(message, vonage_time(timestamp)), 10)  # Tony reads 10 s after the fire; the worker is down
    run_due(now=at(50.7))  # the worker is back
    escalation, message = refreshed(escalation), Message.objects.get(pk=message.pk)
    assert (escalation.state, escalation.acknowledged_by_name) == ("acknowledged", "Tony")
    assert escalation.ended_at == message.read_at == at(expected)
    assert time_to_ack(escalation) == timedelta(seconds=expected)
    assert Page.objects.get(escalation=escalation).ended_at == at(expected)
    events = Event.objects.filter(escalation=escalation, kind__in=["read", "acknowledged"])
    assert [(e.kind, e.at) for e in events.order_by("id")] == [("read", at(expected)), ("acknowledged", at(expected))]


def test_the_history_shows_how_long_it_really_took(messages_mode, client):
    escalation = fire()
    message = Message.objects.get(page__escalation=escalation)
    store(v1_read(message, vonage_time(500)), 10)  # an implausible timestamp: the time it reached us counts
    run_due(now=at(50.7))
    client.force_login(User.objects.create(username="ann", is_staff=True, is_superuser=True))
    listing = client.get(reverse("admin:escalation_escalation_changelist")).content.decode()
    assert "0:10" in listing and "0:51" not in listing
    page = client.get(reverse("admin:escalation_escalation_change", args=[escalation.pk])).content.decode()
    assert "acknowledged by Tony +0:10" in page


def test_a_read_received_before_the_deadline_still_wins_when_the_worker_comes_back_after_it(messages_mode):
    escalation = fire()
    message = Message.objects.get(page__escalation=escalation)  # Messenger: 60 s to be read
    store(v1_read(message, vonage_time(59.5)), 59.9)
    run_due(now=at(130))  # long past Tony's Messenger deadline
    escalation = refreshed(escalation)
    assert (escalation.state, escalation.ended_at) == ("acknowledged", at(59.5))
    assert list(Message.objects.filter(page__escalation=escalation).values_list("channel_type", flat=True)) == [
        "messenger"]  # his SMS was never sent, nor Michael paged


@pytest.mark.parametrize("shape", ["v1", "v0.1"])
def test_a_reply_applied_late_is_recorded_when_it_arrived(messages_mode, shape):
    escalation = fire()
    if shape == "v1":
        body = {"channel": "messenger", "message_uuid": str(uuid.uuid4()), "to": SENDERS["messenger"],
                "from": TONY_MESSENGER, "timestamp": vonage_time(3600), "message_type": "text", "text": "on it"}
    else:
        body = {"message_uuid": str(uuid.uuid4()), "to": {"type": "messenger", "id": SENDERS["messenger"]},
                "from": {"type": "messenger", "id": TONY_MESSENGER}, "timestamp": vonage_time(3600),
                "direction": "inbound", "message": {"content": {"type": "text", "text": "on it"}}}
    store(body, 20, kind="inbound")
    run_due(now=at(90))
    escalation = refreshed(escalation)
    assert (escalation.state, escalation.ended_at) == ("acknowledged", at(20))
    assert Event.objects.get(escalation=escalation, kind="replied").at == at(20)


def test_dispatch_items_are_sent_and_read_when_their_webhooks_say(dispatch_mode):
    escalation = fire()
    page = Page.objects.get(escalation=escalation)
    item = str(uuid.uuid4())

    def status(value: str, timestamp: float) -> dict:
        return {"message_uuid": item, "to": {"type": "messenger", "id": TONY_MESSENGER},
                "from": {"type": "messenger", "id": SENDERS["messenger"]}, "timestamp": vonage_time(timestamp),
                "status": value, "_links": {"dispatch": {"dispatch_uuid": str(page.dispatch_uuid)}}}

    store(status("submitted", 0.4), 0.5)
    store(status("read", 12), 12.3)
    store({"template": "failover", "status": "completed", "timestamp": vonage_time(12.1),
           "dispatch_uuid": str(page.dispatch_uuid), "_links": {"messages": []}}, 12.5)
    run_due(now=at(70))
    message = Message.objects.get(message_uuid=item)
    assert (message.sent_at, message.read_at) == (at(0.4), at(12))
    assert refreshed(escalation).ended_at == at(12)
    assert Event.objects.get(escalation=escalation, kind="note", text__contains="final report").at == at(12.1)


def test_vonage_timestamps_are_believed_only_when_plausible():
    sent, received = at(0), at(10)
    assert event_time(at(4), received_at=received, not_before=sent) == at(4)
    # Vonage's clock a little ahead of ours: never recorded after the webhook reached us.
    assert event_time(received + CLOCK_SKEW, received_at=received, not_before=sent) == received
    assert event_time(received + CLOCK_SKEW + timedelta(seconds=1), received_at=received, not_before=sent) == received
    # A little before the send (our sent_at is recorded after Vonage's 202): never before the send.
    assert event_time(sent - CLOCK_SKEW, received_at=received, not_before=sent) == sent
    assert event_time(sent - CLOCK_SKEW - timedelta(seconds=1), received_at=received, not_before=sent) == received
