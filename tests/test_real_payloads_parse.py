"""The bodies Vonage really sends (tests/fixtures/vonage/, from emulator/spec/VONAGE_FACTS.md) parse to
what they mean."""

from datetime import UTC, datetime
from pathlib import Path

from escalation.vonage.payloads import FinalReport, FinalReportMessage, InboundReply, StatusUpdate
from escalation.vonage.webhooks import parse_webhook
from escalation.webhooks.body import load_body

FIXTURES = Path(__file__).parent / "fixtures" / "vonage"


def parse_fixture(name: str, kind_hint: str):
    return parse_webhook(load_body((FIXTURES / name).read_bytes()), kind_hint=kind_hint)


def test_it_parses_the_captured_dispatch_status():
    assert parse_fixture("dispatch_status_delivered.json", "status") == StatusUpdate(
        message_uuid="e083fc2e-dffc-42c9-a7b3-446ee5fe67ba",
        status="delivered",
        timestamp=datetime(2018, 10, 19, 11, 33, 27, 385000, tzinfo=UTC),
        to_address="447700900002",
        channel_type="sms",
        dispatch_uuid="de8d9eaf-8d10-407f-840b-53473f26c173",
    )


def test_it_parses_the_captured_final_report():
    assert parse_fixture("dispatch_final_report_completed.json", "status") == FinalReport(
        dispatch_uuid="de8d9eaf-8d10-407f-840b-53473f26c173",
        status="completed",
        timestamp=datetime(2018, 10, 19, 11, 33, 27, 450000, tzinfo=UTC),
        messages=(
            FinalReportMessage(message_uuid="afb5f546-97e7-44ba-97cd-bb7706a93f4e", channel_type="sms",
                               status="submitted"),
            FinalReportMessage(message_uuid="e083fc2e-dffc-42c9-a7b3-446ee5fe67ba", channel_type="sms",
                               status="delivered"),
        ),
    )


def test_it_parses_the_captured_messenger_reply():
    assert parse_fixture("inbound_messenger_v01.json", "inbound") == InboundReply(
        message_uuid="0a2088d2-e028-4aa0-aa4a-ae11a6f82fb0",
        from_address="23037543461244470",
        channel_type="messenger",
        text="Hello",
        timestamp=datetime(2019, 8, 6, 21, 56, 16, 887000, tzinfo=UTC),
        to_address="1923256201474167",  # our page: the 24-hour window is per page
    )


def test_it_parses_the_documented_v1_status():
    assert parse_fixture("v1_status_delivered.json", "status") == StatusUpdate(
        message_uuid="d8f86df1-dec6-442f-870a-2241be27d721",
        status="delivered",
        timestamp=datetime(2025, 1, 1, 12, 0, tzinfo=UTC),
        to_address="447700900001",
        channel_type="sms",
        client_ref="5b1f6f3c0d7e4a0f9a8e2f7c1d3b4a55",
    )


def test_it_parses_the_documented_v1_reply():
    assert parse_fixture("v1_inbound_sms.json", "inbound") == InboundReply(
        message_uuid="aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab",
        from_address="447700900001",
        channel_type="sms",
        text="ack",
        timestamp=datetime(2025, 1, 1, 12, 5, tzinfo=UTC),
        to_address="447700900000",
    )
