"""POST /webhooks/status and /webhooks/inbound through the test client, on a real database.

The escalation rows a webhook applies to are made the way the worker makes them (a Page per person paged,
a Message per channel sent), so no Vonage emulator is needed here.
"""

import json
import uuid
from datetime import timedelta

import jwt
import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from escalation.engine import intake
from escalation.engine.apply import replay_unmatched_dispatch
from escalation.engine.intake import webhook_apply
from escalation.models import (
    ChannelTest,
    Escalation,
    Event,
    HandoffNotice,
    Message,
    NoticeState,
    Page,
    Person,
    WebhookEvent,
)
from escalation.services.escalations import escalation_cancel, escalation_fire
from escalation.services.webhooks import WebhookRefused, webhook_receive
from tests.applying import apply_stored_webhooks
from tests.conftest import TEST_SIGNATURE_SECRET
from tests.personas import MICHAEL, TONY, make_person, make_roster
from tests.schedule_personas import make_schedule
from tests.signing import vonage_claims, vonage_signature

pytestmark = pytest.mark.django_db

STATUS_URL = "/webhooks/status"
INBOUND_URL = "/webhooks/inbound"
T0 = timezone.now().replace(microsecond=0)


@pytest.fixture
def signed(settings):
    settings.VONAGE_SIGNATURE_SECRET = TEST_SIGNATURE_SECRET


@pytest.fixture
def escalation(settings) -> Escalation:
    settings.ESCALATION_API = "messages"
    return escalation_fire(roster=make_roster(TONY, MICHAEL), message="Main server down", fired_by_name="test", now=T0)


def paged(escalation: Escalation, index: int = 0, *, dispatch_uuid: str | None = None) -> Page:
    person = escalation.plan["people"][index]
    return Page.objects.create(
        escalation=escalation, round=1, index=index, person_id=person["person_id"], person_name=person["name"],
        started_at=T0, deadline=T0 + timedelta(seconds=600), dispatch_uuid=dispatch_uuid,
    )


def sent(page: Page, channel_index: int) -> Message:
    channel = page.escalation.plan["people"][page.index]["channels"][channel_index]
    return Message.objects.create(
        page=page, channel_index=channel_index, channel_type=channel["type"], to_address=channel["address"],
        condition=channel["condition"], expiry_time=channel["expiry_time"], message_uuid=uuid.uuid4(),
        status="submitted", status_rank=1, created_at=T0, sent_at=T0,
        deadline=T0 + timedelta(seconds=channel["expiry_time"]),
    )


def v1_status(message: Message, status: str, **changes) -> dict:
    channel = "viber_service" if message.channel_type == "viber_service_msg" else message.channel_type
    body = {
        "message_uuid": str(message.message_uuid), "to": message.to_address, "from": "OnCall",
        "timestamp": "2026-03-01T10:00:05Z", "status": status, "channel": channel,
        "client_ref": message.client_ref, "usage": {"currency": "EUR", "price": "0.0333"},
    }
    body.update(changes)
    return body


def dispatch_status(message_uuid: str, dispatch_uuid: str, to: dict, status: str) -> dict:
    return {
        "message_uuid": message_uuid, "to": to, "from": {"type": to["type"], "id": "1923256201474167"},
        "timestamp": "2026-03-01T10:00:05.120Z", "status": status,
        "_links": {"dispatch": {"href": f"v0.1/dispatch/{dispatch_uuid}", "dispatch_uuid": dispatch_uuid}},
    }


def post(client: Client, url: str, body: dict | bytes, *, authorization: str | None = None, **extra):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Authorization": authorization} if authorization else {}
    response = client.post(url, data=raw, content_type="application/json", headers=headers, **extra)
    apply_stored_webhooks()  # as the worker's next pass would
    return response


def unknown_status(status: str = "delivered") -> dict:
    return {"message_uuid": str(uuid.uuid4()), "to": "447700900009", "from": "OnCall",
            "timestamp": "2026-03-01T10:00:05Z", "status": status, "channel": "sms"}


# --- HTTP rules ---

@pytest.mark.parametrize("url", [STATUS_URL, INBOUND_URL])
@pytest.mark.parametrize("method", ["get", "put", "patch", "delete", "head", "options"])
def test_it_only_accepts_post(client, url, method):
    response = getattr(client, method)(url)
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert not WebhookEvent.objects.exists()


def test_it_is_csrf_exempt_and_answers_an_unknown_message_with_success():
    response = post(Client(enforce_csrf_checks=True), STATUS_URL, body := unknown_status())
    assert response.status_code == 204
    event = WebhookEvent.objects.get()
    assert (event.kind, event.result, event.message, event.escalation) == ("status", "unknown message", None, None)
    assert event.dedup_key == f"status:{body['message_uuid']}:delivered"
    assert event.body == body


def test_it_accepts_the_urls_with_a_trailing_slash_too(client):
    assert post(client, STATUS_URL + "/", unknown_status()).status_code == 204
    assert post(client, INBOUND_URL + "/", unknown_status()).status_code == 204
    assert WebhookEvent.objects.count() == 2


@pytest.mark.parametrize("raw, message", [
    (b"{not json", "not valid JSON"),
    (b"", "empty"),
    (b"[]", "not an object"),
    (b'{"hello": "world"}', "Not a Vonage status webhook"),
    (json.dumps({**unknown_status(), "status": "exploded"}).encode(), "Unknown message status"),
])
def test_it_answers_400_with_a_reason_and_stores_nothing(client, raw, message):
    response = post(client, STATUS_URL, raw)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not WebhookEvent.objects.exists()


def test_it_refuses_an_oversized_body_by_its_declared_length(client, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 100
    body = json.dumps({**unknown_status(), "padding": "x" * 100}).encode()
    response = post(client, STATUS_URL, body)
    assert response.status_code == 413
    assert "larger than 100 bytes" in response.json()["error"]
    # A lying header is refused before anything is read.
    response = post(client, STATUS_URL, b"{}", CONTENT_LENGTH="1000000")
    assert response.status_code == 413
    assert not WebhookEvent.objects.exists()


def test_the_service_refuses_an_oversized_body_too(settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 10
    with pytest.raises(WebhookRefused) as refused:
        webhook_receive(kind_hint="status", raw_body=b"{" + b" " * 10 + b"}", authorization=None, now=T0)
    assert refused.value.status == 413


# --- Signatures ---

def test_it_accepts_unsigned_webhooks_when_no_secret_is_configured(client):
    assert post(client, STATUS_URL, unknown_status()).status_code == 204
    assert post(client, STATUS_URL, unknown_status(), authorization="Bearer whatever").status_code == 204
    assert WebhookEvent.objects.count() == 2


def test_it_accepts_a_signed_webhook(client, signed):
    raw = json.dumps(unknown_status()).encode()
    response = post(client, STATUS_URL, raw, authorization=vonage_signature(raw, now=timezone.now()))
    assert response.status_code == 204
    assert WebhookEvent.objects.count() == 1


def refused_signatures(raw: bytes, vonage_keys: dict) -> dict[str, str | None]:
    now = timezone.now()
    claims = vonage_claims(raw, now=now)
    with open(vonage_keys["private_path"], "rb") as key:
        rs256 = jwt.encode(claims, key.read(), algorithm="RS256")
    return {
        "unsigned": None,
        "wrong secret": vonage_signature(raw, now=now, secret="not-the-secret-0123456789abcdefghij"),
        "tampered body": vonage_signature(raw.replace(b"delivered", b"read"), now=now),
        "stale iat": vonage_signature(raw, now=now - timedelta(hours=25, seconds=60)),
        "future iat": vonage_signature(raw, now=now + timedelta(hours=1)),
        "alg none": "Bearer " + jwt.encode(claims, None, algorithm="none"),
        "RS256": f"Bearer {rs256}",
        "not bearer": "Basic dXNlcjpwYXNz",
        "garbage": "Bearer \x7f\x7f\x7f",
    }


@pytest.mark.parametrize("case", ["unsigned", "wrong secret", "tampered body", "stale iat", "future iat",
                                  "alg none", "RS256", "not bearer", "garbage"])
def test_it_refuses_anything_not_signed_by_vonage_with_401_and_changes_nothing(
    client, signed, escalation, vonage_keys, case
):
    message = sent(paged(escalation), 0)
    raw = json.dumps(v1_status(message, "delivered")).encode()
    response = post(client, STATUS_URL, raw, authorization=refused_signatures(raw, vonage_keys)[case])
    assert response.status_code == 401
    assert response.json()["error"]
    assert not WebhookEvent.objects.exists()
    message.refresh_from_db()
    assert message.status == "submitted"


def test_it_checks_the_signature_before_reading_the_body(client, signed):
    assert post(client, STATUS_URL, b"{not json").status_code == 401
    raw = b"{not json"
    assert post(client, STATUS_URL, raw, authorization=vonage_signature(raw, now=timezone.now())).status_code == 400


def test_it_measures_the_age_of_a_signature_against_the_given_clock(signed, settings):
    raw = json.dumps(unknown_status()).encode()
    issued = T0 - timedelta(days=3)
    authorization = vonage_signature(raw, now=issued)
    with pytest.raises(WebhookRefused, match="issued"):
        webhook_receive(kind_hint="status", raw_body=raw, authorization=authorization, now=T0)
    webhook_receive(kind_hint="status", raw_body=raw, authorization=authorization,
                    now=issued + timedelta(seconds=settings.VONAGE_SIGNATURE_MAX_AGE))
    assert WebhookEvent.objects.count() == 1


# --- Application ---

def test_a_v1_read_status_acknowledges_and_is_stored_with_what_it_did(client, escalation):
    message = sent(paged(escalation), 0)  # Tony's messenger, condition `read`
    assert post(client, STATUS_URL, v1_status(message, "read")).status_code == 204
    escalation.refresh_from_db()
    assert escalation.state == "acknowledged"
    assert escalation.acknowledged_by == Person.objects.get(name="Tony")
    event = WebhookEvent.objects.get()
    assert (event.message, event.escalation, event.result) == (message, escalation, "status read: acknowledged")


def test_a_v1_status_is_matched_by_client_ref_before_the_uuid_is_recorded(client, escalation):
    message = sent(paged(escalation), 1)  # Tony's SMS, condition `delivered`
    Message.objects.filter(pk=message.pk).update(message_uuid=None)
    body = v1_status(message, "delivered", message_uuid="d8f86df1-dec6-442f-870a-2241be27d721")
    assert post(client, STATUS_URL, body).status_code == 204
    message.refresh_from_db()
    assert (message.status, str(message.message_uuid)) == ("delivered", "d8f86df1-dec6-442f-870a-2241be27d721")
    assert Escalation.objects.get().state == "reached"


def test_a_v1_viber_failure_is_applied_with_its_error(client, escalation):
    message = sent(paged(escalation, 1), 0)  # Michael's Viber
    error = {"type": "https://developer.vonage.com/api-errors/messages#1330", "title": "Not delivered",
             "detail": "The user is not on Viber", "instance": "bf0ca0bf927b3b52e3cb03217e1a1ddf"}
    assert post(client, STATUS_URL, v1_status(message, "rejected", error=error)).status_code == 204
    message.refresh_from_db()
    assert message.status == "rejected"
    assert "The user is not on Viber" in message.error
    assert Escalation.objects.get().next_action_at is not None  # poked: the worker fails over now


def test_a_dispatch_status_is_tied_to_its_page_by_workflow_and_address(client, settings):
    settings.ESCALATION_API = "dispatch"
    escalation = escalation_fire(roster=make_roster(TONY, MICHAEL), message="Disk full", now=T0)
    dispatch_uuid = str(uuid.uuid4())
    page = paged(escalation, 1, dispatch_uuid=dispatch_uuid)  # Michael: viber, whatsapp, sms
    message_uuid = str(uuid.uuid4())
    body = dispatch_status(message_uuid, dispatch_uuid, {"type": "whatsapp", "number": "447700900003"}, "delivered")
    assert post(client, STATUS_URL, body).status_code == 204
    message = Message.objects.get(message_uuid=message_uuid)
    assert (message.page, message.channel_index, message.status) == (page, 1, "delivered")
    assert WebhookEvent.objects.get().message == message


def test_a_final_report_is_recorded_on_its_page(client, settings):
    settings.ESCALATION_API = "dispatch"
    escalation = escalation_fire(roster=make_roster(TONY, MICHAEL), message="Disk full", now=T0)
    dispatch_uuid = str(uuid.uuid4())
    page = paged(escalation, 0, dispatch_uuid=dispatch_uuid)
    body = {"template": "failover", "status": "error", "timestamp": "2026-03-01T10:10:00Z",
            "dispatch_uuid": dispatch_uuid, "usage": {"price": "0.0353", "currency": "EUR"}, "_links": {"messages": []}}
    assert post(client, STATUS_URL, body).status_code == 204
    page.refresh_from_db()
    assert page.dispatch_final_status == "error"
    event = WebhookEvent.objects.get()
    assert (event.kind, event.dedup_key) == ("final_report", f"final:{dispatch_uuid}:error")
    assert event.escalation == escalation


def test_a_reply_acknowledges(client, escalation):
    paged(escalation)
    body = {"message_uuid": str(uuid.uuid4()), "to": {"id": "1923256201474167", "type": "messenger"},
            "from": {"id": "23037543461244470", "type": "messenger"}, "timestamp": "2026-03-01T10:01:00Z",
            "direction": "inbound", "message": {"content": {"type": "text", "text": "on it"}}}
    assert post(client, INBOUND_URL, body).status_code == 204
    escalation.refresh_from_db()
    assert (escalation.state, escalation.acknowledged_by_name) == ("acknowledged", "Tony")
    event = WebhookEvent.objects.get()
    assert (event.kind, event.dedup_key) == ("inbound", f"inbound:{body['message_uuid']}")


def test_a_reply_from_a_stranger_is_kept(client):
    body = {"channel": "sms", "message_uuid": str(uuid.uuid4()), "to": "447700900000", "from": "447700900099",
            "timestamp": "2026-03-01T10:05:00Z", "message_type": "text", "text": "who is this?"}
    assert post(client, INBOUND_URL, body).status_code == 204
    event = WebhookEvent.objects.get()
    assert event.result.startswith("reply kept")
    assert event.body["text"] == "who is this?"


def test_unknown_workflows_are_answered_with_success_and_recorded(client):
    body = {"template": "failover", "status": "completed", "timestamp": "2026-03-01T10:10:00Z",
            "dispatch_uuid": str(uuid.uuid4())}
    assert post(client, STATUS_URL, body).status_code == 204
    assert WebhookEvent.objects.get().result == "unknown workflow"


def test_a_duplicate_delivery_is_answered_with_success_and_applied_once(client, escalation):
    message = sent(paged(escalation, 1), 0)  # Michael's Viber waits for `read`: delivered changes nothing else
    body = v1_status(message, "delivered")
    assert post(client, STATUS_URL, body).status_code == 204
    # Vonage's retry of the same event may differ in details, e.g. the usage.
    assert post(client, STATUS_URL, {**body, "usage": {"currency": "EUR", "price": "0.04"}}).status_code == 204
    assert WebhookEvent.objects.count() == 1
    assert Event.objects.filter(message=message, kind="delivered").count() == 1


def test_statuses_arriving_out_of_order_never_move_back(client, escalation):
    message = sent(paged(escalation, 1), 0)
    assert post(client, STATUS_URL, v1_status(message, "read")).status_code == 204
    assert post(client, STATUS_URL, v1_status(message, "delivered")).status_code == 204
    message.refresh_from_db()
    assert message.status == "read"
    assert WebhookEvent.objects.get(dedup_key__endswith=":delivered").result == "delivered ignored: already read"


# --- Channel tests ---

def make_channel_test(**fields) -> ChannelTest:
    person = make_person("Zoe", [("sms", "447700900077", 60, "delivered"), ("whatsapp", "447700900077", 60, "read")])
    return ChannelTest.objects.create(person=person, channel_type="sms", to_address="447700900077",
                                      client_ref=uuid.uuid4().hex, created_at=T0, updated_at=T0, **fields)


def test_a_status_of_a_test_message_updates_it_and_not_any_escalation(client):
    test = make_channel_test()
    body = {**unknown_status("delivered"), "client_ref": test.client_ref}
    assert post(client, STATUS_URL, body).status_code == 204
    test.refresh_from_db()
    assert (test.status, test.status_rank) == ("delivered", 2)
    event = WebhookEvent.objects.get()
    assert event.result == f"channel test #{test.pk}: delivered"
    assert not Event.objects.exists()


def test_a_test_message_is_matched_by_uuid_and_only_moves_up(client):
    message_uuid = uuid.uuid4()
    test = make_channel_test(message_uuid=message_uuid, status="read", status_rank=3)
    body = {**unknown_status("delivered"), "message_uuid": str(message_uuid)}
    assert post(client, STATUS_URL, body).status_code == 204
    test.refresh_from_db()
    assert test.status == "read"
    assert WebhookEvent.objects.get().result == f"channel test #{test.pk}: delivered ignored, already read"


def test_a_failed_test_message_keeps_its_error(client):
    test = make_channel_test()
    body = {**unknown_status("rejected"), "client_ref": test.client_ref,
            "error": {"type": "https://developer.vonage.com/api-errors/messages#1120", "title": "Invalid sender",
                      "detail": "The `from` parameter is invalid for the given channel."}}
    post(client, STATUS_URL, body)
    test.refresh_from_db()
    assert test.status == "rejected"
    assert test.error.startswith("Invalid sender: The `from` parameter is invalid")


# --- Hand-off notices ---

def make_notice(**fields) -> HandoffNotice:
    person = make_person("Zoe", [("sms", "447700900077", 60, "delivered")])
    return HandoffNotice.objects.create(
        schedule=make_schedule("Primary", [person]), person=person, shift_start=T0 + timedelta(minutes=15),
        due_at=T0, state=NoticeState.SENT, channel_type="sms", to_address="447700900077",
        message_uuid=uuid.uuid4(), created_at=T0, settled_at=T0, **fields)


def test_a_status_of_a_hand_off_notice_is_recorded_on_it_with_its_time():
    notice = make_notice()
    webhook_receive(kind_hint="status", raw_body=json.dumps(
        {**unknown_status("delivered"), "client_ref": notice.client_ref,
         "timestamp": f"{T0 + timedelta(seconds=3):%Y-%m-%dT%H:%M:%SZ}"}).encode(),
        authorization=None, now=T0 + timedelta(seconds=4))
    apply_stored_webhooks(now=T0 + timedelta(minutes=1))
    notice.refresh_from_db()
    assert (notice.status, notice.status_at) == ("delivered", T0 + timedelta(seconds=3))
    event = WebhookEvent.objects.get()
    assert (event.result, event.escalation, event.message) == (f"hand-off notice #{notice.pk}: delivered", None, None)
    assert not Event.objects.exists()


def test_a_hand_off_notice_is_matched_by_uuid_and_a_late_delivered_changes_nothing(client):
    notice = make_notice()
    for status in ("read", "delivered"):
        body = {**unknown_status(status), "message_uuid": str(notice.message_uuid)}
        assert post(client, STATUS_URL, body).status_code == 204
    notice.refresh_from_db()
    assert notice.status == "read"
    assert WebhookEvent.objects.get(dedup_key__endswith=":delivered").result == (
        f"hand-off notice #{notice.pk}: delivered ignored, already read")


def test_an_undeliverable_hand_off_notice_keeps_vonages_reason(client):
    notice = make_notice()
    post(client, STATUS_URL, {**unknown_status("undeliverable"), "client_ref": notice.client_ref,
                              "error": {"type": "https://developer.vonage.com/api-errors/messages#1300",
                                        "title": "Not part of the provider network"}})
    notice.refresh_from_db()
    assert notice.status == "undeliverable"
    assert notice.status_error.startswith("Not part of the provider network")


def test_a_batch_looks_for_notices_once_and_only_for_what_matched_no_message(escalation):
    def queries_applying(bodies: list[dict]) -> list[str]:
        for body in bodies:
            webhook_receive(kind_hint="status", raw_body=json.dumps(body).encode(), authorization=None, now=T0)
        with CaptureQueriesContext(connection) as captured:
            apply_stored_webhooks(now=T0)
        return [q["sql"] for q in captured.captured_queries]

    few = queries_applying([unknown_status() for _ in range(3)])
    many = queries_applying([unknown_status() for _ in range(30)])
    assert len(few) == len(many)
    assert sum(HandoffNotice._meta.db_table in sql for sql in many) == 1
    message = sent(paged(escalation, 1), 1)  # Michael's WhatsApp: delivered meets no condition of his
    known = queries_applying([v1_status(message, "delivered")])
    assert not any(HandoffNotice._meta.db_table in sql for sql in known)
    assert not WebhookEvent.objects.filter(applied_at=None).exists()


# --- Re-applying a stored event ---

def test_a_dispatch_status_that_beat_its_workflow_uuid_is_applied_when_replayed(client, settings):
    settings.ESCALATION_API = "dispatch"
    escalation = escalation_fire(roster=make_roster(TONY, MICHAEL), message="Disk full", now=T0)
    page = paged(escalation, 0)
    dispatch_uuid = str(uuid.uuid4())
    body = dispatch_status(str(uuid.uuid4()), dispatch_uuid, {"type": "messenger", "id": "23037543461244470"}, "read")
    assert post(client, STATUS_URL, body).status_code == 204
    event = WebhookEvent.objects.get()
    assert event.result == "unknown message"
    assert str(event.dispatch_uuid) == dispatch_uuid

    Page.objects.filter(pk=page.pk).update(dispatch_uuid=dispatch_uuid)
    assert replay_unmatched_dispatch(dispatch_uuid, now=T0 + timedelta(seconds=5)) == 1
    event.refresh_from_db()
    assert (event.escalation, event.result) == (escalation, "status read: acknowledged (applied late)")
    assert replay_unmatched_dispatch(dispatch_uuid, now=T0 + timedelta(seconds=6)) == 0  # matched now: never twice


# --- Stored in the request, applied by a worker ---

def test_the_request_only_stores_the_event_and_a_worker_applies_it_once(client, escalation):
    message = sent(paged(escalation, 0), 0)
    raw = json.dumps(v1_status(message, "read")).encode()
    received = webhook_receive(kind_hint="status", raw_body=raw, authorization=None, now=T0)
    message.refresh_from_db()
    assert (message.status, received.event.applied_at, received.event.result) == ("submitted", None, "")

    applied = webhook_apply(received.event.pk, now=T0 + timedelta(seconds=1))
    assert applied.result == "status read: acknowledged"
    message.refresh_from_db()
    escalation.refresh_from_db()
    assert (message.status, escalation.state) == ("read", "acknowledged")
    received.event.refresh_from_db()
    assert received.event.applied_at == T0 + timedelta(seconds=1)
    assert webhook_apply(received.event.pk, now=T0 + timedelta(seconds=2)) is None  # never applied twice
    assert Event.objects.filter(message=message, kind="read").count() == 1


def test_a_batch_applies_each_event_as_one_by_one_would(client, escalation):
    tony, michael = sent(paged(escalation, 0), 0), sent(paged(escalation, 1), 0)
    other = escalation_fire(roster=escalation.roster, message="Disk full", now=T0)
    late = sent(paged(other, 0), 0)
    test = make_channel_test()
    escalation_cancel(escalation=other, by_name="test", now=T0)
    bodies = [
        v1_status(michael, "delivered"),  # Michael's Viber waits for `read`: a status, nothing more
        v1_status(tony, "submitted"),  # already submitted
        v1_status(tony, "delivered"),
        v1_status(tony, "read"),  # acknowledges
        v1_status(michael, "read"),  # after the acknowledgement
        unknown_status(),  # left for one by one, and still applied
        v1_status(late, "read"),  # an escalation that has ended
        v1_status(tony, "rejected"),  # too late: never moves `read` back
        {"template": "failover", "status": "completed", "timestamp": "2026-03-01T10:10:00Z",
         "dispatch_uuid": str(uuid.uuid4())},  # a workflow that is not ours
        {**unknown_status("delivered"), "client_ref": test.client_ref},  # a channel test's, left for one by one
    ]
    events = [webhook_receive(kind_hint="status", raw_body=json.dumps(b).encode(), authorization=None, now=T0).event
              for b in bodies]
    assert apply_stored_webhooks(now=T0 + timedelta(seconds=1)) == len(bodies)

    results = dict(WebhookEvent.objects.values_list("pk", "result"))
    assert [results[e.pk] for e in events] == [
        "status delivered", "submitted ignored: already submitted", "status delivered",
        "status read: acknowledged", "status read (escalation already acknowledged)", "unknown message",
        "status read (escalation already cancelled)", "rejected ignored: already read", "unknown workflow",
        f"channel test #{test.pk}: delivered",
    ]
    escalation.refresh_from_db()
    assert (escalation.state, escalation.acknowledged_by_name) == ("acknowledged", "Tony")
    tony.refresh_from_db()
    michael.refresh_from_db()
    assert (tony.status, michael.status) == ("read", "read")
    assert list(Event.objects.filter(message=tony).values_list("kind", flat=True).order_by("id")) == [
        "delivered", "read"]
    assert not WebhookEvent.objects.filter(applied_at=None).exists()


def test_an_event_that_cannot_be_applied_is_kept_marked_and_does_not_hold_the_others(client, escalation,
                                                                                     monkeypatch):
    tony = sent(paged(escalation, 0), 0)
    poison = webhook_receive(kind_hint="status", raw_body=json.dumps(unknown_status()).encode(),
                             authorization=None, now=T0).event
    good = webhook_receive(kind_hint="status", raw_body=json.dumps(v1_status(tony, "delivered")).encode(),
                           authorization=None, now=T0).event
    real_apply = intake._apply

    def faulty(webhook, *, now, received_at):  # a fault in the code that applies one kind of event
        if webhook.message_uuid == poison.body["message_uuid"]:
            raise RuntimeError("a bug")
        return real_apply(webhook, now=now, received_at=received_at)

    def batch_fails(updates, *, now, received):
        raise RuntimeError("a bug in the batch")

    monkeypatch.setattr(intake, "_apply", faulty)
    monkeypatch.setattr(intake, "apply_statuses", batch_fails)
    assert apply_stored_webhooks(now=T0) == 1
    poison.refresh_from_db()
    good.refresh_from_db()
    assert (poison.result, poison.applied_at) == ("not applied: RuntimeError (see the worker's log)", T0)
    assert (good.result, good.applied_at) == ("status delivered", T0)
    assert not WebhookEvent.objects.filter(applied_at=None).exists()


def test_an_admin_queues_events_marked_not_applied_to_be_applied_again(admin_client, escalation):
    tony = sent(paged(escalation, 0), 0)
    marked = webhook_receive(kind_hint="status", raw_body=json.dumps(v1_status(tony, "delivered")).encode(),
                             authorization=None, now=T0).event
    WebhookEvent.objects.filter(pk=marked.pk).update(applied_at=T0, result="not applied: RuntimeError (see log)")
    normal = webhook_receive(kind_hint="status", raw_body=json.dumps(unknown_status()).encode(),
                             authorization=None, now=T0).event
    apply_stored_webhooks(now=T0)

    response = admin_client.post("/admin/escalation/webhookevent/", {
        "action": "apply_again", "_selected_action": [marked.pk, normal.pk]}, follow=True)
    assert "1 event(s) queued" in response.content.decode()
    assert list(WebhookEvent.objects.filter(applied_at=None).values_list("pk", flat=True)) == [marked.pk]
    apply_stored_webhooks(now=T0 + timedelta(seconds=1))
    marked.refresh_from_db()
    tony.refresh_from_db()
    assert (marked.result, tony.status) == ("status delivered", "delivered")


def test_applying_again_needs_the_fire_permission(client, django_user_model):
    staff = django_user_model.objects.create_user("viewer", password="pw-0123456789", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_webhookevent"))
    client.force_login(staff)
    response = client.post("/admin/escalation/webhookevent/", {"action": "apply_again", "_selected_action": [1]})
    assert response.status_code == 403
