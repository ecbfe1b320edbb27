"""Thousands of generated requests against `POST /integrations/<token>/`: never a 5xx, every request that
reaches an integration is recorded exactly once, and a refused request stores nothing else (no escalation,
no event, no state changed).

Bodies are random bytes, random JSON, and Alertmanager, Grafana and generic bodies with fields dropped,
replaced or added, at the top and inside an alert, so the parser's branches and the firing path both
run. Tokens, methods, content types and headers (including a hostile X-Forwarded-For read by the rate
limiter) are generated too. The budget is fixed (max_examples) so CI time stays flat.
"""

import copy
import json
from pathlib import Path
from urllib.parse import quote

import pytest
from django.test import Client
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from escalation.models import AlertReceipt, Escalation, Event, Integration, IntegrationFormat
from tests.personas import MICHAEL, TONY, make_roster

pytestmark = pytest.mark.django_db

FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                                      HealthCheck.data_too_large])
ALERTS = Path(__file__).parent / "fixtures" / "alerts"
REAL = {
    IntegrationFormat.ALERTMANAGER: [json.loads((ALERTS / n).read_text()) for n in
                                     ("alertmanager_firing.json", "alertmanager_still_firing.json",
                                      "alertmanager_resolved.json")],
    IntegrationFormat.GRAFANA: [json.loads((ALERTS / n).read_text()) for n in
                                ("grafana_firing.json", "grafana_resolved.json")],
    IntegrationFormat.GENERIC: [{"summary": "Disk full on db-1", "dedup_key": "disk-db-1"},
                                {"summary": "Disk full on db-1", "dedup_key": "disk-db-1", "status": "resolved"},
                                {"summary": "Backups failed"}],
}
ANSWERS = {200, 400, 403, 404, 405, 413, 422}

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
plausible = st.sampled_from([
    "firing", "resolved", "4", "3", "", " ", "\n", "x" * 5000, "\u202e\u0000", "\ud800", "a\udfffb" * 100, 0, -1,
    2**70, 1.5, True, None,
    [], {}, [{}], [None], {"alertname": None}, {"summary": ["a"]}, {"summary": "a\nb\tc"},
    "0001-01-01T00:00:00Z", "not-a-date", {"fingerprint": 7}, [{"status": "firing"}],
])
values = plausible | json_values
KEYS = ["version", "groupKey", "status", "alerts", "commonLabels", "commonAnnotations", "title", "message", "state",
        "orgId", "summary", "dedup_key", "truncatedAlerts", "receiver"]
ALERT_KEYS = ["status", "labels", "annotations", "fingerprint", "startsAt", "endsAt"]


@st.composite
def mutated(draw, format: str) -> bytes:
    # Copies throughout: Hypothesis may hand out one mutable instance twice, and an alert assigned into
    # itself would be a circular body, not a hostile one.
    body = copy.deepcopy(draw(st.sampled_from(REAL[format])))
    for key in draw(st.lists(st.sampled_from(sorted(body)), max_size=3, unique=True)):
        if draw(st.booleans()):
            del body[key]
        else:
            body[key] = copy.deepcopy(draw(values))
    for key in draw(st.lists(st.sampled_from(KEYS), max_size=2)):
        body[key] = copy.deepcopy(draw(values))
    alerts = body.get("alerts")
    if isinstance(alerts, list) and alerts and isinstance(alerts[0], dict):
        for key in draw(st.lists(st.sampled_from(ALERT_KEYS), max_size=3)):
            if draw(st.booleans()):
                alerts[0].pop(key, None)
            else:
                alerts[0][key] = copy.deepcopy(draw(values))
    return json.dumps(body).encode()


def random_bodies() -> st.SearchStrategy[bytes]:
    return (st.binary(max_size=300)
            | json_values.map(lambda v: json.dumps(v).encode())
            | st.just(b"[" * 5000 + b"]" * 5000)
            | st.text(max_size=200).map(str.encode))


@pytest.fixture
def integrations(settings) -> dict[str, Integration]:
    settings.RATE_LIMIT_PER_SECOND = 0  # the limiter has its own tests; here every request must reach the view
    roster = make_roster(TONY, MICHAEL)
    made = {f: Integration.objects.create(name=f, roster=roster, format=f) for f in IntegrationFormat.values}
    made["disabled"] = Integration.objects.create(name="off", roster=roster, format="generic", is_enabled=False)
    return made


def snapshot() -> tuple:
    return (Escalation.objects.count(), Event.objects.count(),
            tuple(Escalation.objects.order_by("pk").values_list("state", flat=True)))


def post(url: str, raw: bytes, *, content_type: str = "application/json", headers: dict | None = None):
    # generic() sends the bytes as they are; post() would re-encode them for a charset in the content type.
    return Client().generic("POST", url, data=raw, content_type=content_type, headers=headers)


def receipts() -> int:
    """The newest record's id: new records are counted above it (pruning old ones changes nothing here)."""
    return AlertReceipt.objects.order_by("-id").values_list("id", flat=True).first() or 0


def check(response, before: tuple, receipts_before: int) -> None:
    event(f"answered {response.status_code}")  # --hypothesis-show-statistics: how many reached the firing path
    assert response.status_code < 500, response.content[:500]
    assert response.status_code in ANSWERS, (response.status_code, response.content[:300])
    if response.status_code == 200:
        results = response.json()["results"]
        assert all(r["result"] in ("fired", "noted", "resolved", "not open") for r in results)
    else:
        assert snapshot() == before, f"{response.status_code} but something was stored: {response.content[:300]!r}"
    assert AlertReceipt.objects.filter(id__gt=receipts_before).count() == 1


@settings(FUZZ, max_examples=1200)
@given(data=st.data())
def test_generated_bodies_never_cause_a_5xx_and_refusals_store_nothing(integrations, data):
    format = data.draw(st.sampled_from(IntegrationFormat.values))
    raw = data.draw(mutated(format) | random_bodies())
    content_type = data.draw(st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded",
                                              "application/json; charset=latin-1", ""]))
    before, receipts_before = snapshot(), receipts()
    response = post(f"/integrations/{integrations[format].token}/", raw, content_type=content_type)
    check(response, before, receipts_before)


@settings(FUZZ, max_examples=400)
@given(token=st.text(min_size=1, max_size=80) | st.sampled_from(["\x00" * 8, "abcdefgh\x00", "%00" * 10]),
       raw=random_bodies())
def test_any_other_token_is_404_and_stores_nothing(integrations, token, raw):
    if token in {i.token for i in integrations.values()}:
        return
    before = snapshot()
    receipts_before = receipts()
    response = post(f"/integrations/{quote(token, safe='')}/", raw)
    assert response.status_code == 404, (token, response.status_code)
    assert snapshot() == before
    assert not AlertReceipt.objects.filter(id__gt=receipts_before).exists()


@settings(FUZZ, max_examples=200)
@given(format=st.sampled_from(IntegrationFormat.values),
       method=st.sampled_from(["GET", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "BREW"]), raw=random_bodies())
def test_other_methods_are_405_and_store_nothing(integrations, format, method, raw):
    before = snapshot()
    response = Client().generic(method, f"/integrations/{integrations[format].token}/", data=raw,
                                content_type="application/json")
    assert response.status_code == 405
    assert snapshot() == before


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_a_disabled_integration_refuses_everything(integrations, data):
    before = snapshot()
    raw = data.draw(mutated(IntegrationFormat.GENERIC) | random_bodies())
    response = post(f"/integrations/{integrations['disabled'].token}/", raw)
    assert response.status_code == 403
    assert snapshot() == before


HEADER_TEXT = st.text(alphabet=st.characters(max_codepoint=255, exclude_characters="\r\n"), max_size=200)


@pytest.fixture
def behind_a_proxy(integrations, settings) -> None:
    # Once per test, not per example (each assignment stacks another settings layer). The rate limiter
    # reads the client's address from this header behind a proxy: any value must do.
    settings.RATE_LIMIT_PER_SECOND = 1000
    settings.RATE_LIMIT_IP_HEADER = "X-Forwarded-For"


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_hostile_headers_change_nothing_but_the_answer(integrations, behind_a_proxy, data):
    format = data.draw(st.sampled_from(IntegrationFormat.values))
    headers = data.draw(st.dictionaries(
        st.sampled_from(["X-Forwarded-For", "Authorization", "Content-Encoding", "Accept", "X-Real-IP",
                         "Transfer-Encoding", "Expect", "Cookie", "X-Forwarded-Proto"]),
        HEADER_TEXT, max_size=4))
    raw = data.draw(mutated(format))
    before, receipts_before = snapshot(), receipts()
    response = post(f"/integrations/{integrations[format].token}/", raw, headers=headers)
    check(response, before, receipts_before)
