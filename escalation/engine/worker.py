"""The worker loop: apply the stored webhooks, claim due escalations, advance each, sleep briefly when idle."""

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import Min
from django.utils import timezone

from escalation.engine.handoff import run_handoff_notices
from escalation.engine.heartbeat import Heartbeat
from escalation.engine.intake import webhooks_apply, webhooks_pending
from escalation.engine.sending import SendPool, perform
from escalation.engine.step import decide_due
from escalation.engine.wakeup import Wakeup
from escalation.models import Escalation, EscalationState
from escalation.ops.recorded import worker_pass

log = logging.getLogger(__name__)

# A decision may lead to a send whose outcome leads to another decision (e.g. refused -> next channel);
# this bounds the sends one advance makes before handing the escalation back to the timer.
MAX_SENDS_PER_ADVANCE = 10
# Stored webhooks are applied this many to a transaction: a few statements for the lot instead of six each;
# a pass's `limit` (threads x 25) makes one batch per thread.
WEBHOOK_BATCH = 25


def claim_due(now: datetime, limit: int) -> list[int]:
    """Claim up to `limit` due escalations; two workers never claim the same one."""
    with transaction.atomic():
        due = Escalation.objects.filter(state=EscalationState.ACTIVE, next_action_at__lte=now)
        due = due.order_by("next_action_at")
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        ids = list(due.values_list("pk", flat=True)[:limit])
        if ids:
            # Hidden from other workers while this one advances them; if this worker dies, they are due
            # again when the lease runs out, so no timer is ever lost.
            lease = timedelta(seconds=settings.ESCALATION_CLAIM_LEASE_SECONDS)
            Escalation.objects.filter(pk__in=ids).update(next_action_at=now + lease)
    return ids


def advance(escalation_ids: list[int], clock: Callable[[], datetime] = timezone.now,
            pool: SendPool | None = None) -> None:
    """Act on everything due for these escalations: decide under their row locks, send outside them, and
    decide again for those whose send's outcome leaves something due at once (e.g. refused -> the next
    channel)."""
    for _ in range(MAX_SENDS_PER_ADVANCE):
        sends = decide_due(escalation_ids, clock())
        if not sends:
            return
        escalation_ids = sorted(perform(sends, clock, pool))
        if not escalation_ids:
            return


def run_due(now: datetime | None = None, limit: int = 100, pool: SendPool | None = None,
            heartbeat: Heartbeat | None = None) -> int:
    """One pass: apply the pending webhooks, then claim and advance what is due, then beat the heartbeat.

    Webhooks first: a `read` stored before a deadline is applied before that deadline is acted on.
    Returns how many webhooks and escalations were handled.
    """
    clock = (lambda: now) if now is not None else timezone.now
    events = webhooks_pending(limit)
    batches = [events[start:start + WEBHOOK_BATCH] for start in range(0, len(events), WEBHOOK_BATCH)]
    # Whatever fails is logged and left for later: pending events stay pending, and a claimed escalation
    # comes back when its claim lease runs out; one failure never stops the rest of the pass.
    _each(batches, lambda batch: webhooks_apply(batch, now=clock()),
          "applying webhook events {0[0]}..{0[-1]} failed; they stay pending", pool)
    ids = claim_due(clock(), limit)
    try:
        if ids:
            advance(ids, clock, pool)
    except Exception:
        # The whole batch was undone up to its last commit; each is tried alone, so one broken escalation
        # costs only itself. Sends already claimed are not made twice: their claims are still held.
        log.exception("advancing escalations %s..%s together failed; advancing each alone", ids[0], ids[-1])
        _each(ids, lambda escalation_id: advance([escalation_id], clock, pool),
              "advancing escalation {0} failed; it will be retried after its lease", None)
    try:  # after the escalations, so a notice never delays a page
        notices = run_handoff_notices(clock())
    except Exception:
        log.exception("hand-off notices failed; the due ones are tried again at the next pass")
        notices = 0
    if heartbeat is not None:
        heartbeat.beat(clock())
    return len(events) + len(ids) + notices


def _each(items: list, work: Callable, failure: str, pool: ThreadPoolExecutor | None) -> None:
    """`work(item)` for each item, in the pool's threads if there is one; a failure is logged with `failure`."""
    def safely(item: object) -> None:
        try:
            work(item)
        except Exception:
            log.exception(failure.format(item))
        finally:
            if threading.current_thread() is not threading.main_thread():
                close_old_connections()

    if pool is None:
        for item in items:
            safely(item)
    else:
        list(pool.map(safely, items))


def run_forever(stop: threading.Event, *, threads: int | None = None) -> None:
    threads = threads or settings.WORKER_THREADS
    wakeup = Wakeup(stop)
    heartbeat = Heartbeat()
    limit = threads * 25
    with SendPool(threads) as pool:
        while not stop.is_set():
            try:
                with worker_pass():
                    advanced = run_due(limit=limit, pool=pool if threads > 1 else None, heartbeat=heartbeat)
                # At once again only when the pass hit its limit (a backlog); otherwise the next pass waits for
                # the next timer, and the empty pass in between is not paid.
                idle = 0.0 if advanced >= limit else idle_wait(timezone.now(), settings.WORKER_POLL_INTERVAL)
            except Exception:
                # A lost database connection (e.g. PostgreSQL restarting) must not end the worker.
                log.exception("worker pass failed; retrying")
                close_old_connections()
                stop.wait(1.0)
                continue
            if idle:
                wakeup.wait(idle)
    wakeup.close()


# An idle worker sleeps at least this long, so timers falling due close together share one pass: at 167 a
# second a pass advances about eight instead of one, and pays its fixed statements (the claim, the webhook
# look, the heartbeat, this look) once for them, which were most of a step's CPU (issue 18). A deadline is
# then acted on at most this much later; a fire is not delayed (it wakes the worker by NOTIFY). It is also
# how soon a timer that is due but held by another worker is looked at again.
GATHER_SECONDS = 0.05


def idle_wait(now: datetime, poll: float) -> float:
    """How long an idle worker sleeps: until the next timer is due if that comes before the next poll, so a
    deadline is acted on when it falls due rather than up to a poll interval later, but at least
    GATHER_SECONDS. (A fire, which has no timer to wait for, wakes the worker by NOTIFY.)"""
    due = Escalation.objects.filter(state=EscalationState.ACTIVE, next_action_at__isnull=False) \
        .aggregate(first=Min("next_action_at"))["first"]
    if due is None:
        return poll
    return min(poll, max((due - now).total_seconds(), GATHER_SECONDS))
