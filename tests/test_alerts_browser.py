"""The alert pages in Debian's chromium: a refused alert shown on its integration and dismissed there, and an
alert resolved from the alert list. The test client covers the rules; this covers what an admin clicks."""

import json
from pathlib import Path

import pytest
from django.test import Client

from escalation.models import Alert, AlertState, Escalation, EscalationState, Integration, Person
from escalation.services.alert_receipts import alert_alarms
from tests.browser import BROWSER_MARKS
from tests.personas import MICHAEL, TONY, make_roster

FIRING = json.loads((Path(__file__).parent / "fixtures" / "alerts" / "alertmanager_firing.json").read_text())

pytestmark = BROWSER_MARKS




@pytest.fixture
def integration() -> Integration:
    return Integration.objects.create(name="prometheus", roster=make_roster(TONY, MICHAEL), format="alertmanager")


def send(integration: Integration, body: dict) -> int:
    return Client().post(f"/integrations/{integration.token}/", data=json.dumps(body),
                         content_type="application/json").status_code


def test_a_refusal_shows_on_the_integration_and_is_dismissed_there(page, integration) -> None:
    Person.objects.update(is_active=False)
    assert send(integration, FIRING) == 422

    page.goto(f"{page.server_url}/admin/escalation/integration/{integration.pk}/change/")
    assert "Refusing since" in page.locator(".field-refusals").inner_text()
    assert "refused 422: The roster cannot be paged" in page.locator(".field-received").inner_text()
    page.click("text=Dismiss the alarm")
    page.click("input[value='Yes, dismiss']")
    page.wait_for_url(f"**/admin/escalation/integration/{integration.pk}/change/")
    assert "the alarm is dismissed" in page.locator(".messagelist").inner_text()
    assert page.locator(".field-refusals").inner_text().endswith(
        "None: every notification since the last dismissal was accepted.")
    assert alert_alarms(now=integration.created_at) == []


def test_an_alert_is_resolved_from_the_alert_list(page, integration) -> None:
    assert send(integration, FIRING) == 200
    page.goto(f"{page.server_url}/admin/escalation/integration/{integration.pk}/change/")
    page.click(".field-recent_alerts >> text=All alerts of prometheus")
    page.check("input.action-select")
    page.select_option("select[name=action]", "resolve")
    page.click("button[name=index]")
    assert "1 alert(s) resolved." in page.locator(".messagelist").inner_text()
    assert Alert.objects.get().state == AlertState.RESOLVED
    assert Escalation.objects.get().state == EscalationState.CANCELLED
