"""3. Deadline lateness: 10,000 escalations whose first person's window ends within one minute.

Each escalation is written as the engine leaves it after paging person 1 by Dispatch (workflow accepted,
`dispatch_uuid` set, nobody reached): its timer is that person's deadline, spread evenly over 60 s from a
few seconds after the worker has started. At the deadline the worker must pass person 1 over and page
person 2. Lateness is person 2's page start (the worker's decision) minus person 1's deadline; the
moment the Dispatch request for person 2 left is reported too.

The emulator's status webhooks are switched off here: this measures the engine's timers, and what a
webhook costs is benchmark 1. The peak RSS of the worker(s) and of the web workers is read at the end.
"""

import time
import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from bench.common import (
    Result,
    StatementCounter,
    bench_plan,
    bulk_escalations,
    log,
    median,
    percentile,
    truncate_run_tables,
)
from bench.harness import Stack
from escalation.engine.sending import SendPool
from escalation.engine.worker import advance, claim_due
from escalation.models import Page

ESCALATIONS = 10_000
SPREAD_SECONDS = 60.0
LEAD_SECONDS = 5.0  # from the end of the set-up to the first deadline
GRACE_SECONDS = 30.0  # after the last deadline, before the run is cut off
LIGHT_TIMERS, LIGHT_SPREAD_SECONDS = 2400, 60.0  # 40 steps/s: below what one worker sustains here


def prepare(count: int, spread: float = SPREAD_SECONDS) -> None:
    truncate_run_tables()
    now = timezone.now()
    plan = bench_plan(2)
    first = now + timedelta(seconds=LEAD_SECONDS)
    ids = bulk_escalations(count, plan=plan, api="dispatch", created_at=now - timedelta(seconds=1200),
                           next_action_at=None)
    deadlines = {pk: first + timedelta(seconds=spread * n / count) for n, pk in enumerate(ids)}
    Page.objects.bulk_create([
        Page(escalation_id=pk, round=1, index=0, person_name="Bench person 1", started_at=now - timedelta(seconds=1200),
             deadline=deadlines[pk], dispatch_uuid=uuid.uuid4(), dispatch_requested_at=now - timedelta(seconds=1200),
             send_attempts=1) for pk in ids], batch_size=5000)
    # The rows took a while to write (seconds on a slow machine, more than the lead): the deadlines move so
    # that the first is still LEAD_SECONDS ahead when the timers are armed, or the first seconds' timers
    # would be late before the worker could see them, and measured as the engine's lateness.
    # One UPDATE per escalation would take longer than the minute measured; a join sets every timer.
    with transaction.atomic(), connection.cursor() as cursor:
        shift = timezone.now() + timedelta(seconds=LEAD_SECONDS) - first
        for start in range(0, len(ids), 5000):
            chunk = ids[start:start + 5000]
            cursor.execute("UPDATE escalation_page SET deadline = deadline + %s WHERE escalation_id = ANY(%s)",
                           [shift, chunk])
            cursor.execute(
                "UPDATE escalation_escalation e SET next_action_at = p.deadline, current_round = 1, current_index = 0 "
                "FROM escalation_page p WHERE p.escalation_id = e.id AND e.id = ANY(%s)", [chunk])


def measure(stack: Stack, workers: int, count: int = ESCALATIONS, spread: float = SPREAD_SECONDS) -> dict:
    stack.emulator.reset()
    # Nobody's phone answers and no webhook is sent: person 2's workflow is accepted and then left alone.
    stack.emulator.configure(webhook_base="")
    truncate_run_tables()  # a previous run's backlog would keep the new workers busy, never idle
    indexes = [stack.add_worker() for _ in range(workers)]
    try:
        # Workers are up (and idle: nothing is due yet) before the timers are written.
        stack.wait_workers_ready()
        prepare(count, spread)
        cpu_before = stack.cpu_by_role()
        log(f"lateness x{workers}: {count} timers set over {spread:.0f} s")
        # Bounded, so an engine that falls behind still ends the run: what is left is at least this late.
        cutoff = timezone.now() + timedelta(seconds=LEAD_SECONDS + spread + GRACE_SECONDS)
        try:
            stack.wait_for(lambda: Page.objects.filter(index=1).exclude(dispatch_requested_at=None).count(),
                           lambda n: n >= count or timezone.now() >= cutoff, timeout=600, interval=1.0)
        finally:
            cut_at = timezone.now()
            cpu_after = stack.cpu_by_role()
        worker_rss = [stack.peak_rss_mb(stack.workers[i].pid) for i in indexes]
        web_rss = [stack.peak_rss_mb(pid) for pid in stack.web_worker_pids()]
    finally:
        for i in indexes:
            stack.workers[i].stop()
        stack.emulator.configure(webhook_base=stack.url)
    deadline = dict(Page.objects.filter(index=0).values_list("escalation_id", "deadline"))
    late, late_request, done_at = [], [], []
    for escalation_id, started, requested in Page.objects.filter(index=1).values_list(
            "escalation_id", "started_at", "dispatch_requested_at"):
        if requested is None or requested > cut_at:
            continue
        late.append((started - deadline.pop(escalation_id)).total_seconds())
        late_request.append((requested - started).total_seconds() + late[-1])
        done_at.append(started)
    # Not acted on by the cut-off: late by at least the time from their deadline to the cut-off.
    pending = [(cut_at - d).total_seconds() for d in deadline.values()]
    everything = late + pending
    rate = len(done_at) / max((max(done_at) - min(done_at)).total_seconds(), 1e-3) if len(done_at) > 1 else 0.0
    result = {"workers": workers, "timers": count, "spread_s": spread, "p50": median(everything),
              "p99": percentile(everything, 99), "max": max(everything), "early": sum(1 for x in late if x < 0),
              "done": len(late),
              "pending": len(pending), "request_p99": percentile(late_request, 99) if late_request else None,
              "advances_per_s": rate, "worker_rss_mb": worker_rss, "web_rss_mb": web_rss,
              # Where each step's CPU went, across the stack (PostgreSQL's figure includes other users').
              "cpu_ms_per_step": {role: (cpu_after[role] - cpu_before[role]) * 1000 / max(len(late), 1)
                                  for role in cpu_before}}
    log(f"lateness x{workers}: {len(late)} of {count} acted on by the cut-off ({rate:.0f}/s); p50 "
        f"{result['p50'] * 1000:.0f} ms, p99 {result['p99'] * 1000:.0f} ms, max {result['max'] * 1000:.0f} ms; "
        f"worker RSS {worker_rss} MB; CPU ms per step "
        f"{ {role: round(ms, 1) for role, ms in result['cpu_ms_per_step'].items()} }")
    return result


def step_cost(stack: Stack, count: int = 200) -> dict:
    """Statements and CPU time of this process per step (pass person 1 over, page person 2 by Dispatch),
    run in-process as one worker pass over `count` escalations with the worker's threads: the engine's own
    cost, without the machine's other jobs' noise."""
    stack.emulator.configure(webhook_base="")
    try:
        prepare(count + 20)
        now = timezone.now() + timedelta(seconds=LEAD_SECONDS + SPREAD_SECONDS + 1)
        ids = claim_due(now, count + 20)
        with SendPool(settings.WORKER_THREADS) as pool:
            advance(ids[:20], clock=lambda: now, pool=pool)
            started = time.process_time()
            with StatementCounter() as statements:
                advance(ids[20:], clock=lambda: now, pool=pool)
        cpu = time.process_time() - started
    finally:
        stack.emulator.configure(webhook_base=stack.url)
    done = len(ids) - 20
    return {"statements": statements.count / done, "cpu_ms": cpu / done * 1000}


def run(stack: Stack, folder: Path) -> list[Result]:
    one = measure(stack, 1)
    two = measure(stack, 2)
    # The same step at a rate one worker keeps up with: how precise the timers are when throughput is no limit.
    light = measure(stack, 1, count=LIGHT_TIMERS, spread=LIGHT_SPREAD_SECONDS)
    cost = step_cost(stack)
    one["step_cost"] = two["step_cost"] = light["step_cost"] = cost
    log(f"lateness: one step in-process: {cost['statements']:.1f} SQL statements, {cost['cpu_ms']:.1f} ms CPU")

    def figure(r: dict) -> str:
        text = f"p50 {r['p50']:.2f} s, p99 {r['p99']:.2f} s, max {r['max']:.2f} s"
        if r["pending"]:
            text += (f"; only {r['done']} of {r['timers']} acted on within {GRACE_SECONDS:.0f} s of the last deadline "
                     f"(the rest counted as late as the cut-off, so p99 is a lower bound)")
        cost = r["step_cost"]
        return (text + f"; {r['advances_per_s']:.0f} steps/s sustained; one step costs "
                f"{cost['statements']:.1f} SQL statements and {cost['cpu_ms']:.1f} ms CPU in-process")

    return [
        Result(3, "Deadline lateness, 1 worker", figure(one), "p99 <= 1 s",
               one["p99"] <= 1.0 and one["early"] == 0, details=one),
        Result(3, "Deadline lateness, 2 workers", figure(two), "(reported)", None, details=two),
        Result(3, f"Deadline lateness, 1 worker, {LIGHT_TIMERS} timers over {LIGHT_SPREAD_SECONDS:.0f} s",
               figure(light), "(reported)", None, details=light),
    ]
