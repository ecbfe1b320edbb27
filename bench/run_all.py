"""`make bench`: every benchmark against one real stack, then the figures table (printed, BENCHMARKS.md).

    python -m bench.run_all                 # all of them, about 6 minutes
    python -m bench.run_all intake fire     # only some; BENCHMARKS.md is written only by a full run
"""

import argparse
import importlib
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import Result, log
from bench.harness import ROOT, Stack

MODULES = {"intake": "intake", "fire": "fire_latency", "lateness": "lateness", "burst": "burst",
           "history": "history"}
NAMES = tuple(MODULES)
OUT = ROOT / "var" / "bench"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run_all")
    parser.add_argument("only", nargs="*", choices=NAMES, help="run only these benchmarks")
    parser.add_argument("--web-workers", type=int, default=3)
    args = parser.parse_args()
    chosen = args.only or list(NAMES)
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results: list[Result] = []
    with Stack(db_name="oncall_bench", keep_database=True, web_workers=args.web_workers, workers=0,
               log_dir=OUT / "logs") as stack:
        stack.setup_django()
        for name in chosen:
            log(f"--- {name}")
            # Imported only now: the benchmarks use the ORM, configured just above against the stack's database.
            found = importlib.import_module(f"bench.{MODULES[name]}").run(stack, OUT)
            results.extend(found if isinstance(found, list) else [found])
    elapsed = time.monotonic() - started
    table = format_table(results)
    print("\n" + table + f"\n\nTotal time: {elapsed:.0f} s", flush=True)
    if not args.only:
        write_report(results, elapsed)


def format_table(results: list[Result]) -> str:
    lines = ["| # | Benchmark | Figure | Target | Met |", "| --- | --- | --- | --- | --- |"]
    for r in results:
        met = "—" if r.met is None else ("yes" if r.met else "**no**")
        lines.append(f"| {r.number} | {r.name} | {r.figure} | {r.target} | {met} |")
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

    (ROOT / "BENCHMARKS.md").write_text(render(results, table=format_table(results), machine=machine(),
                                               date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                                               elapsed=elapsed))
    log("BENCHMARKS.md written")


if __name__ == "__main__":
    main()
