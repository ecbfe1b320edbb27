"""The /metrics exposition: the database's figures read at scrape time, plus the metrics counted in process.

Why this mix (README, "Metrics"): what the database already records is read from it (exact whichever process
is scraped, and nothing in the engine has to count it); what it does not record (Vonage request latency,
worker passes, webhook refusals, alert outcomes) is counted where it happens, with prometheus_client's
multiprocess mode when PROMETHEUS_MULTIPROC_DIR is set, so gunicorn's workers and the escalation workers of
the host add up in one exposition.
"""

import logging
import os
from collections.abc import Iterable, Iterator

from django.db import DatabaseError
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from escalation.models import EscalationState
from escalation.services import metrics

log = logging.getLogger(__name__)

SOURCES = ("admin", "cli", "integration")
MESSAGE_OUTCOMES = ("accepted", "delivered", "read", "failed")


class DatabaseCollector:
    """The figures the database holds, read when collected; without a database, only a 0 saying so (the
    in-process metrics, such as the worker's passes, are still worth scraping then)."""

    def collect(self) -> Iterator[Metric]:
        try:
            families = list(self._families())
        except DatabaseError as e:
            log.warning("/metrics without the database's figures: %s", e)
            families = []
        yield GaugeMetricFamily("oncall_metrics_database_ok", "1 when this scrape could read the database's "
                                "figures, 0 when the database did not answer.", value=1 if families else 0)
        yield from families

    def _families(self) -> Iterator[Metric]:
        now = timezone.now()
        counts = metrics.escalation_counts()
        by_state = GaugeMetricFamily("oncall_escalations", "Escalations by state.", labels=["state"])
        for state in EscalationState.values:
            by_state.add_metric([state], sum(n for (s, _), n in counts.items() if s == state))
        yield by_state
        fired = CounterMetricFamily("oncall_escalations_fired", "Escalations fired, by source (admin, cli, "
                                    "integration).", labels=["source"])
        for source in SOURCES:
            fired.add_metric([source], sum(n for (_, s), n in counts.items() if s == source))
        yield fired
        yield _histogram("oncall_escalation_time_to_acknowledge_seconds",
                         "From fire to acknowledgement, over acknowledged escalations.", metrics.time_to_acknowledge())
        yield _histogram("oncall_escalation_time_to_first_page_seconds",
                         "From fire to Vonage accepting the first request.", metrics.time_to_first_page())
        sent = CounterMetricFamily("oncall_messages", "Messages by API, channel and how far they got: accepted by "
                                   "Vonage, delivered, read, failed (refused, rejected or undeliverable).",
                                   labels=["api", "channel", "outcome"])
        for row in metrics.message_counts():
            for outcome in MESSAGE_OUTCOMES:
                sent.add_metric([row["api"], row["channel"], outcome], row[outcome])
        yield sent
        counts, lag = metrics.webhook_figures()
        received = CounterMetricFamily("oncall_webhooks_received", "Webhook events stored (each distinct event "
                                       "once; Vonage's retries are not counted again), by kind.", labels=["kind"])
        applied = CounterMetricFamily("oncall_webhooks_applied", "Webhook events a worker has applied, by kind.",
                                      labels=["kind"])
        for row in counts:
            received.add_metric([row["kind"]], row["received"])
            applied.add_metric([row["kind"]], row["applied"])
        yield received
        yield applied
        yield _histogram("oncall_webhook_apply_lag_seconds", "From a webhook reaching us to a worker applying it.",
                         lag)
        pending = metrics.webhooks_pending(now)
        yield GaugeMetricFamily("oncall_webhooks_pending", "Webhook events stored but not applied yet.",
                                value=pending.count)
        yield GaugeMetricFamily("oncall_webhooks_pending_oldest_seconds",
                                "Age of the oldest webhook event not applied yet (0 when none).",
                                value=pending.oldest_seconds)
        overdue = metrics.timers_overdue(now)
        yield GaugeMetricFamily("oncall_timers_overdue", "Active escalations whose timer has passed and that no "
                                "worker has claimed.", value=overdue.count)
        yield GaugeMetricFamily("oncall_timers_overdue_oldest_seconds",
                                "How long the most overdue timer has been due (0 when none).",
                                value=overdue.oldest_seconds)


def _histogram(name: str, documentation: str, histogram: metrics.Histogram) -> HistogramMetricFamily:
    buckets = [("+Inf" if bound == float("inf") else _bound(bound), count) for bound, count in histogram.buckets]
    return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=histogram.sum_seconds)


def _bound(bound: float) -> str:
    return repr(float(bound))


class _Together:
    """Several collectors exposed as one."""

    def __init__(self, collectors: Iterable) -> None:
        self.collectors = list(collectors)

    def collect(self) -> Iterator[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


def exposition() -> bytes:
    """The whole text exposition: the database's figures and the in-process metrics."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Every process of the host writes its metrics into the directory; this reads them all.
        in_process = CollectorRegistry()
        MultiProcessCollector(in_process)
    else:
        in_process = REGISTRY
    return generate_latest(_Together([DatabaseCollector(), in_process]))
