"""A pytest plugin (see conftest.py) of what the admin's browser tests share: Debian's chromium, a live server
of the test's own, a logged-in page.

(Playwright cannot download a browser here; `.ci/run` installs Debian's chromium, and the tests skip without it.)
"""

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import connections
from pytest_django.live_server_helper import LiveServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ADMIN = ("lead", "correct horse battery")

BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
]


@pytest.fixture
def server(transactional_db):
    """A server of this test's own, started and stopped around it."""
    server = LiveServer("localhost:0")
    yield server
    server.stop()


@pytest.fixture
def browser(server, monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the ORM calls between its steps are still sync.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    playwright = pytest.importorskip("playwright.sync_api")
    get_user_model().objects.create_superuser(ADMIN[0], "lead@example.com", ADMIN[1])
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()
        # Inside Playwright's loop the ORM opened connections of its own; left open they block dropping
        # the PostgreSQL test database.
        connections.close_all()


def logged_in(browser, server, viewport: dict | None = None):
    """A new page of `browser`, logged in to the admin as the superuser; `page.server_url` is the server's."""
    page = browser.new_page(**({"viewport": viewport} if viewport else {}))
    page.goto(f"{server.url}/admin/login/")
    page.fill("#id_username", ADMIN[0])
    page.fill("#id_password", ADMIN[1])
    page.click("input[type=submit]")
    page.server_url = server.url
    return page


@pytest.fixture
def page(browser, server):
    return logged_in(browser, server)
