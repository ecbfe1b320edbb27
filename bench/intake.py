"""1. Webhook intake: signed status webhooks/s through gunicorn into the real webhook path, against a bare
view that only inserts the raw body, under the same gunicorn, in the same run, alternating.

Our request checks the signature, parses, de-duplicates and stores; an escalation worker applies what was
stored. Two figures, so neither hides the other's cost: "stored" is the request path alone (the worker is
paused during the round, and drains the backlog before the next one), the like-for-like comparison with
the bare view; "ours" has the worker applying at the same time on the same two cores, the rate that can be
sustained for good. Before every round the backlog is drained, so no round runs beside another's leftover
work. Each event's received-to-applied lag and the CPU per webhook of web, worker and PostgreSQL are
reported.

The webhooks are real work: Messages API statuses for messages of active escalations (submitted, which
is already known and is stored but changes nothing; delivered, which moves the status and logs an event;
read on the first channel, which acknowledges the escalation). Each is signed like Vonage's and is a
distinct event, so every 2xx answer must leave exactly one WebhookEvent row, which is checked by key.
"""

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.test import Client, override_settings
from django.utils import timezone

from bench.bare.views import CREATE_TABLE, TABLE
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
from bench.harness import ROOT, Stack
from escalation.engine.intake import webhooks_apply, webhooks_pending
from escalation.engine.worker import WEBHOOK_BATCH
from escalation.models import Escalation, Message, MessageStatus, Page, WebhookEvent
from escalation.services.webhooks import webhook_identity
from escalation.vonage.webhooks import parse_webhook
from escalation.webhooks.body import load_body

# Five webhooks each: enough distinct events for every round of the fastest kind on this machine.
ESCALATIONS = 10_000
ROUNDS = 3
RUN_SECONDS = 8.0
WARMUP_SECONDS = 2.0
CONCURRENCY = 16
# "stored": our request path alone (the worker is paused, then drains the backlog before the next round);
# "ours": the same with the worker applying meanwhile; "bare": the bare view.
KINDS = ["stored", "ours", "bare"]


def prepare(stack: Stack, folder: Path) -> tuple[Path, list[str]]:
    """Active escalations with one page and two sent messages each; the signed status bodies for them."""
    truncate_run_tables()
    now = timezone.now()
    plan = bench_plan(1)
    ids = bulk_escalations(ESCALATIONS, plan=plan, api="messages", created_at=now,
                           next_action_at=now + timedelta(days=1))
    pages = Page.objects.bulk_create([
        Page(escalation_id=i, round=1, index=0, person_name="Bench person 1", started_at=now,
             deadline=now + timedelta(seconds=1200)) for i in ids])
    Escalation.objects.filter(pk__in=ids).update(current_round=1, current_index=0)
    channels = plan["people"][0]["channels"]
    messages = Message.objects.bulk_create([
        Message(page_id=page.pk, channel_index=c, channel_type=ch["type"], to_address=ch["address"],
                condition=ch["condition"], expiry_time=ch["expiry_time"], message_uuid=None, created_at=now,
                sent_at=now, deadline=now + timedelta(seconds=600), status=MessageStatus.SUBMITTED, status_rank=1)
        for page in pages for c, ch in enumerate(channels)], batch_size=4000)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE escalation_message SET message_uuid = gen_random_uuid()")
        cursor.execute(CREATE_TABLE)
        cursor.execute(f"TRUNCATE {TABLE}")
    by_page = {}
    for m in Message.objects.values("pk", "page_id", "channel_index", "message_uuid", "client_ref", "to_address",
                                    "channel_type"):
        by_page.setdefault(m["page_id"], {})[m["channel_index"]] = m
    v1_channel = {"whatsapp": "whatsapp", "sms": "sms"}
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.000Z")

    def body(m: dict, status: str) -> str:
        return json.dumps({"message_uuid": str(m["message_uuid"]), "to": m["to_address"], "from": "447700900000",
                           "timestamp": stamp, "status": status, "channel": v1_channel[m["channel_type"]],
                           "client_ref": m["client_ref"]}, separators=(",", ":"))

    # Block by block, so one escalation's events are rarely in flight at the same moment (as from Vonage).
    page_ids = [p.pk for p in pages]
    bodies: list[str] = []
    for start in range(0, len(page_ids), 400):
        block = [by_page[p] for p in page_ids[start:start + 400]]
        for channel_index, status in ((0, "submitted"), (1, "submitted"), (0, "delivered"), (1, "delivered"),
                                      (0, "read")):
            bodies += [body(m[channel_index], status) for m in block]
    path = folder / "intake-requests.jsonl"
    with open(path, "w") as out:
        for raw in bodies:
            out.write(json.dumps({"path": "/webhooks/status", "authorization": stack.sign(raw.encode()),
                                  "body": raw}) + "\n")
    log(f"intake: {len(bodies)} signed status webhooks for {len(messages)} messages ready")
    return path, bodies


def load(url: str, requests: Path, *, offset: int, seconds: float, path: str = "", ok_file: Path | None = None
         ) -> dict:
    if path:  # the bare view gets the same bodies on its own URL
        rewritten = requests.with_name("intake-bare.jsonl")
        if not rewritten.exists():
            with open(requests) as src, open(rewritten, "w") as dst:
                for line in src:
                    item = json.loads(line)
                    item["path"] = path
                    dst.write(json.dumps(item) + "\n")
        requests = rewritten
    command = [sys.executable, "-m", "bench.loadgen", "--url", url, "--requests", str(requests), "--offset",
               str(offset), "--duration", str(seconds), "--concurrency", str(CONCURRENCY)]
    if ok_file:
        command += ["--ok-file", str(ok_file)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def cost_per_request(bodies: list[str], authorization, *, bare: bool) -> dict:
    """Statements and CPU time of this process per webhook, through the whole Django stack in-process:
    what the throughput ratio comes from, measured without the noise of the machine's other jobs."""
    client = Client(HTTP_HOST="localhost")
    path = "/bare/webhook" if bare else "/webhooks/status"
    with override_settings(ROOT_URLCONF="bench.bare.urls" if bare else settings.ROOT_URLCONF):
        signed = [(raw, authorization(raw.encode())) for raw in bodies]
        for raw, auth in signed[:20]:
            client.post(path, raw, content_type="application/json", HTTP_AUTHORIZATION=auth)
        started = time.process_time()
        with StatementCounter() as statements:
            for raw, auth in signed[20:]:
                assert client.post(path, raw, content_type="application/json",
                                   HTTP_AUTHORIZATION=auth).status_code in (200, 204)
        cpu = time.process_time() - started
    count = len(signed) - 20
    return {"statements": statements.count / count, "cpu_ms": cpu / count * 1000}


def cost_per_apply() -> dict:
    """The worker's side: statements and CPU time per stored event applied (those cost_per_request stored),
    in the worker's batches."""
    ids = webhooks_pending(limit=10_000)
    started = time.process_time()
    with StatementCounter() as statements:
        for start in range(0, len(ids), WEBHOOK_BATCH):
            webhooks_apply(ids[start:start + WEBHOOK_BATCH], now=timezone.now())
    cpu = time.process_time() - started
    return {"statements": statements.count / len(ids), "cpu_ms": cpu / len(ids) * 1000, "events": len(ids)}


def pending() -> int:
    return WebhookEvent.objects.filter(applied_at=None).count()


def apply_lag(keys: list[str]) -> dict:
    """Received -> applied, per event of the rounds with the worker running: how late a webhook's effect
    (e.g. an acknowledgement) was."""
    lags = []
    for start in range(0, len(keys), 5000):
        lags += [(applied - received).total_seconds() for received, applied in WebhookEvent.objects.filter(
            dedup_key__in=keys[start:start + 5000]).exclude(applied_at=None).values_list("received_at", "applied_at")]
    return {"lag_p50_s": median(lags), "lag_p99_s": percentile(lags, 99), "lag_max_s": max(lags)}


def run(stack: Stack, folder: Path) -> Result:
    requests, bodies = prepare(stack, folder)
    bare = stack.start_web("bare", settings_module="bench.bare.settings")
    worker = stack.add_worker()
    stack.wait_workers_ready()
    ours_url, bare_url = stack.webs["web"].url, bare.url
    worker_pid = stack.workers[worker].pid
    offsets = {"ours": 0, "bare": 0}
    runs: dict[str, list[dict]] = {kind: [] for kind in KINDS}
    accepted: list[int] = []
    applied_meanwhile: list[int] = []
    drains: list[float] = []

    def drain() -> None:
        """Until the worker has applied everything stored so far."""
        started = time.monotonic()
        stack.wait_for(pending, lambda n: n == 0, timeout=600, interval=0.1)
        drains.append(time.monotonic() - started)

    def one(kind: str, seconds: float, record: bool) -> None:
        drain()
        ours = kind != "bare"
        ok_file = folder / f"ok-{kind}.txt"
        cpu_before = stack.cpu_by_role()
        if kind == "stored":
            os.kill(worker_pid, signal.SIGSTOP)  # the request path alone: nothing applies meanwhile
        try:
            stats = load(ours_url if ours else bare_url, requests, offset=offsets["ours" if ours else "bare"],
                         seconds=seconds, path="" if ours else "/bare/webhook", ok_file=ok_file)
        finally:
            if kind == "stored":
                os.kill(worker_pid, signal.SIGCONT)
        offsets["ours" if ours else "bare"] = stats["next_offset"]
        if ours:
            ok = [int(i) for i in ok_file.read_text().split()]
            accepted.extend(ok)
            if kind == "ours" and record:
                applied_meanwhile.extend(ok)
            stats["left_pending"] = pending()
        if kind == "ours":
            drain()  # the worker's part of this round's webhooks belongs in their cost
        cpu_after = stack.cpu_by_role()
        stats["cpu_ms_per_webhook"] = {role: (cpu_after[role] - cpu_before[role]) * 1000 / max(stats["ok"], 1)
                                       for role in ("web", "worker", "postgres")}
        if record:
            runs[kind].append(stats)
            log(f"intake {kind}: {stats['rps']:.0f}/s p50 {stats['p50_ms']:.1f} ms p99 {stats['p99_ms']:.1f} ms "
                f"errors {stats['errors'] or 0}")

    for kind in KINDS:
        one(kind, WARMUP_SECONDS, False)
    for round_ in range(ROUNDS):
        for kind in KINDS[round_:] + KINDS[:round_]:  # each kind first once
            one(kind, RUN_SECONDS, True)
    drain()
    stack.workers[worker].stop()
    stack.stop_web("bare")

    # The app's own rule says which row each accepted webhook must have left.
    def keys(indexes: list[int]) -> list[str]:
        return sorted({webhook_identity(parse_webhook(load_body(bodies[i].encode()), kind_hint="status"))[1]
                       for i in indexes})

    accepted_keys = keys(accepted)
    stored = 0
    for start in range(0, len(accepted_keys), 5000):
        stored += WebhookEvent.objects.filter(dedup_key__in=accepted_keys[start:start + 5000]).count()
    lost = len(accepted_keys) - stored
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {TABLE}")
        bare_rows = cursor.fetchone()[0]
    results = {row["result"]: row["n"] for row in WebhookEvent.objects.values("result").annotate(n=Count("id"))}
    lag = apply_lag(keys(applied_meanwhile))
    left = [r["left_pending"] for r in runs["ours"]]
    ours_accepted = [r["ok"] for r in runs["ours"]]
    # Every 7th of the bodies not sent yet: a mix of submitted, delivered and read, as the rounds sent them.
    unused = bodies[offsets["ours"]::7][:420]
    ours_cost = cost_per_request(unused, stack.sign, bare=False)
    bare_cost = cost_per_request(unused, stack.sign, bare=True)
    ours_cost["apply"] = cost_per_apply()
    log(f"intake cost in-process: ours {ours_cost['statements']:.1f} statements, {ours_cost['cpu_ms']:.1f} ms CPU; "
        f"bare {bare_cost['statements']:.1f} statements, {bare_cost['cpu_ms']:.1f} ms CPU per webhook; applying one "
        f"in the worker {ours_cost['apply']['statements']:.1f} statements, {ours_cost['apply']['cpu_ms']:.1f} ms CPU")

    rps = {kind: median([r["rps"] for r in runs[kind]]) for kind in KINDS}
    errors = sum(sum(r["errors"].values()) for rs in runs.values() for r in rs)
    ratio = {kind: rps[kind] / rps["bare"] for kind in ("stored", "ours")}
    details = {
        **{f"{kind}_rps": [round(r["rps"]) for r in runs[kind]] for kind in KINDS},
        **{f"{kind}_p50_ms": median([r["p50_ms"] for r in runs[kind]]) for kind in KINDS},
        **{f"{kind}_p99_ms": median([r["p99_ms"] for r in runs[kind]]) for kind in KINDS},
        "ratio_stored": ratio["stored"], "ratio_applied": ratio["ours"],
        "errors": errors, "accepted": len(accepted_keys), "stored": stored, "lost": lost,
        "bare_rows": bare_rows, "concurrency": CONCURRENCY,
        "web_workers": stack.web_workers, "results": results, "ours_cost": ours_cost, "bare_cost": bare_cost,
        "left_pending_after_round": left, "accepted_per_round": ours_accepted,
        "drain_s": [round(d, 2) for d in drains], **lag,
        "cpu_ms_per_webhook": {kind: {role: median([r["cpu_ms_per_webhook"][role] for r in runs[kind]])
                                      for role in ("web", "worker", "postgres")} for kind in KINDS},
    }

    def rate(kind: str) -> str:
        return (f"{rps[kind]:.0f}/s (p50 {details[f'{kind}_p50_ms']:.0f} ms, "
                f"p99 {details[f'{kind}_p99_ms']:.0f} ms)")

    figure = (f"stored {rate('stored')} vs bare {rate('bare')}: ratio {ratio['stored']:.2f}; with the worker "
              f"applying them meanwhile on the same cores, {rate('ours')}: ratio {ratio['ours']:.2f}. "
              f"{errors} errors; {len(accepted_keys)} accepted, {lost} lost, all applied "
              f"(in the rounds with the worker running, received to applied p50 {lag['lag_p50_s'] * 1000:.0f} ms, "
              f"p99 {lag['lag_p99_s']:.1f} s). "
              f"Per webhook in-process: ours {ours_cost['statements']:.0f} SQL statement, "
              f"{ours_cost['cpu_ms']:.1f} ms CPU; bare {bare_cost['statements']:.0f}, {bare_cost['cpu_ms']:.1f} ms; "
              f"applying it in the worker: {ours_cost['apply']['statements']:.1f} statements, "
              f"{ours_cost['apply']['cpu_ms']:.1f} ms CPU")
    return Result(1, "Webhook intake", figure, "ratio >= 0.5, 0 errors, 0 lost",
                  ratio["stored"] >= 0.5 and errors == 0 and lost == 0, details=details)
