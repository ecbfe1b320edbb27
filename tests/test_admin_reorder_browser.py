"""reorder.js in Debian's chromium: drag, up/down, Django's own add/remove links, and a failed save.

The test client covers what the server does with positions; this covers that the page sends the right ones.
"""


import pytest

from escalation.models import Channel, Person, Roster, RosterMember
from tests.browser import BROWSER_MARKS

pytestmark = BROWSER_MARKS




def addresses(person: Person) -> list[str]:
    return list(person.channels.order_by("position", "id").values_list("address", flat=True))


def positions(page) -> list[str]:
    return page.eval_on_selector_all(
        "#channels-group tbody tr.form-row:not(.empty-form) input[name$='-position']", "els => els.map(e => e.value)"
    )


@pytest.fixture
def tony() -> Person:
    person = Person.objects.create(name="Tony")
    for position, address in enumerate(["447700900001", "447700900002", "447700900003"], start=1):
        Channel.objects.create(person=person, position=position, type="whatsapp", address=address)
    roster = Roster.objects.create(name="ops")
    RosterMember.objects.create(roster=roster, person=person, position=1)
    return person


def test_buttons_drag_and_new_rows_save_in_the_order_shown(page, tony: Person) -> None:
    page.goto(f"{page.server_url}/admin/escalation/person/{tony.pk}/change/")
    rows = "#channels-group tbody tr.form-row:not(.empty-form)"
    page.locator(rows).nth(0).locator(".reorder-down").click()
    assert positions(page) == ["1", "2", "3", "0"]  # the blank extra row keeps its default
    assert page.locator(rows).nth(0).locator("input[name$='-address']").input_value() == "447700900002"

    # Two new rows: fill both, drag the second to the top, remove the first with Django's own link
    # (which renames the remaining rows by their place on the page).
    page.click("#channels-group .add-row a")
    page.locator(rows).nth(3).locator("select[name$='-type']").select_option("sms")
    page.locator(rows).nth(3).locator("input[name$='-address']").fill("447700900098")
    page.locator(rows).nth(4).locator("select[name$='-type']").select_option("messenger")
    page.locator(rows).nth(4).locator("input[name$='-address']").fill("5550001000000001")
    # Dropped on the upper half of the first row: it goes above it.
    page.locator(rows).nth(4).locator(".reorder-handle").drag_to(page.locator(rows).nth(0),
                                                                  target_position={"x": 20, "y": 5})
    assert page.locator(rows).nth(0).locator("input[name$='-address']").input_value() == "5550001000000001"
    page.locator(rows).nth(4).locator(".inline-deletelink").click()
    assert positions(page) == ["1", "2", "3", "4"]

    page.click("input[name=_save]")
    page.wait_for_url("**/admin/escalation/person/")
    assert addresses(tony) == ["5550001000000001", "447700900002", "447700900001", "447700900003"]


def test_after_a_failed_save_the_rows_stay_in_the_order_given(page, tony: Person) -> None:
    page.goto(f"{page.server_url}/admin/escalation/person/{tony.pk}/change/")
    rows = "#channels-group tbody tr.form-row:not(.empty-form)"
    page.locator(rows).nth(3).locator("select[name$='-type']").select_option("sms")
    page.locator(rows).nth(3).locator("input[name$='-address']").fill("07700 900099")  # no country code: refused
    for index in (3, 2, 1):
        page.locator(rows).nth(index).locator(".reorder-up").click()
    page.click("input[name=_save]")
    page.locator(".errornote").wait_for()
    assert page.locator(rows).nth(0).locator("input[name$='-address']").input_value() == "07700 900099"

    page.locator(rows).nth(0).locator("input[name$='-address']").fill("447700900099")
    page.click("input[name=_save]")
    page.wait_for_url("**/admin/escalation/person/")
    assert addresses(tony) == ["447700900099", "447700900001", "447700900002", "447700900003"]


def test_roster_members_move_up(page, tony: Person) -> None:
    ann = Person.objects.create(name="Ann")
    for position, address in enumerate(["447700900021", "447700900022"], start=1):
        Channel.objects.create(person=ann, position=position, type="sms", address=address)
    roster = Roster.objects.get(name="ops")
    RosterMember.objects.create(roster=roster, person=ann, position=2)
    page.goto(f"{page.server_url}/admin/escalation/roster/{roster.pk}/change/")
    page.locator("#members-group tbody tr.form-row:not(.empty-form)").nth(1).locator(".reorder-up").click()
    page.click("input[name=_save]")
    page.wait_for_url("**/admin/escalation/roster/")
    assert [m.person.name for m in roster.ordered_members()] == ["Ann", "Tony"]
