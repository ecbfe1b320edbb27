"""The whole path over real HTTP: the worker pages through the emulator, the emulator's signed webhooks come
back to the app's live server, and the escalation ends where the recipients' script says.

The worker runs in a thread on a clock the test steps forward explicitly (`clock.advance`), so waiting out
an expiry takes no real time. The emulator's own time runs 100x fast (tests/emulator_fixtures.py).
"""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from escalation.engine.worker import run_due
from escalation.models import Escalation, Page, WebhookEvent
from escalation.services.escalations import escalation_fire
from tests.personas import ANNA, MICHAEL, TONY, make_roster

pytestmark = pytest.mark.django_db(transaction=True)


class SteppedClock:
    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self):
        return timezone.now() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@pytest.fixture
def worker():
    clock = SteppedClock()
    stop = threading.Event()

    def loop() -> None:
        try:
            while not stop.is_set():
                run_due(now=clock())
                stop.wait(0.02)
        finally:
            connection.close()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield clock
    stop.set()
    thread.join(timeout=10)


def wait_until(predicate, *, timeout: float = 10.0, what: str = "") -> None:
    deadline = timezone.now() + timedelta(seconds=timeout)
    while not predicate():
        if timezone.now() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        threading.Event().wait(0.02)


def wait_quiet(quiet: float = 0.3, timeout: float = 10.0) -> None:
    """Wait until no webhook has been stored for `quiet` seconds: what was sent has been answered."""
    last = (WebhookEvent.objects.count(), timezone.now())
    deadline = timezone.now() + timedelta(seconds=timeout)
    while timezone.now() < deadline:
        threading.Event().wait(0.05)
        count = WebhookEvent.objects.count()
        if count != last[0]:
            last = (count, timezone.now())
        elif timezone.now() - last[1] >= timedelta(seconds=quiet):
            return


def run_until_done(escalation, clock: SteppedClock, *, max_jumps: int = 20) -> Escalation:
    """Let the recipients answer, then jump the worker's clock to the escalation's next timer; repeat."""
    for _ in range(max_jumps):
        wait_quiet()
        escalation.refresh_from_db()
        if escalation.state != "active":
            return escalation
        if escalation.next_action_at and escalation.next_action_at > clock():
            clock.advance((escalation.next_action_at - clock()).total_seconds() + 0.001)
    raise AssertionError(f"escalation still active after {max_jumps} timer jumps: {pages(escalation)}")


def pages(escalation) -> list[tuple[str, str]]:
    return list(Page.objects.filter(escalation=escalation).order_by("round", "index")
                .values_list("person_name", "state"))


def paged_people(app_emulator) -> list[str]:
    return [m["to"] for m in app_emulator.messages()]


@pytest.fixture(params=["dispatch", "messages"])
def api(request, settings):
    settings.ESCALATION_API = request.param
    return request.param


def test_only_the_third_person_reads(api, app_emulator, worker):
    # Tony's and Michael's SMS (condition `delivered`) never arrive; Anna reads her WhatsApp.
    app_emulator.scenario("447700900001", "undeliverable", channel="sms", after=1)
    app_emulator.scenario("447700900004", "undeliverable", channel="sms", after=1)
    app_emulator.scenario("447700900005", "read", channel="whatsapp", after=1)
    escalation = escalation_fire(roster=make_roster(TONY, MICHAEL, ANNA), message="DB down", fired_by_name="e2e")
    escalation = run_until_done(escalation, worker)
    assert escalation.state == "acknowledged"
    assert escalation.acknowledged_by_name == "Anna"
    assert pages(escalation) == [("Tony", "passed_over"), ("Michael", "passed_over"), ("Anna", "acknowledged")]
    assert "447700900006" not in paged_people(app_emulator)  # Anna's SMS was never needed
    assert WebhookEvent.objects.filter(escalation=escalation).exists()


def _page_settled_or_waiting(escalation) -> bool:
    page = Page.objects.filter(escalation=escalation).order_by("-round", "-index").first()
    if page is None:
        return False
    if escalation.api == "dispatch":
        return page.dispatch_uuid is not None
    return page.messages.exclude(message_uuid=None).exists()


def test_the_first_person_is_reached_on_their_second_channel(api, app_emulator, worker):
    app_emulator.scenario("447700900001", "read", channel="sms", after=1)
    escalation = escalation_fire(roster=make_roster(TONY, MICHAEL), message="API 500s", fired_by_name="e2e")
    wait_until(lambda: _page_settled_or_waiting(escalation), what="Tony's first channel sent")
    worker.advance(60)  # the Messenger message is not read in time
    wait_until(lambda: Escalation.objects.get(pk=escalation.pk).state != "active", timeout=15, what="the read")
    escalation.refresh_from_db()
    # SMS has no read receipts: its `delivered` condition reaches Tony, which nobody acknowledged.
    assert escalation.state == "reached"
    assert escalation.acknowledged_by_name == "Tony"
    assert pages(escalation) == [("Tony", "reached")]
    worker.advance(3600)
    threading.Event().wait(0.3)
    assert not Page.objects.filter(escalation=escalation, person_name="Michael").exists()
    assert "447700900002" not in paged_people(app_emulator)


def test_a_reply_acknowledges_over_real_webhooks(app_emulator, worker, settings):
    settings.ESCALATION_API = "messages"
    escalation = escalation_fire(roster=make_roster(TONY, MICHAEL), message="Disk full", fired_by_name="e2e")
    wait_until(lambda: _page_settled_or_waiting(escalation), what="Tony paged")
    # From his SMS number, which was not messaged yet: a reply, not a read, must acknowledge.
    app_emulator.reply(sender="447700900001", channel_type="sms", text="looking")
    wait_until(lambda: Escalation.objects.get(pk=escalation.pk).state != "active", what="the reply")
    escalation.refresh_from_db()
    assert escalation.state == "acknowledged"
    assert escalation.outcome == "Tony: replied on SMS: \u201clooking\u201d"

