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
           "burst": "burst"}
NAMES = tuple(MODULES)
NUMBERS = {"intake": 1, "fire": 2, "lateness": 3, "burst": 4, "history": 6}
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
    results.sort(key=lambda r: r.number)
    elapsed = time.monotonic() - started
    table = format_table(results)
    print("\n" + table + f"\n\nTotal time: {elapsed:.0f} s", flush=True)
    if args.only:  # no BENCHMARKS.md: the raw figures go to the output instead
        for result in results:
            print(f"\n{result.number}. {result.name}: {json.dumps(result.details, default=str)}")
    else:
        write_report(results, elapsed)


def memory_result(results: list[Result]) -> Result | None:
    """5. Peak RSS (VmHWM) of the escalation workers and the web workers, read at the end of 3 and 4."""
    worker = [mb for r in results if r.number in (3, 4) for mb in r.details.get("worker_rss_mb", [])]
    web = [mb for r in results if r.number in (3, 4) for mb in r.details.get("web_rss_mb", [])]
    if not worker:
        return None
    figure = f"escalation worker {max(worker):.0f} MB, web worker {max(web):.0f} MB (peak VmHWM of any, during 3 and 4)"
    return Result(5, "Memory", figure, "<= 150 MB each", max(worker) <= 150 and max(web) <= 150,
                  details={"worker_rss_mb": worker, "web_rss_mb": web})


def format_table(results: list[Result]) -> str:
    lines = ["| # | Benchmark | Figure | Target | Met | Load before / after |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in results:
        met = "—" if r.met is None else ("yes" if r.met else "**no**")
        lines.append(f"| {r.number} | {r.name} | {r.figure} | {r.target} | {met} | {r.load} |")
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


def write_report(results: list[Result], elapsed: float) -> None:
    from bench.report import render

    path = ROOT / "BENCHMARKS.md"
    text = render(results, table=format_table(results), machine=machine(),
                  date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), elapsed=elapsed)
    # `make chaos` keeps its own section in the same file (bench/chaos.py); carry it over untouched.
    current = path.read_text() if path.exists() else ""
    begin, end = "<!-- chaos:begin -->", "<!-- chaos:end -->"
    if begin in current and end in current:
        head = current[:current.index(begin)]
        start = head.rindex("## Reliability") if "## Reliability" in head else len(head)
        text += "\n" + current[start:current.index(end) + len(end)] + "\n"
    # So does `python -m bench.probes` (the probes' and /metrics' cost).
    begin, end = "<!-- probes:begin -->", "<!-- probes:end -->"
    if begin in current and end in current:
        head = current[:current.index(begin)]
        start = head.rindex("## Probes and metrics") if "## Probes and metrics" in head else len(head)
        text += "\n" + current[start:current.index(end) + len(end)] + "\n"
    path.write_text(text)
    log("BENCHMARKS.md written")


if __name__ == "__main__":
    main()
