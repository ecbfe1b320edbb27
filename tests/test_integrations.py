"""Alert intake: `POST /integrations/<token>/` with real Alertmanager and Grafana bodies.

The fixtures in tests/fixtures/alerts/ are written out from the documented formats (Alertmanager's
webhook_config payload version 4; Grafana alerting's webhook contact point). Firing only creates the
escalation; the worker sends later, so nothing here talks to Vonage.
"""

import json
import threading
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from escalation.engine.plan import page_text_length
from escalation.engine.worker import run_due
from escalation.integrations.parse import DEDUP_KEY_MAX, BadPayload, parse
from escalation.models import (
    Alert,
    AlertState,
    Escalation,
    EscalationState,
    Event,
    EventKind,
    Integration,
    IntegrationFormat,
    Page,
    Sender,
)
from escalation.services import alerts as alerts_service
from escalation.services import integrations as service
from escalation.services.alerts import alert_digest, text_budget
from tests.conftest import requires_postgres
from tests.personas import ANNA, MICHAEL, TONY, make_roster

pytestmark = pytest.mark.django_db

ALERTS = Path(__file__).parent / "fixtures" / "alerts"
AM_GROUP_KEY = '{}/{severity="critical"}:{alertname="InstanceDown"}'


@pytest.fixture(autouse=True)
def _site_url(settings):
    settings.SITE_URL = "https://oncall.example.com"


def payload(name: str) -> dict:
    return json.loads((ALERTS / name).read_text())


def make_integration(format: str = IntegrationFormat.ALERTMANAGER, *people: tuple, name: str = "prometheus",
                     ) -> Integration:
    roster = make_roster(*(people or (TONY, MICHAEL)))
    return Integration.objects.create(name=name, roster=roster, format=format)


def post(integration_or_token: Integration | str, body: object, client: Client | None = None):
    token = integration_or_token if isinstance(integration_or_token, str) else integration_or_token.token
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return (client or Client()).post(f"/integrations/{token}/", data=data, content_type="application/json")


def escalations() -> list[Escalation]:
    return list(Escalation.objects.order_by("id"))


def notes(escalation: Escalation) -> list[str]:
    return list(Event.objects.filter(escalation=escalation, kind=EventKind.NOTE).values_list("text", flat=True))


# --- The documented life of an alert: fire, repeat, resolve, fire again ---

FORMATS = [
    (IntegrationFormat.ALERTMANAGER, "alertmanager_firing.json", "alertmanager_still_firing.json",
     "alertmanager_resolved.json"),
    (IntegrationFormat.GRAFANA, "grafana_firing.json", "grafana_firing.json", "grafana_resolved.json"),
]


@pytest.mark.parametrize(("format", "firing", "repeat", "resolved"), FORMATS)
def test_it_fires_notes_repeats_cancels_on_resolve_and_fires_again(format, firing, repeat, resolved):
    integration = make_integration(format)

    response = post(integration, payload(firing))
    assert response.status_code == 200, response.content
    [first] = escalations()
    [alert] = Alert.objects.all()
    assert response.json() == {"results": [{"dedup_key": payload(firing)["groupKey"], "result": "fired",
                                            "alert_id": alert.pk, "escalation_id": first.pk}]}
    assert (alert.state, alert.escalation, alert.integration) == (AlertState.TRIGGERED, first, integration)
    assert first.state == EscalationState.ACTIVE
    assert first.integration == integration
    assert first.roster == integration.roster
    assert first.fired_by_name == f"integration {integration.name}"
    assert first.dedup_key == payload(firing)["groupKey"]

    # Alertmanager repeats a group on every group_interval / repeat_interval while it fires.
    response = post(integration, payload(repeat))
    assert response.json()["results"][0]["result"] == "noted"
    assert escalations() == [first]
    assert len(notes(first)) == 1
    alert.refresh_from_db()
    assert (alert.state, alert.repeats) == (AlertState.TRIGGERED, 1)

    response = post(integration, payload(resolved))
    assert response.json()["results"][0] == {"dedup_key": first.dedup_key, "result": "resolved",
                                             "alert_id": alert.pk, "escalation_id": first.pk}
    alert.refresh_from_db()
    assert (alert.state, alert.resolved_by_name) == (AlertState.RESOLVED, f"integration {integration.name}")
    first.refresh_from_db()
    assert first.state == EscalationState.CANCELLED
    assert first.outcome == f"cancelled by integration {integration.name}: resolved at source"
    assert first.next_action_at is None

    response = post(integration, payload(firing))
    assert response.json()["results"][0]["result"] == "fired"
    first_again, second = escalations()
    assert first_again == first and first_again.state == EscalationState.CANCELLED
    assert second.state == EscalationState.ACTIVE
    assert second.dedup_key == first.dedup_key
    old, new = Alert.objects.order_by("id")
    assert (old, old.state) == (alert, AlertState.RESOLVED)
    assert (new.state, new.escalation) == (AlertState.TRIGGERED, second)


def test_a_cancelled_alert_pages_nobody_else(emulator):
    integration = make_integration()
    post(integration, payload("alertmanager_firing.json"))
    [escalation] = escalations()
    run_due()
    assert Page.objects.filter(escalation=escalation).count() == 1
    sent_before = len(emulator.requests())

    post(integration, payload("alertmanager_resolved.json"))
    run_due()
    escalation.refresh_from_db()
    assert escalation.state == EscalationState.CANCELLED
    assert Page.objects.filter(escalation=escalation).count() == 1
    assert len(emulator.requests()) == sent_before


def test_the_alertmanager_message_says_what_is_wrong_and_links_back():
    integration = make_integration()
    post(integration, payload("alertmanager_firing.json"))
    [escalation] = escalations()
    link = f"https://oncall.example.com/admin/escalation/integration/{integration.pk}/alert/{alert_digest(AM_GROUP_KEY)}/"
    assert escalation.message == f"[FIRING:2] InstanceDown: Main server main-1 is down (and 1 more) {link}"


def test_the_grafana_message_uses_its_title_and_summary():
    integration = make_integration(IntegrationFormat.GRAFANA)
    post(integration, payload("grafana_firing.json"))
    [escalation] = escalations()
    assert escalation.message.startswith(
        "[FIRING:1] Disk almost full Infrastructure (main-1 /var): /var on main-1 is 97% full http"
    )


def test_the_message_fits_the_tightest_channel_on_the_roster():
    # Tony has Messenger (640 characters), the tightest limit; his name is put before the text.
    integration = make_integration(IntegrationFormat.GENERIC, TONY, ANNA)
    budget = text_budget(integration.roster)
    assert budget == 640 - page_text_length("Tony", "")
    response = post(integration, {"summary": "disk full " * 200, "dedup_key": "disk"})
    assert response.status_code == 200, response.content
    [escalation] = escalations()
    assert len(escalation.message) == budget
    link = f"https://oncall.example.com/admin/escalation/integration/{integration.pk}/alert/{alert_digest('disk')}/"
    assert escalation.message.startswith("disk full disk full")
    assert escalation.message.endswith("... " + link)


def test_the_link_leads_to_the_newest_escalation_for_the_alert(admin_client):
    integration = make_integration()
    post(integration, payload("alertmanager_firing.json"))
    post(integration, payload("alertmanager_resolved.json"))
    post(integration, payload("alertmanager_firing.json"))
    newest = escalations()[-1]
    path = f"/admin/escalation/integration/{integration.pk}/alert/{alert_digest(AM_GROUP_KEY)}/"
    response = admin_client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/admin/escalation/escalation/{newest.pk}/change/"
    assert admin_client.get(path.replace(alert_digest(AM_GROUP_KEY), "0" * 16)).status_code == 404


def test_a_resolve_without_an_active_escalation_is_only_noted():
    integration = make_integration()
    response = post(integration, payload("alertmanager_resolved.json"))
    assert response.json()["results"] == [{"dedup_key": AM_GROUP_KEY, "result": "not open", "alert_id": None,
                                           "escalation_id": None}]
    assert escalations() == []


def test_a_resolve_after_acknowledgement_is_noted_on_the_timeline():
    from escalation.services.escalations import escalation_acknowledge

    integration = make_integration()
    post(integration, payload("alertmanager_firing.json"))
    [escalation] = escalations()
    escalation_acknowledge(escalation=escalation, person_index=0, by_name="Tony", how="replied")
    response = post(integration, payload("alertmanager_resolved.json"))
    assert response.json()["results"][0]["result"] == "resolved"
    escalation.refresh_from_db()
    assert escalation.state == EscalationState.ACKNOWLEDGED
    assert notes(escalation) == ["Resolved at source (prometheus); the escalation had already ended acknowledged: "
                                 "Tony: replied"]


def test_a_resolve_after_a_delivery_says_reached_not_acknowledged():
    """Issue 15 §1: the answer and the alert's note name a reached escalation apart from an acknowledged one."""
    from escalation.services.escalations import escalation_acknowledge

    integration = make_integration()
    post(integration, payload("alertmanager_firing.json"))
    [escalation] = escalations()
    escalation_acknowledge(escalation=escalation, person_index=0, by_name="Tony", how="SMS delivered at 03:14:07 UTC",
                           reached=True)
    response = post(integration, payload("alertmanager_resolved.json"))
    assert response.json()["results"][0]["result"] == "resolved"
    escalation.refresh_from_db()
    assert escalation.state == EscalationState.REACHED
    assert notes(escalation) == ["Resolved at source (prometheus); the escalation had already ended reached: "
                                 "Tony: SMS delivered at 03:14:07 UTC"]


def test_the_same_alert_on_another_integration_is_another_escalation():
    first = make_integration()
    second = Integration.objects.create(name="prometheus-eu", roster=first.roster, format=first.format)
    post(first, payload("alertmanager_firing.json"))
    post(second, payload("alertmanager_firing.json"))
    assert [e.integration for e in escalations()] == [first, second]


# --- The generic format ---

def test_generic_fires_joins_and_resolves_by_dedup_key():
    integration = make_integration(IntegrationFormat.GENERIC)
    body = {"summary": "Main server is down", "dedup_key": "main-server", "status": "firing"}
    assert post(integration, body).json()["results"][0]["result"] == "fired"
    assert post(integration, body).json()["results"][0]["result"] == "noted"
    [escalation] = escalations()
    assert escalation.message.startswith("Main server is down http")
    resolved = post(integration, {"dedup_key": "main-server", "status": "resolved"})
    assert resolved.json()["results"][0]["result"] == "resolved"
    escalation.refresh_from_db()
    assert escalation.state == EscalationState.CANCELLED


def test_generic_without_a_dedup_key_fires_every_time():
    integration = make_integration(IntegrationFormat.GENERIC)
    post(integration, {"summary": "Main server is down"})
    post(integration, {"summary": "Main server is down"})
    first, second = escalations()
    assert first.state == second.state == EscalationState.ACTIVE
    assert first.dedup_key != second.dedup_key


# --- Refusals ---

def test_an_unknown_token_is_404_and_looks_like_any_missing_page():
    integration = make_integration()
    unknown = post("x" * len(integration.token), payload("alertmanager_firing.json"))
    near_miss = post(integration.token[:-1] + ("A" if integration.token[-1] != "A" else "B"),
                     payload("alertmanager_firing.json"))
    short = post(integration.token[:4], payload("alertmanager_firing.json"))
    no_route = Client().post("/no-such-page/", data="{}", content_type="application/json")
    assert unknown.status_code == near_miss.status_code == short.status_code == no_route.status_code == 404
    assert unknown.content == near_miss.content == short.content == no_route.content
    assert escalations() == []


def test_the_token_match_is_exact_even_where_the_database_ignores_case():
    integration = make_integration()
    swapped = integration.token.swapcase()
    assert swapped != integration.token
    assert post(swapped, payload("alertmanager_firing.json")).status_code == 404


def test_a_disabled_integration_is_403_and_fires_nothing():
    integration = make_integration()
    integration.is_enabled = False
    integration.save()
    response = post(integration, payload("alertmanager_firing.json"))
    assert response.status_code == 403
    assert "disabled" in response.json()["error"]
    assert escalations() == []


def test_a_rotated_token_stops_working_at_once():
    integration = make_integration()
    old = integration.token
    service.integration_rotate_token(integration=integration)
    assert post(old, payload("alertmanager_firing.json")).status_code == 404
    assert post(integration.token, payload("alertmanager_firing.json")).status_code == 200


@pytest.mark.parametrize(("format", "body", "problem"), [
    (IntegrationFormat.ALERTMANAGER, b"status=firing", "The body is not JSON"),
    (IntegrationFormat.ALERTMANAGER, b"\xff\xfe{", "The body is not JSON"),
    (IntegrationFormat.ALERTMANAGER, [], "the body must be a JSON object, got an array"),
    (IntegrationFormat.ALERTMANAGER, {"status": "firing", "groupKey": "g"}, "alerts must be an array, got null"),
    (IntegrationFormat.ALERTMANAGER, {**payload("alertmanager_firing.json"), "status": "on fire"},
     "status must be \"firing\" or \"resolved\", got 'on fire'"),
    (IntegrationFormat.ALERTMANAGER, {**payload("alertmanager_firing.json"), "alerts": [{"labels": []}]},
     "alerts[0].labels must be a JSON object, got an array"),
    (IntegrationFormat.ALERTMANAGER, payload("grafana_firing.json"),
     "version '1' is not Alertmanager's webhook version \"4\""),
    (IntegrationFormat.ALERTMANAGER, {**payload("alertmanager_firing.json"), "groupKey": None,
                                      "alerts": [{"status": "firing", "labels": {}}]},
     "groupKey is missing and alerts[0] has no fingerprint"),
    (IntegrationFormat.GRAFANA, {"ruleName": "cpu", "state": "alerting", "evalMatches": []},
     "legacy Grafana alerting body"),
    (IntegrationFormat.GENERIC, {"dedup_key": "x"}, "summary is missing or empty"),
    (IntegrationFormat.GENERIC, {"summary": "down", "status": "resolved"}, "needs the dedup_key"),
    (IntegrationFormat.GENERIC, {"summary": ["down"]}, "summary must be a string, got an array"),
])
def test_a_bad_body_is_400_naming_the_problem(format, body, problem):
    integration = make_integration(format)
    response = post(integration, body)
    assert response.status_code == 400, response.content
    assert problem in response.json()["error"]
    assert escalations() == []


def test_a_deeply_nested_body_is_400_not_500():
    integration = make_integration()
    response = post(integration, "[" * 100_000 + "]" * 100_000)
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["error"]


def test_an_oversized_body_is_413():
    integration = make_integration()
    body = payload("alertmanager_firing.json")
    body["commonAnnotations"] = {"description": "x" * (1024 * 1024)}
    response = post(integration, body)
    assert response.status_code == 413
    assert escalations() == []


def test_the_url_works_without_its_trailing_slash():
    # A POST is not redirected to the slashed URL (Alertmanager would not follow it), it is answered.
    integration = make_integration()
    response = Client().post(f"/integrations/{integration.token}", data=json.dumps(payload("alertmanager_firing.json")),
                             content_type="application/json")
    assert response.status_code == 200


def test_only_post_is_accepted():
    integration = make_integration()
    assert Client().get(f"/integrations/{integration.token}/").status_code == 405


def test_it_needs_no_csrf_token():
    integration = make_integration()
    response = post(integration, payload("alertmanager_firing.json"), client=Client(enforce_csrf_checks=True))
    assert response.status_code == 200


def test_a_roster_that_cannot_be_paged_is_422_with_the_reason():
    integration = make_integration()
    Sender.objects.filter(channel_type="messenger").delete()
    response = post(integration, payload("alertmanager_firing.json"))
    assert response.status_code == 422
    assert "No sender is configured for Facebook Messenger" in response.json()["error"]
    assert escalations() == []


# --- Parsing details ---

def test_without_a_group_key_each_alert_is_its_own_by_fingerprint():
    body = payload("alertmanager_firing.json")
    del body["groupKey"]
    alerts = parse(IntegrationFormat.ALERTMANAGER, body)
    assert [(a.dedup_key, a.status, a.summary) for a in alerts] == [
        ("5c1f3a9e8b2d4f60", "firing", "Main server main-1 is down"),
        ("a07d2e61c93b5f18", "firing", "Main server main-2 is down"),
    ]


def test_a_long_group_key_is_hashed_to_fit():
    body = payload("alertmanager_firing.json")
    body["groupKey"] = "{}:{" + ", ".join(f'label{i}="{"v" * 20}"' for i in range(20)) + "}"
    [alert] = parse(IntegrationFormat.ALERTMANAGER, body)
    assert len(alert.dedup_key) <= DEDUP_KEY_MAX
    assert alert.dedup_key.startswith("sha256:")
    assert parse(IntegrationFormat.ALERTMANAGER, body) == [alert]


def test_multi_line_annotations_become_one_line():
    body = payload("alertmanager_firing.json")
    body["commonAnnotations"] = {"summary": "Main servers\n  are down\n"}
    [alert] = parse(IntegrationFormat.ALERTMANAGER, body)
    assert alert.summary == "Main servers are down"


def test_a_firing_status_needs_a_firing_alert():
    body = payload("alertmanager_resolved.json")
    body["status"] = "firing"
    with pytest.raises(BadPayload, match="no alert in alerts is firing"):
        parse(IntegrationFormat.ALERTMANAGER, body)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
KEYS = st.sampled_from(["version", "groupKey", "status", "alerts", "labels", "annotations", "fingerprint",
                        "commonLabels", "commonAnnotations", "title", "summary", "dedup_key"])
LOOKALIKE = st.recursive(
    st.none() | st.text(max_size=10) | st.sampled_from(["firing", "resolved", "4"]) | st.integers(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=6),
    max_leaves=25,
)


@pytest.fixture
def one_of_each() -> list[Integration]:
    first = make_integration(IntegrationFormat.ALERTMANAGER, name="alertmanager")
    return [first] + [Integration.objects.create(name=format, roster=first.roster, format=format)
                      for format in (IntegrationFormat.GRAFANA, IntegrationFormat.GENERIC)]


# The integrations are made once for all examples (hence the health check); what the examples fire
# accumulates in the test's transaction, which only makes later examples see more history.
@hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=JSON | LOOKALIKE)
def test_no_body_is_a_server_error(one_of_each, body):
    for integration in one_of_each:
        response = post(integration, body)
        assert response.status_code in (200, 400, 422), (integration.format, body, response.content)


# --- The race the database settles ---

def test_losing_the_race_to_open_the_alert_joins_the_winner(monkeypatch):
    """Another delivery opened the same alert after our look and before our insert: we join its alert."""
    integration = make_integration()
    post(integration, payload("alertmanager_firing.json"))
    [winner] = escalations()
    real_lock_open = alerts_service._lock_open
    looks = []

    def missed_on_the_first_look(integration_id, dedup_key):
        looks.append(dedup_key)
        return None if len(looks) == 1 else real_lock_open(integration_id, dedup_key)

    monkeypatch.setattr(alerts_service, "_lock_open", missed_on_the_first_look)
    response = post(integration, payload("alertmanager_firing.json"))
    assert response.status_code == 200
    [alert] = Alert.objects.all()
    assert response.json()["results"] == [{"dedup_key": AM_GROUP_KEY, "result": "noted", "alert_id": alert.pk,
                                           "escalation_id": winner.pk}]
    assert escalations() == [winner]
    assert len(notes(winner)) == 1
    assert len(looks) == 2


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_one_alert_fire_once():
    integration = make_integration()
    body = json.dumps(payload("alertmanager_firing.json"))
    deliveries = 8
    barrier = threading.Barrier(deliveries)
    statuses: list[int] = []

    def deliver():
        try:
            barrier.wait()
            statuses.append(post(integration, body).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(deliveries)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * deliveries
    [escalation] = escalations()
    assert len(notes(escalation)) == deliveries - 1
    [alert] = Alert.objects.all()
    assert (alert.escalation, alert.repeats, alert.escalations) == (escalation, deliveries - 1, 1)


# --- Admin ---

def test_the_admin_shows_the_url_how_to_set_it_up_and_what_it_fired(admin_client):
    integration = make_integration()
    post(integration, payload("alertmanager_firing.json"))
    [escalation] = escalations()
    page = admin_client.get(f"/admin/escalation/integration/{integration.pk}/change/").content.decode()
    assert f'<a href="/admin/escalation/escalation/{escalation.pk}/change/">#{escalation.pk}</a>' in page
    assert "active: {}/{severity=&quot;critical&quot;}:{alertname=&quot;InstanceDown&quot;}" in page
    url = f"https://oncall.example.com/integrations/{integration.token}<"
    assert url in page
    assert "webhook_configs:" in page
    assert f"/admin/escalation/integration/{integration.pk}/rotate-token/" in page


def test_the_token_is_generated_never_typed(admin_client):
    roster = make_roster(TONY, MICHAEL)
    response = admin_client.post("/admin/escalation/integration/add/", {
        "name": "grafana", "roster": roster.pk, "format": "grafana", "is_enabled": "on", "token": "chosen-token",
    })
    assert response.status_code == 302
    integration = Integration.objects.get(name="grafana")
    assert integration.token != "chosen-token"
    assert len(integration.token) >= 40


def test_rotating_in_the_admin_asks_first_then_shows_the_new_url(admin_client):
    integration = make_integration()
    old = integration.token
    path = f"/admin/escalation/integration/{integration.pk}/rotate-token/"
    asked = admin_client.get(path)
    assert asked.status_code == 200
    assert "stops working at once" in asked.content.decode()
    integration.refresh_from_db()
    assert integration.token == old

    done = admin_client.post(path, {"confirm": "yes"}, follow=True)
    integration.refresh_from_db()
    assert integration.token != old
    assert f"https://oncall.example.com/integrations/{integration.token}<" in done.content.decode()
    assert post(old, payload("alertmanager_firing.json")).status_code == 404


def test_the_rotate_action_rotates_the_selected_integrations(admin_client):
    first = make_integration()
    second = Integration.objects.create(name="grafana", roster=first.roster, format=IntegrationFormat.GRAFANA)
    old = {first.pk: first.token, second.pk: second.token}
    selected = {"action": "rotate_tokens", "_selected_action": [first.pk, second.pk]}
    asked = admin_client.post("/admin/escalation/integration/", selected)
    assert asked.status_code == 200
    assert "Yes, rotate" in asked.content.decode()
    assert dict(Integration.objects.values_list("pk", "token")) == old

    done = admin_client.post("/admin/escalation/integration/", {**selected, "confirm": "yes"})
    assert done.status_code == 302
    now = dict(Integration.objects.values_list("pk", "token"))
    assert now[first.pk] != old[first.pk] and now[second.pk] != old[second.pk]
