"""The yardstick of a run: the bare insert view (`bench/bare/`) measured in the same run as every figure.

Absolute figures move by 2x between two machines of the same kind, or on one machine shared with other
jobs (issue 18). Every figure of a run is therefore reported beside the bare view's rate and CPU per
request measured in that run, and every CPU figure also as a multiple of it, so two runs compare.

Measured twice, at the start and at the end of the run (a load that changed shows as two different
yardsticks); the figures divide by the mean:

- through gunicorn: requests/s of the load generator against a second gunicorn serving the bare view
  (same options as the app's), and CPU per request of gunicorn + PostgreSQL (from /proc);
- in-process: CPU per request of this process + its PostgreSQL backends through Django's test client
  (`bench.cpu_budget.bare_cost`), the yardstick of the in-process figures.
"""

import json
from pathlib import Path

from django.db import connection

from bench.bare.views import CREATE_TABLE
from bench.common import log
from bench.cpu_budget import bare_cost
from bench.harness import Stack
from bench.intake import load

SECONDS = 5.0
REQUESTS = 20_000  # more than any round sends: the file is never wrapped


def measure(stack: Stack, folder: Path) -> dict:
    requests = folder / "calibration-requests.jsonl"
    if not requests.exists():
        body = json.dumps({"message_uuid": "00000000-0000-0000-0000-000000000000", "status": "delivered",
                           "timestamp": "2026-01-01T00:00:00.000Z", "channel": "whatsapp"})
        requests.write_text("".join(json.dumps({"path": "/bare/webhook", "authorization": "", "body": body}) + "\n"
                                    for _ in range(REQUESTS)))
    with connection.cursor() as cursor:  # at the start of a run no benchmark has created it yet
        cursor.execute(CREATE_TABLE)
    bare = stack.start_web("bare", settings_module="bench.bare.settings")
    try:
        load(bare.url, requests, offset=0, seconds=1.0)  # warm-up: imports, connections
        before = stack.cpu_by_role()
        stats = load(bare.url, requests, offset=0, seconds=SECONDS)
        after = stack.cpu_by_role()
    finally:
        stack.stop_web("bare")
    if not stats["ok"]:
        raise RuntimeError(f"the bare view answered no request: {stats}")
    served = stats["ok"]
    web = (after["web"] - before["web"]) * 1000 / served
    postgres = (after["postgres"] - before["postgres"]) * 1000 / served
    in_process = bare_cost()
    found = {"rps": stats["rps"], "p50_ms": stats["p50_ms"], "web_ms": web, "postgres_ms": postgres,
             "cpu_ms": web + postgres, "in_process_ms": in_process["web_ms"] + in_process["postgres_ms"],
             "in_process_web_ms": in_process["web_ms"]}
    log(f"calibration: bare view {found['rps']:.0f}/s, {found['cpu_ms']:.2f} ms CPU per request through gunicorn "
        f"(web {web:.2f} + PostgreSQL {postgres:.2f}); in-process {found['in_process_ms']:.2f} ms")
    return found


def combine(start: dict, end: dict | None) -> dict:
    """The run's yardstick: the mean of the two measurements, with both kept."""
    if end is None:
        return {**start, "start": start, "end": None}
    return {**{key: (start[key] + end[key]) / 2 for key in start}, "start": start, "end": end}


def describe(c: dict) -> str:
    """The table's column: the bare view's rate and CPU per request in this run."""
    text = f"{c['rps']:.0f}/s, {c['cpu_ms']:.2f} ms CPU/req ({c['in_process_ms']:.2f} in-process)"
    if c.get("end"):
        text += f"; start {c['start']['rps']:.0f}/s, end {c['end']['rps']:.0f}/s"
    return text


def times(cpu_ms: float, bare_ms: float) -> str:
    """A CPU figure as a multiple of the bare view's CPU per request."""
    return f"{cpu_ms / bare_ms:.1f}x bare" if bare_ms > 0 else "n/a"
