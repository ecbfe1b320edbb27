"""Logs an operator can search: LOG_FORMAT=json is one object per line with the ids a line is about; the
text default stays readable. No secret, token, key or whole phone number reaches any line, checked by logging
through the real paths (a send and a refused send, webhooks, integration alerts) and scanning the output."""

import io
import json
import logging
import logging.config
import re
from collections.abc import Iterator

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone

from escalation.engine.worker import run_due
from escalation.models import Escalation, Integration, IntegrationFormat, Message
from escalation.services.escalations import escalation_fire
from oncall.logs import logging_config, redact
from tests.conftest import TEST_SIGNATURE_SECRET
from tests.personas import ANNA, MICHAEL, SENDERS, TONY, make_roster
from tests.signing import vonage_signature

pytestmark = pytest.mark.django_db

SECRET_KEY = "a-secret-key-for-the-log-test-0123456789-abcdefghijklmnop"
METRICS_TOKEN = "metrics-token-for-the-log-test-0123"
PHONE_NUMBERS = [address for _, channels in (TONY, MICHAEL, ANNA) for _, address, _, _ in channels]
PHONE_NUMBERS += [sender for sender in SENDERS.values() if sender.isdigit()]


@pytest.fixture
def log_output(settings, request) -> Iterator[io.StringIO]:
    """The app's own logging configuration (format as parametrised, DEBUG) written to a buffer."""
    settings.SECRET_KEY, settings.METRICS_TOKEN = SECRET_KEY, METRICS_TOKEN
    buffer = io.StringIO()
    logging.config.dictConfig(logging_config(getattr(request, "param", "json"), "DEBUG"))
    handler = logging.getLogger().handlers[0]
    handler.setStream(buffer)
    try:
        yield buffer
    finally:
        logging.config.dictConfig(django_settings.LOGGING)


def lines(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def assert_nothing_secret(text: str, *secrets: str) -> None:
    for number in PHONE_NUMBERS:
        assert number not in text, f"a whole phone number/id {number} in the logs"
    for secret in (SECRET_KEY, METRICS_TOKEN, TEST_SIGNATURE_SECRET, *secrets):
        assert secret not in text, f"{secret!r} in the logs"
    assert "eyJ" not in text, "a JWT in the logs"
    assert "PRIVATE KEY" not in text


def test_it_logs_sends_webhooks_and_alerts_as_json_without_secrets(log_output, settings, messages_mode):
    emulator = messages_mode
    settings.VONAGE_SIGNATURE_SECRET = TEST_SIGNATURE_SECRET
    roster = make_roster(TONY, MICHAEL, ANNA)
    escalation = escalation_fire(roster=roster, message="Disk full on db1")
    run_due()  # Tony's Messenger message: accepted
    emulator.fault("422")
    # Tony does not read it in time: the worker moves on to his SMS, which Vonage refuses, then to Michael.
    Message.objects.filter(page__escalation=escalation).update(deadline=timezone.now())
    Escalation.objects.filter(pk=escalation.pk).update(next_action_at=timezone.now())
    run_due()

    client = Client()
    body = json.dumps({"message_uuid": PHONE_NUMBERS[1], "to": PHONE_NUMBERS[1], "status": "delivered",
                       "timestamp": "2026-01-01T00:00:00Z", "channel": "sms"}).encode()
    signed = vonage_signature(body, now=timezone.now())
    assert client.post("/webhooks/status", body, content_type="application/json",
                       HTTP_AUTHORIZATION=signed).status_code == 400
    forged = vonage_signature(body, now=timezone.now(), secret="not-the-secret-0123456789abcdef-0123")
    assert client.post("/webhooks/status", body, content_type="application/json",
                       HTTP_AUTHORIZATION=forged).status_code == 401

    integration = Integration.objects.create(name="grafana", roster=roster, format=IntegrationFormat.GENERIC)
    alert = json.dumps({"summary": f"call {PHONE_NUMBERS[0]}", "dedup_key": "db1"})
    assert client.post(f"/integrations/{integration.token}/", alert,
                       content_type="application/json").status_code == 200
    logging.getLogger("django.request").setLevel(logging.WARNING)  # an operator who wants every 4xx
    Integration.objects.filter(pk=integration.pk).update(is_enabled=False)
    assert client.post(f"/integrations/{integration.token}/", alert,
                       content_type="application/json").status_code == 403
    try:
        raise ValueError(f"DATABASE_URL=postgres://oncall:hunter2hunter2@db/oncall token={integration.token} "
                         f"Authorization: {signed}")
    except ValueError:
        logging.getLogger("myapp").exception("careless")

    text = log_output.getvalue()
    assert_nothing_secret(text, integration.token, "hunter2hunter2", signed.split()[1])
    found = lines(log_output)
    assert all({"time", "level", "logger", "message"} <= set(line) for line in found)
    sends = [line for line in found if line["logger"] == "escalation.sends"]
    assert [(s["level"], s["escalation_id"]) for s in sends] == [
        ("INFO", escalation.pk), ("WARNING", escalation.pk), ("INFO", escalation.pk)]
    assert all("message_id" in s and "page_id" in s for s in sends)
    assert "messenger message to *************4470" in sends[0]["message"]
    assert "sms message to ********0001: Vonage 422" in sends[1]["message"]
    assert "viber_service_msg message to ********0002" in sends[2]["message"]
    refused = [line["message"] for line in found if line["logger"] == "escalation.webhooks.views"]
    assert len(refused) == 2 and "********0001" in refused[0]
    alert_line = next(line for line in found if line["logger"] == "escalation.integrations.views")
    assert alert_line["integration_id"] == integration.pk
    assert alert_line["escalation_id"] > escalation.pk
    forbidden = next(line for line in found if line["logger"] == "django.request")
    assert "/integrations/[removed]/" in forbidden["message"]
    careless = found[-1]
    assert careless["message"] == "careless" and "postgres://oncall:[removed]@db" in careless["exception"]
    assert careless["exception"].startswith("Traceback")  # inside its one JSON line


@pytest.mark.parametrize("log_output", ["text"], indirect=True)
def test_it_stays_readable_text_by_default_with_the_ids_after_the_message(log_output):
    assert django_settings.LOG_FORMAT == "text"
    logging.getLogger("escalation.sends").info("escalation 7: sent to +447700900001",
                                               extra={"escalation_id": 7, "message_id": 12})
    line = log_output.getvalue().rstrip("\n")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO escalation.sends escalation 7: sent to "
                        r"\+\*{8}0001 \[escalation=7 message=12\]", line), line


@pytest.mark.parametrize(("text", "expected"), [
    ("to 447700900001 on sms", "to ********0001 on sms"),
    ("to +44 7700 900001.", "to +** **** **0001."),
    ('"to": "23037543461244470"', '"to": "*************4470"'),
    ("uuid 12345678-1234-4234-8234-123456789012", "uuid 12345678-1234-4234-8234-123456789012"),
    ("escalation 1234 in 250 ms at 2026-01-01T00:00:00Z", "escalation 1234 in 250 ms at 2026-01-01T00:00:00Z"),
    ("Authorization: Bearer abc.def-ghi", "Authorization: [removed] [removed]"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJpYXQiOjF9.c2lnbmF0dXJl here", "jwt [jwt removed] here"),
    ("POST /integrations/AbC_123-xyz/ 403", "POST /integrations/[removed]/ 403"),
    ("api_secret=s3cr3t&x=1", "api_secret=[removed]&x=1"),
    ('{"signature_secret": "abc"}', '{"signature_secret": "[removed]"}'),
    ("key -----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY----- end", "key [private key removed] end"),
])
def test_it_redacts(text, expected):
    assert redact(text) == expected
