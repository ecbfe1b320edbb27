"""The escalation state machine, with time controlled explicitly (every pass gets its `now`).

Sends go over real HTTP to the local Vonage emulator; its webhooks are switched off here so each test
decides exactly which status arrives when, by applying it directly.
"""

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from escalation.engine.apply import apply_final_report, apply_inbound, apply_status, apply_statuses
from escalation.engine.worker import run_due
from escalation.models import Channel, Escalation, Event, Message, Page, Person
from escalation.services.escalations import FireRefused, escalation_cancel, escalation_fire
from escalation.vonage.payloads import FinalReport, InboundReply, StatusUpdate
from tests.personas import ANNA, MICHAEL, TONY, make_roster

pytestmark = pytest.mark.django_db

T0 = timezone.now().replace(microsecond=0)


def at(seconds: float):
    return T0 + timedelta(seconds=seconds)


def fire(roster, text="Main server down"):
    return escalation_fire(roster=roster, message=text, fired_by_name="test", now=T0)


def status(message: Message, value: str, seconds: float, **extra):
    message.refresh_from_db()
    update = StatusUpdate(message_uuid=str(message.message_uuid or ""), status=value, timestamp=at(seconds),
                          to_address=message.to_address, channel_type=message.channel_type,
                          client_ref=message.client_ref, **extra)
    return apply_status(update, now=at(seconds))


def sent(escalation: Escalation) -> list[tuple[str, int, str]]:
    """(person, channel index, channel type) of every message Vonage accepted, in order."""
    return [(m.page.person_name, m.channel_index, m.channel_type)
            for m in Message.objects.filter(page__escalation=escalation).exclude(message_uuid=None)
            .select_related("page").order_by("sent_at", "id")]


def refreshed(escalation: Escalation) -> Escalation:
    escalation.refresh_from_db()
    return escalation


def kinds(escalation: Escalation) -> list[str]:
    return list(Event.objects.filter(escalation=escalation).order_by("at", "id").values_list("kind", flat=True))


# --- Messages API mode: the engine fails over itself ---

def test_it_pages_the_first_channel_at_once(messages_mode):
    escalation = fire(make_roster(TONY, MICHAEL))
    run_due(now=at(0))
    assert sent(escalation) == [("Tony", 0, "messenger")]
    received = messages_mode.requests()
    assert len(received) == 1
    assert received[0]["body"]["channel"] == "messenger"
    assert received[0]["body"]["text"] == "[Tony]: Main server down"
    assert refreshed(escalation).next_action_at == at(60)


def test_it_is_acknowledged_by_read(messages_mode):
    escalation = fire(make_roster(TONY, MICHAEL))
    run_due(now=at(0))
    first = Message.objects.get(page__escalation=escalation)
    status(first, "delivered", 2)
    assert refreshed(escalation).state == "active"  # messenger waits for `read`
    status(first, "read", 5)
    escalation = refreshed(escalation)
    assert escalation.state == "acknowledged"
    assert escalation.acknowledged_by_name == "Tony"
    assert escalation.acknowledged_by == Person.objects.get(name="Tony")
    assert "read on Messenger at " in escalation.outcome
    run_due(now=at(3600))
    assert sent(escalation) == [("Tony", 0, "messenger")]
    assert escalation.next_action_at is None


def test_it_reaches_the_person_by_delivered_when_that_is_the_condition(messages_mode):
    escalation = fire(make_roster(TONY, MICHAEL))
    run_due(now=at(0))
    run_due(now=at(60))  # messenger not read in time: SMS, whose condition is `delivered`
    sms = Message.objects.get(page__escalation=escalation, channel_type="sms")
    status(sms, "submitted", 61)
    assert refreshed(escalation).state == "active"
    status(sms, "delivered", 62)
    # A phone got it, nobody confirmed: reached, not acknowledged (issue 15 §1).
    escalation = refreshed(escalation)
    assert escalation.state == "reached"
    assert escalation.outcome.startswith("Tony: SMS delivered at ")
    assert Page.objects.get(person_name="Tony").state == "reached"


def test_it_is_acknowledged_by_a_reply(messages_mode):
    escalation = fire(make_roster(TONY, MICHAEL))
    run_due(now=at(0))
    result = apply_inbound(InboundReply(message_uuid="5c3d5d5a-0000-4000-8000-000000000001",
                                        from_address="23037543461244470", channel_type="messenger",
                                        text="on it", timestamp=at(10)), now=at(10))
    escalation = refreshed(escalation)
    assert escalation.state == "acknowledged"
    assert escalation.acknowledged_by_name == "Tony"
    assert escalation.outcome == "Tony: replied on Messenger: \u201con it\u201d"
    assert "acknowledged" in result.result
    assert "replied" in kinds(escalation)


def test_a_reply_from_a_stranger_is_kept_but_acknowledges_nothing(messages_mode):
    escalation = fire(make_roster(TONY, MICHAEL))
    run_due(now=at(0))
    result = apply_inbound(InboundReply(message_uuid="5c3d5d5a-0000-4000-8000-000000000002",
                                        from_address="447700900999", channel_type="sms", text="who is this",
                                        timestamp=at(10)), now=at(10))
    assert refreshed(escalation).state == "active"
    assert "no active escalation" in result.result


def test_it_fails_over_channel_by_channel_then_person_by_person(messages_mode):
    escalation = fire(make_roster(TONY, MICHAEL))
    for second in (0, 30, 60, 119):
        run_due(now=at(second))
    assert sent(escalation) == [("Tony", 0, "messenger"), ("Tony", 1, "sms")]
    run_due(now=at(120))  # Tony's SMS ran out: Michael's first channel
    assert sent(escalation)[-1] == ("Michael", 0, "viber_service_msg")
    tony = Page.objects.get(escalation=escalation, person_name="Tony")
    assert tony.state == "passed_over"
    assert "no answer within 60 s" in tony.outcome
    run_due(now=at(180))
    run_due(now=at(240))
    assert [s[2] for s in sent(escalation)] == ["messenger", "sms", "viber_service_msg", "whatsapp", "sms"]
    run_due(now=at(300))
    escalation = refreshed(escalation)
    assert escalation.state == "exhausted"
    assert escalation.next_action_at is None
    assert kinds(escalation)[-1] == "exhausted"


def test_a_rejected_channel_fails_over_at_once(messages_mode):
    escalation = fire(make_roster(TONY, MICHAEL))
    run_due(now=at(0))
    status(Message.objects.get(page__escalation=escalation), "rejected", 3, error="1300: not a user")
    assert refreshed(escalation).next_action_at == at(3)
    run_due(now=at(3))
    assert sent(escalation) == [("Tony", 0, "messenger"), ("Tony", 1, "sms")]
    status(Message.objects.get(page__escalation=escalation, channel_index=1), "undeliverable", 4)
    run_due(now=at(4))
    assert sent(escalation)[-1] == ("Michael", 0, "viber_service_msg")
    assert "last channel (SMS) undeliverable" in Page.objects.get(person_name="Tony").outcome


def test_a_refused_request_moves_to_the_next_channel(messages_mode):
    messages_mode.fault("422", count=1)
    escalation = fire(make_roster(TONY, MICHAEL))
    run_due(now=at(0))
    first = Message.objects.get(page__escalation=escalation, channel_index=0)
    assert first.status == "failed"
    assert "Invalid" in first.error
    assert sent(escalation) == [("Tony", 1, "sms")]
    assert "send_failed" in kinds(escalation)


def test_transient_errors_are_retried_with_backoff(messages_mode):
    messages_mode.fault("500", count=2)
    escalation = fire(make_roster(TONY, MICHAEL))
    run_due(now=at(0))
    message = Message.objects.get(page__escalation=escalation)
    assert message.status == "queued" and message.send_attempts == 1
    assert refreshed(escalation).next_action_at == at(2)
    run_due(now=at(1))  # not yet
    assert Message.objects.get(pk=message.pk).send_attempts == 1
    run_due(now=at(2))
    assert refreshed(escalation).next_action_at == at(6)  # 2 s, then 4 s
    run_due(now=at(6))
    assert sent(escalation) == [("Tony", 0, "messenger")]
    assert [k for k in kinds(escalation) if k in ("held", "retried", "resumed")] == ["held", "retried", "resumed"]
    assert len(messages_mode.requests()) == 3


def test_it_holds_a_channel_through_provider_faults_beyond_the_send_attempts(messages_mode, settings):
    # Throttling says nothing about Tony's Messenger: it is retried, not given up for his SMS.
    settings.ESCALATION_SEND_ATTEMPTS = 2
    messages_mode.fault("429", count=3)
    escalation = fire(make_roster(TONY, MICHAEL))
    for second in (0, 2, 6, 14):
        run_due(now=at(second))
    first = Message.objects.get(page__escalation=escalation, channel_index=0)
    assert (first.status, first.send_attempts) == ("submitted", 4)
    assert sent(escalation) == [("Tony", 0, "messenger")]
    assert refreshed(escalation).next_action_at == at(14 + 60)  # his full expiry from the send that went
    assert len(messages_mode.requests()) == 4


def test_rounds_go_through_the_list_again_then_exhaust(messages_mode):
    escalation = fire(make_roster(ANNA, name="solo", rounds=2))
    for second in (0, 30, 60, 90, 120):
        run_due(now=at(second))
    pages = list(Page.objects.filter(escalation=escalation).values_list("round", "state"))
    assert pages == [(1, "passed_over"), (2, "passed_over")]
    assert len(sent(escalation)) == 4
    assert refreshed(escalation).state == "exhausted"
    assert "round" in kinds(escalation)


def test_cancel_stops_everything(messages_mode):
    escalation = fire(make_roster(TONY, MICHAEL))
    run_due(now=at(0))
    assert escalation_cancel(escalation=escalation, by_name="ann", reason="false alarm", now=at(5))
    assert not escalation_cancel(escalation=escalation, by_name="ann", now=at(6))
    run_due(now=at(600))
    escalation = refreshed(escalation)
    assert escalation.state == "cancelled"
    assert escalation.outcome == "cancelled by ann: false alarm"
    assert len(sent(escalation)) == 1
    assert Page.objects.get(escalation=escalation).state == "stopped"


def test_the_plan_is_frozen_at_fire_time(messages_mode):
    roster = make_roster(TONY, MICHAEL)
    escalation = fire(roster)
    Channel.objects.filter(address="23037543461244470").update(address="99999")
    Person.objects.get(name="Michael").channels.all().delete()
    roster.members.filter(person__name="Michael").delete()
    for second in (0, 60, 120):
        run_due(now=at(second))
    assert [r["body"]["to"] for r in messages_mode.requests()] == ["23037543461244470", "447700900001",
                                                                        "447700900002"]
    assert sent(escalation)[-1] == ("Michael", 0, "viber_service_msg")


def test_a_late_read_of_an_earlier_person_acknowledges(messages_mode):
    escalation = fire(make_roster(TONY, MICHAEL, ANNA))
    for second in (0, 60, 120):
        run_due(now=at(second))
    assert sent(escalation)[-1][0] == "Michael"
    status(Message.objects.get(page__escalation=escalation, channel_type="messenger"), "read", 130)
    escalation = refreshed(escalation)
    assert escalation.state == "acknowledged"
    assert escalation.acknowledged_by_name == "Tony"
    assert Page.objects.get(person_name="Tony").state == "acknowledged"
    assert Page.objects.get(person_name="Michael").state == "stopped"
    for second in (180, 240, 1000):
        run_due(now=at(second))
    assert not Page.objects.filter(person_name="Anna").exists()
    assert len(sent(escalation)) == 3


def test_a_duplicated_or_late_status_never_moves_backwards(messages_mode):
    escalation = fire(make_roster(TONY, MICHAEL))
    run_due(now=at(0))
    first = Message.objects.get(page__escalation=escalation)
    status(first, "delivered", 2)
    result = status(first, "submitted", 3)
    assert "ignored" in result.result
    status(first, "delivered", 4)
    first.refresh_from_db()
    assert first.status == "delivered"
    assert kinds(escalation).count("delivered") == 1


# --- Refusals: nothing is created ---

def test_fire_refuses_a_person_with_one_channel(messages_mode):
    roster = make_roster(TONY, ("Solo", [("sms", "447700900010", 60, "delivered")]))
    with pytest.raises(FireRefused) as refused:
        fire(roster)
    assert "Solo has 1 channel; at least 2 are needed." in refused.value.messages
    assert not Escalation.objects.exists()


def test_fire_refuses_a_channel_type_without_sender(messages_mode):
    from escalation.models import Sender

    roster = make_roster(TONY, MICHAEL)
    Sender.objects.filter(channel_type="viber_service_msg").delete()
    with pytest.raises(FireRefused) as refused:
        fire(roster)
    assert "No sender is configured for Viber (needed for Michael's channel 1)." in refused.value.messages
    assert not Escalation.objects.exists()


def test_fire_refuses_a_message_over_a_channel_limit(messages_mode):
    roster = make_roster(TONY, MICHAEL)
    with pytest.raises(FireRefused) as refused:
        fire(roster, "x" * 700)
    assert any("Tony's Facebook Messenger" in m and "allows 640" in m for m in refused.value.messages)
    assert not Escalation.objects.exists()


# --- Dispatch mode: one failover workflow per person ---

def dispatch_status(page: Page, channel_index: int, value: str, seconds: float, message_uuid: str):
    channel = page.escalation.plan["people"][page.index]["channels"][channel_index]
    return apply_status(StatusUpdate(message_uuid=message_uuid, status=value, timestamp=at(seconds),
                                     to_address=channel["address"], channel_type=channel["type"],
                                     dispatch_uuid=str(page.dispatch_uuid)), now=at(seconds))


def test_dispatch_sends_one_workflow_per_person(dispatch_mode):
    escalation = fire(make_roster(TONY, MICHAEL))
    run_due(now=at(0))
    page = Page.objects.get(escalation=escalation)
    assert page.dispatch_uuid is not None
    body = dispatch_mode.requests()[0]["body"]
    assert body["template"] == "failover"
    assert [item["to"]["type"] for item in body["workflow"]] == ["messenger", "sms"]
    assert body["workflow"][0]["failover"] == {"expiry_time": 60, "condition_status": "read"}
    assert "failover" not in body["workflow"][1]
    assert refreshed(escalation).next_action_at == at(120)


def test_dispatch_delivered_on_the_second_channel_reaches(dispatch_mode):
    escalation = fire(make_roster(TONY, MICHAEL))
    run_due(now=at(0))
    page = Page.objects.get(escalation=escalation)
    dispatch_status(page, 0, "submitted", 1, "0b8e3c8a-0000-4000-8000-000000000001")
    dispatch_status(page, 1, "submitted", 61, "0b8e3c8a-0000-4000-8000-000000000002")
    dispatch_status(page, 1, "delivered", 62, "0b8e3c8a-0000-4000-8000-000000000002")
    escalation = refreshed(escalation)
    assert escalation.state == "reached"
    assert escalation.outcome.startswith("Tony: SMS delivered at ")
    run_due(now=at(500))
    assert Page.objects.filter(escalation=escalation).count() == 1


def test_dispatch_passes_over_after_the_window(dispatch_mode):
    escalation = fire(make_roster(TONY, MICHAEL))
    run_due(now=at(0))
    run_due(now=at(119))
    assert Page.objects.filter(escalation=escalation).count() == 1
    run_due(now=at(120))
    assert list(Page.objects.filter(escalation=escalation).values_list("person_name", "state")) == [
        ("Tony", "passed_over"), ("Michael", "active")]
    assert len(dispatch_mode.requests()) == 2


def test_dispatch_final_report_error_passes_over_at_once(dispatch_mode):
    escalation = fire(make_roster(TONY, MICHAEL))
    run_due(now=at(0))
    page = Page.objects.get(escalation=escalation)
    apply_final_report(FinalReport(dispatch_uuid=str(page.dispatch_uuid), status="error", timestamp=at(5)), now=at(5))
    run_due(now=at(5))
    assert Page.objects.get(pk=page.pk).state == "passed_over"
    assert Page.objects.filter(escalation=escalation, person_name="Michael").exists()


def test_dispatch_rejected_last_channel_passes_over(dispatch_mode):
    escalation = fire(make_roster(TONY, MICHAEL))
    run_due(now=at(0))
    page = Page.objects.get(escalation=escalation)
    dispatch_status(page, 1, "rejected", 70, "0b8e3c8a-0000-4000-8000-000000000003")
    run_due(now=at(70))
    assert Page.objects.get(pk=page.pk).state == "passed_over"


def test_dispatch_refusal_of_the_recipient_passes_the_person_over(dispatch_mode):
    dispatch_mode.fault("422", count=1)
    escalation = fire(make_roster(TONY, MICHAEL))
    run_due(now=at(0))
    tony = Page.objects.get(escalation=escalation, person_name="Tony")
    assert tony.state == "passed_over"
    assert "refused" in tony.outcome
    assert Page.objects.get(escalation=escalation, person_name="Michael").dispatch_uuid is not None


def test_dispatch_status_stored_as_unknown_is_applied_before_giving_up(dispatch_mode):
    """A status that raced the commit of the workflow's uuid was kept as unknown; the deadline looks again."""
    from escalation.models import WebhookEvent

    escalation = fire(make_roster(TONY, MICHAEL))
    run_due(now=at(0))
    page = Page.objects.get(escalation=escalation)
    body = {"message_uuid": "0b8e3c8a-0000-4000-8000-000000000009", "status": "read",
            "to": {"type": "messenger", "id": "23037543461244470"},
            "from": {"type": "messenger", "id": "1923256201474167"}, "timestamp": "2026-11-26T12:00:00.000Z",
            "_links": {"dispatch": {"dispatch_uuid": str(page.dispatch_uuid)}}}
    WebhookEvent.objects.create(received_at=at(1), kind="status", dedup_key="status:race:read", body=body,
                                result="unknown message")
    run_due(now=at(120))
    escalation = refreshed(escalation)
    assert escalation.state == "acknowledged"
    assert escalation.acknowledged_by_name == "Tony"
    assert not Page.objects.filter(escalation=escalation, person_name="Michael").exists()


def test_first_statuses_of_dispatch_items_applied_together_make_each_message_once(dispatch_mode):
    roster = make_roster(TONY, MICHAEL)
    first, second = fire(roster), fire(roster)
    run_due(now=at(0))
    pages = [Page.objects.select_related("escalation").get(escalation=e) for e in (first, second)]
    items = {page.pk: str(uuid.uuid4()) for page in pages}

    def update(page: Page, value: str, address: str | None = None) -> StatusUpdate:
        channel = page.escalation.plan["people"][0]["channels"][0]
        return StatusUpdate(message_uuid=items[page.pk], status=value, timestamp=at(1),
                            to_address=address or channel["address"], channel_type=channel["type"],
                            dispatch_uuid=str(page.dispatch_uuid))

    stranger = replace(update(pages[1], "submitted", address="23037543461249999"), message_uuid=str(uuid.uuid4()))
    with transaction.atomic():
        applied = apply_statuses([update(pages[0], "submitted"), update(pages[1], "submitted"),
                                  update(pages[0], "delivered"), stranger], now=at(1))
    assert [a.result for a in applied] == ["status submitted", "status submitted", "status delivered",
                                           "unknown message: its address is not in the person's plan"]
    messages = {m.page_id: m for m in Message.objects.all()}
    assert len(messages) == 2
    for page in pages:
        assert (str(messages[page.pk].message_uuid), messages[page.pk].channel_index) == (items[page.pk], 0)
    assert (messages[pages[0].pk].status, messages[pages[1].pk].status) == ("delivered", "submitted")
