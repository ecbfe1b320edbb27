"""The whole path as a user walks it, in Debian's chromium, against real processes.

The web app (runserver, as `make run` starts it), the escalation worker and the emulator each run as their
own process against one database (a temp SQLite file, or a fresh PostgreSQL database when DATABASE_URL
points at PostgreSQL), configured against each other with signed webhooks, like `make run` does. The
browser logs in, builds a roster in the admin forms, fires it, reads the message on the emulator's
phones page and waits for the timeline to say "Acknowledged".

Screenshots go to test-artifacts/; with UPDATE_SCREENSHOTS=1 also to docs/screenshots/ (the README's).
"""

import json
import os
import secrets
import shutil
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.harness import POSTGRES_BASE, PYTHON, Proc, Stack, wait_for
from tests.conftest import on_postgres
from tests.emulator_fixtures import ROOT

playwright = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"no Chromium at {CHROMIUM}: install Debian's chromium (.ci/run does) to run this"),
]

ARTIFACTS = ROOT / "test-artifacts"
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
DEMO_CONFIG = ROOT / "escalation" / "fixtures" / "demo_config.json"
ADMIN_USER, ADMIN_PASSWORD = "lead", secrets.token_urlsafe(12)
# The demo people's addresses (demo_config.json), as oncall/demo.py hands them to the emulator.
PHONE_NAMES = {"Tony": ["23037543461244470", "447700900001"],
               "Michael": ["447700900002", "447700900003", "447700900004"]}
TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def stack(request, tmp_path_factory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("browser")
    names = tmp / "phone_names.json"
    names.write_text(json.dumps(PHONE_NAMES))
    database = {"db_name": f"oncall_browser_{os.getpid()}"} if on_postgres() else {
        "database_url": f"sqlite:///{tmp / 'db.sqlite3'}", "migrate": True}
    # One folder per module and database: test_schedule_browser.py has a stack of its own, and `make test` may run
    # both modules at once, as `.ci/run` runs the SQLite and PostgreSQL passes at once.
    module = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    logs = ARTIFACTS / f"{module}_logs_{'postgresql' if on_postgres() else 'sqlite'}"
    shutil.rmtree(logs, ignore_errors=True)
    stack = Stack(web=False, workers=1, api="dispatch", emulator_args=("--phone-names", str(names)),
                  env={"DEBUG": "true", "DEMO_ADMIN_USER": ADMIN_USER, "DEMO_ADMIN_PASSWORD": ADMIN_PASSWORD},
                  log_dir=logs, **database)
    try:
        stack.start()
        # The admin login and the sample roster, made the way `make run` makes them.
        stack.manage("demo_setup", "--config", str(DEMO_CONFIG), "--credentials-file", str(tmp / "admin_login"))
        # runserver with DEBUG on, as `make run` has it: it serves the admin's CSS for the screenshots.
        stack.procs_env["DEMO_PHONES_URL"] = f"{stack.emulator_url}/phones/"
        web = Proc("web", [PYTHON, "manage.py", "runserver", "--noreload", f"127.0.0.1:{stack.web_port}"],
                   stack.procs_env, logs / "web.log")
        stack.webs["web"] = web
        wait_for(lambda: _answers(f"{stack.url}/admin/login/") or not web.alive(), timeout=30)
        assert web.alive(), f"runserver stopped:\n{web.tail()}"
        yield stack
    finally:
        stack.stop()
        if on_postgres():
            _drop_database(stack.db_name)


def _answers(url: str) -> bool:
    try:
        return urllib.request.urlopen(url, timeout=2).status == 200
    except OSError:
        return False


def _drop_database(name: str) -> None:
    import psycopg  # only installed where PostgreSQL is used

    with psycopg.connect(f"{POSTGRES_BASE}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def browser(stack):
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--headless", "--no-sandbox", "--disable-gpu",
                                          "--disable-background-networking"])
        yield browser
        browser.close()


def logged_in(browser, stack, width: int, height: int):
    # Each scenario on an emulator with no messages, scenarios or faults left from the one before.
    stack.emulator.reset()
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{stack.url}/admin/login/")
    page.fill("#id_username", ADMIN_USER)
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{stack.url}/admin/")
    return context, page


@pytest.fixture
def page(browser, stack):
    context, page = logged_in(browser, stack, 1280, 800)
    yield page
    context.close()


def screenshot(page, name: str, *, docs: bool = False) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if docs and os.environ.get("UPDATE_SCREENSHOTS") == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_SCREENSHOTS / f"{name}.png")


def open_phones(page):
    """The admin's "Phones (demo)" link opens the emulator's page in a new tab."""
    with page.context.expect_page() as opened:
        page.click("a.demo-phones-link")
    phones = opened.value
    phones.set_default_timeout(TIMEOUT_MS)
    phones.wait_for_load_state()
    return phones


def wait_until_acknowledged(page, timeline: str) -> None:
    """Load the timeline until it says Acknowledged.

    The page also refreshes itself every few seconds while the escalation is active; when that refresh
    starts just as ours does, ours is aborted. The page still ends up on the timeline, so that is no failure.
    """
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        try:
            page.goto(timeline)
        except playwright.Error as error:
            if "ERR_ABORTED" not in str(error):
                raise
            page.wait_for_load_state()
        if page.locator(".esc-state-acknowledged").count():
            return
        assert time.monotonic() < deadline, f"not acknowledged in time: {page.locator('.esc-headline').inner_text()}"
        page.wait_for_timeout(250)


def fill_channel(row, channel_type: str, address: str, condition: str, expiry: str) -> None:
    row.locator("select[name$='-type']").select_option(channel_type)
    row.locator("input[name$='-address']").fill(address)
    row.locator("select[name$='-condition']").select_option(condition)
    row.locator("input[name$='-expiry_time']").fill(expiry)


def test_a_roster_built_in_the_admin_is_fired_read_on_a_phone_and_acknowledged(page, stack):
    url = stack.url
    # A person with two channels, through the admin's own form.
    page.goto(f"{url}/admin/escalation/person/add/")
    page.fill("#id_name", "Grace")
    page.click("#channels-group .add-row a")
    rows = page.locator("#channels-group tbody tr.form-row:not(.empty-form)")
    fill_channel(rows.nth(0), "whatsapp", "447700900071", "read", "15")
    fill_channel(rows.nth(1), "sms", "447700900072", "delivered", "15")
    page.click("input[name=_save]")
    page.wait_for_url(f"{url}/admin/escalation/person/")
    assert "WhatsApp 447700900071 → SMS 447700900072" in page.locator("#result_list").inner_text()

    # A roster with her on it.
    page.goto(f"{url}/admin/escalation/roster/add/")
    page.fill("#id_name", "Databases")
    page.locator("#members-group tbody tr.form-row:not(.empty-form)").nth(0) \
        .locator("select[name$='-person']").select_option(label="Grace")
    page.click("input[name=_save]")
    page.wait_for_url(f"{url}/admin/escalation/roster/")

    # Fire it with the list's action, through its intermediate page.
    page.locator("#result_list tr", has_text="Databases").locator("input.action-select").check()
    page.select_option("select[name=action]", "fire_escalation")
    page.click("button[name=index]")
    page.wait_for_selector("textarea#id_message")
    page.fill("#id_message", "The primary database is down")
    assert page.locator(".fire-plan").inner_text().count("447700900071") == 1
    screenshot(page, "fire-action")
    page.click("button.fire-button")
    page.wait_for_url(f"{url}/admin/escalation/roster/")
    page.click(".messagelist a:has-text('Databases')")
    page.wait_for_selector(".esc-state-active")
    timeline = page.url

    # Grace opens the WhatsApp message on her phone.
    phones = open_phones(page)
    message = phones.locator("section.phone", has_text="447700900071").locator(".channel-whatsapp .msg-out")
    # She never wrote to the company's WhatsApp number: the page is its template, the alert as {{1}}.
    assert message.locator(".text").inner_text().startswith("[template oncall_alert] The primary database is down")
    message.get_by_role("button", name="Mark read").click()
    phones.wait_for_selector(".note:has-text('Read the message to 447700900071.')")
    phones.locator(".channel-whatsapp .msg-out .status-read").wait_for()
    screenshot(phones, "phones-grace")

    wait_until_acknowledged(page, timeline)
    assert "Grace: read on WhatsApp at " in page.locator(".esc-headline").inner_text()
    assert stack.emulator.messages(to="447700900072") == []  # read on WhatsApp: the SMS never went
    screenshot(page, "timeline-grace")


def test_the_demo_story_tony_is_not_reached_and_michael_reads_on_viber(page, stack):
    # The sample roster of `make run`. Time runs 20x fast in the emulator, so Tony's 20 s on Messenger
    # pass in one second; his SMS cannot be delivered, which ends his turn at once (the app's own wait
    # for him is real time). Michael's SMS never arrives, so only his reading can stop the escalation.
    stack.emulator.configure(time_scale=0.05)
    stack.emulator.scenarios([
        {"address": "447700900001", "channel": "sms", "action": "undeliverable", "after": 1},
        {"address": "447700900004", "channel": "sms", "action": "never_deliver"},
    ])
    try:
        page.goto(f"{stack.url}/admin/escalation/roster/")
        page.click("#result_list a:has-text('On call (demo)')")
        page.click("a.fire-link")
        assert page.locator(".fire-plan td.person strong").all_inner_texts() == ["Tony", "Michael"]
        screenshot(page, "fire-confirmation", docs=True)
        page.click("button.fire-button")
        page.wait_for_selector(".esc-state-active")  # the Fire button leads straight to the timeline
        timeline = page.url

        phones = open_phones(page)
        michael = phones.locator("section.phone", has=phones.locator("h2", has_text="Michael"))
        viber = michael.locator(".channel-viber_service_msg .msg-out")
        viber.wait_for()
        tony = phones.locator("section.phone", has=phones.locator("h2", has_text="Tony"))
        assert tony.locator(".channel-sms .status").inner_text().startswith("undeliverable")
        viber.get_by_role("button", name="Mark read").click()
        phones.wait_for_selector(".note:has-text('Michael read the message to 447700900002.')")
        phones.locator(".channel-viber_service_msg .msg-out .status-read").wait_for()
        screenshot(phones, "phones", docs=True)
    finally:
        stack.emulator.configure(time_scale=1.0)

    wait_until_acknowledged(page, timeline)
    assert "Michael" in page.locator(".esc-headline").inner_text()
    lanes = page.locator(".esc-timeline .lane-name").all_text_contents()
    assert lanes == ["Tony", "Michael"]
    screenshot(page, "timeline", docs=True)


PHONE, DESKTOP = (390, 844), (1280, 800)


def fits(page) -> None:
    """Nothing pushes the page sideways (issue 15 §3). Looked at again if the page's own refresh got in the way."""
    for _ in range(5):
        try:
            page.wait_for_load_state()
            width, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        except playwright.Error:
            continue
        assert width <= inner, f"{page.url} is {width} px wide in a {inner} px viewport"
        return
    raise AssertionError(f"{page.url} kept reloading")


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_the_pages_read_on_a_phone_and_on_a_desktop(browser, stack, viewport):
    """Issue 15 §3: the list, the fire page, the escalation page and its two controls fit the screen; on a phone
    the timeline is a story of cards, and cancelling is two taps from the escalation page."""
    context, page = logged_in(browser, stack, *viewport)
    phone = viewport == PHONE
    try:
        page.goto(f"{stack.url}/admin/escalation/roster/")
        page.click("#result_list a:has-text('On call (demo)')")
        page.click("a.fire-link")
        fits(page)
        assert page.locator(".fire-stop-rule").is_visible()
        assert page.locator(".fire-plan").inner_text().count("Tony") == 1
        page.click("button.fire-button")
        page.wait_for_selector(".esc-state-active")
        escalation_page = page.url
        fits(page)
        next_step = page.locator(".esc-next").inner_text()
        assert next_step.startswith("next: Tony on SMS at about "), next_step
        assert page.locator(".esc-story").is_visible() == phone
        assert page.locator(".esc-timeline").is_visible() == (not phone)
        if phone:
            assert page.locator(".esc-card h3").first.inner_text().startswith("Tony")
            screenshot(page, "timeline-phone", docs=True)

        page.click("a.esc-ack-button")  # tap 1 of acknowledging on someone's behalf
        page.wait_for_selector("text=Who answered?")
        fits(page)
        assert "Vonage's failover cannot be recalled" in page.locator("#content-main").inner_text()

        page.goto(escalation_page)
        page.click("a.esc-cancel-button")  # tap 1
        page.wait_for_selector("button[name=post]")
        fits(page)
        page.click("button[name=post]")  # tap 2
        page.wait_for_selector(".esc-state-cancelled")
        fits(page)

        page.goto(f"{stack.url}/admin/escalation/escalation/")
        fits(page)
        assert page.locator("#result_list").inner_text().count("On call (demo)") >= 1
        page.goto(f"{stack.url}/admin/escalation/event/")
        fits(page)
    finally:
        context.close()
