"""6. History pages: the escalation list and one escalation's timeline page, with 1,000 and with 100,000
events in the database; response time and query count.

Half of the events belong to the escalation whose timeline is measured (a runaway one: a webhook flood),
the other half to background escalations, ten events each, which fill the list. Requests go through the
full Django stack in this process (test client, logged-in superuser, DEBUG off), so the figure is the
server's own time without the network; the query count is taken on one of them.
"""

import gc
import time
from datetime import timedelta
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.utils import timezone

from bench.common import Result, bench_plan, bulk_escalations, log, median, percentile, truncate_run_tables
from bench.harness import Stack
from escalation.models import Escalation, EscalationState, Message, MessageStatus, Page, PageState

SIZES = (1_000, 100_000)
REQUESTS = 100  # p99 is then a percentile, not the slowest of a handful


def prepare(total_events: int) -> int:
    """Fill the run tables; returns the id of the escalation with the big history."""
    truncate_run_tables()
    now = timezone.now()
    start = now - timedelta(days=1)
    plan = bench_plan(3)
    background = total_events // 2 // 10
    bulk_escalations(background, plan=plan, api="dispatch", created_at=start, next_action_at=None)
    Escalation.objects.update(state=EscalationState.EXHAUSTED, ended_at=start + timedelta(minutes=30),
                              next_action_at=None, outcome="Nobody was reached after 1 round(s).")
    big = bulk_escalations(1, plan=plan, api="messages", created_at=start, next_action_at=None)[0]
    Escalation.objects.filter(pk=big).update(state=EscalationState.ACKNOWLEDGED, ended_at=start + timedelta(hours=2),
                                             acknowledged_by_name="Bench person 3", current_round=1, current_index=2,
                                             outcome="Bench person 3: read on WhatsApp")
    for index, person in enumerate(plan["people"]):
        page = Page.objects.create(escalation_id=big, round=1, index=index, person_name=person["name"],
                                   state=PageState.REACHED if index == 2 else PageState.PASSED_OVER,
                                   started_at=start + timedelta(minutes=20 * index),
                                   deadline=start + timedelta(minutes=20 * index + 20),
                                   ended_at=start + timedelta(minutes=20 * index + 20))
        for c, channel in enumerate(person["channels"]):
            sent = start + timedelta(minutes=20 * index + 10 * c)
            Message.objects.create(page=page, channel_index=c, channel_type=channel["type"],
                                   to_address=channel["address"], condition=channel["condition"],
                                   expiry_time=channel["expiry_time"], created_at=sent, sent_at=sent,
                                   delivered_at=sent + timedelta(seconds=2), deadline=sent + timedelta(minutes=10),
                                   status=MessageStatus.DELIVERED, status_rank=2)
    with connection.cursor() as cursor:
        # Nine more per background escalation (with its FIRED event, ten), and the rest on the big one; a few
        # of those are kinds drawn on the picture, the rest only in the log.
        cursor.execute(
            "INSERT INTO escalation_event (escalation_id, at, kind, text) "
            "SELECT e.id, e.created_at + g * interval '1 second', 'delivered', 'Bench person 1''s SMS: delivered' "
            "FROM escalation_escalation e, generate_series(1, 9) g WHERE e.id <> %s", [big])
        remaining = total_events - Escalation.objects.count() - 9 * background
        cursor.execute(
            "INSERT INTO escalation_event (escalation_id, at, kind, text) "
            "SELECT %s, %s + g * interval '50 milliseconds', "
            "CASE WHEN g %% 100 = 0 THEN 'retried' ELSE 'note' END, 'Status update ' || g "
            "FROM generate_series(1, %s) g", [big, start, max(remaining, 0)])
        # Fresh statistics now, so no auto-analyze of the new rows runs during the timed requests.
        cursor.execute("ANALYZE escalation_event, escalation_escalation, escalation_page, escalation_message")
        cursor.execute("SELECT count(*) FROM escalation_event")
        log(f"history: {cursor.fetchone()[0]} events, {Escalation.objects.count()} escalations")
    return big


def timed(client: Client, url: str) -> dict:
    for _ in range(5):
        assert client.get(url).status_code == 200, url
    queries = []
    # A wrapper, not CaptureQueriesContext: each request starts by clearing Django's query log.
    with connection.execute_wrapper(lambda execute, sql, *args: (queries.append(sql), execute(sql, *args))[1]):
        response = client.get(url)
    assert response.status_code == 200, url
    gc.freeze()  # warmed up: what is loaded by now is out of the collector's sight, as in a web process
    times = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        client.get(url)
        times.append(time.perf_counter() - started)
    return {"p50_ms": median(times) * 1000, "p99_ms": percentile(times, 99) * 1000, "queries": len(queries),
            "bytes": len(response.content)}


def run(stack: Stack, folder: Path) -> Result:
    user_model = get_user_model()
    user = user_model.objects.filter(username="bench").first() or user_model.objects.create_superuser(
        "bench", "bench@example.com", None)
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    measured = {}
    for size in SIZES:
        big = prepare(size)
        measured[size] = {"list": timed(client, "/admin/escalation/escalation/"),
                          "timeline": timed(client, f"/admin/escalation/escalation/{big}/change/")}
        for page, m in measured[size].items():
            log(f"history {size} events, {page}: p50 {m['p50_ms']:.0f} ms, p99 {m['p99_ms']:.0f} ms, "
                f"{m['queries']} queries")
    truncate_run_tables()
    small, large = measured[SIZES[0]], measured[SIZES[-1]]
    same_queries = all(small[p]["queries"] == large[p]["queries"] for p in small)
    worst = max(m["p99_ms"] for m in large.values())
    figure = "; ".join(
        f"{page}: p50 {large[page]['p50_ms']:.0f} ms, p99 {large[page]['p99_ms']:.0f} ms, {large[page]['queries']} "
        f"queries (1k events: {small[page]['p50_ms']:.0f} ms, {small[page]['queries']} queries)" for page in large)
    return Result(6, "History pages (100k events)", figure, "<= 100 ms, same query count at 1k and 100k",
                  worst <= 100 and same_queries, details={str(k): v for k, v in measured.items()})
