"""Hand-off notices, on the worker's durable timers: "You are on call in Primary from Mon 09:00 until Mon 09:00
(Europe/London)." a schedule's configured number of minutes before each person's shift.

- **Plan ahead**: at most once a minute per schedule (claimed with `SELECT ... FOR UPDATE SKIP LOCKED` and
  stamped `Schedule.handoff_planned_at`, so of workers planning at once one plans each schedule), a worker
  asks `shifts.shifts_between` for the coming hours and inserts a `HandoffNotice` per (schedule, person,
  shift start) due within `LOOKAHEAD`. The unique constraint makes a second insert of the same notice a
  no-op. A pass that has nothing to plan and nothing due costs two indexed queries.
- **Send**: due notices are claimed like due escalations (`SELECT ... FOR UPDATE SKIP LOCKED`, the timer
  moved on by a send lease), so any number of workers send each notice once. Before the request the shift
  is asked for again with today's overrides: a notice whose shift is no longer the person's (an override
  made since) is settled as not sent, and the next planning creates the new person's. Then record (channel,
  text), send, record the outcome, as `engine/sending.py` does for pages. A worker killed mid-request leaves
  a claim whose lease runs out: the notice is sent again once, never lost.
- **Never in an escalation's way**: notices come after the pass's escalations, a few per pass, and wait
  while any escalation is held by a provider fault (no request that may hang while pages wait on Vonage).
  A provider fault retries with the engine's capped backoff until the shift begins; a refusal is final.
- **Which channel, which API**: the person's first channel that takes a free-form message now (SMS, Viber,
  or WhatsApp and Messenger inside the person's 24-hour window). A WhatsApp template is approved for an
  alert's words and a Messenger tag for a page's purpose; a notice is neither, so it never uses them. Sent
  with the Messages API's single send in both modes, like a channel test: one message on one channel has
  no failover for a Dispatch workflow to run, and no page whose workflow webhooks would need matching.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import F, Q, QuerySet

from escalation.engine.hold import retry_delay
from escalation.engine.provider import get_client
from escalation.engine.step import send_lease
from escalation.engine.windows import open_windows
from escalation.models import Channel, Escalation, EscalationState, HandoffNotice, NoticeState, Schedule, Sender
from escalation.models.channels import WINDOWED_CHANNELS
from escalation.schedules.handoffs import Handoff, handoffs, notice_text
from escalation.schedules.load import SCHEDULE_FIELDS, LoadedSchedule, load_overrides, load_rules
from escalation.schedules.shifts import shifts_between
from escalation.vonage import VonageError
from escalation.vonage.forms import FREE_TEXT

log = logging.getLogger(__name__)

# Notices are created this long before they are due: overrides made after that are seen by the next
# planning (a minute later) and at send time.
LOOKAHEAD = timedelta(hours=3)
PLAN_EVERY = timedelta(minutes=1)
# How far past the hand-offs their shifts' ends are looked for, widening only while one is not found (a
# daily rotation needs a day, a weekly one eight); beyond the last the notice says "until further notice".
UNTIL_REACHES = (timedelta(days=1), timedelta(days=8), timedelta(days=60))
NOTICES_PER_PASS = 5
# How far ahead a schedule's admin page looks for its next notices.
COMING_WITHIN = timedelta(days=14)
NOT_THEIRS = "this shift is no longer theirs (an override or a change to the schedule since)"
TURNED_OFF = "hand-off notices were turned off for this schedule"
# Notices not sent for these reasons are sent after all if the hand-off comes back before it is due.
REOPENED = (f"not sent: {NOT_THEIRS}", f"not sent: {TURNED_OFF}")


def run_handoff_notices(now: datetime) -> int:
    """One pass's share: plan the schedules due for planning, then send the notices due. Returns how many
    notices were settled or retried."""
    plan_handoff_notices(now)
    return send_handoff_notices(now)


def plan_handoff_notices(now: datetime) -> int:
    """Create the coming notices of every schedule not planned in the last minute; returns how many
    schedules this worker planned."""
    stale = Schedule.objects.filter(handoff_notice_minutes__isnull=False).filter(
        Q(handoff_planned_at=None) | Q(handoff_planned_at__lte=now - PLAN_EVERY))
    if not stale.exists():
        return 0
    # Claimed like due escalations: of workers planning at once, one plans each schedule (planning twice
    # would only insert nothing twice).
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            stale = stale.select_for_update(skip_locked=True)
        mine = list(stale.order_by("pk").only(*SCHEDULE_FIELDS, "handoff_notice_minutes"))
        Schedule.objects.filter(pk__in=[s.pk for s in mine]).update(handoff_planned_at=now)
    if not mine:
        return 0
    loaded = _coming(mine, now)
    notices = [
        HandoffNotice(schedule_id=pk, person_id=handoff.person, shift_start=handoff.start, shift_end=handoff.until,
                      due_at=due, next_attempt_at=due, created_at=now)
        for pk, (entry, found) in loaded.items() for handoff in found
        for due in [handoff.start - _lead(entry.schedule)]
    ]
    HandoffNotice.objects.bulk_create(notices, ignore_conflicts=True)
    if notices:
        # A hand-off given away and then back (an override made, then deleted) is due again: its row exists.
        again = Q()
        for n in notices:
            again |= Q(schedule_id=n.schedule_id, person_id=n.person_id, shift_start=n.shift_start)
        HandoffNotice.objects.filter(again, state=NoticeState.NOT_SENT, outcome__in=REOPENED).update(
            state=NoticeState.PENDING, next_attempt_at=F("due_at"), settled_at=None, outcome="")
    return len(mine)


def _lead(schedule: Schedule) -> timedelta:
    return timedelta(minutes=schedule.handoff_notice_minutes or 0)


def _coming(schedules: list[Schedule], now: datetime, within: timedelta = LOOKAHEAD
            ) -> dict[int, tuple[LoadedSchedule, list[Handoff]]]:
    """Each schedule's hand-offs from `now` to its notices' lead plus `within`, with their shifts' ends,
    from the one function: two queries."""
    if not schedules:
        return {}
    loaded = load_rules(schedules)
    load_overrides(loaded.values(), start=now, end=now + within + max(_lead(s) for s in schedules) + UNTIL_REACHES[-1])
    coming = {}
    for pk, entry in loaded.items():
        horizon = now + _lead(entry.schedule) + within
        for reach in UNTIL_REACHES:
            found = [h for h in handoffs(shifts_between(entry.rules, now, horizon + reach)) if now < h.start <= horizon]
            if all(h.until is not None for h in found):
                break
        coming[pk] = entry, found
    return coming


def send_handoff_notices(now: datetime, limit: int = NOTICES_PER_PASS) -> int:
    """Claim the due notices and settle each: not sent, sent, retried or failed. Returns how many."""
    claimed = _claim(now, limit)
    if not claimed:
        return 0
    current = _current_handoffs(claimed, now)
    targets = _targets(claimed, now)
    for notice in claimed:
        _settle(notice, current[notice.pk], targets[notice.person_id], now)
    return len(claimed)


def _claim(now: datetime, limit: int) -> list[HandoffNotice]:
    """The due notices, hidden from other workers for a send lease. An idle pass reads one indexed row."""
    due = HandoffNotice.objects.filter(state=NoticeState.PENDING, next_attempt_at__lte=now)
    if not due.exists():
        return []
    with transaction.atomic():
        due = due.order_by("next_attempt_at")
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        ids = list(due.values_list("pk", flat=True)[:limit])
        if ids and Escalation.objects.filter(state=EscalationState.ACTIVE, held_since__isnull=False).exists():
            # Vonage is failing for the escalations already: a notice's request would only wait on it too.
            HandoffNotice.objects.filter(pk__in=ids).update(next_attempt_at=now + retry_delay(1))
            return []
        HandoffNotice.objects.filter(pk__in=ids).update(next_attempt_at=now + send_lease(),
                                                        attempts=F("attempts") + 1)
    return list(HandoffNotice.objects.filter(pk__in=ids).select_related("schedule", "person").order_by("pk"))


def _current_handoffs(notices: list[HandoffNotice], now: datetime) -> dict[int, Handoff | str]:
    """For each notice, its hand-off as the schedule says now (overrides made since it was planned
    included), or why it is no longer to be sent."""
    schedules = {n.schedule_id: n.schedule for n in notices}
    found = {pk: {(h.person, h.start): h for h in hs} for pk, (_, hs) in
             _coming([s for s in schedules.values() if s.handoff_notice_minutes], now).items()}
    current: dict[int, Handoff | str] = {}
    for notice in notices:
        if notice.schedule.handoff_notice_minutes is None:
            current[notice.pk] = TURNED_OFF
        elif notice.shift_start <= now:
            current[notice.pk] = "the shift began before the notice could be sent"
        else:
            current[notice.pk] = found[notice.schedule_id].get((notice.person_id, notice.shift_start)) or NOT_THEIRS
    return current


@dataclass(frozen=True)
class Target:
    """Where a person's notice goes, or why it cannot go anywhere (`channel` None)."""

    channel: dict | None
    reason: str = ""


def _targets(notices: list[HandoffNotice], now: datetime) -> dict[int, Target]:
    """Each person's first channel that takes a free-form message now, as a plan channel: three queries."""
    people = {n.person_id: n.person for n in notices}
    senders = dict(Sender.objects.values_list("channel_type", "sender_id"))
    channels: dict[int, list[dict]] = {pk: [] for pk in people}
    for person_id, kind, address in Channel.objects.filter(person_id__in=people).order_by(
            "person_id", "position", "id").values_list("person_id", "type", "address"):
        channels[person_id].append({"type": kind, "address": address, "sender": senders.get(kind, "")})
    opened = open_windows([c for cs in channels.values() for c in cs], now)
    targets = {}
    for pk, person in people.items():
        usable = [c for c in channels[pk] if c["sender"] and (
            c["type"] not in WINDOWED_CHANNELS or (c["type"], c["address"]) in opened)]
        if not person.is_active:
            targets[pk] = Target(None, f"{person.name} is not active")
        elif not usable:
            targets[pk] = Target(None, f"none of {person.name}'s channels takes a free-form message now (a sender "
                                       "configured, and for WhatsApp or Messenger a message from them in 24 hours)")
        else:
            targets[pk] = Target(usable[0])
    return targets


def _settle(notice: HandoffNotice, current: Handoff | str, target: Target, now: datetime) -> None:
    lease = now + send_lease()
    claim = HandoffNotice.objects.filter(pk=notice.pk, state=NoticeState.PENDING, next_attempt_at=lease)
    if isinstance(current, str) or target.channel is None:
        why = current if isinstance(current, str) else target.reason
        if notice.outcome.startswith("retrying"):  # a provider fault outlasted the time there was
            claim.update(state=NoticeState.FAILED, next_attempt_at=None, settled_at=now,
                         outcome=f"failed: {why}; last {notice.outcome}"[:500])
        else:
            claim.update(state=NoticeState.NOT_SENT, next_attempt_at=None, settled_at=now,
                         outcome=f"not sent: {why}"[:500])
        return
    channel = target.channel
    text = notice_text(notice.schedule.name, notice.schedule.time_zone, current)
    # Record, then the request, then the outcome: a worker killed in between leaves the claim to run out.
    if not claim.update(channel_type=channel["type"], to_address=channel["address"], text=text[:300],
                        shift_end=current.until):
        return
    try:
        answer = get_client().send_message(channel=channel, text=text, client_ref=notice.client_ref, form=FREE_TEXT)
    except VonageError as error:
        _failed(notice, error, claim, now)
        return
    claim.update(state=NoticeState.SENT, message_uuid=answer, next_attempt_at=None, settled_at=now,
                 outcome=f"sent on {channel['type']} {channel['address']}")


def _failed(notice: HandoffNotice, error: VonageError, claim: QuerySet, now: datetime) -> None:
    if not error.provider_fault:
        claim.update(state=NoticeState.FAILED, next_attempt_at=None, settled_at=now,
                     outcome=f"Vonage refused it: {error}"[:500])
        return
    # Vonage, our account or our configuration: says nothing about the person, so retried with the
    # escalations' capped backoff; a notice after the shift has begun is pointless, so that is the limit.
    retry_at = now + retry_delay(notice.attempts)
    claim.update(next_attempt_at=retry_at, outcome=f"retrying at {retry_at:%H:%M:%S %Z}: {error}"[:500])
    log.warning("hand-off notice %s not sent (%s); retrying at %s", notice.pk, error, f"{retry_at:%H:%M:%S %Z}")


def coming_handoffs(schedule: Schedule, now: datetime, count: int) -> list[tuple[Handoff, datetime]]:
    """The schedule's next `count` hand-offs after `now`, each with when its notice is due, as they stand now
    (for its admin page; the notices themselves are created `LOOKAHEAD` ahead)."""
    if schedule.handoff_notice_minutes is None:
        return []
    [(_, found)] = _coming([schedule], now, within=COMING_WITHIN).values()
    return [(handoff, handoff.start - _lead(schedule)) for handoff in found[:count]]
