"""The red alarm banner in Debian's chromium, on a desktop and on a phone: seen at the top of admin pages
while a provider fault holds an escalation, and gone once it clears."""

import os
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import connections
from django.utils import timezone
from pytest_django.live_server_helper import LiveServer

from escalation.models import Escalation, WorkerHeartbeat
from escalation.services.escalations import escalation_fire
from tests.personas import MICHAEL, TONY, make_roster

playwright = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SHOTS = os.environ.get("ALARM_BANNER_SHOTS", "")  # a folder: look at the banner with your own eyes

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
]


@pytest.fixture
def server(transactional_db):
    server = LiveServer("localhost:0")
    yield server
    server.stop()


@pytest.fixture
def browser(server, monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the ORM calls between its steps are still sync.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    get_user_model().objects.create_superuser("lead", "lead@example.com", "correct horse battery")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()
        connections.close_all()  # Playwright's loop opened connections that would block dropping the test db


def logged_in(browser, server, viewport: dict):
    page = browser.new_page(viewport=viewport)
    page.goto(f"{server.url}/admin/login/")
    page.fill("#id_username", "lead")
    page.fill("#id_password", "correct horse battery")
    page.click("input[type=submit]")
    return page


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
