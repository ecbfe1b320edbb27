"""The worker loop: claim due escalations, advance each, sleep briefly when idle."""

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from escalation.engine.sending import perform
from escalation.engine.step import decide
from escalation.engine.wakeup import Wakeup
from escalation.models import Escalation, EscalationState

log = logging.getLogger(__name__)

# A decision may lead to a send whose outcome leads to another decision (e.g. refused -> next channel);
# this bounds the sends one advance makes before handing the escalation back to the timer.
MAX_SENDS_PER_ADVANCE = 10


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


def advance(escalation_id: int, clock: Callable[[], datetime] = timezone.now) -> None:
    """Act on everything due for one escalation: decide under the row lock, send outside it, repeat."""
    for _ in range(MAX_SENDS_PER_ADVANCE):
        with transaction.atomic():
            escalation = Escalation.objects.select_for_update().filter(pk=escalation_id).first()
            if escalation is None:
                return
            action = decide(escalation, clock())
        if action is None:
            return
        perform(action, clock)


def run_due(now: datetime | None = None, limit: int = 100, pool: ThreadPoolExecutor | None = None) -> int:
    """One pass: claim and advance what is due. Returns how many escalations were advanced."""
    clock = (lambda: now) if now is not None else timezone.now
    ids = claim_due(clock(), limit)
    if pool is None:
        for escalation_id in ids:
            _advance_safely(escalation_id, clock)
    else:
        list(pool.map(lambda i: _advance_safely(i, clock), ids))
    return len(ids)


def _advance_safely(escalation_id: int, clock) -> None:
    try:
        advance(escalation_id, clock)
    except Exception:
        # One broken escalation must not stop the others; its claim lease brings it back later.
        log.exception("advancing escalation %s failed; it will be retried after its lease", escalation_id)
    finally:
        if threading.current_thread() is not threading.main_thread():
            close_old_connections()


def run_forever(stop: threading.Event, *, threads: int | None = None) -> None:
    threads = threads or settings.WORKER_THREADS
    wakeup = Wakeup(stop)
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="escalate") as pool:
        while not stop.is_set():
            try:
                advanced = run_due(limit=threads * 25, pool=pool if threads > 1 else None)
            except Exception:
                # A lost database connection (e.g. PostgreSQL restarting) must not end the worker.
                log.exception("worker pass failed; retrying")
                close_old_connections()
                stop.wait(1.0)
                continue
            if not advanced:
                wakeup.wait(settings.WORKER_POLL_INTERVAL)
    wakeup.close()
