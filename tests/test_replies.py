"""A person paged by several escalations at once: one reply acknowledges exactly one of them.

Sends go over real HTTP to the emulator (its webhooks off); replies come in through /webhooks/inbound in
both of Vonage's shapes and are applied as a worker's pass would. Time is explicit: the escalations are
fired an hour ago (T0) so that a reply received now comes after every page.
"""

import json
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from escalation.engine.plan import page_text_length
from escalation.engine.replies import named_number
from escalation.engine.worker import run_due
from escalation.models import Escalation, Event, Message, Person, Roster, RosterMember, WebhookEvent
from escalation.services.escalations import FireRefused, escalation_cancel, escalation_fire
from escalation.vonage.bodies import DISPATCH_FIELDS
from escalation.vonage.channels import V1_CHANNEL_NAMES
from tests.applying import apply_stored_webhooks
from tests.personas import ANNA, MICHAEL, SENDERS, TONY, make_person, make_senders

pytestmark = pytest.mark.django_db

T0 = timezone.now().replace(microsecond=0) - timedelta(hours=1)
TONY_MESSENGER = TONY[1][0][1]
TONY_SMS = TONY[1][1][1]


def at(seconds: float):
    return T0 + timedelta(seconds=seconds)


def roster(name: str, *people: Person) -> Roster:
    made = Roster.objects.create(name=name)
    for position, person in enumerate(people):
        RosterMember.objects.create(roster=made, person=person, position=position)
    return made


@pytest.fixture
def rosters() -> tuple[Roster, Roster]:
    """Two unrelated rosters, both starting with the same Tony."""
    make_senders()
    tony = make_person(*TONY)
    return roster("web", tony, make_person(*MICHAEL)), roster("database", tony, make_person(*ANNA))


def fire(on: Roster, seconds: float, text: str = "Main server down") -> Escalation:
    escalation = escalation_fire(roster=on, message=text, fired_by_name="test", now=at(seconds))
    run_due(now=at(seconds))
    return escalation


def inbound(text: str, *, shape: str = "v1", channel: str = "messenger", address: str = TONY_MESSENGER,
            seconds: float = 30) -> dict:
    """A person's reply in Vonage's v1 (flat) or v0.1 (nested) shape."""
    timestamp = at(seconds).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    if shape == "v1":
        return {"channel": V1_CHANNEL_NAMES[channel], "message_uuid": str(uuid.uuid4()), "to": SENDERS[channel],
                "from": address, "timestamp": timestamp, "message_type": "text", "text": text}
    ours, theirs = DISPATCH_FIELDS[channel]
    return {"message_uuid": str(uuid.uuid4()), "to": {"type": channel, ours: SENDERS[channel]},
            "from": {"type": channel, theirs: address}, "timestamp": timestamp, "direction": "inbound",
            "message": {"content": {"type": "text", "text": text}}}


def reply(client, body: dict) -> WebhookEvent:
    response = client.post("/webhooks/inbound", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 204
    apply_stored_webhooks()
    return WebhookEvent.objects.get(dedup_key=f"inbound:{body['message_uuid']}")


def states(*escalations: Escalation) -> list[str]:
    return [Escalation.objects.get(pk=e.pk).state for e in escalations]


def sent_texts(emulator) -> list[str]:
    texts = []
    for request in emulator.requests():
        body = request["body"]
        if "workflow" in body:
            texts.append(body["workflow"][0]["message"]["content"]["text"])
        elif "text" in body:
            texts.append(body["text"])
    return texts


@pytest.mark.parametrize("shape", ["v1", "v0.1"])
def test_it_acknowledges_only_the_escalation_whose_page_a_reply_answers(client, messages_mode, rosters, shape):
    web = fire(rosters[0], 0)
    database = fire(rosters[1], 5)  # Tony's latest Messenger message is the database's
    event = reply(client, inbound("on it", shape=shape))
    assert states(web, database) == ["active", "acknowledged"]
    assert event.result == f"reply: acknowledged #{database.pk}"
    assert not Event.objects.filter(escalation=web, kind="replied").exists()


@pytest.mark.parametrize("mode", ["messages_mode", "dispatch_mode"])
def test_each_page_says_how_to_pick_when_several_escalations_page_the_person(request, rosters, mode):
    emulator = request.getfixturevalue(mode)
    web = fire(rosters[0], 0)
    database = fire(rosters[1], 5)
    first, second = sent_texts(emulator)
    assert first == "[Tony]: Main server down"  # the only escalation paging Tony when it was composed
    assert second == f"[Tony]: Main server down\nReply {database.pk} to acknowledge #{database.pk}."
    # Messages mode composes each channel when it is sent: the web's SMS now says how to pick it too.
    if mode == "messages_mode":
        run_due(now=at(60))
        assert sent_texts(emulator)[-1].endswith(f"\nReply {web.pk} to acknowledge #{web.pk}.")


@pytest.mark.parametrize("shape", ["v1", "v0.1"])
@pytest.mark.parametrize("text", ["{n}", "#{n}", "ack {n}", "  ACK #{n} ", "Ack{n}.", "acknowledge {n}"])
def test_a_reply_with_a_number_acknowledges_exactly_that_escalation(client, messages_mode, rosters, shape, text):
    web = fire(rosters[0], 0)
    database = fire(rosters[1], 5)
    event = reply(client, inbound(text.format(n=web.pk), shape=shape))
    assert states(web, database) == ["acknowledged", "active"]
    assert event.result == f"reply: acknowledged #{web.pk}"


@pytest.mark.parametrize("shape", ["v1", "v0.1"])
@pytest.mark.parametrize("mode", ["messages_mode", "dispatch_mode"])
@pytest.mark.parametrize("channel", MICHAEL[1], ids=lambda channel: channel[0])
def test_replies_pick_one_escalation_on_every_channel(request, client, channel, mode, shape):
    request.getfixturevalue(mode)
    make_senders()
    michael = make_person(*MICHAEL)
    first, second = fire(roster("web", michael), 0), fire(roster("database", michael), 5)
    channel_type, address = channel[0], channel[1]
    reply(client, inbound(f"ack {first.pk}", shape=shape, channel=channel_type, address=address))
    assert states(first, second) == ["acknowledged", "active"]
    reply(client, inbound("on it", shape=shape, channel=channel_type, address=address))
    assert states(first, second) == ["acknowledged", "acknowledged"]


def test_a_numbered_reply_works_on_any_of_the_persons_channels_and_in_dispatch_mode(client, dispatch_mode, rosters):
    web = fire(rosters[0], 0)
    database = fire(rosters[1], 5)
    # Dispatch items have reported nothing yet (no message rows) and Tony answers by SMS.
    reply(client, inbound(f"#{web.pk}", channel="sms", address=TONY_SMS, shape="v0.1"))
    assert states(web, database) == ["acknowledged", "active"]
    reply(client, inbound("on it", channel="sms", address=TONY_SMS, shape="v0.1"))
    assert states(web, database) == ["acknowledged", "acknowledged"]


@pytest.mark.parametrize("number", ["99999", "{other}", "{ended}"])
def test_a_number_that_is_not_an_active_escalation_paging_the_person_falls_back_and_says_so(
        client, messages_mode, rosters, number):
    web = fire(rosters[0], 0)
    ended = fire(rosters[0], 2)
    escalation_cancel(escalation=ended, by_name="ann", now=at(3))
    database = fire(rosters[1], 5)
    zoe = make_person("Zoe", [("sms", "447700900077", 60, "delivered"), ("whatsapp", "447700900077", 60, "read")])
    other = fire(roster("other", zoe), 6)  # active, but paging Zoe, not Tony
    named = number.format(other=other.pk, ended=ended.pk)
    event = reply(client, inbound(named))
    assert states(web, database) == ["active", "acknowledged"]  # database: the latest still paging Tony
    note = f"#{named} is not an active escalation paging this sender, so the reply answers the latest page"
    assert event.result == f"reply: acknowledged #{database.pk} ({note})"
    assert note in Event.objects.get(escalation=database, kind="replied").text


def test_a_reply_to_a_page_of_an_escalation_that_has_ended_acknowledges_no_other(client, messages_mode, rosters):
    web = fire(rosters[0], 0)
    database = fire(rosters[1], 5)
    escalation_cancel(escalation=database, by_name="ann", now=at(6))
    event = reply(client, inbound("on it"))  # answers the database's message, the latest Tony got
    assert states(web) == ["active"]
    assert event.result == f"reply kept: it answers #{database.pk}, which had ended before it arrived"


def test_a_reply_on_a_channel_not_paged_since_answers_the_latest_page(client, messages_mode, rosters):
    web = fire(rosters[0], 0)
    run_due(now=at(60))  # web: Tony's Messenger unread, his SMS goes out
    database = fire(rosters[1], 70)  # database: Tony's Messenger
    reply(client, inbound("on it", channel="sms", address=TONY_SMS))  # the web's SMS is the latest SMS
    assert states(web, database) == ["acknowledged", "active"]


def test_a_reply_from_a_stranger_acknowledges_nothing(client, messages_mode, rosters):
    web = fire(rosters[0], 0)
    event = reply(client, inbound(f"{web.pk}", channel="sms", address="447700900999"))
    assert states(web) == ["active"]
    assert event.result == "reply kept: no active escalation paged this sender"


def test_named_numbers_are_the_whole_reply():
    assert [named_number(t) for t in ["7", " #7 ", "ack 7", "ACK#7", "acknowledge 7!", "Ack 7."]] == [7] * 6
    assert [named_number(t) for t in ["on it", "7 on it", "ack", "#", "back 7", "7 8", ""]] == [None] * 7


def test_fire_keeps_room_for_the_reply_line(messages_mode, rosters):
    # Messenger allows 640 characters; "[Tony]: " and the longest "reply N" line must fit with the message.
    room = 640 - page_text_length("Tony", "")
    with pytest.raises(FireRefused) as refused:
        escalation_fire(roster=rosters[0], message="x" * (room + 1), now=at(0))
    assert any(f"is {641} characters for Tony's Facebook Messenger" in m for m in refused.value.messages)
    assert escalation_fire(roster=rosters[0], message="x" * room, now=at(0)).pk


def test_a_page_without_room_for_the_reply_line_is_sent_without_it(messages_mode, rosters):
    """An escalation fired before room was kept for the line: a page too long for it goes out without it."""
    web = fire(rosters[0], 0)
    database = escalation_fire(roster=rosters[1], message="x", now=at(5))
    full = "y" * (640 - len("[Tony]: "))
    Escalation.objects.filter(pk=database.pk).update(message=full)
    run_due(now=at(5))
    assert sent_texts(messages_mode)[-1] == f"[Tony]: {full}"
    assert Message.objects.get(page__escalation=database).status == "submitted"
    assert states(web, database) == ["active", "active"]


def test_a_reply_after_an_old_conversation_answers_the_escalation_paging_the_person_now(client, messages_mode,
                                                                                         rosters):
    web = fire(rosters[0], 0)
    run_due(now=at(60))  # web: Tony's SMS
    escalation_cancel(escalation=web, by_name="ann", now=at(61))
    database = fire(rosters[1], 70)  # database: Tony's Messenger only so far
    reply(client, inbound("on it", channel="sms", address=TONY_SMS))  # on SMS, whose last message is web's
    assert states(database) == ["acknowledged"]
