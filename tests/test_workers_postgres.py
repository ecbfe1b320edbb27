"""Real worker processes on PostgreSQL: racing workers page each step exactly once, and a worker killed
with SIGKILL mid-run leaves nothing stuck.

Time is advanced explicitly: instead of waiting out each channel's expiry, the test moves every waiting
message's deadline (and its escalation's timer) to now, which is what the clock would have done.
"""

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection, transaction
from django.utils import timezone

from escalation.models import Escalation, EscalationState, Message
from escalation.services.escalations import escalation_fire
from tests.conftest import TEST_APPLICATION_ID, requires_postgres
from tests.emulator_fixtures import emulator_process
from tests.personas import ANNA, MICHAEL, TONY, make_roster

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _messages_api(settings):
    # Messages mode: every step is one request, so "each step exactly once" is countable per client_ref.
    settings.ESCALATION_API = "messages"

ROOT = Path(__file__).resolve().parent.parent
SENDS_PER_ESCALATION = 2 + 3 + 2  # Tony, Michael and Anna's channels, nobody answering


def database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def start_worker(api_url: str, private_key_path: str, threads: int = 4) -> subprocess.Popen:
    env = dict(os.environ, DATABASE_URL=database_url(), VONAGE_API_URL=api_url,
               VONAGE_PRIVATE_KEY_PATH=private_key_path, VONAGE_APPLICATION_ID=TEST_APPLICATION_ID,
               ESCALATION_API="messages", WORKER_THREADS=str(threads), WORKER_POLL_INTERVAL="0.05",
               ESCALATION_CLAIM_LEASE_SECONDS="1", ESCALATION_SEND_LEASE_SECONDS="2",
               VONAGE_CONNECT_TIMEOUT="0.5", VONAGE_READ_TIMEOUT="1", LOG_LEVEL="WARNING")
    return subprocess.Popen([sys.executable, "manage.py", "run_escalations"], cwd=ROOT, env=env,
                            start_new_session=True)


def stop(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
    for worker in workers:
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def expire_waiting_messages() -> None:
    """What the clock does when every channel's expiry runs out: the next step is due now."""
    with transaction.atomic():
        # Under the escalations' row locks, like the engine's own writers: a worker deciding right now
        # must not keep the old deadline after we moved it.
        list(Escalation.objects.select_for_update().filter(state=EscalationState.ACTIVE).order_by("pk")
             .values_list("pk", flat=True))
        now = timezone.now()
        Message.objects.filter(page__escalation__state=EscalationState.ACTIVE, deadline__gt=now).update(deadline=now)
        Escalation.objects.filter(state=EscalationState.ACTIVE, next_action_at__gt=now).update(next_action_at=now)


def sent_count() -> int:
    return Message.objects.exclude(message_uuid=None).count()


def wait_for_sends(expected: int, workers: list[subprocess.Popen], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while sent_count() < expected:
        assert all(w.poll() is None for w in workers), "a worker died"
        if time.monotonic() > deadline:
            raise AssertionError(f"only {sent_count()} of {expected} messages sent")
        time.sleep(0.05)


def fire_many(count: int) -> list[Escalation]:
    roster = make_roster(TONY, MICHAEL, ANNA)
    return [escalation_fire(roster=roster, message=f"incident {n}", fired_by_name="race") for n in range(count)]


def run_to_the_end(escalations: list[Escalation], workers: list[subprocess.Popen]) -> None:
    for step in range(1, SENDS_PER_ESCALATION + 1):
        wait_for_sends(step * len(escalations), workers)
        expire_waiting_messages()
    deadline = time.monotonic() + 60
    while Escalation.objects.filter(state=EscalationState.ACTIVE).exists():
        assert time.monotonic() < deadline, "escalations still active"
        expire_waiting_messages()
        time.sleep(0.05)


def requests_by_client_ref(emulator) -> Counter:
    return Counter(r["body"]["client_ref"] for r in emulator.requests() if r["status"] == 202)


def test_racing_workers_page_each_step_exactly_once(vonage_keys):
    with emulator_process(public_key_path=vonage_keys["public_path"]) as emulator:
        escalations = fire_many(150)
        workers = [start_worker(emulator.url, vonage_keys["private_path"]) for _ in range(3)]
        try:
            run_to_the_end(escalations, workers)
        finally:
            stop(workers)
        per_ref = requests_by_client_ref(emulator)
    assert set(Escalation.objects.values_list("state", flat=True)) == {"exhausted"}
    assert sent_count() == 150 * SENDS_PER_ESCALATION
    assert len(per_ref) == 150 * SENDS_PER_ESCALATION
    assert max(per_ref.values()) == 1, "a message was sent twice"


@pytest.mark.parametrize("threads", [1, 4])
def test_a_worker_killed_mid_run_leaves_nothing_stuck(vonage_keys, threads):
    """A kill can cut off each send in flight between the request and its record; each such send is
    repeated once after its lease. So: at most `threads` duplicates per kill, and never a lost send.
    (With webhooks on, a status that arrives within the lease prevents even that repeat.)"""
    rng = random.Random(7)
    kills = 0
    with emulator_process(public_key_path=vonage_keys["public_path"]) as emulator:
        escalations = fire_many(100)
        workers = [start_worker(emulator.url, vonage_keys["private_path"], threads)]
        try:
            for step in range(1, SENDS_PER_ESCALATION + 1):
                # Kill the worker at a random moment while it is sending this step, then restart it.
                target = (step - 1) * len(escalations) + rng.randint(5, len(escalations) - 5)
                wait_for_sends(target, workers)
                os.killpg(workers[0].pid, signal.SIGKILL)
                workers[0].wait()
                kills += 1
                workers = [start_worker(emulator.url, vonage_keys["private_path"], threads)]
                wait_for_sends(step * len(escalations), workers)
                expire_waiting_messages()
            run_to_the_end(escalations, workers)
        finally:
            stop(workers)
        per_ref = requests_by_client_ref(emulator)
    assert kills == SENDS_PER_ESCALATION
    assert set(Escalation.objects.values_list("state", flat=True)) == {"exhausted"}
    assert sent_count() == 100 * SENDS_PER_ESCALATION
    assert len(per_ref) == 100 * SENDS_PER_ESCALATION  # nothing was never sent
    duplicates = sum(n - 1 for n in per_ref.values())
    assert duplicates <= kills * threads, f"{duplicates} duplicate sends for {kills} kills"
