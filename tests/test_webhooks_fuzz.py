"""Thousands of generated bodies and headers against the webhook endpoints: never a 5xx, and nothing is
stored for a refused request.

Besides random bytes and random JSON, the bodies are Vonage's own shapes with fields dropped, replaced or
added, pointing at real messages, so the parser's every branch and the engine's application both run.
"""

import json
import uuid

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from escalation.models import WebhookEvent
from escalation.services.escalations import escalation_fire
from tests.conftest import TEST_SIGNATURE_SECRET
from tests.personas import MICHAEL, TONY, make_roster
from tests.signing import hs256_token, vonage_claims, vonage_signature
from tests.test_webhooks import T0, dispatch_status, paged, sent, v1_status

pytestmark = pytest.mark.django_db

FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
URLS = st.sampled_from(["/webhooks/status", "/webhooks/inbound"])
HEADER_TEXT = st.text(alphabet=st.characters(max_codepoint=255, exclude_characters="\r\n"), max_size=300)

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=60)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


@pytest.fixture
def signed(settings) -> None:
    # Once per test, not per example: each assignment to pytest-django's `settings` stacks another layer.
    settings.VONAGE_SIGNATURE_SECRET = TEST_SIGNATURE_SECRET


@pytest.fixture
def known(settings) -> dict:
    """Real rows for the bodies to point at: a Messages-mode message and a Dispatch workflow."""
    settings.ESCALATION_API = "messages"
    escalation = escalation_fire(roster=make_roster(TONY, MICHAEL), message="Fuzz", now=T0)
    message = sent(paged(escalation, 1), 0)
    dispatch_uuid = str(uuid.uuid4())
    paged(escalation, 0, dispatch_uuid=dispatch_uuid)
    return {"message": message, "dispatch_uuid": dispatch_uuid}


def vonage_bodies(known: dict) -> list[dict]:
    message, dispatch_uuid = known["message"], known["dispatch_uuid"]
    return [
        v1_status(message, "delivered"),
        dispatch_status(str(uuid.uuid4()), dispatch_uuid, {"type": "messenger", "id": "23037543461244470"}, "read"),
        {"template": "failover", "status": "completed", "timestamp": "2026-03-01T10:10:00Z",
         "dispatch_uuid": dispatch_uuid, "_links": {"messages": [
             {"message_uuid": str(message.message_uuid), "channel": "viber_service_msg", "status": "read"}]}},
        {"message_uuid": str(uuid.uuid4()), "to": {"id": "1923256201474167", "type": "messenger"},
         "from": {"id": "23037543461244470", "type": "messenger"}, "timestamp": "2026-03-01T10:01:00Z",
         "message": {"content": {"type": "text", "text": "on it"}}},
        {"channel": "viber_service", "message_uuid": str(uuid.uuid4()), "to": "oncall-viber", "from": "447700900002",
         "timestamp": "2026-03-01T10:05:00Z", "message_type": "text", "text": "ack"},
    ]


# Values a mutation may put in a field: random JSON, or plausible ones that reach deeper branches.
def field_values(known: dict):
    plausible = st.sampled_from([
        str(known["message"].message_uuid), known["message"].client_ref, known["dispatch_uuid"], str(uuid.uuid4()),
        "read", "delivered", "rejected", "submitted", "undeliverable", "completed", "error", "sms", "mms",
        "viber_service", "viber_service_msg", "messenger", "whatsapp", "447700900002", "23037543461244470", "",
        "2026-03-01T10:00:00Z", "0001-01-01T00:00:00+01:00", {"type": "sms"}, {"number": "1"}, [], {},
        {"dispatch": {"href": "v0.1/dispatch/" + known["dispatch_uuid"]}}, {"code": 1300, "reason": "x"},
    ])
    return plausible | json_values


@st.composite
def mutated_bodies(draw, known: dict) -> bytes:
    body = dict(draw(st.sampled_from(vonage_bodies(known))))
    for key in draw(st.lists(st.sampled_from(sorted(body)), max_size=3, unique=True)):
        if draw(st.booleans()):
            del body[key]
        else:
            body[key] = draw(field_values(known))
    for key in draw(st.lists(st.sampled_from(["status", "text", "message", "template", "_links", "channel",
                                              "client_ref", "error", "message_type", "dispatch_uuid"]), max_size=2)):
        body[key] = draw(field_values(known))
    return json.dumps(body).encode()


random_bodies = (
    st.binary(max_size=400)
    | json_values.map(lambda value: json.dumps(value).encode())
    | st.dictionaries(st.text(max_size=12), json_values, max_size=6).map(lambda value: json.dumps(value).encode())
)


def check(response, before: int) -> None:
    assert response.status_code < 500, response.content
    after = WebhookEvent.objects.count()
    if response.status_code == 204:
        assert after - before in (0, 1)  # 0: a duplicate of an event already stored
    else:
        assert after == before, f"{response.status_code} but stored: {response.content!r}"
        assert response.json()["error"]


@settings(FUZZ, max_examples=1500)
@given(data=st.data())
def test_random_and_mangled_bodies_never_cause_a_5xx(known, data):
    raw = data.draw(random_bodies | mutated_bodies(known))
    url = data.draw(URLS)
    before = WebhookEvent.objects.count()
    response = Client().post(url, data=raw, content_type="application/json")
    check(response, before)
    assert response.status_code in (204, 400)


@settings(FUZZ, max_examples=700)
@given(data=st.data())
def test_headers_that_are_not_vonages_signature_are_refused_with_401(known, signed, data):
    raw = data.draw(mutated_bodies(known))
    claims = vonage_claims(raw, now=timezone.now())
    case = data.draw(st.sampled_from(["text", "bearer text", "algorithm", "payload_hash", "iat", "iss"]))
    if case == "text":
        header = data.draw(HEADER_TEXT)
    elif case == "bearer text":
        header = "Bearer " + data.draw(HEADER_TEXT)
    elif case == "algorithm":
        alg = data.draw(st.sampled_from(["none", "HS384", "HS512", "RS256", "", "hs256", "HS256 "]) | json_values)
        header = "Bearer " + hs256_token({"alg": alg, "typ": "JWT"}, claims)
    elif case == "payload_hash":  # correctly signed, but for another body
        value = data.draw(field_values(known))
        assume(not (isinstance(value, str) and value.lower() == claims["payload_hash"]))
        header = signed_with(claims, payload_hash=value)
    elif case == "iat":  # correctly signed, but outside the window or not a time at all
        value = data.draw(
            (st.integers(max_value=-26 * 3600) | st.integers(min_value=3600)).map(lambda offset: claims["iat"] + offset)
            | json_values.filter(lambda value: isinstance(value, bool) or not isinstance(value, int | float))
        )
        header = signed_with(claims, iat=value)
    else:
        value = data.draw(field_values(known))
        assume(value not in ("Vonage", None))
        header = signed_with(claims, iss=value)
    response = Client().post(data.draw(URLS), data=raw, content_type="application/json",
                             headers={"Authorization": header})
    assert response.status_code == 401, (header, response.content)
    assert not WebhookEvent.objects.exists()


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_claims_that_do_not_matter_do_not_refuse_a_signature(known, signed, data):
    raw = data.draw(mutated_bodies(known))
    claims = vonage_claims(raw, now=timezone.now())
    changes = data.draw(st.fixed_dictionaries({}, optional={
        "jti": st.text(max_size=40),
        "sub": st.text(max_size=40),
        "api_key": json_values,
        "application_id": json_values,
        "extra": json_values,
    }))
    header = signed_with(claims, **changes)
    response = Client().post(data.draw(URLS), data=raw, content_type="application/json",
                             headers={"Authorization": header})
    assert response.status_code in (204, 400), response.content


@settings(FUZZ, max_examples=500)
@given(data=st.data())
def test_properly_signed_mangled_bodies_never_cause_a_5xx(known, signed, data):
    raw = data.draw(random_bodies | mutated_bodies(known))
    before = WebhookEvent.objects.count()
    response = Client().post(data.draw(URLS), data=raw, content_type="application/json",
                             headers={"Authorization": vonage_signature(raw, now=timezone.now())})
    check(response, before)
    assert response.status_code in (204, 400)


@settings(FUZZ, max_examples=200)
@given(method=st.sampled_from(["GET", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "BREW"]), url=URLS,
       raw=random_bodies)
def test_other_methods_are_refused_with_405(method, url, raw):
    response = Client().generic(method, url, data=raw, content_type="application/json")
    assert response.status_code == 405
    assert not WebhookEvent.objects.exists()


def signed_with(claims: dict, **changes) -> str:
    return "Bearer " + hs256_token({"alg": "HS256", "typ": "JWT"}, {**claims, **changes})
