"""The local Vonage emulator: its checks, its recipients, its Dispatch failover and its webhooks.

Time runs at EMULATOR_TIME_SCALE (0.01): a 15 s expiry lasts 0.15 s. Tests wait by polling with a deadline.
"""

import hashlib
import json
import time
import uuid

import jwt
import pytest
import requests

from emulator import Emulator, EmulatorConfig
from emulator.scheduler import Scheduler
from escalation.engine.provider import get_client
from escalation.vonage.forms import FREE_TEXT, Form, TemplateSend
from tests.conftest import TEST_APPLICATION_ID, TEST_SIGNATURE_SECRET
from tests.emulator_fixtures import emulator_process

WHATSAPP = {"type": "whatsapp", "address": "447700900001", "expiry_time": 15, "condition": "read",
            "sender": "447700900000"}
MESSENGER = {"type": "messenger", "address": "2301", "expiry_time": 15, "condition": "read", "sender": "acme-page"}
SMS = {"type": "sms", "address": "447700900002", "expiry_time": 15, "condition": "delivered", "sender": "ACME"}


def app_token(private_path: str, **overrides) -> str:
    now = int(time.time())
    claims = {"application_id": TEST_APPLICATION_ID, "iat": now, "jti": str(uuid.uuid4()), "exp": now + 900}
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    with open(private_path, "rb") as f:
        return jwt.encode(claims, f.read(), algorithm="RS256")


def post(emulator, path: str, body: object, token: str | None, content_type: str = "application/json"):
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(emulator.url + path, data=data, headers=headers, timeout=5)


# Ann never wrote to the company, so a page to her goes out as it must outside the 24-hour windows: a WhatsApp
# template, a tagged Messenger message (the windows themselves are tested in tests/test_windows.py).
TEMPLATE = Form(template=TemplateSend(name="oncall_alert", namespace="whatsapp:hsm:it:oncall", values=("db down",)))
TAGGED = Form(messenger_tag="ACCOUNT_UPDATE")


def page_form(channel: dict) -> Form:
    return {"whatsapp": TEMPLATE, "messenger": TAGGED}.get(channel["type"], FREE_TEXT)


def dispatch(channels: list[dict], text: str = "db down") -> str:
    return get_client().dispatch_failover(person_name="Ann", channels=channels, text=text,
                                          forms=[page_form(c) for c in channels])


def send_page(*, channel: dict, text: str, client_ref: str) -> str:
    return get_client().send_message(channel=channel, text=text, client_ref=client_ref, form=page_form(channel))


def final_reports(sink) -> list[dict]:
    return [b for b in sink.bodies("/webhooks/status") if "template" in b]


def statuses(sink, message_uuid: str) -> list[str]:
    return [b["status"] for b in sink.bodies("/webhooks/status") if b.get("message_uuid") == message_uuid]


# --- the application JWT ----------------------------------------------------------------------------


@pytest.mark.parametrize("overrides", [
    {"exp": int(time.time()) - 120},  # expired
    {"nbf": int(time.time())},  # reported to be refused by Vonage
    {"jti": None},
    {"application_id": None},
    {"exp": int(time.time()) + 25 * 3600},  # longer than Vonage's 24 h maximum
])
def test_it_refuses_a_bad_jwt_with_vonages_401(emulator, vonage_keys, overrides):
    answer = post(emulator, "/v1/messages", {}, app_token(vonage_keys["private_path"], **overrides))

    assert answer.status_code == 401
    body = answer.json()
    assert body["title"] == "You did not provide correct credentials."
    assert body["type"] == "https://developer.nexmo.com/api-errors/#unathorized"
    assert len(body["instance"]) == 32


def test_it_refuses_a_request_without_a_token(emulator):
    assert post(emulator, "/v0.1/dispatch", {}, None).status_code == 401
    assert emulator.requests()[0]["auth"] == {"error": "no Bearer token"}


def test_it_refuses_another_application_when_told_its_id(emulator, vonage_keys):
    emulator.configure(application_id="another-application")

    answer = post(emulator, "/v1/messages", {}, app_token(vonage_keys["private_path"]))

    assert answer.status_code == 401


def test_it_takes_the_private_key_for_the_public_one(vonage_keys):
    with open(vonage_keys["private_path"], "rb") as f:
        instance = Emulator(EmulatorConfig(public_key=f.read()))
    try:
        instance.start()
        answer = post(instance, "/v1/messages", {}, app_token(vonage_keys["private_path"]))
    finally:
        instance.stop()

    assert answer.status_code == 422  # past the JWT check, stopped by the empty body


# --- request validation -------------------------------------------------------------------------------


def test_it_answers_400_to_a_body_that_is_not_json(emulator, vonage_keys):
    answer = post(emulator, "/v0.1/dispatch", b"{not json", app_token(vonage_keys["private_path"]))

    assert answer.status_code == 400
    assert answer.json()["title"] == "Invalid JSON"


def test_it_answers_415_to_a_form_post(emulator, vonage_keys):
    answer = post(emulator, "/v1/messages", b"a=b", app_token(vonage_keys["private_path"]),
                  content_type="application/x-www-form-urlencoded")

    assert answer.status_code == 415


def test_it_names_every_bad_dispatch_field(emulator, vonage_keys):
    item = {"from": {"type": "sms", "number": "ACME"}, "to": {"type": "sms", "number": "447700900002"},
            "message": {"content": {"type": "text", "text": "x"}}}
    body = {"template": "failover", "workflow": [
        {**item, "failover": {"expiry_time": "600", "condition_status": "read"}},
        {**item, "to": {"type": "whatsapp", "number": "447700900002"}},
        {**item, "failover": {"expiry_time": 600, "condition_status": "read"}},
    ]}

    answer = post(emulator, "/v0.1/dispatch", body, app_token(vonage_keys["private_path"]))

    assert answer.status_code == 422
    assert answer.json()["title"] == "Invalid params"
    assert answer.json()["invalid_parameters"] == [
        {"name": "workflow[0].failover.expiry_time", "reason": "'600' is not of type 'integer'"},
        {"name": "workflow[1].failover", "reason": "every item but the last needs failover"},
        {"name": "workflow[1].from.type", "reason": "must match to.type (whatsapp)"},
        {"name": "workflow[2].failover", "reason": "the last item must not have failover"},
    ]


def test_it_refuses_the_dispatch_name_for_viber_in_v1(emulator, vonage_keys):
    body = {"message_type": "text", "text": "x", "to": "447700900001", "from": "acme", "channel": "viber_service_msg"}

    answer = post(emulator, "/v1/messages", body, app_token(vonage_keys["private_path"]))

    assert answer.status_code == 422
    [problem] = answer.json()["invalid_parameters"]
    assert problem["name"] == "channel"


def test_it_refuses_a_text_too_long_for_messenger(emulator):
    with pytest.raises(Exception) as raised:
        send_page(channel=MESSENGER, text="x" * 641, client_ref="r")

    assert raised.value.invalid_parameters == [{"name": "text", "reason": "longer than 640 characters for messenger"}]


# --- Dispatch failover -----------------------------------------------------------------------------------


def test_unread_items_fail_over_after_their_expiry(emulator, webhook_sink):
    started = time.monotonic()
    dispatch_uuid = dispatch([WHATSAPP, MESSENGER, SMS])

    [report] = emulator.wait_for(lambda: final_reports(webhook_sink), lambda r: len(r) == 1)

    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 3  # two 15 s expiries at time scale 0.01, then the SMS delivered
    assert report["status"] == "completed"
    assert report["dispatch_uuid"] == dispatch_uuid
    links = report["_links"]["messages"]
    assert [(m["channel"], m["status"]) for m in links] == [
        ("whatsapp", "delivered"), ("messenger", "delivered"), ("sms", "delivered"),
    ]
    assert len({m["message_uuid"] for m in links}) == 3
    for link in links:
        assert statuses(webhook_sink, link["message_uuid"]) == ["submitted", "delivered"]
    for body in webhook_sink.bodies("/webhooks/status"):
        if "message_uuid" in body:
            assert body["_links"]["dispatch"] == {"href": f"v0.1/dispatch/{dispatch_uuid}",
                                                  "dispatch_uuid": dispatch_uuid}


def test_a_read_stops_the_workflow(emulator, webhook_sink):
    emulator.scenario("447700900001", "read", after=5)
    dispatch([WHATSAPP, SMS])

    [report] = emulator.wait_for(lambda: final_reports(webhook_sink), lambda r: len(r) == 1)

    [link] = report["_links"]["messages"]
    assert (link["channel"], link["status"], report["status"]) == ("whatsapp", "read", "completed")
    assert statuses(webhook_sink, link["message_uuid"]) == ["submitted", "delivered", "read"]
    assert emulator.messages(to="447700900002") == []  # the SMS was never sent


def test_a_delivered_condition_is_met_by_delivery(emulator, webhook_sink):
    dispatch([{**WHATSAPP, "condition": "delivered"}, SMS])

    [report] = emulator.wait_for(lambda: final_reports(webhook_sink), lambda r: len(r) == 1)

    assert [m["channel"] for m in report["_links"]["messages"]] == ["whatsapp"]


def test_a_read_too_late_does_not_stop_the_next_item(emulator, webhook_sink):
    emulator.scenario("447700900001", "read", after=20)  # expiry is 15
    dispatch([WHATSAPP, {**SMS, "address": "447700900003"}])

    emulator.wait_for(lambda: emulator.messages(to="447700900001"), lambda m: m and m[0]["status"] == "read")

    # The report was sent when the SMS was delivered, before the read; the read still comes as a status.
    [report] = final_reports(webhook_sink)
    whatsapp, sms = report["_links"]["messages"]
    assert [(whatsapp["channel"], whatsapp["status"]), (sms["channel"], sms["status"])] == [
        ("whatsapp", "delivered"), ("sms", "delivered"),
    ]
    late = emulator.wait_for(lambda: statuses(webhook_sink, whatsapp["message_uuid"]), lambda s: len(s) == 3)
    assert late == ["submitted", "delivered", "read"]


def test_a_rejected_item_fails_over_at_once(emulator, webhook_sink):
    emulator.scenario("447700900001", "reject")
    started = time.monotonic()
    dispatch([{**WHATSAPP, "expiry_time": 3600}, SMS])  # an hour is 36 s at this scale

    [report] = emulator.wait_for(lambda: final_reports(webhook_sink), lambda r: len(r) == 1)

    assert time.monotonic() - started < 3
    assert [(m["channel"], m["status"]) for m in report["_links"]["messages"]] == [
        ("whatsapp", "rejected"), ("sms", "delivered"),
    ]
    [rejected] = [b for b in webhook_sink.bodies() if b.get("status") == "rejected"]
    assert rejected["error"] == {"code": 1300, "reason": "Not part of the provider network"}


def test_a_failed_last_item_ends_the_workflow_in_error(emulator, webhook_sink):
    emulator.scenario("447700900002", "undeliverable", after=1)
    dispatch([WHATSAPP, SMS])

    [report] = emulator.wait_for(lambda: final_reports(webhook_sink), lambda r: len(r) == 1)

    assert report["status"] == "error"
    assert report["_links"]["messages"][-1]["status"] == "undeliverable"


def test_sms_never_reports_read(emulator, webhook_sink):
    emulator.scenario("447700900002", "read", after=2)
    emulator.scenario("447700900001", "never_deliver")
    dispatch([{**SMS, "condition": "read"}, WHATSAPP])

    # The read condition is never met on SMS, so the workflow fails over to WhatsApp at the expiry.
    emulator.wait_for(lambda: emulator.messages(to="447700900001"), lambda m: len(m) == 1)

    [sms] = emulator.messages(to="447700900002")
    assert [h["status"] for h in sms["history"]] == ["submitted", "delivered"]


# --- Messages v1 -------------------------------------------------------------------------------------


def test_v1_statuses_are_flat_and_carry_client_ref(emulator, webhook_sink):
    viber = {**WHATSAPP, "type": "viber_service_msg", "sender": "acme-viber"}
    message_uuid = send_page(channel=viber, text="db down", client_ref="msg-42")

    bodies = emulator.wait_for(lambda: webhook_sink.bodies(), lambda b: len(b) == 2)

    submitted, delivered = bodies
    assert submitted == {"message_uuid": message_uuid, "to": "447700900001", "from": "acme-viber",
                         "timestamp": submitted["timestamp"], "status": "submitted", "channel": "viber_service",
                         "client_ref": "msg-42"}
    assert delivered["usage"] == {"currency": "EUR", "price": "0.0110"}
    assert "_links" not in delivered


# --- webhooks ------------------------------------------------------------------------------------------


def test_webhooks_are_signed_the_way_vonage_signs_them(emulator, webhook_sink):
    emulator.configure(signature_secret=TEST_SIGNATURE_SECRET, api_key="abcd1234")
    send_page(channel=WHATSAPP, text="db down", client_ref="r")

    emulator.wait_for(lambda: webhook_sink.received, lambda r: len(r) == 2)

    for request in webhook_sink.received:
        scheme, token = request["headers"]["Authorization"].split(" ")
        claims = jwt.decode(token, TEST_SIGNATURE_SECRET, algorithms=["HS256"])  # Vonage's recipe
        assert scheme == "Bearer"
        assert claims["payload_hash"] == hashlib.sha256(request["raw"]).hexdigest()
        assert claims["iss"] == "Vonage"
        assert claims["api_key"] == "abcd1234"
        assert abs(claims["iat"] - time.time()) < 60
        assert claims["jti"]


def test_unsigned_webhooks_without_a_secret(emulator, webhook_sink):
    send_page(channel=WHATSAPP, text="db down", client_ref="r")

    emulator.wait_for(lambda: webhook_sink.received, lambda r: len(r) == 2)

    assert all("Authorization" not in r["headers"] for r in webhook_sink.received)


def test_a_failed_webhook_is_retried_with_vonages_backoff(emulator, webhook_sink):
    webhook_sink.answers.extend([500, 429, 503])
    emulator.scenario("447700900001", "never_deliver")
    send_page(channel=WHATSAPP, text="db down", client_ref="r")

    emulator.wait_for(lambda: webhook_sink.bodies(), lambda b: len(b) == 1, timeout=5)

    attempts = emulator.webhooks()
    assert [(a["attempt"], a["status"], a["retry_in"]) for a in attempts] == [
        (1, 500, 5.0), (2, 429, 10.0), (3, 503, 20.0), (4, 200, None),
    ]


def test_a_refused_webhook_is_not_retried(emulator, webhook_sink):
    webhook_sink.answers.append(401)
    emulator.scenario("447700900001", "never_deliver")
    send_page(channel=WHATSAPP, text="db down", client_ref="r")

    [attempt] = emulator.wait_for(lambda: emulator.webhooks(), lambda w: len(w) == 1)

    assert (attempt["status"], attempt["retry_in"]) == (401, None)
    assert emulator.health()["pending_events"] == 0  # a retry is scheduled before its attempt is recorded


def outbound(emulator) -> tuple[int, int]:
    health = emulator.health()
    return health["webhooks_pending"], health["webhooks_made"]


def test_it_counts_the_webhooks_still_to_deliver_until_the_app_has_answered_them(emulator, webhook_sink):
    assert outbound(emulator) == (0, 0)
    webhook_sink.answers.append(500)  # the `submitted` is answered on its retry
    emulator.scenario("447700900001", "read", after=200)  # 2 s here
    send_page(channel=WHATSAPP, text="db down", client_ref="r")

    emulator.wait_for(lambda: webhook_sink.bodies(), lambda b: len(b) == 2)

    assert outbound(emulator) == (1, 2)  # the read, still to come
    emulator.wait_for(lambda: outbound(emulator), lambda o: o == (0, 3), timeout=10)
    assert sorted(b["status"] for b in webhook_sink.bodies()) == ["delivered", "read", "submitted"]
    assert len(emulator.webhooks()) == 4  # every attempt was recorded before it counted as delivered


def test_a_workflows_expiry_is_no_webhook_to_wait_for(emulator, webhook_sink):
    emulator.scenario("447700900001", "never_deliver")
    dispatch([WHATSAPP, SMS])

    emulator.wait_for(lambda: outbound(emulator), lambda o: o == (0, 1))

    assert emulator.health()["pending_events"] == 1  # the WhatsApp item's 15 s expiry, then the SMS


def test_the_count_starts_again_at_a_reset(emulator, webhook_sink):
    emulator.scenario("447700900001", "read", after=200)
    send_page(channel=WHATSAPP, text="db down", client_ref="r")
    emulator.reset()
    assert outbound(emulator)[0] == 0


def test_webhooks_can_be_duplicated(emulator, webhook_sink):
    emulator.webhook_faults(duplicate=True)
    send_page(channel=WHATSAPP, text="db down", client_ref="r")

    bodies = emulator.wait_for(lambda: webhook_sink.bodies(), lambda b: len(b) == 4)

    assert [b["status"] for b in bodies] == ["submitted", "submitted", "delivered", "delivered"]
    assert webhook_sink.received[0]["raw"] == webhook_sink.received[1]["raw"]


def test_webhooks_can_be_reordered(emulator, webhook_sink):
    emulator.webhook_faults(reorder=True)
    emulator.scenario("447700900001", "read", after=0.2)
    send_page(channel=WHATSAPP, text="db down", client_ref="r")

    bodies = emulator.wait_for(lambda: webhook_sink.bodies(), lambda b: len(b) == 3)

    assert [b["status"] for b in bodies] == ["delivered", "submitted", "read"]


# --- the people --------------------------------------------------------------------------------------


def test_a_reply_after_dispatch_arrives_in_the_v01_shape(emulator, webhook_sink):
    emulator.scenario("447700900002", "never_deliver")
    dispatch([{**SMS, "expiry_time": 3600}, WHATSAPP])
    emulator.wait_for(lambda: emulator.messages(to="447700900002"), lambda m: len(m) == 1)

    message_uuid = emulator.reply(sender="447700900002", channel_type="sms", text="ack")

    [inbound] = emulator.wait_for(lambda: webhook_sink.bodies("/webhooks/inbound"), lambda b: len(b) == 1)
    assert inbound == {
        "message_uuid": message_uuid, "to": {"number": "ACME", "type": "sms"},
        "from": {"number": "447700900002", "type": "sms"}, "timestamp": inbound["timestamp"],
        "direction": "inbound", "message": {"content": {"type": "text", "text": "ack"}, "sms": {"num_messages": "1"}},
        "usage": {"currency": "EUR", "price": "0.0057"},
    }


def test_a_reply_after_a_v1_message_is_flat_and_reads_the_message(emulator, webhook_sink):
    emulator.scenario("2301", "never_deliver")
    sent_uuid = send_page(channel=MESSENGER, text="db down", client_ref="r")

    emulator.reply(sender="2301", channel_type="messenger", text="on it")

    [inbound] = emulator.wait_for(lambda: webhook_sink.bodies("/webhooks/inbound"), lambda b: len(b) == 1)
    assert (inbound["channel"], inbound["from"], inbound["to"], inbound["text"]) == (
        "messenger", "2301", "acme-page", "on it")
    assert inbound["message_type"] == "text"
    assert statuses(webhook_sink, sent_uuid) == ["submitted", "delivered", "read"]


def test_a_scenario_can_reply(emulator, webhook_sink):
    emulator.scenario("447700900001", "read", after=1, reply="ack")
    dispatch([WHATSAPP, SMS])

    [inbound] = emulator.wait_for(lambda: webhook_sink.bodies("/webhooks/inbound"), lambda b: len(b) == 1)

    assert inbound["message"]["content"]["text"] == "ack"
    assert inbound["from"] == {"number": "447700900001", "type": "whatsapp"}


def test_a_message_can_be_marked_read(emulator, webhook_sink):
    emulator.scenario("447700900001", "never_deliver")
    message_uuid = send_page(channel=WHATSAPP, text="db down", client_ref="r")

    emulator.mark_read(message_uuid)

    assert emulator.wait_for(lambda: statuses(webhook_sink, message_uuid), lambda s: len(s) == 3) == [
        "submitted", "delivered", "read"]


def test_an_sms_cannot_be_marked_read(emulator):
    message_uuid = send_page(channel=SMS, text="db down", client_ref="r")

    with pytest.raises(ValueError, match="SMS has no read receipts"):
        emulator.mark_read(message_uuid)


def test_a_limited_scenario_applies_to_the_next_messages_only(emulator):
    emulator.scenario("447700900001", "reject", times=1)

    first = send_page(channel=WHATSAPP, text="one", client_ref="1")
    second = send_page(channel=WHATSAPP, text="two", client_ref="2")

    emulator.wait_for(lambda: {m["message_uuid"]: m["status"] for m in emulator.messages()},
                      lambda s: s == {first: "rejected", second: "delivered"})


def test_scenarios_load_from_a_file(emulator, tmp_path):
    path = tmp_path / "scenarios.json"
    path.write_text(json.dumps({"scenarios": [{"address": "447700900001", "channel": "viber_service",
                                               "action": "read", "after": 30}]}))

    emulator.instance.load_scenario_file(str(path))

    assert emulator.instance.scenarios() == [{"address": "447700900001", "channel": "viber_service_msg",
                                              "action": "read", "after": 30, "reply": "", "times": None}]


def test_a_bad_scenario_is_refused(emulator):
    with pytest.raises(ValueError, match="unknown action"):
        emulator.scenario("447700900001", "explode")


# --- records, reset, process -----------------------------------------------------------------------------


def test_reset_forgets_everything(emulator, webhook_sink):
    send_page(channel=WHATSAPP, text="before", client_ref="r")
    emulator.scenario("447700900002", "reject")
    emulator.fault("500", count=3)

    emulator.reset()

    send_page(channel=SMS, text="after", client_ref="r")  # no fault left
    assert emulator.instance.scenarios() == []
    assert len(emulator.requests()) == 1
    [message] = emulator.wait_for(lambda: emulator.messages(), lambda m: m[0]["status"] == "delivered")
    assert message["text"] == "after"
    assert {b["client_ref"] for b in webhook_sink.bodies()} == {"r"}


def test_it_runs_as_a_process(vonage_keys, settings, tmp_path):
    scenario_file = tmp_path / "scenarios.json"
    scenario_file.write_text(json.dumps([{"address": "447700900001", "action": "reject", "after": 0}]))

    with emulator_process(public_key_path=vonage_keys["public_path"], time_scale=0.01,
                          scenario_file=str(scenario_file)) as control:
        settings.VONAGE_API_URL = control.url
        message_uuid = send_page(channel=WHATSAPP, text="db down", client_ref="r")

        control.wait_for(lambda: control.messages(), lambda m: m and m[0]["status"] == "rejected")
        assert control.requests()[0]["response"] == {"message_uuid": message_uuid}


def test_the_scheduler_runs_thousands_of_timers_none_early():
    scheduler = Scheduler(time_scale=0.01)
    fired: dict[int, float] = {}
    earliest: dict[int, float] = {}
    scheduler.start()
    try:
        for n in reversed(range(5000)):  # latest first: the heap, not insertion order, decides
            delay = n / 100  # up to 50 emulated s, half a second here
            earliest[n] = time.monotonic() + delay * 0.01
            scheduler.call_later(delay, lambda n=n: fired.setdefault(n, time.monotonic()))
        deadline = time.monotonic() + 5
        while len(fired) < 5000 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        scheduler.stop()
    assert sorted(fired) == list(range(5000))
    assert all(fired[n] >= earliest[n] for n in fired)
