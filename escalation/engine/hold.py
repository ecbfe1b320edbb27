"""Holding an escalation at its step while Vonage, our account or our configuration is at fault.

A provider fault (vonage/errors.py's table) says nothing about whether the person can be reached, so the
send is retried with capped exponential backoff and the escalation stays where it is: its person is not
passed over and its round does not move on. When a send succeeds the hold clears, and the person's wait
counts from that send (the outcome sets the deadline from it). A hold that outlasts
ESCALATION_HOLD_HORIZON_SECONDS ends the escalation as `failed`, never `exhausted`.

`ProviderFaults` is what a worker process logs about it: one ERROR when a kind of fault starts, one
WARNING when it clears, not a line per retry (the timeline has the detail of each escalation).
"""

import logging
import threading
from datetime import datetime, timedelta

from django.conf import settings

from escalation.engine.batch import Batch
from escalation.models import (
    FINAL_RANK,
    Escalation,
    EscalationState,
    EventKind,
    Message,
    MessageStatus,
    Page,
    PageState,
)
from escalation.vonage.errors import VonageError, describe_hold

log = logging.getLogger(__name__)


def retry_delay(attempt: int) -> timedelta:
    """Exponential backoff between attempts, capped: base, 2 x base, 4 x base, ... up to the cap."""
    seconds = settings.ESCALATION_RETRY_BASE_SECONDS * 2 ** min(max(attempt - 1, 0), 30)
    return timedelta(seconds=min(seconds, settings.ESCALATION_RETRY_CAP_SECONDS))


def hold_horizon() -> timedelta:
    return timedelta(seconds=settings.ESCALATION_HOLD_HORIZON_SECONDS)


def hold(escalation: Escalation, error: VonageError, row: Page | Message, batch: Batch) -> datetime | None:
    """Record a provider fault on `row`'s send; returns when to retry it, or None when the hold's horizon is
    over and the escalation has failed. `escalation` is the locked row, read fresh."""
    now = batch.now
    page = row if isinstance(row, Page) else row.page
    if escalation.state != EscalationState.ACTIVE:  # it ended while the request was out: nothing to hold
        batch.update(row, claimed_until=None)
        return None
    since = escalation.held_since or now
    give_up_at = since + hold_horizon()
    what = describe_hold(error.held_by)
    if now >= give_up_at:
        _fail(escalation, page, row, f"{what} for {(now - since).total_seconds():.0f} s: nobody could be paged "
                                     f"({error}).", batch)
        return None
    retry_at = min(now + retry_delay(row.send_attempts), give_up_at)
    if escalation.held_since is None or escalation.held_by != error.held_by:
        batch.event(escalation, EventKind.HELD,
                    f"Held at {page.person_name}: {what} ({error}). Retrying with backoff up to "
                    f"{settings.ESCALATION_RETRY_CAP_SECONDS:g} s apart until {give_up_at:%H:%M:%S %Z}; "
                    f"{page.person_name} is not passed over meanwhile.", page=page)
        batch.update(escalation, held_since=since, held_by=error.held_by)
    else:
        batch.event(escalation, EventKind.RETRIED,
                    f"Still held at {page.person_name} ({error}); retrying in "
                    f"{(retry_at - now).total_seconds():g} s (attempt {row.send_attempts + 1}).",
                    page=page, message=row if isinstance(row, Message) else None)
    # The claim doubles as "not before": decide() leaves the send alone until the backoff is over.
    if isinstance(row, Message):
        batch.update(row, claimed_until=retry_at, error=str(error)[:1000])
    else:
        batch.update(row, claimed_until=retry_at, last_error=str(error)[:1000])
    return retry_at


def release(escalation: Escalation, page: Page, batch: Batch) -> None:
    """A send succeeded: the hold, if any, is over."""
    if escalation.held_since is None:
        return
    held = (batch.now - escalation.held_since).total_seconds()
    batch.event(escalation, EventKind.RESUMED,
                f"{describe_hold(escalation.held_by)} no more: held {held:.0f} s, {page.person_name} paged now "
                f"with their full wait.", page=page)
    batch.update(escalation, held_since=None, held_by="")


def _fail(escalation: Escalation, page: Page, row: Page | Message, outcome: str, batch: Batch) -> None:
    now = batch.now
    if isinstance(row, Message):
        batch.update(row, status=MessageStatus.FAILED, status_rank=FINAL_RANK, failed_at=now, claimed_until=None,
                     error=outcome[:1000])
    else:
        batch.update(row, claimed_until=None, last_error=outcome[:1000])
    batch.update(page, state=PageState.STOPPED, ended_at=now, outcome=outcome[:300])
    batch.update(escalation, state=EscalationState.FAILED, ended_at=now, next_action_at=None, outcome=outcome[:300])
    batch.event(escalation, EventKind.FAILED, f"Failed: {outcome}", page=page)


class ProviderFaults:
    """The provider faults this process has seen and not yet seen cleared, to log each once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[str, tuple[datetime, str]] = {}  # failure code -> (since, description)

    def observe(self, answers: list[str | VonageError], now: datetime) -> None:
        """One group of send outcomes: a new kind of fault is logged, and any success clears them all."""
        with self._lock:
            for answer in answers:
                if isinstance(answer, VonageError) and answer.provider_fault:
                    code = answer.failure.code
                    if code not in self._active:
                        self._active[code] = (now, describe_hold(answer.held_by))
                        log.error("%s since %s: escalations hold at their step and retry until it clears (%s)",
                                  self._active[code][1], f"{now:%H:%M:%S %Z}", answer)
            if any(not isinstance(answer, VonageError) for answer in answers):
                for since, what in self._active.values():
                    log.warning("Cleared: %s from %s to %s (%.0f s); held escalations resume", what,
                                f"{since:%H:%M:%S %Z}", f"{now:%H:%M:%S %Z}", (now - since).total_seconds())
                self._active.clear()

    def reset(self) -> None:
        with self._lock:
            self._active.clear()


provider_faults = ProviderFaults()
