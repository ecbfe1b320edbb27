"""`make bench`: every benchmark against one real stack, then the figures table (printed, BENCHMARKS.md).

    python -m bench.run_all                 # all of them, about 6 minutes
    python -m bench.run_all intake fire     # only some; BENCHMARKS.md is written only by a full run
"""

import argparse
import importlib
import json
import os
import platform
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench.common import Result, log
from bench.harness import ROOT, Stack

# History first: the benchmarks that load the machine (3, 4) leave a backlog of webhooks and a busy PostgreSQL
# for a while after they end, which would be measured as page time.
MODULES = {"history": "history", "intake": "intake", "fire": "fire_latency", "lateness": "lateness",
           "burst": "burst", "budget": "budget"}
NAMES = tuple(MODULES)
NUMBERS = {"intake": 1, "fire": 2, "lateness": 3, "burst": 4, "history": 6, "budget": 7}
OUT = ROOT / "var" / "bench"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run_all")
    parser.add_argument("only", nargs="*", help=f"run only these benchmarks: {', '.join(NAMES)}")
    parser.add_argument("--web-workers", type=int, default=3)
    args = parser.parse_args()
    unknown = set(args.only) - set(NAMES)
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(sorted(unknown))}; choose from {', '.join(NAMES)}")
    chosen = args.only or list(NAMES)
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results: list[Result] = []
    with Stack(db_name="oncall_bench", keep_database=True, web_workers=args.web_workers, workers=0,
               log_dir=OUT / "logs") as stack:
        stack.setup_django()
        from bench import calibration

        # The yardstick of this run, at its start and its end: every figure is reported beside it.
        calibrated = calibration.measure(stack, OUT)
        for name in chosen:
            log(f"--- {name}")
            load_before = os.getloadavg()[0]
            try:
                # Imported only now: the benchmarks use the ORM, configured above against the stack's database.
                found = importlib.import_module(f"bench.{MODULES[name]}").run(stack, OUT)
            except Exception as error:
                # One broken benchmark must not cost the others' figures; it shows as failed in the table.
                traceback.print_exc()
                why = " ".join(f"{type(error).__name__}: {error}".split())[:300]
                found = Result(NUMBERS[name], name, f"failed: {why}", "", False)
            found = found if isinstance(found, list) else [found]
            for result in found:
                # The machine is shared: how busy it was says how much to trust a figure.
                result.load = f"{load_before:.1f} / {os.getloadavg()[0]:.1f}"
            results.extend(found)
        memory = memory_result(results)
        if memory is not None:
            results.append(memory)
        calibrated = calibration.combine(calibrated, calibration.measure(stack, OUT))
    annotate(results, calibrated)
    results.sort(key=lambda r: r.number)
    elapsed = time.monotonic() - started
    table = format_table(results, calibration.describe(calibrated))
    print("\n" + table + f"\n\nTotal time: {elapsed:.0f} s", flush=True)
    if args.only:  # no BENCHMARKS.md: the raw figures go to the output instead
        for result in results:
            print(f"\n{result.number}. {result.name}: {json.dumps(result.details, default=str)}")
    else:
        write_report(results, elapsed, table, calibrated)
    over = [r for r in results if r.number == 7 and r.details.get("regression", r.met is False)]
    for result in over:  # the CPU budget guards the engine's cost: a regression must not pass unnoticed
        print(f"\nREGRESSION: {result.figure}", flush=True)
    if over:
        raise SystemExit(1)


def annotate(results: list[Result], c: dict) -> None:
    """Each CPU figure also as a multiple of the bare view's CPU per request in this run (issue 18)."""
    from bench.calibration import times

    for r in results:
        d = r.details
        if r.number == 1 and "ours_cost" in d:
            applied = sum(d["cpu_ms_per_webhook"]["ours"].values())
            r.figure += (f". In-process {times(d['ours_cost']['cpu_ms'], c['in_process_web_ms'])} per webhook "
                         f"stored; across the stack {applied:.1f} ms per webhook applied = "
                         f"{times(applied, c['cpu_ms'])}")
        elif r.number == 3 and "cpu_ms_per_step" in d:
            worker = d["cpu_ms_per_step"]["worker"]
            r.figure += (f"; worker CPU per step across the run {worker:.1f} ms = {times(worker, c['cpu_ms'])} "
                         f"(in-process {times(d['step_cost']['cpu_ms'], c['in_process_web_ms'])})")
        elif r.number == 4 and "cpu_ms_per_page" in d:
            cpu = d["cpu_ms_per_page"]
            app = cpu["worker"] + cpu["web"] + cpu["postgres"]
            d["app_ms_per_page"] = app
            r.figure += (f"; the app's CPU per first page (worker + web + PostgreSQL) {app:.1f} ms = "
                         f"{times(app, c['cpu_ms'])}, so 2 cores with the emulator elsewhere would page "
                         f"{2000 / app:.0f}/s" if app else "")


def memory_result(results: list[Result]) -> Result | None:
    """5. Peak RSS (VmHWM) of the escalation workers and the web workers, read at the end of 3 and 4."""
    worker = [mb for r in results if r.number in (3, 4) for mb in r.details.get("worker_rss_mb", [])]
    web = [mb for r in results if r.number in (3, 4) for mb in r.details.get("web_rss_mb", [])]
    if not worker:
        return None
    figure = f"escalation worker {max(worker):.0f} MB, web worker {max(web):.0f} MB (peak VmHWM of any, during 3 and 4)"
    return Result(5, "Memory", figure, "<= 150 MB each", max(worker) <= 150 and max(web) <= 150,
                  details={"worker_rss_mb": worker, "web_rss_mb": web})


def format_table(results: list[Result], bare: str) -> str:
    lines = ["| # | Benchmark | Figure | Target | Met | Bare view, same run | Load before / after |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        met = "—" if r.met is None else ("yes" if r.met else "**no**")
        lines.append(f"| {r.number} | {r.name} | {r.figure} | {r.target} | {met} | {bare} | {r.load} |")
    return "\n".join(lines)


def machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import django

    return (f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, Django {django.get_version()}, "
            f"{platform.system()} {platform.release()}")


def write_report(results: list[Result], elapsed: float, table: str, calibrated: dict) -> None:
    from bench.report import render

    path = ROOT / "BENCHMARKS.md"
    text = render(results, table=table, calibration=calibrated, machine=machine(),
                  date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), elapsed=elapsed)
    # `make chaos`, `python -m bench.probes` and `python -m bench.schedules` keep their own sections in the same
    # file, each between its markers; carry them over untouched.
    current = path.read_text() if path.exists() else ""
    kept = (("chaos", "## Reliability"), ("probes", "## Probes and metrics"), ("schedules", "## Schedules"))
    for name, heading in kept:
        begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
        if begin in current and end in current:
            head = current[:current.index(begin)]
            start = head.rindex(heading) if heading in head else len(head)
            text += "\n" + current[start:current.index(end) + len(end)] + "\n"
    path.write_text(text)
    log("BENCHMARKS.md written")


if __name__ == "__main__":
    main()
