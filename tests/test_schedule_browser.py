"""A schedule as a user builds it, in Debian's chromium against the real processes (see test_browser_e2e.py):
a weekly rotation, an override made from the 14-day picture, then a roster that pages whoever is on call.
At desktop width and at a phone's (390x844), where nothing may scroll sideways."""

from datetime import date, timedelta

import pytest

from tests import test_browser_e2e as e2e
from tests.test_browser_e2e import ADMIN_PASSWORD, ADMIN_USER, TIMEOUT_MS, screenshot

pytestmark = e2e.pytestmark
stack = e2e.stack
browser = e2e.browser

WIDTHS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(params=list(WIDTHS))
def sized_page(request, browser, stack):
    stack.emulator.reset()
    context = browser.new_context(viewport=WIDTHS[request.param])
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{stack.url}/admin/login/")
    page.fill("#id_username", ADMIN_USER)
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{stack.url}/admin/")
    yield request.param, page
    context.close()


def no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_a_weekly_schedule_with_an_override_is_drawn_and_pages_through_a_roster(sized_page, stack):
    width, page = sized_page
    url, name = stack.url, f"Primary {width}"
    page.goto(f"{url}/admin/escalation/schedule/add/")
    page.fill("#id_name", name)
    page.fill("#id_time_zone", "Europe/London")
    page.click("#layers-group .add-row a")
    layer = page.locator("#layers-group .inline-related:not(.empty-form)").nth(0)
    layer.locator("input[name$='-name']").fill("Weekly")
    layer.locator("select[name$='-unit']").select_option("weeks")
    layer.locator("input[name$='-handoff_date']").fill(f"{date.today() - timedelta(days=1):%Y-%m-%d}")
    layer.locator("input[name$='-handoff_time']").fill("09:00")
    page.click("input[name=_continue]")
    page.wait_for_selector(".schedule-picture")

    # The rotation's people, on the layer's own page: Tony this week, Michael the next.
    page.click("a:has-text('edit participants')")
    page.click("#participants-group .add-row a")
    rows = page.locator("#participants-group tbody tr.form-row:not(.empty-form)")
    rows.nth(0).locator("select[name$='-person']").select_option(label="Tony")
    rows.nth(1).locator("select[name$='-person']").select_option(label="Michael")
    page.click("input[name=_save]")
    page.wait_for_url(f"{url}/admin/escalation/layer/")

    page.goto(f"{url}/admin/escalation/schedule/")
    page.click(f"#result_list a:has-text('{name}')")
    final = page.locator(".lane-final a.bar")
    assert final.first.inner_text() == "Tony"
    assert "Michael" in final.all_inner_texts()
    assert no_sideways_scroll(page)

    # Click 1: Tony's shift in the result. Click 2: Michael covers it.
    final.first.click()
    page.wait_for_selector(".cover-sentence")
    assert "I'll cover Tony" in page.locator(".cover-sentence").inner_text()
    assert no_sideways_scroll(page)
    page.select_option("#id_person", label="Michael")
    page.click("input[value=Cover]")
    page.wait_for_selector(".messagelist .success")
    assert page.locator(".lane-final a.bar").first.inner_text() == "Michael"
    assert "Michael (replace" in page.locator(".schedule-picture").inner_text()
    assert no_sideways_scroll(page)
    screenshot(page, f"schedule-{width}", docs=width == "desktop")

    # A roster whose only member is the schedule: the fire page names who is on call, and until when.
    page.goto(f"{url}/admin/escalation/roster/add/")
    page.fill("#id_name", f"Ops {width}")
    page.locator("#members-group tbody tr.form-row:not(.empty-form)").nth(0) \
        .locator("select[name$='-schedule']").select_option(label=name)
    page.click("input[name=_continue]")
    page.click("a.fire-link")
    page.fill("#id_message", "The payments queue is stuck")
    via = page.locator(".fire-plan .on-call-via").inner_text()
    assert via.startswith(f"on call in {name} until ") and via.endswith("(Europe/London)")
    assert page.locator(".fire-plan td.person strong").all_inner_texts() == ["Michael"]
    page.click("button.fire-button")
    page.wait_for_selector(".esc-state-active")
    assert f"Michael — on call in {name} until" in page.locator("body").inner_text()
