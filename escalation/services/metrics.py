"""What /metrics reports from the database, read when Prometheus scrapes.

Everything here is already recorded by the engine (escalations, messages, stored webhooks, timers), so it is
read, not counted: every web process and every worker report the same exact figures whichever of them is
scraped, and the engine counts nothing. Counters are counts of facts that are written once and never undone
(a message's `sent_at`, a webhook's `applied_at`), so they only grow. Seven aggregate queries per scrape:
the timers and pending webhooks through their partial indexes, the rest one pass over their table each.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import Case, CharField, Count, F, Min, Model, Value, When

from escalation.models import Escalation, EscalationState, Event, EventKind, Message, WebhookEvent

# Seconds. Acknowledgements are human: from seconds to an hour. The first page is the worker's own latency
# (fire -> Vonage accepted the first request). Webhooks are applied within a pass of the worker.
ACKNOWLEDGE_BUCKETS = (15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)
FIRST_PAGE_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
APPLY_LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# Who fired an escalation, from what the fire recorded: integrations set `integration`, the `escalate`
# command signs as "command line", and everything else is a person in the admin.
CLI_FIRED_BY = "command line"


@dataclass(frozen=True)
class Histogram:
    """Cumulative counts per upper bound (the last is +Inf, the total count) and the sum of the values."""

    buckets: list[tuple[float, int]]
    sum_seconds: float


@dataclass(frozen=True)
class Backlog:
    """How many items are waiting and how long the oldest has waited (0 when none)."""

    count: int
    oldest_seconds: float


def escalation_counts() -> dict[tuple[str, str], int]:
    """Escalations per (state, source)."""
    source = Case(
        When(integration__isnull=False, then=Value("integration")),
        When(fired_by_name=CLI_FIRED_BY, then=Value("cli")),
        default=Value("admin"), output_field=CharField(),
    )
    rows = (Escalation.objects.order_by().annotate(source=source).values("state", "source")
            .annotate(n=Count("pk")).values_list("state", "source", "n"))
    return {(state, source): n for state, source, n in rows}


def time_to_acknowledge() -> Histogram:
    """From fire to acknowledgement, over every acknowledged escalation."""
    return _histogram(f"SELECT created_at AS started, ended_at AS ended FROM {_table(Escalation)} "
                      f"WHERE state = %s", [EscalationState.ACKNOWLEDGED], ACKNOWLEDGE_BUCKETS)


def time_to_first_page() -> Histogram:
    """From fire to Vonage accepting the first request (its first `sent` event), over every escalation that
    got that far."""
    return _histogram(f"SELECT e.created_at AS started, MIN(ev.at) AS ended FROM {_table(Escalation)} e "
                      f"JOIN {_table(Event)} ev ON ev.escalation_id = e.id AND ev.kind = %s "
                      f"GROUP BY e.id, e.created_at", [EventKind.SENT], FIRST_PAGE_BUCKETS)


def message_counts() -> list[dict]:
    """Per (api, channel): how many messages Vonage accepted, were delivered, read, or failed."""
    return list(Message.objects.order_by().values(api=F("page__escalation__api"), channel=F("channel_type"))
                .annotate(accepted=Count("sent_at"), delivered=Count("delivered_at"), read=Count("read_at"),
                          failed=Count("failed_at")))


def webhook_figures() -> tuple[list[dict], Histogram]:
    """Per kind, webhook events stored and applied; and from a webhook reaching us to a worker applying it,
    over every applied event. One pass over the table."""
    found = _histograms(f"SELECT kind, received_at AS started, applied_at AS ended FROM {_table(WebhookEvent)}",
                        [], APPLY_LAG_BUCKETS, group="kind")
    counts = [{"kind": kind, "received": rows, "applied": lag.buckets[-1][1]} for kind, (lag, rows) in found.items()]
    return counts, _sum([lag for lag, _ in found.values()], APPLY_LAG_BUCKETS)


def webhooks_pending(now: datetime) -> Backlog:
    """Stored webhooks no worker has applied yet (the `webhook_pending` partial index)."""
    found = WebhookEvent.objects.filter(applied_at=None).aggregate(n=Count("pk"), oldest=Min("received_at"))
    return _backlog(found, now)


def timers_overdue(now: datetime) -> Backlog:
    """Active escalations whose timer has passed and that no worker has claimed (the `escalation_due` index):
    with a worker running these are gone within a pass."""
    found = (Escalation.objects.filter(state=EscalationState.ACTIVE, next_action_at__lt=now)
             .aggregate(n=Count("pk"), oldest=Min("next_action_at")))
    return _backlog(found, now)


def _backlog(found: dict, now: datetime) -> Backlog:
    oldest = found["oldest"]
    return Backlog(found["n"], max((now - oldest).total_seconds(), 0.0) if oldest else 0.0)


def _table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _histogram(rows_sql: str, params: list, bounds: tuple[float, ...]) -> Histogram:
    return _sum([lag for lag, _ in _histograms(rows_sql, params, bounds).values()], bounds)


def _histograms(rows_sql: str, params: list, bounds: tuple[float, ...], group: str = "") -> dict:
    """One aggregate query over `rows_sql` (columns `started`, `ended`, and `group` if given): per group, the
    histogram of the seconds from `started` to `ended` over the rows that have an `ended`, and the number of
    rows. (Written out rather than built with the ORM: compiling a dozen filtered aggregates cost ~10 ms of
    CPU per histogram, more than running them.)"""
    if connection.vendor == "postgresql":
        # date_part is float8 (EXTRACT's numeric costs several times more); OFFSET 0 keeps PostgreSQL from
        # pasting the subtraction into each bucket's filter.
        seconds = "date_part('epoch', ended) - date_part('epoch', started)"
        fence = " OFFSET 0"
    else:  # SQLite's stored datetimes, as Julian days
        seconds = "(julianday(ended) - julianday(started)) * 86400.0"
        fence = ""
    spans = f"SELECT *, {seconds} AS seconds FROM ({rows_sql}) AS raw{fence}"
    within = [f"COUNT(*) FILTER (WHERE seconds <= {bound!r})" for bound in bounds]
    # Without a group, one row even for an empty table.
    key, grouped = (group, f"GROUP BY {group}") if group else ("NULL", "")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {key}, {', '.join(within)}, COUNT(ended), SUM(seconds), COUNT(*) "
                       f"FROM ({spans}) AS spans {grouped}", params)
        found = {}
        for name, *counts, ended, seconds, rows in cursor.fetchall():
            buckets = [*zip(bounds, counts, strict=True), (float("inf"), ended)]
            found[name] = (Histogram(buckets, float(seconds or 0.0)), rows)
    return found


def _sum(histograms: list[Histogram], bounds: tuple[float, ...]) -> Histogram:
    """Histograms added up (none: an empty one)."""
    counts = [sum(h.buckets[i][1] for h in histograms) for i in range(len(bounds) + 1)]
    return Histogram(list(zip((*bounds, float("inf")), counts, strict=True)),
                     sum(h.sum_seconds for h in histograms))
