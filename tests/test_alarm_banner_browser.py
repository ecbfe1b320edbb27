"""The red alarm banner in Debian's chromium, on a desktop and on a phone: seen at the top of admin pages
while a provider fault holds an escalation, and gone once it clears."""

import os

import pytest
from django.utils import timezone

from escalation.models import Escalation, WorkerHeartbeat
from escalation.services.escalations import escalation_fire
from tests.browser import BROWSER_MARKS, logged_in
from tests.personas import MICHAEL, TONY, make_roster

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SHOTS = os.environ.get("ALARM_BANNER_SHOTS", "")  # a folder: look at the banner with your own eyes

pytestmark = BROWSER_MARKS





@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_it_shows_the_banner_at_the_top_of_admin_pages_during_a_fault(browser, server, viewport):
    now = timezone.now()
    WorkerHeartbeat.objects.create(name="worker-a", started_at=now, last_pass_at=now + timezone.timedelta(hours=1))
    escalation = escalation_fire(roster=make_roster(TONY, MICHAEL), message="db down", fired_by_name="t", now=now)
    Escalation.objects.filter(pk=escalation.pk).update(held_since=now, held_by="credentials:401")
    page = logged_in(browser, server, viewport)
    for path in ("/admin/", "/admin/escalation/escalation/", f"/admin/escalation/escalation/{escalation.pk}/change/"):
        page.goto(f"{server.url}{path}")
        banner = page.locator("#alarms")
        assert banner.is_visible(), path
        assert "Vonage refuses our credentials (401) since " in banner.inner_text()
        assert "1 escalation is waiting to page" in banner.inner_text()
        box = banner.bounding_box()
        # Seen without scrolling, and not wider than the screen (the text wraps instead).
        assert box["y"] + box["height"] <= viewport["height"] and box["width"] <= viewport["width"], (path, box)
        if SHOTS:
            page.screenshot(path=f"{SHOTS}/banner-{viewport['width']}-{path.strip('/').replace('/', '-')}.png")

    Escalation.objects.filter(pk=escalation.pk).update(held_since=None, held_by="")  # a send went out
    page.goto(f"{server.url}/admin/")
    assert page.locator("#alarms").count() == 0
