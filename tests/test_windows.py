"""Issue 19: pages WhatsApp and Messenger will really deliver (the 24-hour windows), in both API modes.

Over real HTTP against the emulator, which refuses free-form WhatsApp text and `response`-category Messenger
messages to someone who has not written to that sender in the last 24 hours (emulated time), as WhatsApp
and Facebook do (emulator/spec/VONAGE_FACTS.md, "Business-initiated messages: the 24-hour windows").
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from emulator.schemas import dispatch_problems, message_problems
from escalation.engine.apply import apply_inbound
from escalation.engine.provider import get_client
from escalation.engine.worker import run_due
from escalation.models import InboundContact, Message, Page, Sender
from escalation.services.escalations import escalation_fire, fire_preview
from escalation.services.integrations import channel_test_send
from escalation.vonage.bodies import failover_workflow, v1_message
from escalation.vonage.forms import Form, TemplateSend
from escalation.vonage.payloads import InboundReply
from tests.personas import make_person, make_roster, make_senders

pytestmark = pytest.mark.django_db

T0 = timezone.now().replace(microsecond=0)
WHATSAPP, PSID, SMS = "447700900031", "23037543461244479", "447700900032"
# Someone on call who never wrote to the company's WhatsApp number or Facebook page.
RAVI = ("Ravi", [("whatsapp", WHATSAPP, 15, "read"), ("messenger", PSID, 15, "read"), ("sms", SMS, 15, "delivered")])
MODES = ["messages_mode", "dispatch_mode"]
# Plan channels to the company's senders (tests/personas.py), for the client on its own.
TO_WHATSAPP = {"type": "whatsapp", "address": WHATSAPP, "expiry_time": 15, "condition": "read",
               "sender": "447700900000"}
TO_MESSENGER = {"type": "messenger", "address": PSID, "expiry_time": 15, "condition": "read",
                "sender": "1923256201474167"}


def at(seconds: float):
    return T0 + timedelta(seconds=seconds)


def fire(roster):
    return escalation_fire(roster=roster, message="Main server down", fired_by_name="test", now=T0)


def page_everyone(mode: str, escalation) -> None:
    """Send on every channel: Dispatch sends the workflow once; the Messages engine one channel per expiry."""
    for seconds in (0, 15, 30) if mode == "messages_mode" else (0,):
        run_due(now=at(seconds))


def bodies(emulator) -> list[dict]:
    return [r["body"] for r in emulator.requests() if r["status"] == 202]


def statuses(emulator, address: str, wanted: str) -> list[dict]:
    return emulator.wait_for(lambda: emulator.messages(to=address),
                             lambda found: found and all(m["status"] == wanted for m in found), timeout=10)


def wrote(address: str, channel_type: str, sender: str, seconds_ago: float) -> None:
    """The person wrote to us `seconds_ago` before T0: the app's record of it, as its inbound webhook makes."""
    apply_inbound(InboundReply(message_uuid="0a2088d2-e028-4aa0-aa4a-ae11a6f820" + f"{int(seconds_ago) % 100:02d}",
                               from_address=address, channel_type=channel_type, text="hi",
                               timestamp=at(-seconds_ago), to_address=sender), now=at(-seconds_ago))


@pytest.mark.parametrize("mode", MODES)
def test_it_pages_someone_who_never_wrote_with_a_template_and_a_tagged_message_that_are_delivered(mode, request):
    emulator = request.getfixturevalue(mode)
    escalation = fire(make_roster(RAVI))
    page_everyone(mode, escalation)
    sent = bodies(emulator)
    if mode == "messages_mode":
        whatsapp, messenger = sent[0], sent[1]
        assert whatsapp["message_type"] == "template"
        assert whatsapp["template"] == {"name": "oncall_alert", "parameters": ["Main server down", str(escalation.pk)]}
        assert whatsapp["whatsapp"] == {"policy": "deterministic", "locale": "en_GB"}
        assert messenger["messenger"] == {"category": "message_tag", "tag": "ACCOUNT_UPDATE"}
        assert all(message_problems(body) == [] for body in sent)
        forms = list(Message.objects.filter(page__escalation=escalation).order_by("channel_index")
                     .values_list("form", flat=True))
    else:
        [workflow] = sent
        whatsapp, messenger = (item["message"] for item in workflow["workflow"][:2])
        assert whatsapp["content"] == {"type": "template", "template": {
            "name": "whatsapp:hsm:it:oncall:oncall_alert",
            "parameters": [{"default": "Main server down"}, {"default": str(escalation.pk)}]}}
        assert whatsapp["whatsapp"] == {"policy": "deterministic", "locale": "en-GB"}
        assert messenger["messenger"] == {"category": "message_tag", "tag": "ACCOUNT_UPDATE"}
        assert dispatch_problems(workflow) == []
        forms = list(Page.objects.get(escalation=escalation).item_forms.values())
    assert forms[:2] == ["WhatsApp template `oncall_alert` (window closed)",
                         "Facebook Messenger tagged ACCOUNT_UPDATE (window closed)"]
    statuses(emulator, WHATSAPP, "delivered")
    statuses(emulator, PSID, "delivered")


@pytest.mark.parametrize("api", ["messages", "dispatch"])
def test_it_is_rejected_by_the_emulator_when_free_form_text_goes_to_someone_who_never_wrote(api, emulator,
                                                                                             webhook_sink):
    whatsapp, messenger = TO_WHATSAPP, TO_MESSENGER
    if api == "messages":
        get_client().send_message(channel=whatsapp, text="db down", client_ref="w")
        get_client().send_message(channel=messenger, text="db down", client_ref="m")
    else:
        get_client().dispatch_failover(person_name="Ravi", channels=[whatsapp, messenger], text="db down")
    for address in (WHATSAPP, PSID):
        [message] = statuses(emulator, address, "rejected")
        assert message["error"][0] == 1340
    rejected = emulator.wait_for(lambda: [b for b in webhook_sink.bodies("/webhooks/status")
                                          if b.get("status") == "rejected"], lambda found: len(found) == 2)
    for body in rejected:
        error = body["error"]
        if api == "messages":
            assert error["type"].endswith("#1340") and error["title"] == "Outside of the allowed window"
            assert "24 hours" in error["detail"] and error["instance"]
        else:
            assert error["code"] == 1340 and error["reason"].startswith("Outside of the allowed window - ")


@pytest.mark.parametrize("mode", MODES)
def test_it_sends_free_form_text_to_someone_who_wrote_an_hour_ago(mode, request):
    emulator = request.getfixturevalue(mode)
    roster = make_roster(RAVI)
    for address, channel_type, sender in ((WHATSAPP, "whatsapp", "447700900000"),
                                          (PSID, "messenger", "1923256201474167")):
        emulator.reply(sender=address, channel_type=channel_type, text="hi", ago=3600)
        wrote(address, channel_type, sender, 3600)
    escalation = fire(roster)
    page_everyone(mode, escalation)
    sent = bodies(emulator)
    if mode == "messages_mode":
        assert [(b["message_type"], "messenger" in b) for b in sent[:2]] == [("text", False), ("text", False)]
        assert sent[0]["text"] == "[Ravi]: Main server down"
    else:
        items = [item["message"] for item in sent[0]["workflow"][:2]]
        assert items == [{"content": {"type": "text", "text": "[Ravi]: Main server down"}}] * 2
    emulator.wait_for(lambda: emulator.messages(to=WHATSAPP, api="messages" if mode == "messages_mode" else
                                                "dispatch"), lambda found: found and found[0]["status"] == "delivered")


@pytest.mark.parametrize("mode", MODES)
def test_it_skips_whatsapp_without_a_template_when_the_window_is_closed(mode, request):
    emulator = request.getfixturevalue(mode)
    roster = make_roster(RAVI, business_initiated=False)
    [person] = fire_preview(roster=roster, message="Main server down", now=T0).people
    assert person["warnings"] == [
        "Ravi's WhatsApp: no template configured and the 24-hour window is closed: it will be skipped.",
        "Ravi's Facebook Messenger: no message tag configured and the 24-hour window is closed: "
        "it will be skipped.",
    ]
    escalation = fire(roster)
    run_due(now=at(0))
    sent = bodies(emulator)
    if mode == "messages_mode":
        # Nothing to wait for on a skipped channel: the next one goes in the same pass.
        assert [b["channel"] for b in sent] == ["sms"]
        skipped = Message.objects.get(page__escalation=escalation, channel_index=0)
        assert skipped.status == "failed"
        assert skipped.error == "skipped: no template configured and the 24-hour window is closed"
    else:
        assert [item["to"]["type"] for item in sent[0]["workflow"]] == ["sms"]
        page = Page.objects.get(escalation=escalation)
        assert page.item_forms == {"2": "text"}
        assert page.deadline == at(15)  # only the SMS item's expiry: the skipped ones take no time
    assert "Skipped" in " ".join(escalation.events.values_list("text", flat=True))


def test_a_reply_from_the_phones_page_opens_the_window_in_the_app_and_the_emulator(app_emulator):
    app_emulator.reply(sender=WHATSAPP, channel_type="whatsapp", text="hello")
    app_emulator.wait_for(lambda: app_emulator.webhooks(kind="inbound"),
                          lambda found: found and found[-1]["status"] == 204)
    run_due()  # the worker applies the stored inbound webhook
    contact = InboundContact.objects.get(channel_type="whatsapp", address=WHATSAPP)
    assert contact.sender_id == "447700900000"
    get_client().send_message(channel=TO_WHATSAPP, text="db down", client_ref="w")
    app_emulator.wait_for(lambda: app_emulator.messages(to=WHATSAPP, api="messages"),
                          lambda found: found and found[0]["status"] == "delivered")


def test_it_counts_the_window_from_when_the_person_wrote_and_closes_it_after_24_hours(messages_mode):
    roster = make_roster(RAVI)
    wrote(WHATSAPP, "whatsapp", "447700900000", 25 * 3600)
    wrote(PSID, "messenger", "1923256201474167", 23 * 3600)
    [person] = fire_preview(roster=roster, message="db down", now=T0).people
    assert [c["form"] for c in person["channels"]] == [
        "WhatsApp template `oncall_alert` (window closed)", "text (24-hour window open)", "text"]


def test_a_template_and_a_tagged_message_validate_against_both_spec_copies():
    whatsapp, messenger = TO_WHATSAPP, TO_MESSENGER
    template = Form(template=TemplateSend(name="oncall_alert", namespace="whatsapp:hsm:it:oncall", locale="en-GB",
                                          values=("db down", "7")))
    tagged = Form(messenger_tag="ACCOUNT_UPDATE")
    workflow = failover_workflow(person_name="Ravi", channels=[whatsapp, messenger], text="db down",
                                 forms=[template, tagged])
    assert dispatch_problems(workflow) == []
    assert message_problems(v1_message(channel=whatsapp, text="x", client_ref="r", form=template)) == []
    assert message_problems(v1_message(channel=messenger, text="x", client_ref="r", form=tagged)) == []
    # messages-v0.1.yml: a template name is "namespace:name", and the locale is required.
    broken = failover_workflow(person_name="Ravi", channels=[whatsapp, messenger], text="db down",
                               forms=[Form(template=TemplateSend(name="oncall_alert", locale="")), tagged])
    assert {p["name"] for p in dispatch_problems(broken)} == {"workflow[0].message.content.template.name"}
    del workflow["workflow"][1]["message"]["messenger"]["tag"]
    assert {p["name"] for p in dispatch_problems(workflow)} == {"workflow[1].message.messenger.tag"}


def test_a_test_message_follows_the_same_rules(emulator):
    make_senders(business_initiated=False)
    person = make_person(*RAVI)
    tests = channel_test_send(person=person, now=T0)
    assert [(t.channel_type, t.status) for t in tests] == [
        ("whatsapp", "failed"), ("messenger", "failed"), ("sms", "submitted")]
    assert tests[0].error == "Not sent: no template configured and the 24-hour window is closed."
    Sender.objects.filter(channel_type="whatsapp").update(template_name="oncall_alert")
    wrote(PSID, "messenger", "1923256201474167", 3600)
    tests = channel_test_send(person=person, now=T0)
    assert [(t.status, t.form) for t in tests[:2]] == [
        ("submitted", "WhatsApp template `oncall_alert` (window closed)"), ("submitted", "text (24-hour window open)")]
    template = [r["body"] for r in emulator.requests() if r["body"].get("channel") == "whatsapp"]
    assert template[-1]["template"]["parameters"][0].startswith("[Ravi]: this is a test message on WhatsApp")
    statuses(emulator, WHATSAPP, "delivered")


def test_the_emulator_delivers_free_form_text_to_anyone_when_told_not_to_enforce_windows(emulator):
    with pytest.raises(ValueError, match="enforce_windows must be true or false"):
        emulator.configure(enforce_windows="no")
    emulator.configure(enforce_windows=False)
    get_client().send_message(channel=TO_WHATSAPP, text="db down", client_ref="w")
    statuses(emulator, WHATSAPP, "delivered")


def test_a_window_older_than_24_emulated_hours_is_closed_in_the_emulator(emulator):
    emulator.reply(sender=WHATSAPP, channel_type="whatsapp", text="hi", ago=25 * 3600)
    get_client().send_message(channel=TO_WHATSAPP, text="db down", client_ref="w")
    emulator.wait_for(lambda: emulator.messages(to=WHATSAPP, api="messages"),
                      lambda found: found and found[0]["status"] == "rejected")
    with pytest.raises(ValueError, match="ago is a number"):
        emulator.reply(sender=WHATSAPP, channel_type="whatsapp", text="hi", ago=-1)
