"""Idle workers are woken by a fire's commit on PostgreSQL, and fall back to the poll sleep elsewhere."""

import threading
import time

import psycopg
import pytest
from django.db import connection, transaction

from escalation.engine.wakeup import CHANNEL, Wakeup, notify_workers
from escalation.services.escalations import escalation_fire
from tests.conftest import requires_postgres
from tests.personas import TONY, make_roster


def waiting(wakeup: Wakeup, timeout: float) -> tuple[threading.Thread, dict]:
    took = {}

    def wait() -> None:
        started = time.monotonic()
        wakeup.wait(timeout)
        took["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=wait)
    thread.start()
    return thread, took


def test_it_returns_at_once_when_the_worker_is_stopping():
    stop = threading.Event()
    stop.set()
    started = time.monotonic()
    Wakeup(stop).wait(30)
    assert time.monotonic() - started < 5


@pytest.mark.django_db
def test_it_sleeps_the_poll_interval_without_postgresql():
    if connection.vendor == "postgresql":
        pytest.skip("the poll fallback is for databases without NOTIFY")
    notify_workers()  # nothing to notify, and no error
    started = time.monotonic()
    Wakeup(threading.Event()).wait(0.05)
    assert time.monotonic() - started >= 0.05


@requires_postgres
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_waiting_worker_wakes_when_the_notifying_transaction_commits():
    wakeup = Wakeup(threading.Event())
    wakeup.wait(0.01)  # starts listening
    try:
        thread, took = waiting(wakeup, timeout=30)
        with transaction.atomic():
            notify_workers()
            thread.join(timeout=0.5)
            assert thread.is_alive(), "woken before the commit: the fire would not be visible yet"
        thread.join(timeout=10)
        assert not thread.is_alive()
        assert took["seconds"] < 10
    finally:
        wakeup.close()


@requires_postgres
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_firing_an_escalation_notifies_the_workers():
    params = {k: v for k, v in connection.get_connection_params().items()
              if k not in ("cursor_factory", "context", "prepare_threshold")}
    with psycopg.connect(**params, autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        escalation_fire(roster=make_roster(TONY), message="Main server down", fired_by_name="test")
        received = [n.channel for n in listener.notifies(timeout=10, stop_after=1)]
    assert received == [CHANNEL]


@requires_postgres
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_lost_listening_connection_falls_back_to_polling():
    wakeup = Wakeup(threading.Event())
    wakeup.wait(0.01)
    wakeup._listener.close()  # as if PostgreSQL restarted under it
    started = time.monotonic()
    wakeup.wait(0.05)
    wakeup.wait(0.05)  # polling now, with no listener to fail again
    assert wakeup._listener is None
    assert time.monotonic() - started < 5
