"""Fire from the admin, let the engine page through the emulator over real HTTP, then read the timeline.

The history tests build their rows by hand; this one checks the picture against rows the engine and the
webhooks really wrote, in both API modes.
"""

import re

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from escalation.models import Escalation
from tests import test_end_to_end
from tests.personas import MICHAEL, TONY, make_roster
from tests.test_end_to_end import run_until_done

pytestmark = pytest.mark.django_db(transaction=True)

# The engine's worker in a thread, on a clock the test steps forward (shared with the end-to-end tests).
worker = test_end_to_end.worker


@pytest.mark.parametrize("api", ["dispatch", "messages"])
def test_a_roster_fired_from_the_admin_ends_as_a_readable_timeline(api, settings, client, app_emulator, worker):
    settings.ESCALATION_API = api
    # Neither of Tony's messages can be delivered; Michael reads his first one, on Viber.
    app_emulator.scenario("23037543461244470", "undeliverable", channel="messenger", after=1)
    app_emulator.scenario("447700900001", "undeliverable", channel="sms", after=1)
    app_emulator.scenario("447700900002", "read", channel="viber_service_msg", after=1)
    roster = make_roster(TONY, MICHAEL)
    client.force_login(User.objects.create(username="ann", is_staff=True, is_superuser=True))

    fired = client.post(reverse("admin:escalation_roster_fire", args=[roster.pk]),
                        {"post": "yes", "message": "Production is down"})
    escalation = run_until_done(Escalation.objects.get(), app_emulator, worker)

    assert fired.url == reverse("admin:escalation_escalation_change", args=[escalation.pk])
    assert escalation.state == "acknowledged" and escalation.acknowledged_by_name == "Michael"
    body = client.get(fired.url).content.decode()
    start = body.index('<svg class="esc-timeline"')
    svg = body[start:body.index("</svg>", start)]
    assert re.findall(r'class="lane-name"[^>]*>([^<]+)<', svg) == ["Tony", "Michael"]
    assert "passed over" in svg and "acknowledged" in svg
    assert "bar bar-undeliverable" in svg and "bar bar-read" in svg
    assert "acknowledged by Michael" in svg
    assert 'http-equiv="refresh"' not in body
    assert "Michael&#x27;s Viber 447700900002: read" in body
