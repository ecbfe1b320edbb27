"""PagerDuty Events API v2 (`POST /v2/enqueue`): the parser, table-driven, and the endpoint through Django's
client (SQLite by default; PostgreSQL with DATABASE_URL). A real sender, Alertmanager, is in
tests/test_pagerduty_alertmanager.py."""

import json

import pytest
from django.test import Client

from escalation.models import (
    Alert,
    AlertReceipt,
    AlertState,
    Escalation,
    EscalationState,
    Integration,
    IntegrationFormat,
    ReceiptOutcome,
    Roster,
)
from escalation.pagerduty.parse import InvalidEvent, parse
from escalation.ratelimit import buckets
from tests.personas import MICHAEL, TONY, make_roster

KEY = "k" * 43


def trigger(**changes: object) -> dict:
    event = {"routing_key": KEY, "event_action": "trigger", "dedup_key": "disk-full-db1",
             "payload": {"summary": "Disk 95% full on db1", "source": "db1", "severity": "critical"}}
    payload = changes.pop("payload", {})
    event.update(changes)
    event["payload"] = {**event["payload"], **payload}
    return event


# --- The parser ---

VALID = [
    ("a minimal trigger", trigger(), ("trigger", "disk-full-db1", "[critical] db1", "Disk 95% full on db1")),
    ("every optional field", trigger(
        payload={"timestamp": "2026-12-02T03:40:00.000+00:00", "component": "postgres",
                 "group": "prod", "class": "disk", "custom_details": {"free": "5%", "nested": [1, {"a": None}]}},
        links=[{"href": "https://grafana.example.com/d/1", "text": "dashboard"}],
        images=[{"src": "https://grafana.example.com/i.png", "href": "https://x", "alt": "graph"}],
        client="Alertmanager", client_url="https://am.example.com"),
     ("trigger", "disk-full-db1", "[critical] db1", "Disk 95% full on db1")),
    ("a Z timestamp", trigger(payload={"timestamp": "2026-12-02T03:40:00Z"}),
     ("trigger", "disk-full-db1", "[critical] db1", "Disk 95% full on db1")),
    ("a multi-line summary becomes one line", trigger(payload={"summary": "Disk\n  full", "severity": "info"}),
     ("trigger", "disk-full-db1", "[info] db1", "Disk full")),
    ("acknowledge", {"routing_key": KEY, "event_action": "acknowledge", "dedup_key": "x"},
     ("acknowledge", "x", "", "")),
    ("resolve ignores a payload", {"routing_key": KEY, "event_action": "resolve", "dedup_key": "x",
                                   "payload": "anything"}, ("resolve", "x", "", "")),
    ("a 255-character key", trigger(dedup_key="d" * 255), ("trigger", "d" * 255, "[critical] db1",
                                                            "Disk 95% full on db1")),
]


@pytest.mark.parametrize("body, expected", [case[1:] for case in VALID], ids=[case[0] for case in VALID])
def test_it_reads_valid_events(body, expected):
    event = parse(body)
    assert (event.action, event.dedup_key, event.title, event.summary) == expected
    assert event.routing_key == KEY and not event.generated_key


def test_it_makes_a_dedup_key_for_a_trigger_without_one():
    first, second = parse(trigger(dedup_key=None)), parse(trigger(dedup_key=None))
    assert first.generated_key and len(first.dedup_key) == 32 and first.dedup_key != second.dedup_key


INVALID = [
    ("not an object", [], "the event must be a JSON object"),
    ("no routing key", {"event_action": "resolve", "dedup_key": "x"}, "routing_key is required"),
    ("a numeric routing key", trigger(routing_key=5), "routing_key must be a string"),
    ("an empty routing key", trigger(routing_key=" "), "routing_key must not be empty"),
    ("an unknown action", trigger(event_action="escalate"), "event_action must be one of"),
    ("no action", {"routing_key": KEY}, "event_action must be one of"),
    ("a long dedup key", trigger(dedup_key="d" * 256), "dedup_key is longer than 255"),
    ("a numeric dedup key", trigger(dedup_key=7), "dedup_key must be a string"),
    ("acknowledge without a key", {"routing_key": KEY, "event_action": "acknowledge"},
     "dedup_key is required to acknowledge"),
    ("resolve without a key", {"routing_key": KEY, "event_action": "resolve"}, "dedup_key is required to resolve"),
    ("a trigger without a payload", {"routing_key": KEY, "event_action": "trigger"}, "payload must be an object"),
    ("no summary", trigger(payload={"summary": None}), "payload.summary is required"),
    ("an empty summary", trigger(payload={"summary": ""}), "payload.summary must not be empty"),
    ("a long summary", trigger(payload={"summary": "s" * 1025}), "payload.summary is longer than 1024"),
    ("no source", trigger(payload={"source": None}), "payload.source is required"),
    ("an unknown severity", trigger(payload={"severity": "fatal"}), "payload.severity must be one of"),
    ("a bad timestamp", trigger(payload={"timestamp": "yesterday"}), "payload.timestamp must be an ISO 8601"),
    ("a numeric component", trigger(payload={"component": 3}), "payload.component must be a string"),
    ("a list as client", trigger(client=["x"]), "client must be a string"),
    ("links not a list", trigger(links={"href": "x"}), "links must be an array"),
    ("a link without href", trigger(links=[{"text": "x"}]), "links[0].href is required"),
    ("an image that is a string", trigger(images=["x"]), "images[0] must be an object"),
    ("an image without src", trigger(images=[{"href": "x"}]), "images[0].src is required"),
    ("deeply nested details", trigger(payload={"custom_details": json.loads("[" * 100 + "]" * 100)}),
     "nested more than"),
]


@pytest.mark.parametrize("body, problem", [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
def test_it_names_what_is_wrong_with_an_invalid_event(body, problem):
    with pytest.raises(InvalidEvent) as caught:
        parse(body)
    assert any(problem in error for error in caught.value.errors), caught.value.errors


def test_it_lists_every_problem_at_once():
    with pytest.raises(InvalidEvent) as caught:
        parse({"event_action": "trigger", "payload": {"severity": "bad"}})
    assert len(caught.value.errors) == 4  # routing_key, summary, source, severity


# --- The endpoint ---

@pytest.fixture
def integration(db, settings) -> Integration:
    settings.SITE_URL = "https://oncall.example.com"
    return Integration.objects.create(name="alertmanager-pd", roster=make_roster(TONY, MICHAEL),
                                      format=IntegrationFormat.ALERTMANAGER, token=KEY)


def enqueue(body: object, path: str = "/v2/enqueue"):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return Client().post(path, data=data, content_type="application/json")


def test_it_fires_joins_acknowledges_and_resolves_by_dedup_key(integration):
    first = enqueue(trigger())
    assert first.status_code == 202
    assert first.json() == {"status": "success", "message": "Event processed", "dedup_key": "disk-full-db1"}
    escalation = Escalation.objects.get()
    assert escalation.state == EscalationState.ACTIVE and "[critical] db1: Disk 95% full on db1" in escalation.message

    assert enqueue(trigger(payload={"summary": "Disk 97% full on db1"})).status_code == 202
    assert Escalation.objects.count() == 1 and Alert.objects.get().repeats == 1

    ack = enqueue({"routing_key": KEY, "event_action": "acknowledge", "dedup_key": "disk-full-db1",
                   "client": "Grafana"})
    assert ack.status_code == 202
    alert = Alert.objects.get()
    assert alert.state == AlertState.ACKNOWLEDGED and "Grafana" in alert.acknowledged_by_name
    assert Escalation.objects.get().state == EscalationState.ACKNOWLEDGED

    # Still firing while acknowledged: noted, nobody paged, still acknowledged.
    assert enqueue(trigger()).status_code == 202
    assert Escalation.objects.count() == 1 and Alert.objects.get().state == AlertState.ACKNOWLEDGED

    assert enqueue({"routing_key": KEY, "event_action": "resolve", "dedup_key": "disk-full-db1"}).status_code == 202
    assert Alert.objects.get().state == AlertState.RESOLVED

    # After a resolve, a trigger for the key is a new alert, and a resolve for the old one is dropped.
    assert enqueue(trigger()).status_code == 202
    assert Escalation.objects.count() == 2 and Alert.objects.count() == 2
    receipts = list(AlertReceipt.objects.order_by("id").values_list("status_code", "outcome"))
    assert receipts == [(202, ReceiptOutcome.ACCEPTED)] * 6


def test_a_trigger_without_a_dedup_key_gets_one_back_and_resolves_by_it(integration):
    answer = enqueue(trigger(dedup_key=None)).json()
    key = answer["dedup_key"]
    assert Alert.objects.get().dedup_key == key
    assert enqueue({"routing_key": KEY, "event_action": "resolve", "dedup_key": key}).status_code == 202
    assert Alert.objects.get().state == AlertState.RESOLVED


def test_an_event_for_an_unknown_or_closed_key_is_accepted_and_changes_nothing(integration):
    for action in ("acknowledge", "resolve"):
        answer = enqueue({"routing_key": KEY, "event_action": action, "dedup_key": "never-fired"})
        assert answer.status_code == 202
    assert not Alert.objects.exists() and not Escalation.objects.exists()


def test_an_invalid_event_is_400_with_every_error_and_recorded(integration):
    answer = enqueue({"routing_key": KEY, "event_action": "trigger", "payload": {"summary": "x"}})
    assert answer.status_code == 400
    assert answer.json() == {"status": "invalid event", "message": "Event object is invalid",
                             "errors": ["payload.source is required", "payload.severity must be one of "
                                        "critical, error, warning, info"]}
    receipt = AlertReceipt.objects.get()
    assert receipt.status_code == 400 and receipt.outcome == ReceiptOutcome.REFUSED
    assert not Escalation.objects.exists()
    assert Integration.objects.get().refused_since is not None


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe", b"[" * 10000, b"null", b'"text"'])
def test_a_body_that_is_not_an_event_is_400_not_500(integration, body):
    answer = enqueue(body)
    assert answer.status_code == 400 and answer.json()["status"] == "invalid event"


def test_an_unknown_routing_key_is_400_and_records_nothing(integration):
    answer = enqueue(trigger(routing_key="z" * 43))
    assert answer.status_code == 400
    assert answer.json()["errors"] == ["routing_key is not the key of any integration"]
    assert not AlertReceipt.objects.exists() and not Escalation.objects.exists()


def test_acknowledge_with_another_integrations_key_is_dropped(integration):
    other = Integration.objects.create(name="other", roster=integration.roster, format=IntegrationFormat.GENERIC)
    enqueue(trigger())
    assert enqueue({"routing_key": other.token, "event_action": "resolve",
                    "dedup_key": "disk-full-db1"}).status_code == 202
    assert Alert.objects.get().state == AlertState.TRIGGERED


def test_a_disabled_integration_refuses_with_400(integration):
    Integration.objects.filter(pk=integration.pk).update(is_enabled=False)
    answer = enqueue(trigger())
    assert answer.status_code == 400 and "disabled" in answer.json()["errors"][0]
    assert not Escalation.objects.exists() and AlertReceipt.objects.get().status_code == 400


def test_a_body_over_512_kb_is_413(integration):
    big = trigger(payload={"custom_details": {"blob": "x" * (512 * 1024)}})
    answer = enqueue(big, path=f"/integrations/{KEY}/v2/enqueue")
    assert answer.status_code == 413 and answer.json()["status"] == "invalid event"
    assert not Escalation.objects.exists() and AlertReceipt.objects.get().status_code == 413


def test_the_integration_url_takes_events_whose_routing_key_is_its_own(integration):
    assert enqueue(trigger(), path=f"/integrations/{KEY}/v2/enqueue").status_code == 202
    assert Escalation.objects.count() == 1
    other = Integration.objects.create(name="other", roster=integration.roster, format=IntegrationFormat.GENERIC)
    answer = enqueue(trigger(), path=f"/integrations/{other.token}/v2/enqueue")
    assert answer.status_code == 400 and "this URL names" in answer.json()["errors"][0]
    assert enqueue(trigger(), path="/integrations/nobody-at-all-xxxxxxxx/v2/enqueue").status_code == 400


def test_a_roster_nobody_can_be_paged_on_is_422(integration):
    integration.roster = Roster.objects.create(name="empty")
    integration.save()
    answer = enqueue(trigger())
    assert answer.status_code == 422 and "cannot be paged" in answer.json()["errors"][0]


def test_a_flood_from_one_address_is_429(integration, settings):
    settings.RATE_LIMIT_PER_SECOND, settings.RATE_LIMIT_BURST = 0.001, 2
    buckets.clear()
    try:
        answers = [enqueue({"routing_key": KEY, "event_action": "resolve", "dedup_key": "x"}).status_code
                   for _ in range(3)]
    finally:
        buckets.clear()
    assert answers == [202, 202, 429]


def test_only_post_is_accepted(integration):
    assert Client().get("/v2/enqueue").status_code == 405
