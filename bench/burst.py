"""4. Burst: 6,000 escalations (three people each) fired in one transaction; time until every first person's
Dispatch request has reached the emulator.

One escalation is fired through escalation_fire; the other 5,999 get the very rows it wrote (its frozen plan,
its FIRED event) in the same transaction, so all 6,000 become due at the same commit, as a storm of alerts
through an integration would make them. The emulator answers like Vonage (status webhooks to gunicorn:
submitted, then delivered a second later), so the web workers take that load during the burst too.
"""

import time
from pathlib import Path

from django.db import transaction

from bench.common import Result, bulk_escalations, log, median, percentile, truncate_run_tables
from bench.harness import Stack
from escalation.models import Escalation

ESCALATIONS = 6000
WORKERS = 2
TIMEOUT = 120.0


def fire_all(stack: Stack, roster) -> float:
    """Fire ESCALATIONS at once; returns the commit's time.time()."""
    committed = []
    with transaction.atomic():
        first = stack.fire(roster, "bench burst")
        bulk_escalations(ESCALATIONS - 1, plan=first.plan, api=first.api, created_at=first.created_at,
                         next_action_at=first.next_action_at)
        transaction.on_commit(lambda: committed.append(time.time()))
    return committed[0]


def run(stack: Stack, folder: Path) -> Result:
    truncate_run_tables()
    stack.emulator.reset()
    roster = stack.make_roster("burst", people=3)
    indexes = [stack.add_worker() for _ in range(WORKERS)]
    try:
        stack.wait_workers_ready()  # the workers' Django start-up is not part of the burst
        since = max([r["seq"] for r in stack.emulator_requests()], default=0)
        cpu_before = stack.cpu_by_role()
        committed = fire_all(stack, roster)
        log(f"burst: {ESCALATIONS} escalations committed")
        arrivals: list[float] = []
        deadline = time.monotonic() + TIMEOUT
        while len(arrivals) < ESCALATIONS and time.monotonic() < deadline:
            found = stack.emulator_requests(since=since, limit=2000)
            if not found:
                time.sleep(0.2)
                continue
            since = found[-1]["seq"]
            arrivals += [r["at"] - committed for r in found if r["path"] == "/v0.1/dispatch" and r["status"] == 202]
        cpu_after = stack.cpu_by_role()
        worker_rss = [stack.peak_rss_mb(stack.workers[i].pid) for i in indexes]
        web_rss = [stack.peak_rss_mb(pid) for pid in stack.web_worker_pids()]
    finally:
        for i in indexes:
            stack.workers[i].stop()
        # The webhooks still queued in the emulator would only load the next benchmark.
        stack.emulator.reset()
    paged = len(arrivals)
    total = max(arrivals) if arrivals else TIMEOUT
    details = {"paged": paged, "total_s": total, "p50_s": median(arrivals) if arrivals else None,
               "p99_s": percentile(arrivals, 99) if arrivals else None, "workers": WORKERS,
               "rate_per_s": paged / total if total else 0, "worker_rss_mb": worker_rss, "web_rss_mb": web_rss,
               "escalations": Escalation.objects.count(),
               # Where each first page's CPU went, across the stack (PostgreSQL's includes other users').
               "cpu_ms_per_page": {role: round((cpu_after[role] - cpu_before[role]) * 1000 / max(paged, 1), 2)
                                   for role in cpu_before}}
    log(f"burst: {paged} of {ESCALATIONS} first persons paged; last after {total:.1f} s "
        f"({details['rate_per_s']:.0f}/s); worker RSS {worker_rss} MB, web RSS {web_rss} MB; "
        f"CPU ms per page {details['cpu_ms_per_page']}")
    complete = paged == ESCALATIONS
    figure = (f"all {ESCALATIONS} first persons paged {total:.1f} s after the commit "
              f"({details['rate_per_s']:.0f}/s, {WORKERS} workers); half of them by {details['p50_s']:.1f} s"
              if complete else f"only {paged} of {ESCALATIONS} paged within {TIMEOUT:.0f} s")
    return Result(4, "Burst of 6,000", figure, "< 10 s", complete and total < 10.0, details=details)
