"""The whole path over real HTTP: the worker pages through the emulator, the emulator's signed webhooks come
back to the app's live server, and the escalation ends where the recipients' script says.

The worker runs in a thread on a clock the test steps forward explicitly (`worker.advance`), so waiting out
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


class SteppedWorker:
    """The worker's loop in a thread, on a clock the test steps forward; it keeps what each pass handled, so a
    test can wait for a pass that found nothing to do."""

    def __init__(self) -> None:
        self.clock = SteppedClock()
        self._handled: list[int] = []  # by pass, once it has finished
        self._started = 0
        self._passes = threading.Condition()

    def __call__(self):
        return self.clock()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def loop(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                with self._passes:
                    self._started += 1
                handled = run_due(now=self.clock())
                with self._passes:
                    self._handled.append(handled)
                    self._passes.notify_all()
                stop.wait(0.02)
        finally:
            connection.close()

    def next_pass(self, timeout: float = 10.0) -> int:
        """What the next pass to start handled (webhooks, escalations, notices), once it has finished."""
        with self._passes:
            which = self._started
            if not self._passes.wait_for(lambda: len(self._handled) > which, timeout=timeout):
                raise AssertionError(f"the worker's pass {which} did not finish in {timeout} s")
            return self._handled[which]


@pytest.fixture
def worker():
    worker = SteppedWorker()
    stop = threading.Event()
    thread = threading.Thread(target=worker.loop, args=(stop,), daemon=True)
    thread.start()
    yield worker
    stop.set()
    thread.join(timeout=10)


def wait_until(predicate, *, timeout: float = 10.0, what: str = "") -> None:
    deadline = timezone.now() + timedelta(seconds=timeout)
    while not predicate():
        if timezone.now() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        threading.Event().wait(0.02)


def outbound(app_emulator) -> tuple[int, int]:
    health = app_emulator.health()
    return health["webhooks_pending"], health["webhooks_made"]


def wait_settled(app_emulator, worker: SteppedWorker, timeout: float = 10.0) -> None:
    """Wait until everything sent has been answered: the emulator has no webhook left to deliver (a webhook
    counts as delivered once the app has answered it, so it is stored), then a whole worker pass finds
    nothing to do (every stored webhook applied, nothing due, no send made) and the emulator made no webhook
    meanwhile (none came and went from a send that was in flight)."""
    deadline = timezone.now() + timedelta(seconds=timeout)
    while timezone.now() < deadline:
        before = app_emulator.wait_for(lambda: outbound(app_emulator), lambda o: o[0] == 0, timeout=timeout)
        if worker.next_pass() == 0 and outbound(app_emulator) == before:
            return
    raise AssertionError(f"not settled in {timeout} s: the emulator's webhooks {outbound(app_emulator)}")


def run_until_done(escalation, app_emulator, worker: SteppedWorker, *, max_jumps: int = 20) -> Escalation:
    """Let the recipients answer, then jump the worker's clock to the escalation's next timer; repeat."""
    for _ in range(max_jumps):
        wait_settled(app_emulator, worker)
        escalation.refresh_from_db()
        if escalation.state != "active":
            return escalation
        if escalation.next_action_at and escalation.next_action_at > worker():
            worker.advance((escalation.next_action_at - worker()).total_seconds() + 0.001)
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
    escalation = run_until_done(escalation, app_emulator, worker)
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

