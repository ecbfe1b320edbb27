"""7. The CPU budget (`bench.cpu_budget`) inside `make bench`: an engine step and a first page as multiples of
the bare view measured in the same process, against the issue's targets; over a guard (a regression from
today's figures) fails the run (bench/run_all.py)."""

from pathlib import Path

from bench.common import Result, log
from bench.cpu_budget import PAGE_GUARD, PAGE_TARGET, STEP_GUARD, STEP_TARGET, measure, targets_met, verdict
from bench.harness import Stack


def run(stack: Stack, folder: Path) -> Result:
    try:
        found = measure(stack)
    finally:
        stack.emulator.configure(webhook_base=stack.url)
    found["regression"] = not verdict(found, say=log)
    step, page, bare = found["step"], found["first_page"], found["bare"]
    figure = (f"engine step {step['worker_ms']:.2f} ms worker CPU = {found['step_multiple']:.1f} bare requests; "
              f"first page {page['total_ms']:.2f} ms app CPU (worker + web + PostgreSQL) = "
              f"{found['page_multiple']:.1f} bare requests; bare in-process {bare['web_ms']:.2f} ms web + "
              f"{bare['postgres_ms']:.2f} ms PostgreSQL")
    return Result(7, "CPU budget (in-process)", figure,
                  f"step <= {STEP_TARGET:.0f}, first page <= {PAGE_TARGET:.0f} bare requests (a regression: over "
                  f"{STEP_GUARD:.1f} or {PAGE_GUARD:.0f})", targets_met(found), details=found)
