"""Issue 13 §3: a refused alert leaves a trace. Every notification that reaches an integration is recorded;
a refused one raises an alarm until a later one is accepted or an admin dismisses it.

The reproduction: an integration whose roster has nobody active answers 422, which Alertmanager does not
retry; before the fix the app recorded nothing and nobody knew.
"""

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from escalation.models import AlertReceipt, Escalation, Integration, Person, ReceiptOutcome
from escalation.services import alert_receipts
from escalation.services.alarms import Alarm, current_alarms
from escalation.services.alert_receipts import alert_alarms, receipt_record
from tests.personas import MICHAEL, TONY, make_roster

pytestmark = pytest.mark.django_db

ALERTS = Path(__file__).parent / "fixtures" / "alerts"
FIRING = json.loads((ALERTS / "alertmanager_firing.json").read_text())


def post(integration: Integration, body: object):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return Client().post(f"/integrations/{integration.token}/", data=data, content_type="application/json")


@pytest.fixture
def integration() -> Integration:
    return Integration.objects.create(name="prometheus", roster=make_roster(TONY, MICHAEL), format="alertmanager")


def test_a_refused_alert_is_recorded_raises_the_alarm_and_shows_on_the_integration(integration, admin_client):
    Person.objects.update(is_active=False)  # everybody on holiday

    before = timezone.now()
    response = post(integration, FIRING)
    assert response.status_code == 422
    [receipt] = AlertReceipt.objects.all()
    assert (receipt.integration, receipt.outcome, receipt.status_code) == (integration, ReceiptOutcome.REFUSED, 422)
    assert receipt.text == "The roster cannot be paged: Roster primary has no active people to page."
    assert receipt.received_at >= before
    assert json.loads(receipt.body)["groupKey"] == FIRING["groupKey"]

    [alarm] = current_alarms(now=timezone.now())
    assert alarm == Alarm(
        key=f"alert-refused:{integration.pk}", since=receipt.received_at,
        text=f"Integration prometheus refused a notification since {timezone.localtime(receipt.received_at):%H:%M} "
             "and paged nobody for them: The roster cannot be paged: Roster primary has no active people to page.",
    )
    page = admin_client.get(reverse("admin:escalation_integration_change", args=[integration.pk])).content.decode()
    assert "Refusing since" in page
    assert "refused 422: The roster cannot be paged: Roster primary has no active people to page." in page
    assert reverse("admin:escalation_integration_dismiss", args=[integration.pk]) in page


def test_the_alarm_counts_refusals_and_clears_when_the_roster_is_fixed(integration):
    Person.objects.update(is_active=False)
    assert post(integration, FIRING).status_code == 422
    assert post(integration, FIRING).status_code == 422
    [alarm] = alert_alarms(now=timezone.now())
    assert "refused 2 notifications since" in alarm.text

    Person.objects.update(is_active=True)
    assert post(integration, FIRING).status_code == 200  # Alertmanager's next repeat
    assert alert_alarms(now=timezone.now()) == []
    assert Escalation.objects.count() == 1
    assert list(AlertReceipt.objects.order_by("id").values_list("outcome", flat=True)) == [
        "refused", "refused", "accepted"]
    assert AlertReceipt.objects.order_by("id").last().text.startswith(f"fired #{Escalation.objects.get().pk}: ")


def test_an_acceptance_clears_only_refusals_received_before_it(integration):
    now = timezone.now()
    receipt_record(integration=integration, received_at=now, status_code=422, text="nobody")
    receipt_record(integration=integration, received_at=now - timedelta(seconds=1), status_code=200, text="fired")
    assert [a.since for a in alert_alarms(now=now)] == [now]


@pytest.mark.parametrize(("body", "status", "reason"), [
    (b"status=firing", 400, "The body is not JSON"),
    ({"status": "firing", "groupKey": "g"}, 400, "alerts must be an array, got null"),
    ({**FIRING, "commonAnnotations": {"description": "x" * (1024 * 1024)}}, 413, "larger than"),
])
def test_every_refusal_is_recorded_with_its_reason(integration, body, status, reason):
    response = post(integration, body)
    assert response.status_code == status
    [receipt] = AlertReceipt.objects.all()
    assert (receipt.outcome, receipt.status_code) == (ReceiptOutcome.REFUSED, status)
    assert reason in receipt.text
    assert len(alert_alarms(now=timezone.now())) == 1


def test_the_body_kept_is_bounded_and_storable(integration):
    raw = b"\x00\xff" + "é".encode() * 10_000
    assert post(integration, raw).status_code == 400
    [receipt] = AlertReceipt.objects.all()
    assert len(receipt.body) == alert_receipts.BODY_KEPT
    assert "\x00" not in receipt.body and receipt.body.startswith("\ufffd\ufffdé")
    assert len(receipt.text) <= alert_receipts.TEXT_KEPT


def test_only_the_latest_receipts_of_an_integration_are_kept(integration, monkeypatch):
    monkeypatch.setattr(alert_receipts, "RECEIPTS_KEPT", 3)
    other = Integration.objects.create(name="grafana", roster=integration.roster, format="grafana")
    receipt_record(integration=other, received_at=timezone.now(), status_code=400, text="old, other integration")
    for n in range(5):
        post(integration, {"status": "firing", "groupKey": f"g{n}"})
    texts = list(AlertReceipt.objects.filter(integration=integration).values_list("body", flat=True))
    assert [json.loads(t)["groupKey"] for t in texts] == ["g4", "g3", "g2"]
    assert AlertReceipt.objects.filter(integration=other).count() == 1


def test_a_disabled_integration_records_its_refusals_without_an_alarm(integration):
    integration.is_enabled = False
    integration.save()
    assert post(integration, FIRING).status_code == 403
    assert AlertReceipt.objects.get().status_code == 403
    assert alert_alarms(now=timezone.now()) == []


def test_an_unknown_token_records_nothing():
    response = Client().post("/integrations/" + "x" * 43 + "/", data="{}", content_type="application/json")
    assert response.status_code == 404
    assert not AlertReceipt.objects.exists()


def test_dismissing_in_the_admin_asks_first_then_clears_the_alarm(integration, admin_client):
    Person.objects.update(is_active=False)
    post(integration, FIRING)
    path = reverse("admin:escalation_integration_dismiss", args=[integration.pk])
    asked = admin_client.get(path)
    assert "Yes, dismiss" in asked.content.decode()
    assert "Roster primary has no active people to page." in asked.content.decode()
    assert len(alert_alarms(now=timezone.now())) == 1

    done = admin_client.post(path, {"confirm": "yes"}, follow=True)
    assert "the alarm is dismissed" in done.content.decode()
    assert alert_alarms(now=timezone.now()) == []
    assert LogEntry.objects.get().change_message == "Dismissed the alarm about refused notifications."
    # The record stays; the next refusal raises the alarm again.
    assert AlertReceipt.objects.count() == 1
    post(integration, FIRING)
    assert len(alert_alarms(now=timezone.now())) == 1


def test_dismissing_needs_the_right_to_change_the_integration(integration, client):
    from django.contrib.auth.models import Permission, User

    viewer = User.objects.create(username="vic", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_integration"))
    client.force_login(viewer)
    Person.objects.update(is_active=False)
    post(integration, FIRING)
    path = reverse("admin:escalation_integration_dismiss", args=[integration.pk])
    assert client.post(path, {"confirm": "yes"}).status_code == 403
    assert len(alert_alarms(now=timezone.now())) == 1


def test_the_integration_page_lists_the_latest_and_links_to_all(integration, admin_client):
    for _ in range(15):
        post(integration, {"status": "firing", "groupKey": "g"})
    page = admin_client.get(reverse("admin:escalation_integration_change", args=[integration.pk])).content.decode()
    assert page.count("refused 400") == 10
    receipts = reverse("admin:escalation_alertreceipt_changelist")
    assert f'{receipts}?integration__id__exact={integration.pk}' in page
    listing = admin_client.get(f"{receipts}?integration__id__exact={integration.pk}").content.decode()
    # Counted in the list itself: the red banner above it quotes the latest refusal too.
    assert listing.split('id="result_list"')[1].count("alerts must be an array") == 15


def test_a_record_page_shows_the_body_received(integration, admin_client):
    post(integration, {"status": "firing", "groupKey": "g"})
    receipt = AlertReceipt.objects.get()
    page = admin_client.get(reverse("admin:escalation_alertreceipt_change", args=[receipt.pk])).content.decode()
    assert "alerts must be an array, got null" in page
    assert "&quot;groupKey&quot;: &quot;g&quot;" in page
