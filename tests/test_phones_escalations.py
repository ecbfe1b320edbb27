"""Issue 15 §5: the demo's phones page says which escalation each message belongs to, and greys out (with no
"Mark read") the messages of escalations that have ended. The emulator asks the running app (live_server)."""

import json

import pytest
import requests
from django.urls import reverse

from escalation.engine.worker import run_due
from escalation.models import Escalation
from escalation.services.escalations import escalation_cancel, escalation_fire
from tests.personas import MICHAEL, TONY, make_roster

ENDPOINT = reverse("demo-phones-escalations")


@pytest.mark.django_db(transaction=True)
def test_the_phones_page_names_each_messages_escalation_and_greys_out_ended_ones(messages_mode, live_server,
                                                                                   settings):
    settings.DEMO_PHONES_URL = f"{messages_mode.url}/phones/"
    messages_mode.configure(webhook_base=live_server.url)
    roster = make_roster(TONY, MICHAEL)
    ended = escalation_fire(roster=roster, message="disk full", fired_by_name="test")
    run_due()
    escalation_cancel(escalation=ended, by_name="ops")
    running = escalation_fire(roster=roster, message="disk still full", fired_by_name="test")
    run_due()

    html = requests.get(f"{messages_mode.url}/phones/", params={"fragment": "1"}, timeout=5).text
    assert f"escalation #{running.pk} · active" in html
    assert f"escalation #{ended.pk} · cancelled" in html
    [grey] = [item for item in html.split("<li ")[1:] if f"#{ended.pk} ·" in item]
    assert "ended" in grey.split(">", 1)[0] and "Mark read" not in grey
    [live] = [item for item in html.split("<li ")[1:] if f"#{running.pk} ·" in item]
    assert "ended" not in live.split(">", 1)[0] and "Mark read" in live


@pytest.mark.django_db
def test_the_lookup_answers_only_in_the_demo_and_refuses_junk(client, settings):
    settings.DEMO_PHONES_URL = ""
    assert client.post(ENDPOINT, "[]", content_type="application/json").status_code == 404
    settings.DEMO_PHONES_URL = "http://127.0.0.1:8025/phones/"
    assert client.post(ENDPOINT, "{not json", content_type="application/json").status_code == 400
    assert client.post(ENDPOINT, '{"a": 1}', content_type="application/json").status_code == 400
    answered = client.post(ENDPOINT, json.dumps(["nope", 7, "5c3d5d5a-0000-4000-8000-000000000001"]),
                           content_type="application/json")
    assert (answered.status_code, answered.json()) == (200, {})
    assert client.get(ENDPOINT).status_code == 405
    assert not Escalation.objects.exists()
