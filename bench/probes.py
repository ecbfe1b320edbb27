"""What the probes and /metrics cost, beside the bare insert view measured in the same run; and the webhook
intake benchmark with metrics on.

    python -m bench.probes            # /healthz, /readyz, /metrics vs the bare view (about a minute)
    python -m bench.probes --intake   # benchmark 1 (intake) with metrics on and scraped every second

Each figure goes into BENCHMARKS.md's "Probes and metrics" section (kept by `make bench`). The database holds
a year or two of heavy use first (HISTORY escalations, with their pages, messages, events and webhooks), since
/metrics reads it at every scrape. Gunicorn and the worker run in prometheus_client's multiprocess mode, as the
README says to run them in production.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bench.common import Result, StatementCounter, bench_plan, bulk_escalations, log, median, truncate_run_tables
from bench.harness import ROOT, Stack, cpu_seconds

HISTORY = 10_000
WEBHOOKS_PER_MESSAGE = 3
ROUNDS = 2
SECONDS = 5.0
# Clients at once: a busy load balancer's probes beside webhooks, but Prometheus scrapes one at a time.
CONCURRENCY = {"bare": 8, "healthz": 8, "readyz": 8, "metrics": 1}
KINDS = ("bare", "healthz", "readyz", "metrics")
SECTION_BEGIN, SECTION_END = "<!-- probes:begin -->", "<!-- probes:end -->"
OUT = ROOT / "var" / "bench"


def fill_history() -> dict:
    """HISTORY ended escalations, each with one page, two sent messages, their events and webhooks."""
    from django.utils import timezone

    from escalation.models import Escalation, Event, EventKind, Message, Page, WebhookEvent

    truncate_run_tables()
    now = timezone.now() - timedelta(days=1)
    plan = bench_plan(1)
    channels = plan["people"][0]["channels"]
    ids = bulk_escalations(HISTORY, plan=plan, api="messages", created_at=now, next_action_at=None)
    Escalation.objects.filter(pk__in=ids).update(state="acknowledged", ended_at=now + timedelta(seconds=95),
                                                 current_round=1)
    pages = Page.objects.bulk_create([Page(escalation_id=i, round=1, index=0, person_name="Bench person 1",
                                           state="reached", started_at=now, deadline=now + timedelta(seconds=1200))
                                      for i in ids], batch_size=5000)
    messages = Message.objects.bulk_create([
        Message(page_id=page.pk, channel_index=c, channel_type=ch["type"], to_address=ch["address"],
                condition=ch["condition"], expiry_time=ch["expiry_time"], created_at=now,
                sent_at=now + timedelta(seconds=0.02), delivered_at=now + timedelta(seconds=3),
                read_at=now + timedelta(seconds=90) if c == 0 else None, status="read" if c == 0 else "delivered",
                status_rank=3 if c == 0 else 2)
        for page in pages for c, ch in enumerate(channels)], batch_size=5000)
    Event.objects.bulk_create([Event(escalation_id=page.escalation_id, page_id=page.pk, at=now + timedelta(
        seconds=0.02), kind=EventKind.SENT, text="Sent") for page in pages], batch_size=5000)
    WebhookEvent.objects.bulk_create([
        WebhookEvent(received_at=now, kind="status", dedup_key=f"bench-{m.pk}-{n}", body={"status": "delivered"},
                     applied_at=now + timedelta(seconds=0.05), result="status delivered")
        for m in messages for n in range(WEBHOOKS_PER_MESSAGE)], batch_size=5000)
    return {"escalations": HISTORY, "messages": len(messages), "webhooks": len(messages) * WEBHOOKS_PER_MESSAGE,
            "events": Event.objects.count()}


def request_files(folder: Path) -> dict[str, Path]:
    """Enough distinct requests for a round at any rate this machine reaches (loadgen never repeats one)."""
    files = {}
    for kind in KINDS:
        path = folder / f"probes-{kind}.jsonl"
        with open(path, "w") as out:
            for n in range(60_000 if kind != "metrics" else 5_000):
                if kind == "bare":
                    item = {"path": "/bare/webhook", "body": json.dumps({"status": "delivered", "n": n})}
                else:
                    item = {"method": "GET", "path": f"/{kind}", "body": ""}
                out.write(json.dumps(item) + "\n")
        files[kind] = path
    return files


def load(url: str, requests: Path, *, offset: int, seconds: float, concurrency: int) -> dict:
    command = [sys.executable, "-m", "bench.loadgen", "--url", url, "--requests", str(requests), "--offset",
               str(offset), "--duration", str(seconds), "--concurrency", str(concurrency)]
    return json.loads(subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout)


def in_process_cost(path: str, count: int) -> dict:
    """SQL statements and CPU of one request through the whole Django stack, in this process."""
    from django.test import Client

    client = Client()
    for _ in range(5):
        assert client.get(path).status_code == 200
    started = time.process_time()
    with StatementCounter() as statements:
        for _ in range(count):
            client.get(path)
    return {"statements": statements.count / count, "cpu_ms": (time.process_time() - started) / count * 1000}


def cpu(stack: Stack) -> dict[str, float]:
    """CPU seconds so far of gunicorn (both) and of the PostgreSQL backends serving this database only: the
    server is shared with other jobs, whose backends must not count. The web processes keep their
    connections (CONN_MAX_AGE), so the same backends are read before and after a round."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> "
                       "pg_backend_pid()")
        backends = [pid for (pid,) in cursor.fetchall()]
    webs = [pid for name in stack.webs for pid in [stack.webs[name].pid, *stack.web_worker_pids(name)]]
    return {"web": cpu_seconds(webs), "backends": {pid: cpu_seconds([pid]) for pid in backends}}


def cpu_used(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds between two readings; a backend that appeared meanwhile counts from its start."""
    postgres = sum(used - before["backends"].get(pid, 0.0) for pid, used in after["backends"].items())
    return {"web": after["web"] - before["web"], "postgres": postgres}


def measure(stack: Stack, folder: Path) -> Result:
    from django.db import connection

    from bench.bare.views import CREATE_TABLE, TABLE

    history = fill_history()
    load_before = os.getloadavg()[0]
    with connection.cursor() as cursor:
        cursor.execute(CREATE_TABLE)
        cursor.execute(f"TRUNCATE {TABLE}")
    stack.start_web("bare", settings_module="bench.bare.settings")
    files = request_files(folder)
    urls = {kind: stack.webs["bare" if kind == "bare" else "web"].url for kind in KINDS}
    offsets = dict.fromkeys(KINDS, 0)
    runs: dict[str, list[dict]] = {kind: [] for kind in KINDS}
    for round_ in range(ROUNDS + 1):  # the first round warms up
        for kind in KINDS[round_ % len(KINDS):] + KINDS[:round_ % len(KINDS)]:
            before = cpu(stack)
            stats = load(urls[kind], files[kind], offset=offsets[kind], seconds=SECONDS if round_ else 1.0,
                         concurrency=CONCURRENCY[kind])
            after = cpu(stack)
            offsets[kind] = stats["next_offset"]
            stats["cpu_ms"] = {role: used * 1000 / max(stats["ok"], 1)
                               for role, used in cpu_used(before, after).items()}
            if round_:
                runs[kind].append(stats)
                log(f"{kind}: {stats['rps']:.0f}/s p99 {stats['p99_ms']:.1f} ms, CPU per request web "
                    f"{stats['cpu_ms']['web']:.2f} ms + PostgreSQL {stats['cpu_ms']['postgres']:.2f} ms "
                    f"(errors {stats['errors'] or 0})")
    stack.stop_web("bare")
    figures = {kind: {
        "rps": median([r["rps"] for r in runs[kind]]),
        "p50_ms": median([r["p50_ms"] for r in runs[kind]]),
        "p99_ms": median([r["p99_ms"] for r in runs[kind]]),
        "web_cpu_ms": median([r["cpu_ms"]["web"] for r in runs[kind]]),
        "postgres_cpu_ms": median([r["cpu_ms"]["postgres"] for r in runs[kind]]),
        "errors": sum(sum(r["errors"].values()) for r in runs[kind]),
    } for kind in KINDS}
    from django.test import override_settings

    with override_settings(METRICS_ACCESS="open"):
        in_process = {kind: in_process_cost(f"/{kind}", 200 if kind != "metrics" else 20)
                      for kind in ("healthz", "readyz", "metrics")}
    return Result(7, "Probes and metrics", "", "", None,
                  details={"history": history, "concurrency": CONCURRENCY, "figures": figures,
                           "load": f"{load_before:.1f} / {os.getloadavg()[0]:.1f}",
                           "in_process": in_process})


def intake_with_metrics(stack: Stack, folder: Path) -> Result:
    """Benchmark 1 as `make bench` runs it, with /metrics scraped every second meanwhile."""
    import threading
    import urllib.request

    from bench import intake

    stop = threading.Event()
    scrapes: list[float] = []

    def scrape() -> None:
        while not stop.wait(1.0):
            started = time.monotonic()
            try:
                urllib.request.urlopen(f"{stack.url}/metrics", timeout=10).read()
                scrapes.append((time.monotonic() - started) * 1000)
            except OSError:
                scrapes.append(-1.0)

    thread = threading.Thread(target=scrape, daemon=True)
    thread.start()
    load_before = os.getloadavg()[0]
    try:
        result = intake.run(stack, folder)
    finally:
        stop.set()
        thread.join()
    result.details["load"] = f"{load_before:.1f} / {os.getloadavg()[0]:.1f}"
    result.details["scrapes"] = len(scrapes)
    result.details["scrape_failures"] = sum(1 for s in scrapes if s < 0)
    result.details["scrape_p50_ms"] = median([s for s in scrapes if s >= 0] or [0.0])
    return result


def section(probes: dict | None, intake_result: Result | None, current: str) -> str:
    """The BENCHMARKS.md section: what this run measured, and what an earlier run left for the other part."""
    old = current[current.index(SECTION_BEGIN):current.index(SECTION_END)] if SECTION_BEGIN in current else ""
    parts = re.split(r"\n(?=### )", old)
    kept = {p.split("\n", 1)[0]: p for p in parts if p.startswith("### ")}
    if probes is not None:
        f, cost = probes["figures"], probes["in_process"]
        rows = ["| Endpoint | Requests/s | p50 | p99 | CPU per request: web + PostgreSQL | In-process: SQL, CPU |",
                "| --- | --- | --- | --- | --- | --- |"]
        for kind, label in (("bare", "bare insert view (POST)"), ("healthz", "`GET /healthz`"),
                            ("readyz", "`GET /readyz`"), ("metrics", "`GET /metrics`")):
            c = cost.get(kind)
            rows.append(f"| {label} | {f[kind]['rps']:.0f} | {f[kind]['p50_ms']:.1f} ms | {f[kind]['p99_ms']:.1f} ms "
                        f"| {f[kind]['web_cpu_ms']:.2f} + {f[kind]['postgres_cpu_ms']:.2f} ms | "
                        + (f"{c['statements']:.0f}, {c['cpu_ms']:.2f} ms |" if c else "— |"))
        h = probes["history"]
        kept["### Probes and /metrics"] = (
            f"### Probes and /metrics\n\n{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
            f"`python -m bench.probes`: gunicorn (3 sync workers, multiprocess mode, the app's full middleware) "
            f"beside the bare insert view under the same gunicorn, alternating, {ROUNDS} rounds of {SECONDS:.0f} s "
            f"each, medians; {CONCURRENCY['bare']} clients at once for the bare view and the probes, one for "
            f"/metrics (Prometheus scrapes a target one request at a time). The database holds "
            f"{h['escalations']:,} ended escalations with {h['messages']:,} messages, {h['events']:,} events and "
            f"{h['webhooks']:,} webhooks, "
            f"which /metrics reads at every scrape. Errors: "
            f"{sum(f[k]['errors'] for k in KINDS)}.\n\n" + "\n".join(rows) + "\n\n"
            + reading(f, probes.get("load", "?")) + "\n")
    if intake_result is not None:
        d = intake_result.details
        kept["### Webhook intake with metrics on"] = (
            f"### Webhook intake with metrics on\n\n{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
            f"`python -m bench.probes --intake`: benchmark 1 with multiprocess metrics on and /metrics scraped every "
            f"second meanwhile ({d['scrapes']} scrapes, {d['scrape_failures']} failed, p50 "
            f"{d['scrape_p50_ms']:.0f} ms), load average {d.get('load', '?')}:\n\n{intake_result.figure}.\n\n"
            f"Compare with benchmark 1 in the table above (metrics off, an earlier run): both ratios are against the "
            f"bare view in the same run, and the in-process CPU per webhook, ours against bare, is the comparison "
            f"the machine's load disturbs least.\n")
    body = "\n".join(kept[k] for k in ("### Probes and /metrics", "### Webhook intake with metrics on") if k in kept)
    return f"{SECTION_BEGIN}\n{body}\n{SECTION_END}"


def reading(f: dict, load: str) -> str:
    """What the figures mean at the rates operators use (a probe a second, a scrape every 30 s)."""
    def cpu(kind: str) -> float:
        return f[kind]["web_cpu_ms"] + f[kind]["postgres_cpu_ms"]

    return (f"Read: a probe costs {cpu('healthz'):.1f} ms (`/healthz`) or {cpu('readyz'):.1f} ms (`/readyz`) of CPU "
            f"against {cpu('bare'):.1f} ms for the bare insert view, so one probe a second per process is "
            f"{cpu('readyz') / 10:.2f}% of a core. A scrape costs {cpu('metrics'):.0f} ms of CPU at this history "
            f"size (it grows with the tables it counts): scraped every 30 s, {cpu('metrics') / 300:.2f}% of a core. "
            f"The machine is shared with other jobs (1-minute load average {load} before / after, on "
            f"{os.cpu_count()} cores): latencies wait for a core, so the CPU figures are the ones to compare.")


def write_section(text: str) -> None:
    path = ROOT / "BENCHMARKS.md"
    current = path.read_text()
    if SECTION_BEGIN in current:
        before, after = current[:current.index(SECTION_BEGIN)], current[current.index(SECTION_END) + len(SECTION_END):]
        path.write_text(before + text + after)
    else:
        anchor = "## Reliability" if "## Reliability" in current else None
        block = f"## Probes and metrics (`python -m bench.probes`)\n\n{text}\n\n"
        path.write_text(current.replace(anchor, block + anchor, 1) if anchor else current + "\n" + block)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.probes")
    parser.add_argument("--intake", action="store_true", help="run the intake benchmark with metrics on instead")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    metrics_dir = tempfile.mkdtemp(prefix="oncall-metrics-")
    env = {"METRICS_ACCESS": "open", "PROMETHEUS_MULTIPROC_DIR": metrics_dir}
    with Stack(db_name="oncall_bench_probes", web_workers=3, workers=0, env=env, log_dir=OUT / "logs") as stack:
        stack.setup_django()
        if args.intake:
            result = intake_with_metrics(stack, OUT)
            log(result.figure)
            text = section(None, result, (ROOT / "BENCHMARKS.md").read_text())
        else:
            result = measure(stack, OUT)
            log(json.dumps(result.details, default=str))
            text = section(result.details, None, (ROOT / "BENCHMARKS.md").read_text())
    shutil.rmtree(metrics_dir, ignore_errors=True)
    write_section(text)
    print(text)


if __name__ == "__main__":
    main()
