"""An alert (integration + alert key) is one incident: triggered, acknowledged, resolved.

The reproduction of issue 13 §2: an Alertmanager group fires, Tony reads the page, Alertmanager re-sends the
still-firing group at its repeat_interval; before the fix a new escalation paged everyone again.
"""

import json
import threading
from datetime import timedelta
from functools import partial
from pathlib import Path

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission, User
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from escalation.engine.worker import run_due
from escalation.integrations.parse import parse
from escalation.models import (
    Alert,
    AlertState,
    Escalation,
    EscalationState,
    Event,
    EventKind,
    Integration,
    Message,
)
from escalation.services.alerts import alert_acknowledge, alert_resolve, alert_trigger
from escalation.services.escalations import escalation_acknowledge, escalation_cancel
from tests.applying import apply_stored_webhooks
from tests.conftest import requires_postgres
from tests.personas import MICHAEL, TONY, make_roster

pytestmark = pytest.mark.django_db

ALERTS = Path(__file__).parent / "fixtures" / "alerts"
T0 = timezone.now().replace(microsecond=0)


def payload(name: str) -> dict:
    return json.loads((ALERTS / name).read_text())


def post(token: str, body: dict):
    return Client().post(f"/integrations/{token}/", data=json.dumps(body), content_type="application/json")


def read_by_tony(message: Message) -> None:
    """Vonage's Messages v1 `read` status for Tony's Messenger message, as the webhook delivers it."""
    body = {"message_uuid": str(message.message_uuid), "to": message.to_address, "from": "1923256201474167",
            "timestamp": "2026-03-14T02:20:05Z", "status": "read", "channel": "messenger",
            "client_ref": message.client_ref}
    response = Client().post("/webhooks/status", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 204
    apply_stored_webhooks()


def test_it_pages_nobody_when_alertmanager_repeats_a_group_tony_acknowledged(messages_mode):
    integration = make_integration()
    assert post(integration.token, payload("alertmanager_firing.json")).status_code == 200
    run_due()
    [escalation] = Escalation.objects.all()
    tony_messenger = Message.objects.get(page__escalation=escalation, channel_index=0)
    read_by_tony(tony_messenger)
    escalation.refresh_from_db()
    assert escalation.state == EscalationState.ACKNOWLEDGED
    sent_before = len(messages_mode.requests())

    # repeat_interval later, the group still fires (one of its two alerts has resolved meanwhile).
    response = post(integration.token, payload("alertmanager_still_firing.json"))
    assert response.status_code == 200
    run_due()
    assert response.json()["results"][0]["result"] == "noted"
    assert list(Escalation.objects.all()) == [escalation]
    assert len(messages_mode.requests()) == sent_before


# --- The same life for each format: fire, acknowledge, repeats page nobody, resolve, fire again ---

FORMATS = [
    ("alertmanager", payload("alertmanager_firing.json"), payload("alertmanager_still_firing.json"),
     payload("alertmanager_resolved.json")),
    ("grafana", payload("grafana_firing.json"), payload("grafana_firing.json"), payload("grafana_resolved.json")),
    ("generic", {"summary": "Disk full on db-1", "dedup_key": "disk-db-1"},
     {"summary": "Disk full on db-1", "dedup_key": "disk-db-1", "status": "firing"},
     {"dedup_key": "disk-db-1", "status": "resolved"}),
]


def make_integration(format: str = "alertmanager", **fields) -> Integration:
    return Integration.objects.create(name="prometheus", roster=make_roster(TONY, MICHAEL), format=format, **fields)


def result(response) -> dict:
    assert response.status_code == 200, response.content
    [only] = response.json()["results"]
    return only


def notes(escalation: Escalation) -> list[str]:
    return list(Event.objects.filter(escalation=escalation, kind=EventKind.NOTE).values_list("text", flat=True))


@pytest.mark.parametrize(("format", "firing", "repeat", "resolved"), FORMATS)
def test_an_acknowledged_alert_stays_acknowledged_until_it_resolves(format, firing, repeat, resolved):
    integration = make_integration(format)
    fired = result(post(integration.token, firing))
    escalation = Escalation.objects.get(pk=fired["escalation_id"])
    escalation_acknowledge(escalation=escalation, person_index=0, by_name="Tony", how="read on Messenger", now=T0)
    alert = Alert.objects.get()
    assert (alert.state, alert.acknowledged_by_name, alert.acknowledged_at) == (AlertState.ACKNOWLEDGED, "Tony", T0)

    for _ in range(3):  # group_interval, repeat_interval, an HA pair's copy
        assert result(post(integration.token, repeat)) == {
            "dedup_key": alert.dedup_key, "result": "noted", "alert_id": alert.pk, "escalation_id": escalation.pk}
    assert list(Escalation.objects.all()) == [escalation]
    alert.refresh_from_db()
    assert (alert.state, alert.repeats, alert.escalations) == (AlertState.ACKNOWLEDGED, 3, 1)
    assert all("acknowledged by Tony" in n and "nobody paged" in n for n in notes(escalation))

    assert result(post(integration.token, resolved))["result"] == "resolved"
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED
    escalation.refresh_from_db()
    assert escalation.state == EscalationState.ACKNOWLEDGED  # Tony's acknowledgement stands
    assert notes(escalation)[-1] == (f"Resolved at source ({integration.name}); the escalation had already ended "
                                     "acknowledged: Tony: read on Messenger")

    again = result(post(integration.token, firing))
    assert again["result"] == "fired"
    assert again["escalation_id"] != escalation.pk and again["alert_id"] != alert.pk
    assert Escalation.objects.get(pk=again["escalation_id"]).state == EscalationState.ACTIVE


def test_a_resolve_cancels_the_escalation_still_paging():
    integration = make_integration()
    fired = result(post(integration.token, payload("alertmanager_firing.json")))
    assert result(post(integration.token, payload("alertmanager_resolved.json")))["result"] == "resolved"
    escalation = Escalation.objects.get(pk=fired["escalation_id"])
    assert (escalation.state, escalation.outcome) == (
        EscalationState.CANCELLED, "cancelled by integration prometheus: resolved at source")
    # The cancellation did not make the alert "acknowledged": it is resolved.
    assert Alert.objects.get().state == AlertState.RESOLVED
    assert result(post(integration.token, payload("alertmanager_resolved.json")))["result"] == "not open"


def test_a_repeat_of_an_alert_nobody_answered_pages_again():
    """The escalation was exhausted (everyone tried, nobody answered) and the source still fires."""
    integration = make_integration()
    first = result(post(integration.token, payload("alertmanager_firing.json")))
    Escalation.objects.filter(pk=first["escalation_id"]).update(
        state=EscalationState.EXHAUSTED, ended_at=T0, next_action_at=None)

    again = result(post(integration.token, payload("alertmanager_still_firing.json")))
    assert again["result"] == "fired"
    assert again["alert_id"] == first["alert_id"]  # still the same incident
    second = Escalation.objects.get(pk=again["escalation_id"])
    assert second.state == EscalationState.ACTIVE
    assert notes(second) == ["Paging again for the same alert: still firing and nobody has acknowledged it."]
    alert = Alert.objects.get()
    assert (alert.state, alert.escalation, alert.escalations) == (AlertState.TRIGGERED, second, 2)
    assert result(post(integration.token, payload("alertmanager_still_firing.json")))["result"] == "noted"


def test_a_cancel_in_the_admin_owns_the_alert():
    integration = make_integration()
    fired = result(post(integration.token, payload("alertmanager_firing.json")))
    escalation_cancel(escalation=fired["escalation_id"], by_name="ann", now=T0)
    alert = Alert.objects.get()
    assert (alert.state, alert.acknowledged_by_name) == (AlertState.ACKNOWLEDGED, "ann")
    assert result(post(integration.token, payload("alertmanager_still_firing.json")))["result"] == "noted"


# --- The acknowledgement timeout (off by default) ---

def test_without_a_timeout_an_acknowledgement_holds_for_days():
    integration = make_integration()
    fired = result(post(integration.token, payload("alertmanager_firing.json")))
    escalation_acknowledge(escalation=fired["escalation_id"], person_index=0, by_name="Tony", how="read", now=T0)
    response = service_trigger(integration, now=T0 + timedelta(days=30))
    assert response.result == "noted"


def service_trigger(integration: Integration, *, now):
    [notice] = parse(integration.format, payload("alertmanager_still_firing.json"))
    return alert_trigger(integration=integration, dedup_key=notice.dedup_key, title=notice.title,
                         summary=notice.summary, now=now)


def test_a_silent_acknowledgement_pages_again_after_the_timeout_at_the_next_repeat():
    integration = make_integration(ack_timeout_hours=4)
    fired = result(post(integration.token, payload("alertmanager_firing.json")))
    escalation_acknowledge(escalation=fired["escalation_id"], person_index=0, by_name="Tony", how="read", now=T0)

    assert service_trigger(integration, now=T0 + timedelta(hours=3, minutes=59)).result == "noted"
    repaged = service_trigger(integration, now=T0 + timedelta(hours=4))
    assert repaged.result == "fired"
    assert repaged.alert_id == fired["alert_id"]
    second = Escalation.objects.get(pk=repaged.escalation_id)
    assert second.state == EscalationState.ACTIVE and second.pk != fired["escalation_id"]
    assert notes(second) == [f"Paging again for the same alert: the acknowledgement of #{fired['escalation_id']} "
                             "timed out."]
    assert notes(Escalation.objects.get(pk=fired["escalation_id"]))[-1] == (
        "Still firing at prometheus 4 h after Tony's acknowledgement: paging again.")
    alert = Alert.objects.get()
    assert (alert.state, alert.acknowledged_at, alert.escalations) == (AlertState.TRIGGERED, None, 2)
    # Michael reads the new page: acknowledged again, and the clock starts again from his acknowledgement.
    later = T0 + timedelta(hours=5)
    escalation_acknowledge(escalation=second, person_index=1, by_name="Michael", how="read", now=later)
    assert service_trigger(integration, now=later + timedelta(hours=3)).result == "noted"


def test_the_timeout_is_a_whole_number_of_hours_from_1():
    integration = make_integration()
    for bad in (0, 721):
        integration.ack_timeout_hours = bad
        with pytest.raises(ValidationError):
            integration.full_clean()


# --- By key, as a PagerDuty Events v2 endpoint will call it ---

def test_acknowledge_and_resolve_by_key():
    integration = make_integration("generic")
    fired = result(post(integration.token, {"summary": "Disk full", "dedup_key": "disk"}))
    acked = alert_acknowledge(integration=integration, dedup_key="disk", by_name="integration prometheus", now=T0)
    assert (acked.result, acked.alert_id, acked.escalation_id) == ("acknowledged", fired["alert_id"],
                                                                   fired["escalation_id"])
    escalation = Escalation.objects.get()
    assert (escalation.state, escalation.acknowledged_by_name) == (EscalationState.ACKNOWLEDGED,
                                                                   "integration prometheus")
    assert Alert.objects.get().state == AlertState.ACKNOWLEDGED
    # Acknowledging twice changes nothing; after the resolve, the old key is not open any more.
    assert alert_acknowledge(integration=integration, dedup_key="disk", by_name="x", now=T0).result == "acknowledged"
    assert alert_resolve(integration=integration, dedup_key="disk", now=T0).result == "resolved"
    assert alert_acknowledge(integration=integration, dedup_key="disk", by_name="x", now=T0).result == "not open"
    assert alert_resolve(integration=integration, dedup_key="disk", now=T0).result == "not open"


# --- The admin's acknowledge and resolve ---

def test_the_admin_acknowledges_an_alert_nobody_answered_and_later_resolves_it(admin_client):
    integration = make_integration()
    first = result(post(integration.token, payload("alertmanager_firing.json")))
    Escalation.objects.filter(pk=first["escalation_id"]).update(
        state=EscalationState.EXHAUSTED, ended_at=T0, next_action_at=None)
    alert = Alert.objects.get()
    changelist = reverse("admin:escalation_alert_changelist")

    admin_client.post(changelist, {"action": "acknowledge", ACTION_CHECKBOX_NAME: [alert.pk]})
    alert.refresh_from_db()
    assert (alert.state, alert.acknowledged_by_name) == (AlertState.ACKNOWLEDGED, "admin")
    assert result(post(integration.token, payload("alertmanager_still_firing.json")))["result"] == "noted"

    admin_client.post(changelist, {"action": "resolve", ACTION_CHECKBOX_NAME: [alert.pk]})
    alert.refresh_from_db()
    assert (alert.state, alert.resolved_by_name) == (AlertState.RESOLVED, "admin")
    assert result(post(integration.token, payload("alertmanager_still_firing.json")))["result"] == "fired"


def test_resolving_in_the_admin_stops_the_paging(admin_client):
    integration = make_integration()
    fired = result(post(integration.token, payload("alertmanager_firing.json")))
    alert = Alert.objects.get()
    page = admin_client.get(reverse("admin:escalation_alert_changelist")).content.decode()
    assert "[FIRING:2] InstanceDown" in page and "triggered" in page
    admin_client.post(reverse("admin:escalation_alert_changelist"),
                      {"action": "resolve", ACTION_CHECKBOX_NAME: [alert.pk]})
    escalation = Escalation.objects.get(pk=fired["escalation_id"])
    assert (escalation.state, escalation.outcome) == (EscalationState.CANCELLED, "cancelled by admin: alert resolved")
    assert Alert.objects.get().state == AlertState.RESOLVED


def test_acknowledging_and_resolving_need_the_fire_permission(client):
    integration = make_integration()
    result(post(integration.token, payload("alertmanager_firing.json")))
    viewer = User.objects.create(username="vic", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename="view_alert"))
    client.force_login(viewer)
    changelist = reverse("admin:escalation_alert_changelist")
    assert client.get(changelist).status_code == 200
    assert 'value="resolve"' not in client.get(changelist).content.decode()
    client.post(changelist, {"action": "resolve", ACTION_CHECKBOX_NAME: [Alert.objects.get().pk]})
    assert Alert.objects.get().state == AlertState.TRIGGERED


# --- Races the database settles (PostgreSQL: real row locks between threads) ---

def run_together(*jobs) -> list[BaseException]:
    barrier = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def run(job) -> None:
        try:
            barrier.wait()
            job()
        except BaseException as e:  # noqa: BLE001  (the test reports whatever a thread raised)
            errors.append(e)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_a_resolve_racing_an_acknowledgement_neither_deadlocks_nor_disagrees():
    """A read acknowledges the escalation (escalation row, then alert) while the source resolves the alert:
    the alert service takes the same locks in the same order, so neither waits for the other forever."""
    integration = make_integration("generic")
    for n in range(20):
        body = {"summary": "Disk full", "dedup_key": f"disk-{n}"}
        fired = result(post(integration.token, body))
        errors = run_together(
            partial(escalation_acknowledge, escalation=fired["escalation_id"], person_index=0, by_name="Tony",
                    how="read"),
            partial(alert_resolve, integration=integration, dedup_key=f"disk-{n}"),
        )
        assert errors == []
        alert = Alert.objects.get(pk=fired["alert_id"])
        escalation = Escalation.objects.get(pk=fired["escalation_id"])
        assert alert.state == AlertState.RESOLVED
        assert escalation.state in (EscalationState.ACKNOWLEDGED, EscalationState.CANCELLED)


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_two_repeats_of_an_exhausted_alert_at_once_page_once():
    integration = make_integration()
    first = result(post(integration.token, payload("alertmanager_firing.json")))
    Escalation.objects.filter(pk=first["escalation_id"]).update(
        state=EscalationState.EXHAUSTED, ended_at=T0, next_action_at=None)
    body = payload("alertmanager_still_firing.json")
    answers: list[str] = []
    errors = run_together(*[lambda: answers.append(result(post(integration.token, body))["result"])] * 2)
    assert errors == []
    assert sorted(answers) == ["fired", "noted"]
    assert Escalation.objects.filter(state=EscalationState.ACTIVE).count() == 1
    assert Alert.objects.get().escalations == 2


def test_an_alert_page_shows_its_life(admin_client):
    integration = make_integration()
    fired = result(post(integration.token, payload("alertmanager_firing.json")))
    escalation_acknowledge(escalation=fired["escalation_id"], person_index=0, by_name="Tony", how="read", now=T0)
    result(post(integration.token, payload("alertmanager_still_firing.json")))
    page = admin_client.get(reverse("admin:escalation_alert_change", args=[fired["alert_id"]])).content.decode()
    assert "acknowledged" in page and "Tony" in page
    pk = fired["escalation_id"]
    assert f'<a href="/admin/escalation/escalation/{pk}/change/">#{pk}</a>' in page
    integration_page = admin_client.get(reverse("admin:escalation_integration_change", args=[integration.pk]))
    assert "acknowledged (1 repeat)" in integration_page.content.decode()
