"""The emulator's webhooks against the bodies Vonage really sends (tests/fixtures/vonage/, taken from
emulator/spec/VONAGE_FACTS.md): same keys, same nesting, same order, and the app reads them alike.

The app-side parsing of the captured bodies themselves is in test_real_payloads_parse.py.
"""

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from escalation.engine.provider import get_client
from escalation.vonage.payloads import FinalReport, InboundReply, StatusUpdate
from escalation.vonage.signature import verify_signature
from escalation.vonage.webhooks import parse_webhook
from escalation.webhooks.body import load_body
from tests.conftest import TEST_SIGNATURE_SECRET

FIXTURES = Path(__file__).parent / "fixtures" / "vonage"
V01_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def real(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def shape(value: object) -> object:
    """Keys in order and value types, recursively: what two bodies of the same kind must share."""
    if isinstance(value, dict):
        return [(key, shape(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


def sms(address: str, expiry_time: int = 15) -> dict:
    return {"type": "sms", "address": address, "expiry_time": expiry_time, "condition": "delivered",
            "sender": "447700900000"}


@pytest.fixture
def signed_sink(emulator, webhook_sink):
    emulator.configure(signature_secret=TEST_SIGNATURE_SECRET)
    return webhook_sink


def received(emulator, sink, count: int) -> list[dict]:
    return emulator.wait_for(lambda: [r for r in sink.received if r["status"] == 200], lambda r: len(r) >= count)


def test_a_dispatch_plays_out_like_the_captured_one(emulator, signed_sink):
    # The capture: two SMS items, the first stuck at `submitted` past its expiry, the second delivered.
    emulator.scenario("447700900001", "never_deliver")
    get_client().dispatch_failover(person_name="Ann", channels=[sms("447700900001"), sms("447700900002")],
                                   text="db down")

    requests = received(emulator, signed_sink, 4)  # submitted, submitted, delivered, final report

    bodies = [r["body"] for r in requests]
    [delivered] = [b for b in bodies if b.get("status") == "delivered"]
    [report] = [b for b in bodies if "template" in b]
    assert shape(delivered) == shape(real("dispatch_status_delivered.json"))
    assert shape(report) == shape(real("dispatch_final_report_completed.json"))
    assert [link["status"] for link in report["_links"]["messages"]] == ["submitted", "delivered"]
    assert V01_TIMESTAMP.match(delivered["timestamp"]) and V01_TIMESTAMP.match(report["timestamp"])
    for request in requests:
        parsed = app_reads(request)
        assert isinstance(parsed, StatusUpdate | FinalReport)
        assert parsed.dispatch_uuid == report["dispatch_uuid"]


def test_a_messenger_reply_looks_like_the_captured_one(emulator, signed_sink):
    emulator.scenario("23037543461244470", "never_deliver")
    messenger = {"type": "messenger", "address": "23037543461244470", "expiry_time": 600, "condition": "read",
                 "sender": "1923256201474167"}
    get_client().dispatch_failover(person_name="Ann", channels=[messenger, sms("447700900002")], text="db down")
    emulator.wait_for(lambda: emulator.messages(channel="messenger"), lambda m: len(m) == 1)

    emulator.reply(sender="23037543461244470", channel_type="messenger", text="Hello")

    [request] = emulator.wait_for(lambda: [r for r in signed_sink.received if r["path"] == "/webhooks/inbound"],
                                  lambda r: len(r) == 1)
    captured = real("inbound_messenger_v01.json")
    assert shape(request["body"]) == shape(captured)
    assert {k: v for k, v in request["body"].items() if k not in ("message_uuid", "timestamp")} == {
        k: v for k, v in captured.items() if k not in ("message_uuid", "timestamp")}
    reply = app_reads(request)
    assert isinstance(reply, InboundReply)
    assert (reply.from_address, reply.channel_type, reply.text) == ("23037543461244470", "messenger", "Hello")


def test_v1_bodies_look_like_the_documented_ones(emulator, signed_sink):
    emulator.scenario("447700900001", "deliver", after=0.2)
    get_client().send_message(channel=sms("447700900001"), text="db down", client_ref="5b1f6f3c")
    emulator.reply(sender="447700900001", channel_type="sms", text="ack")

    requests = received(emulator, signed_sink, 3)

    [delivered] = [r for r in requests if r["body"].get("status") == "delivered"]
    [inbound] = [r for r in requests if r["path"] == "/webhooks/inbound"]
    # Our timestamps keep Vonage's milliseconds; the documented v1 examples show none, so compare the rest.
    assert shape(delivered["body"]) == shape(real("v1_status_delivered.json"))
    assert shape(inbound["body"]) == shape(real("v1_inbound_sms.json"))
    status = app_reads(delivered)
    assert (status.client_ref, status.channel_type, status.to_address) == ("5b1f6f3c", "sms", "447700900001")
    assert app_reads(inbound).text == "ack"


def app_reads(request: dict) -> object:
    """What the app makes of a webhook the emulator sent: its signature check, then its parser."""
    verify_signature(raw_body=request["raw"], authorization=request["headers"]["Authorization"],
                     secret=TEST_SIGNATURE_SECRET, max_age=60, now=datetime.now(UTC))
    kind = "inbound" if request["path"] == "/webhooks/inbound" else "status"
    return parse_webhook(load_body(request["raw"]), kind_hint=kind)
