"""Two deliveries of the same event at the same moment, each in its own thread and database connection:
one stores it, the other is a duplicate, and neither fails; two workers applying it at once apply it once."""

import json
import threading
import time
from collections.abc import Callable

import pytest
from django.db import connection, transaction

from escalation.engine.intake import webhook_apply, webhooks_apply
from escalation.models import Event, WebhookEvent
from escalation.services.escalations import escalation_fire
from escalation.services.webhooks import Received, webhook_receive
from tests.applying import apply_stored_webhooks
from tests.conftest import requires_postgres
from tests.personas import MICHAEL, TONY, make_roster
from tests.test_webhooks import T0, paged, sent, v1_status

pytestmark = pytest.mark.django_db(transaction=True)


def in_thread(work: Callable[[], Received], results: list, errors: list) -> threading.Thread:
    def run() -> None:
        try:
            results.append(work())
        except Exception as e:  # reported by the test, not lost in the thread
            errors.append(e)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.fixture
def delivery(settings) -> tuple[bytes, int]:
    settings.ESCALATION_API = "messages"
    escalation = escalation_fire(roster=make_roster(TONY, MICHAEL), message="Main server down", now=T0)
    message = sent(paged(escalation, 1), 0)  # Michael's Viber waits for `read`
    return json.dumps(v1_status(message, "delivered")).encode(), message.pk


def receive(raw: bytes) -> Received:
    return webhook_receive(kind_hint="status", raw_body=raw, authorization=None, now=T0)


def test_simultaneous_duplicates_are_applied_once(delivery):
    raw, message_id = delivery
    for _ in range(5):
        WebhookEvent.objects.all().delete()
        barrier = threading.Barrier(2)
        results: list[Received] = []
        errors: list[Exception] = []

        def together(barrier: threading.Barrier = barrier) -> Received:
            barrier.wait(timeout=10)
            return receive(raw)

        threads = [in_thread(together, results, errors) for _ in range(2)]
        for thread in threads:
            thread.join(timeout=30)
        assert not errors
        assert sorted(r.duplicate for r in results) == [False, True]
        assert WebhookEvent.objects.count() == 1
    apply_stored_webhooks()
    assert Event.objects.filter(message_id=message_id, kind="delivered").count() == 1


@requires_postgres
def test_a_duplicate_waits_for_the_first_delivery_and_then_is_answered_as_one(delivery):
    raw, message_id = delivery
    first_inserted, release = threading.Event(), threading.Event()
    # A list per thread: once released, the second can return before the first does.
    first_results: list[Received] = []
    second_results: list[Received] = []
    errors: list[Exception] = []

    def first() -> Received:
        with transaction.atomic():  # keep the first delivery's row uncommitted until released
            received = receive(raw)
            first_inserted.set()
            release.wait(timeout=30)
        return received

    first_thread = in_thread(first, first_results, errors)
    assert first_inserted.wait(timeout=10)
    second_thread = in_thread(lambda: receive(raw), second_results, errors)
    deadline = time.monotonic() + 10
    blocked = 0
    with connection.cursor() as cursor:
        while not blocked and time.monotonic() < deadline:  # until the second waits on the first's unique key
            time.sleep(0.01)
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND wait_event_type = 'Lock'")
            blocked = cursor.fetchone()[0]
    release.set()
    first_thread.join(timeout=30)
    second_thread.join(timeout=30)
    assert blocked, "the second delivery never waited for the first"
    assert not errors
    assert [r.duplicate for r in first_results + second_results] == [False, True]
    assert WebhookEvent.objects.count() == 1
    apply_stored_webhooks()
    assert Event.objects.filter(message_id=message_id, kind="delivered").count() == 1


def test_two_workers_applying_the_same_event_at_once_apply_it_once(delivery):
    raw, message_id = delivery
    event = receive(raw).event
    for _ in range(5):
        barrier = threading.Barrier(2)
        results: list = []
        errors: list[Exception] = []

        def together(barrier: threading.Barrier = barrier):
            barrier.wait(timeout=10)
            return webhook_apply(event.pk, now=T0)

        threads = [in_thread(together, results, errors) for _ in range(2)]
        for thread in threads:
            thread.join(timeout=30)
        assert not errors
        assert sum(r is not None for r in results) == 1
        WebhookEvent.objects.filter(pk=event.pk).update(applied_at=None)  # pending again for the next try
    assert Event.objects.filter(message_id=message_id, kind="delivered").count() == 1  # the status moved once


def test_workers_applying_overlapping_batches_apply_each_event_once(settings):
    settings.ESCALATION_API = "messages"
    roster = make_roster(TONY, MICHAEL)
    messages = []
    for n in range(6):
        escalation = escalation_fire(roster=roster, message=f"Alert {n}", now=T0)
        messages += [sent(paged(escalation, 0), 0), sent(paged(escalation, 1), 0)]
    events = [receive(json.dumps(v1_status(m, status)).encode()).event.pk
              for status in ("delivered", "read") for m in messages]
    barrier = threading.Barrier(3)
    results: list[int] = []
    errors: list[Exception] = []

    def worker(ids: list[int]) -> int:
        barrier.wait(timeout=10)
        return webhooks_apply(ids, now=T0)

    # Three workers, each with a batch that overlaps the others' in a different order.
    batches = [events, events[::-1], events[len(events) // 2:] + events[:len(events) // 2]]
    threads = [in_thread(lambda b=batch: worker(b), results, errors) for batch in batches]
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert sum(results) == len(events)
    assert not WebhookEvent.objects.filter(applied_at=None).exists()
    for message in messages:
        assert list(Event.objects.filter(message=message).values_list("kind", flat=True).order_by("id")) == [
            "delivered", "read"]
