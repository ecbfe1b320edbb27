"""Parsing Vonage webhook bodies: each wire shape, and the clear refusal of what is not one."""

import json
from datetime import UTC, datetime

import pytest

from escalation.vonage.payloads import FinalReport, FinalReportMessage, InboundReply, StatusUpdate
from escalation.vonage.webhooks import PayloadError, parse_webhook
from escalation.webhooks.body import load_body

MESSAGE_UUID = "6d1bd2c4-6c1a-4b8e-9a57-2b0b3f5d7e11"
DISPATCH_UUID = "3f0c9a52-8f3a-4a47-b1a1-5d3e0c6b2a90"


def v01_status(**changes) -> dict:
    body = {
        "message_uuid": MESSAGE_UUID,
        "to": {"type": "whatsapp", "number": "447700900002"},
        "from": {"type": "whatsapp", "number": "447700900000"},
        "timestamp": "2026-03-01T10:00:05.120Z",
        "status": "read",
        "_links": {"dispatch": {"href": f"v0.1/dispatch/{DISPATCH_UUID}", "dispatch_uuid": DISPATCH_UUID}},
    }
    body.update(changes)
    return body


def v1_status(**changes) -> dict:
    body = {
        "message_uuid": MESSAGE_UUID,
        "to": "447700900002",
        "from": "Acme",
        "timestamp": "2026-03-01T10:00:05Z",
        "status": "delivered",
        "channel": "sms",
        "client_ref": "c0ffee",
    }
    body.update(changes)
    return body


def parse(body: dict, kind_hint: str = "status"):
    return parse_webhook(load_body(json.dumps(body).encode()), kind_hint=kind_hint)


def test_it_parses_a_v01_dispatch_status():
    assert parse(v01_status()) == StatusUpdate(
        message_uuid=MESSAGE_UUID,
        status="read",
        timestamp=datetime(2026, 3, 1, 10, 0, 5, 120000, tzinfo=UTC),
        to_address="447700900002",
        channel_type="whatsapp",
        dispatch_uuid=DISPATCH_UUID,
    )


def test_it_takes_the_dispatch_uuid_from_the_specs_workflow_link():
    body = v01_status(_links={"workflow": {"dispatch_uuid": DISPATCH_UUID}})
    assert parse(body).dispatch_uuid == DISPATCH_UUID


def test_it_takes_the_dispatch_uuid_from_the_href_when_that_is_all_there_is():
    body = v01_status(_links={"dispatch": {"href": f"v0.1/dispatch/{DISPATCH_UUID}"}})
    assert parse(body).dispatch_uuid == DISPATCH_UUID


def test_it_reads_the_messenger_id_and_the_viber_number():
    messenger = v01_status(to={"type": "messenger", "id": "1234567890"})
    assert (parse(messenger).to_address, parse(messenger).channel_type) == ("1234567890", "messenger")
    viber = v01_status(to={"type": "viber_service_msg", "number": "447700900003"})
    assert (parse(viber).to_address, parse(viber).channel_type) == ("447700900003", "viber_service_msg")


def test_it_summarises_a_v01_error():
    body = v01_status(status="rejected", error={"code": 1300, "reason": "Not part of the provider network"})
    update = parse(body)
    assert (update.status, update.error) == ("rejected", "1300 Not part of the provider network")


def test_it_parses_a_v1_status():
    assert parse(v1_status()) == StatusUpdate(
        message_uuid=MESSAGE_UUID,
        status="delivered",
        timestamp=datetime(2026, 3, 1, 10, 0, 5, tzinfo=UTC),
        to_address="447700900002",
        channel_type="sms",
        client_ref="c0ffee",
    )


def test_it_maps_the_v1_viber_name_to_ours():
    assert parse(v1_status(channel="viber_service")).channel_type == "viber_service_msg"


def test_it_summarises_a_v1_error():
    error = {
        "type": "https://developer.vonage.com/api-errors/messages#1330",
        "title": "Not delivered",
        "detail": "The recipient is unreachable",
        "instance": "bf0ca0bf927b3b52e3cb03217e1a1ddf",
    }
    update = parse(v1_status(status="undeliverable", error=error))
    assert update.error == (
        "Not delivered: The recipient is unreachable (https://developer.vonage.com/api-errors/messages#1330)"
    )


def test_it_normalises_uuids_and_times():
    update = parse(v1_status(message_uuid=MESSAGE_UUID.upper(), timestamp="2026-03-01T12:00:05+02:00"))
    assert update.message_uuid == MESSAGE_UUID
    assert update.timestamp == datetime(2026, 3, 1, 10, 0, 5, tzinfo=UTC)


def test_it_parses_a_final_report():
    body = {
        "template": "failover",
        "status": "error",
        "timestamp": "2026-03-01T10:10:00.000Z",
        "dispatch_uuid": DISPATCH_UUID,
        "_links": {"messages": [
            {"message_uuid": MESSAGE_UUID, "href": f"v0.1/messages/{MESSAGE_UUID}", "channel": "viber_service_msg",
             "status": "rejected"},
        ]},
    }
    assert parse(body) == FinalReport(
        dispatch_uuid=DISPATCH_UUID,
        status="error",
        timestamp=datetime(2026, 3, 1, 10, 10, tzinfo=UTC),
        messages=(FinalReportMessage(message_uuid=MESSAGE_UUID, channel_type="viber_service_msg", status="rejected"),),
    )


def test_it_accepts_the_dispatch_specs_misspelt_viber_channel():
    body = {
        "template": "failover", "status": "completed", "timestamp": "2026-03-01T10:10:00Z",
        "dispatch_uuid": DISPATCH_UUID,
        "_links": {"messages": [{"message_uuid": MESSAGE_UUID, "channel": "viber_sevice_msg", "status": "read"}]},
    }
    assert parse(body).messages[0].channel_type == "viber_service_msg"


def test_it_parses_a_v01_sms_reply():
    body = {
        "message_uuid": MESSAGE_UUID,
        "to": {"type": "sms", "number": "447700900000"},
        "from": {"type": "sms", "number": "447700900001"},
        "timestamp": "2026-03-01T10:01:00Z",
        "message": {"content": {"type": "text", "text": "on it"}, "sms": {"num_messages": "1"}},
        "usage": {"currency": "EUR", "price": "0.0"},
    }
    assert parse(body, "inbound") == InboundReply(
        message_uuid=MESSAGE_UUID,
        from_address="447700900001",
        channel_type="sms",
        text="on it",
        timestamp=datetime(2026, 3, 1, 10, 1, tzinfo=UTC),
        to_address="447700900000",
    )


def test_it_takes_a_viber_replys_channel_from_to_when_from_is_a_bare_number():
    body = {
        "message_uuid": MESSAGE_UUID,
        "to": {"type": "viber_service_msg", "id": "acme-service"},
        "from": {"number": "447700900003"},
        "timestamp": "2026-03-01T10:01:00Z",
        "message": {"content": {"type": "text", "text": "ok"}},
    }
    reply = parse(body, "inbound")
    assert (reply.from_address, reply.channel_type) == ("447700900003", "viber_service_msg")


def test_it_parses_a_v1_reply_and_a_picture_instead_of_words():
    body = {"channel": "whatsapp", "message_uuid": MESSAGE_UUID, "to": "447700900000", "from": "447700900002",
            "timestamp": "2026-03-01T10:01:00Z", "message_type": "text", "text": "ack"}
    assert parse(body, "inbound").text == "ack"
    body.update(message_type="image", image={"url": "https://example.com/x.jpg"})
    del body["text"]
    assert parse(body, "inbound").text == "[image]"
    body.update(channel="viber_service", message_type="text", text="ok")
    assert parse(body, "inbound").channel_type == "viber_service_msg"


def test_it_decides_by_shape_not_by_the_endpoint():
    assert isinstance(parse(v1_status(), "inbound"), StatusUpdate)


def test_it_makes_nul_and_lone_surrogates_storable():
    raw = b'{"message_uuid": "%s", "channel": "sms", "to": "1", "from": "447700900001", ' \
          b'"timestamp": "2026-03-01T10:01:00Z", "text": "a\\u0000b\\ud800c", "x\\u0000": 1}' % MESSAGE_UUID.encode()
    body = load_body(raw)
    assert body["text"] == "a\ufffdb\ufffdc"
    assert "x\ufffd" in body
    assert parse_webhook(body, kind_hint="inbound").text == "a\ufffdb\ufffdc"


@pytest.mark.parametrize("raw, message", [
    (b"", "empty"),
    (b"   ", "empty"),
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe\x00garbage", "not valid JSON"),
    (b"[1, 2]", "not an object"),
    (b'"status"', "not an object"),
    (b'{"a": NaN}', "not valid JSON"),
    (b'{"a": 1e999}', "not valid JSON"),
    (b"[" * 5000 + b"]" * 5000, "nested"),
    (b'{"a":' * 5000 + b"1" + b"}" * 5000, "nested"),
    (b'{"a": ' + b"1" * 5000 + b"}", "not valid JSON"),
])
def test_it_refuses_what_is_not_a_json_object(raw, message):
    with pytest.raises(PayloadError, match=message):
        load_body(raw)


@pytest.mark.parametrize("body, message", [
    ({}, "no message_uuid"),
    ({"hello": "world"}, "no message_uuid"),
    ({"message_uuid": MESSAGE_UUID}, "neither a status nor a message"),
    (v1_status(message_uuid="not-a-uuid"), "message_uuid must be a UUID"),
    (v1_status(message_uuid=12), "message_uuid must be a UUID"),
    (v1_status(status="exploded"), "Unknown message status"),
    (v1_status(status=["read"]), "Unknown message status"),
    (v1_status(channel="pigeon"), "Unknown channel"),
    (v1_status(channel=None), "Unknown channel"),
    (v1_status(to=""), "number or id of 1 to 50"),
    (v1_status(to="1" * 51), "number or id of 1 to 50"),
    (v1_status(to=447700900002), "address string"),
    (v01_status(to={"type": "sms"}), "number or id"),
    (v01_status(to={"type": 3, "number": "1"}), "to.type must be a string"),
    (v1_status(timestamp="yesterday"), "timestamp"),
    (v1_status(timestamp=1700000000), "timestamp"),
    (v1_status(timestamp="9999-12-31T23:59:59-05:00"), "timestamp"),
    (v1_status(client_ref=7), "client_ref"),
    (v01_status(_links=[]), "_links must be an object"),
    (v01_status(_links={"dispatch": "x"}), "_links.dispatch must be an object"),
    (v01_status(_links={"dispatch": {"dispatch_uuid": "nope"}}), "dispatch_uuid must be a UUID"),
    ({"dispatch_uuid": DISPATCH_UUID, "template": "failover", "status": "done"}, "Unknown final report status"),
    ({"dispatch_uuid": "x", "template": "failover", "status": "completed", "timestamp": "2026-03-01T10:00:00Z"},
     "dispatch_uuid must be a UUID"),
    ({"dispatch_uuid": DISPATCH_UUID, "template": "failover", "status": "completed",
      "timestamp": "2026-03-01T10:00:00Z", "_links": {"messages": {}}}, "must be a list"),
    ({"dispatch_uuid": DISPATCH_UUID, "template": "failover", "status": "completed",
      "timestamp": "2026-03-01T10:00:00Z", "_links": {"messages": [3]}}, "item 1 is not an object"),
    ({"dispatch_uuid": DISPATCH_UUID, "template": "failover", "status": "completed",
      "timestamp": "2026-03-01T10:00:00Z", "_links": {"messages": [{"message_uuid": MESSAGE_UUID}]}},
     "item 1 has an unknown status"),
    ({"message_uuid": MESSAGE_UUID, "from": "1", "channel": "sms", "timestamp": "2026-03-01T10:00:00Z",
      "message": {"content": "hi"}}, "message.content must be an object"),
    ({"message_uuid": MESSAGE_UUID, "from": "1", "channel": "sms", "timestamp": "2026-03-01T10:00:00Z",
      "message_type": "text"}, "has no text"),
    ({"message_uuid": MESSAGE_UUID, "channel": "sms", "timestamp": "2026-03-01T10:00:00Z", "text": "hi"},
     "from must be"),
])
def test_it_refuses_what_is_not_a_vonage_shape(body, message):
    with pytest.raises(PayloadError, match=message):
        parse(body)
