"""What is wrong now, for the red banner on every admin page (and later a health endpoint).

Each source is a query or two on a small index, as the banner runs on every admin page: escalations held
by a provider fault (the partial index `escalation_held`), timers overdue (`escalation_due`), the
workers' heartbeats (one row per worker), and integrations whose alerts were refused.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Max, Min
from django.utils import timezone

from escalation.models import Escalation, EscalationState, WorkerHeartbeat

# A module, not names: alert_receipts builds Alarms, so it imports this module in turn.
from escalation.services import alert_receipts
from escalation.vonage.errors import describe_hold


@dataclass(frozen=True)
class Alarm:
    """One thing that is wrong now, for the red banner on every admin page."""
    key: str          # stable identity, e.g. "vonage:credentials", "worker:silent", "alert-refused:<integration pk>"
    text: str         # one sentence, e.g. "Vonage refuses our credentials (401) since 03:12: 3 escalations are waiting to page"  # noqa: E501
    since: datetime   # when it started (aware)


# A timer this late means no worker is acting on it (a worker acts within a poll interval of its due time).
OVERDUE_AFTER = timedelta(seconds=30)
# Workers beat at least once a second while they run.
WORKER_SILENT_AFTER = timedelta(seconds=30)


def current_alarms(*, now: datetime) -> list[Alarm]:
    return [*provider_alarms(now=now), *overdue_alarms(now=now), *worker_alarms(now=now),
            *alert_receipts.alert_alarms(now=now)]


def worker_problem(*, now: datetime) -> str | None:
    """Why our own paging may be down, in one line, or None: what an outside monitor pages someone about.

    Stricter than the banner on a fresh installation: a probe must fail until a worker has run at all.
    """
    if not WorkerHeartbeat.objects.exists():
        return "No escalation worker has ever run."
    problems = [*worker_alarms(now=now), *overdue_alarms(now=now)]
    return problems[0].text if problems else None


def provider_alarms(*, now: datetime) -> list[Alarm]:
    """One alarm per provider fault holding escalations at their step."""
    held = (Escalation.objects.filter(state=EscalationState.ACTIVE, held_since__isnull=False).order_by()
            .values("held_by").annotate(count=Count("pk"), since=Min("held_since")).order_by("since"))
    return [Alarm(key=f"vonage:{row['held_by']}",
                  text=f"{describe_hold(row['held_by'])} since {clock_time(row['since'], now)}: "
                       f"{_escalations(row['count'])} waiting to page.",
                  since=row["since"])
            for row in held]


def overdue_alarms(*, now: datetime) -> list[Alarm]:
    overdue = Escalation.objects.filter(state=EscalationState.ACTIVE, next_action_at__lt=now - OVERDUE_AFTER) \
        .aggregate(count=Count("pk"), since=Min("next_action_at"))
    if not overdue["count"]:
        return []
    late = (now - overdue["since"]).total_seconds()
    return [Alarm(key="timers:overdue",
                  text=f"{_escalations(overdue['count'])} overdue: the oldest timer fell due at "
                       f"{clock_time(overdue['since'], now)} ({late:.0f} s ago) and no worker has acted on it.",
                  since=overdue["since"])]


def worker_alarms(*, now: datetime) -> list[Alarm]:
    last = WorkerHeartbeat.objects.aggregate(last=Max("last_pass_at"))["last"]
    if last is None:
        # A fresh installation: worth an alarm only once something waits for a worker.
        waiting = Escalation.objects.filter(state=EscalationState.ACTIVE) \
            .aggregate(count=Count("pk"), since=Min("created_at"))
        if not waiting["count"]:
            return []
        return [Alarm(key="worker:silent",
                      text=f"No escalation worker has ever run: {_escalations(waiting['count'])} waiting for one "
                           f"(start `manage.py run_escalations`).",
                      since=waiting["since"])]
    if now - last <= WORKER_SILENT_AFTER:
        return []
    return [Alarm(key="worker:silent", text=f"No escalation worker has run since {clock_time(last, now)}.",
                  since=last)]


def clock_time(moment: datetime, now: datetime) -> str:
    """A time of day with its zone ("03:12:05 UTC"), and its date when that is not today's."""
    local, today = timezone.localtime(moment), timezone.localtime(now).date()
    return local.strftime("%H:%M:%S %Z" if local.date() == today else "%Y-%m-%d %H:%M:%S %Z")


def _escalations(count: int) -> str:
    return "1 escalation is" if count == 1 else f"{count} escalations are"
