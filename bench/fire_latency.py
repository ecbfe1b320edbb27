"""2. Fire to first request: from the commit of escalation_fire to the emulator receiving the Dispatch request.

Fires come one at a time from this process at irregular intervals (so they land anywhere in the worker's
poll cycle), through the real service. The commit moment is taken in an on_commit hook; the arrival is
the emulator's own record of the request (same machine, same clock).
"""

import random
import re
import time
from pathlib import Path

from bench.common import Result, log, median, percentile, truncate_run_tables, workflow_text
from bench.harness import Stack
from escalation.models import Page

FIRES = 200
MARK = re.compile(r"bench fire (\d+)")


def run(stack: Stack, folder: Path) -> Result:
    truncate_run_tables()
    stack.emulator.reset()
    roster = stack.make_roster("fire latency", people=3)
    index = stack.add_worker()
    try:
        # The worker is ready once it has paged a warm-up fire.
        stack.fire(roster, "bench warm-up")
        stack.wait_for(stack.emulator_requests, lambda found: len(found) >= 1, timeout=30)
        since = stack.emulator_requests()[-1]["seq"]
        committed: dict[int, float] = {}
        rng = random.Random(8)
        for n in range(FIRES):
            stack.fire(roster, f"bench fire {n}")
            committed[n] = stack.last_commit_at
            time.sleep(rng.uniform(0.01, 0.06))
        arrived = stack.wait_for(lambda: stack.emulator_requests(since=since),
                                 lambda found: len(found) >= FIRES, timeout=60)
    finally:
        stack.workers[index].stop()
    latencies, to_decided, to_request = [], [], []
    pages = {int(MARK.search(message).group(1)): (started.timestamp(), requested.timestamp())
             for message, started, requested in Page.objects.filter(index=0, escalation__message__contains="bench fire")
             .values_list("escalation__message", "started_at", "dispatch_requested_at")}
    for request in arrived:
        text = workflow_text(request["body"])
        n = int(MARK.search(text).group(1))
        commit = committed.pop(n)
        latencies.append(request["at"] - commit)
        # Where the time goes: commit -> the worker's decision (wake, claim, lock) -> its request leaving.
        to_decided.append(pages[n][0] - commit)
        to_request.append(pages[n][1] - commit)
    assert not committed, f"fires never requested: {sorted(committed)[:10]}"
    p50, p99 = median(latencies), percentile(latencies, 99)
    log(f"fire to first request: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
        f" (commit to decision p50 {median(to_decided) * 1000:.0f} ms p99 {percentile(to_decided, 99) * 1000:.0f} ms;"
        f" to request sent p50 {median(to_request) * 1000:.0f} ms p99 {percentile(to_request, 99) * 1000:.0f} ms)")
    return Result(2, "Fire to first request", f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
                  f"max {max(latencies) * 1000:.0f} ms over {FIRES} fires", "p99 <= 250 ms", p99 <= 0.250,
                  details={"p50_ms": p50 * 1000, "p99_ms": p99 * 1000, "max_ms": max(latencies) * 1000,
                           "to_decided_p50_ms": median(to_decided) * 1000,
                           "to_decided_p99_ms": percentile(to_decided, 99) * 1000,
                           "to_request_p50_ms": median(to_request) * 1000,
                           "to_request_p99_ms": percentile(to_request, 99) * 1000})
