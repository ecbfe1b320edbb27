"""An alert (integration + alert key) is one incident: triggered, acknowledged, resolved.

The reproduction of issue 13 §2: an Alertmanager group fires, Tony reads the page, Alertmanager re-sends the
still-firing group at its repeat_interval; before the fix a new escalation paged everyone again.
"""

import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from escalation.engine.worker import run_due
from escalation.models import Escalation, EscalationState, Message
from tests.applying import apply_stored_webhooks
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
    from escalation.models import Integration

    integration = Integration.objects.create(name="prometheus", roster=make_roster(TONY, MICHAEL),
                                             format="alertmanager")
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
