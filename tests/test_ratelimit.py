"""Rate limiting of the public endpoints: a flood from one address is answered 429 with Retry-After and
stores nothing; other addresses, and the default limit, are untouched."""

import json

import pytest
from django.test import Client

from escalation import ratelimit
from escalation.models import Escalation, Integration, WebhookEvent
from escalation.ratelimit import TokenBuckets
from tests.personas import MICHAEL, TONY, make_roster
from tests.test_webhooks import unknown_status

pytestmark = pytest.mark.django_db

STATUS = json.dumps(unknown_status())


@pytest.fixture(autouse=True)
def _fresh_buckets():
    ratelimit.buckets.clear()
    yield
    ratelimit.buckets.clear()


@pytest.fixture
def tight(settings):
    settings.RATE_LIMIT_PER_SECOND = 0.5
    settings.RATE_LIMIT_BURST = 3


def webhook(address: str = "203.0.113.7", **headers: str):
    return Client(REMOTE_ADDR=address).post("/webhooks/status", data=STATUS, content_type="application/json",
                                            headers=headers)


def test_a_bucket_spends_its_burst_then_refills_at_the_rate():
    buckets = TokenBuckets()
    assert [buckets.take("a", rate=2, burst=3, now=100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a", rate=2, burst=3, now=100.0) == pytest.approx(0.5)
    assert buckets.take("a", rate=2, burst=3, now=100.5) == 0.0
    assert buckets.take("a", rate=2, burst=3, now=100.5) == pytest.approx(0.5)
    # Idle for long: full again, never more than the burst.
    assert [buckets.take("a", rate=2, burst=3, now=1000.0) for _ in range(4)][-1] > 0


def test_each_address_has_its_own_bucket():
    buckets = TokenBuckets()
    assert buckets.take("a", rate=1, burst=1, now=0.0) == 0.0
    assert buckets.take("a", rate=1, burst=1, now=0.0) > 0
    assert buckets.take("b", rate=1, burst=1, now=0.0) == 0.0


def test_idle_buckets_are_forgotten_so_the_table_stays_small():
    buckets = TokenBuckets(max_keys=100)
    for n in range(1000):
        buckets.take(f"10.0.{n // 256}.{n % 256}", rate=10, burst=10, now=float(n))
    assert len(buckets._buckets) <= 100


def test_a_flood_gets_429_with_retry_after_and_stores_nothing(tight):
    assert [webhook().status_code for _ in range(3)] == [204, 204, 204]
    stored = WebhookEvent.objects.count()
    refused = webhook()
    assert refused.status_code == 429
    assert refused["Retry-After"] == "2"  # one token at 0.5/s
    assert "203.0.113.7" in refused.json()["error"]
    assert WebhookEvent.objects.count() == stored
    # Another address is not held back by the flood.
    assert webhook("198.51.100.1").status_code == 204


def test_the_inbound_webhook_and_alert_intake_are_limited_too(tight):
    integration = Integration.objects.create(name="am", roster=make_roster(TONY, MICHAEL), format="generic")
    client = Client(REMOTE_ADDR="203.0.113.9")
    body = json.dumps({"summary": "disk full", "dedup_key": "disk"})
    answers = [client.post(f"/integrations/{integration.token}/", data=body, content_type="application/json")
               for _ in range(2)]
    answers.append(client.post("/webhooks/inbound", data="{}", content_type="application/json"))
    answers.append(client.post(f"/integrations/{integration.token}/", data=body, content_type="application/json"))
    assert [a.status_code for a in answers] == [200, 200, 400, 429]
    assert Escalation.objects.count() == 1
    # Guessing tokens is limited like any other request.
    assert client.post("/integrations/not-a-token/", data=body, content_type="application/json").status_code == 429


def test_behind_a_proxy_the_configured_header_names_the_client(tight, settings):
    settings.RATE_LIMIT_IP_HEADER = "X-Forwarded-For"
    for _ in range(3):
        assert webhook("127.0.0.1", **{"X-Forwarded-For": "203.0.113.7"}).status_code == 204
    # What the client wrote before the proxy's own entry does not move it to a fresh bucket.
    assert webhook("127.0.0.1", **{"X-Forwarded-For": "192.0.2.1, 203.0.113.7"}).status_code == 429
    assert webhook("127.0.0.1", **{"X-Forwarded-For": "198.51.100.1"}).status_code == 204


def test_zero_turns_it_off(settings):
    settings.RATE_LIMIT_PER_SECOND = 0
    settings.RATE_LIMIT_BURST = 1
    assert {webhook().status_code for _ in range(20)} == {204}


def test_the_default_lets_a_vonage_burst_through():
    # A big escalation storm: every status of hundreds of messages within a moment, from Vonage's address.
    assert {webhook("216.147.0.1").status_code for _ in range(1000)} == {204}
