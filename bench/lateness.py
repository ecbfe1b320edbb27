"""3. Deadline lateness: 10,000 escalations whose first person's window ends within one minute.

Each escalation is written as the engine leaves it after paging person 1 by Dispatch (workflow accepted,
`dispatch_uuid` set, nobody reached): its timer is that person's deadline, spread evenly over 60 s from a
few seconds after the worker has started. At the deadline the worker must pass person 1 over and page
person 2. Lateness is person 2's page start (the worker's decision) minus person 1's deadline; the
moment the Dispatch request for person 2 left is reported too.

The emulator's status webhooks are switched off here: this measures the engine's timers, and what a
webhook costs is benchmark 1. The peak RSS of the worker(s) and of the web workers is read at the end.
"""

import uuid
from datetime import timedelta
from pathlib import Path

from django.db import connection
from django.utils import timezone

from bench.common import Result, bench_plan, bulk_escalations, log, median, percentile, truncate_run_tables
from bench.harness import Stack
from escalation.models import Escalation, Page

ESCALATIONS = 10_000
SPREAD_SECONDS = 60.0
LEAD_SECONDS = 5.0  # from the end of the set-up to the first deadline


def prepare(count: int) -> None:
    truncate_run_tables()
    now = timezone.now()
    plan = bench_plan(2)
    first = now + timedelta(seconds=LEAD_SECONDS)
    ids = bulk_escalations(count, plan=plan, api="dispatch", created_at=now - timedelta(seconds=1200),
                           next_action_at=None)
    deadlines = {pk: first + timedelta(seconds=SPREAD_SECONDS * n / count) for n, pk in enumerate(ids)}
    Page.objects.bulk_create([
        Page(escalation_id=pk, round=1, index=0, person_name="Bench person 1", started_at=now - timedelta(seconds=1200),
             deadline=deadlines[pk], dispatch_uuid=uuid.uuid4(), dispatch_requested_at=now - timedelta(seconds=1200),
             send_attempts=1) for pk in ids], batch_size=5000)
    # One UPDATE per escalation would take longer than the minute measured; a VALUES join sets every timer.
    with connection.cursor() as cursor:
        for start in range(0, len(ids), 5000):
            chunk = ids[start:start + 5000]
            cursor.execute(
                "UPDATE escalation_escalation e SET next_action_at = p.deadline, current_round = 1, current_index = 0 "
                "FROM escalation_page p WHERE p.escalation_id = e.id AND e.id = ANY(%s)", [chunk])


def measure(stack: Stack, workers: int) -> dict:
    stack.emulator.reset()
    # Everyone answers nothing: person 2's workflow is accepted and then left alone.
    stack.emulator.configure(webhook_base="")
    indexes = [stack.add_worker() for _ in range(workers)]
    try:
        # Workers are up (and idle: nothing is due yet) before the timers are written.
        stack.wait_for(lambda: all(stack.workers[i].alive() for i in indexes), timeout=10)
        prepare(ESCALATIONS)
        log(f"lateness x{workers}: {ESCALATIONS} timers set over {SPREAD_SECONDS:.0f} s")
        stack.wait_for(lambda: Page.objects.filter(index=1).count(), lambda n: n >= ESCALATIONS,
                       timeout=LEAD_SECONDS + SPREAD_SECONDS + 240, interval=1.0)
        stack.wait_for(lambda: Page.objects.filter(index=1, dispatch_requested_at=None).count(),
                       lambda n: n == 0, timeout=60, interval=0.5)
        worker_rss = [stack.peak_rss_mb(stack.workers[i].pid) for i in indexes]
        web_rss = [stack.peak_rss_mb(pid) for pid in stack.web_worker_pids()]
    finally:
        for i in indexes:
            stack.workers[i].stop()
        stack.emulator.configure(webhook_base=stack.url)
    deadline = dict(Page.objects.filter(index=0).values_list("escalation_id", "deadline"))
    late, late_request = [], []
    for escalation_id, started, requested in Page.objects.filter(index=1).values_list(
            "escalation_id", "started_at", "dispatch_requested_at"):
        late.append((started - deadline[escalation_id]).total_seconds())
        late_request.append((requested - deadline[escalation_id]).total_seconds())
    requests = len(stack.emulator_requests())
    still_active = Escalation.objects.filter(state="active", current_index=0).count()
    result = {"workers": workers, "p50": median(late), "p99": percentile(late, 99), "max": max(late),
              "early": sum(1 for x in late if x < 0), "request_p50": median(late_request),
              "request_p99": percentile(late_request, 99), "requests": requests, "not_advanced": still_active,
              "worker_rss_mb": worker_rss, "web_rss_mb": web_rss}
    log(f"lateness x{workers}: p50 {result['p50'] * 1000:.0f} ms, p99 {result['p99'] * 1000:.0f} ms, "
        f"max {result['max'] * 1000:.0f} ms; request sent p99 {result['request_p99'] * 1000:.0f} ms; "
        f"{requests} requests; worker RSS {worker_rss} MB")
    return result


def run(stack: Stack, folder: Path) -> list[Result]:
    one = measure(stack, 1)
    two = measure(stack, 2)

    def figure(r: dict) -> str:
        return (f"p50 {r['p50'] * 1000:.0f} ms, p99 {r['p99'] * 1000:.0f} ms, max {r['max'] * 1000:.0f} ms "
                f"(request out: p99 {r['request_p99'] * 1000:.0f} ms); {r['early']} early")

    return [
        Result(3, "Deadline lateness, 1 worker", figure(one), "p99 <= 1 s",
               one["p99"] <= 1.0 and one["early"] == 0, details=one),
        Result(3, "Deadline lateness, 2 workers", figure(two), "(reported)", None, details=two),
    ]
