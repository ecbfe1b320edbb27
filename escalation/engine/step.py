"""Deciding what is due for a set of escalations at one moment.

`decide_due()` locks the escalations' rows and, for each, applies every transition that is due (start the
next person, fail over to the next channel, pass a person over, start a new round, end the escalation as
exhausted), claims the one send that is needed, if any, and sets the escalation's timer. The reads and
writes of the whole set go through one `Batch`, so a pass over a hundred escalations costs about as many
statements as one. It never talks to Vonage: the claimed sends are made outside the transaction by
`sending.py`, so a webhook never waits on a worker's lock for longer than this bookkeeping takes.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Literal

from django.conf import settings
from django.db import transaction

from escalation.engine.apply import replay_unmatched_dispatch
from escalation.engine.batch import Batch
from escalation.engine.plan import person_deadline, person_window_seconds, plan_people, plan_person
from escalation.models import (
    FAILED_STATUSES,
    FINAL_RANK,
    Api,
    ChannelType,
    Escalation,
    EscalationState,
    EventKind,
    Message,
    MessageStatus,
    Page,
    PageState,
)


@dataclass(frozen=True)
class Send:
    """A claimed send: one message on one channel (Messages API), or with no message the person's workflow
    (Dispatch API)."""
    escalation: Escalation
    page: Page
    message: Message | None = None

    @property
    def lease(self) -> datetime:
        """The claim's lease, which the escalation's timer holds while the send is in flight."""
        return (self.message or self.page).claimed_until


@dataclass(frozen=True)
class Wait:
    until: datetime | None
    action: Send | None = None


class PassedOver(Enum):
    """A step's outcome when it passed the person over: decide() goes on to the next person at once."""

    PASSED_OVER = "passed over"


PASSED_OVER = PassedOver.PASSED_OVER
# What one step of a page decides: wait (and maybe send), or move on.
Outcome = Wait | Literal[PassedOver.PASSED_OVER]

# How long a deadline waits for webhooks received before it to be applied, and how often it looks again.
PENDING_WEBHOOKS_GRACE = timedelta(seconds=10)
PENDING_WEBHOOKS_RECHECK = timedelta(milliseconds=100)


def send_lease() -> timedelta:
    return timedelta(seconds=settings.ESCALATION_SEND_LEASE_SECONDS)


def decide_due(escalation_ids: list[int], now: datetime) -> list[Send]:
    """Decide for each of these escalations under its row lock; returns the sends claimed, committed."""
    with transaction.atomic():
        # Locked in id order, as every writer locks them, so two batches never deadlock.
        escalations = list(Escalation.objects.select_for_update().filter(pk__in=escalation_ids).order_by("pk"))
        batch = Batch(now, escalations)
        sends = [send for escalation in escalations if (send := decide(escalation, batch)) is not None]
        batch.save()
    return sends


def decide(escalation: Escalation, batch: Batch) -> Send | None:
    if escalation.state != EscalationState.ACTIVE:
        return None
    page = batch.current_page(escalation)
    # Each pass either returns or moves past one person, so the plan's length bounds the loop.
    for _ in range(len(plan_people(escalation)) * escalation.plan["rounds"] + 2):
        if page is None or page.state != PageState.ACTIVE:
            page = _start_next_page(escalation, page, batch)
            if page is None:
                return None
            outcome = _first_send(escalation, page, batch)
        else:
            outcome = _page_step(escalation, page, batch)
        if outcome is PASSED_OVER:
            continue  # `page` is the one just passed over: the next pass starts the person after it
        # The timer, and with it the position a page started by this decision moved to.
        batch.update(escalation, next_action_at=outcome.until, current_round=escalation.current_round,
                     current_index=escalation.current_index)
        return outcome.action
    raise RuntimeError(f"escalation {escalation.pk}: no decision after walking the whole plan")


def _start_next_page(escalation: Escalation, previous: Page | None, batch: Batch) -> Page | None:
    people, now = plan_people(escalation), batch.now
    if previous is None and escalation.current_round == 0:
        round_, index = 1, 0
    elif escalation.current_index + 1 < len(people):
        round_, index = escalation.current_round, escalation.current_index + 1
    else:
        round_, index = escalation.current_round + 1, 0
        if round_ > escalation.plan["rounds"]:
            _exhaust(escalation, batch)
            return None
        batch.event(escalation, EventKind.ROUND,
                    f"Nobody reached in round {round_ - 1}: starting round {round_} of {escalation.plan['rounds']}.")
    person = people[index]
    first_claim = {}
    if escalation.api == Api.DISPATCH:
        # The page is the person's one Dispatch send: it is written already claimed (see `_claim`).
        first_claim = {"claimed_until": now + send_lease(), "send_attempts": 1, "dispatch_requested_at": now}
    page = batch.add(Page(
        escalation=escalation, round=round_, index=index,
        person_id=person["person_id"] if batch.person_exists(person["person_id"]) else None,
        person_name=person["name"], started_at=now, deadline=person_deadline(person, now), **first_claim,
    ))
    escalation.current_round, escalation.current_index = round_, index
    channels = ", then ".join(
        f"{ChannelType(c['type']).label} ({c['expiry_time']} s, until {c['condition']})" for c in person["channels"]
    )
    batch.event(escalation, EventKind.PAGED,
                f"Paging {person['name']} (person {index + 1} of {len(people)}, round {round_}): {channels}; "
                f"up to {person_window_seconds(person)} s.", page=page)
    return page


def _exhaust(escalation: Escalation, batch: Batch) -> None:
    outcome = f"Nobody was reached after {escalation.plan['rounds']} round(s)."
    batch.update(escalation, state=EscalationState.EXHAUSTED, ended_at=batch.now, next_action_at=None,
                 outcome=outcome, current_round=escalation.current_round, current_index=escalation.current_index)
    batch.event(escalation, EventKind.EXHAUSTED, f"Exhausted: {outcome}")


def pass_over(page: Page, reason: str, batch: Batch) -> None:
    batch.update(page, state=PageState.PASSED_OVER, ended_at=batch.now, outcome=reason[:300])
    batch.event(page.escalation_id, EventKind.PASSED_OVER, f"{page.person_name} passed over: {reason}", page=page)


def _first_send(escalation: Escalation, page: Page, batch: Batch) -> Wait:
    """A page just started: nothing to look up, its first send is claimed at once."""
    if escalation.api == Api.DISPATCH:
        return Wait(page.claimed_until, Send(escalation, page))
    return _new_message(escalation, page, 0, batch)


def _page_step(escalation: Escalation, page: Page, batch: Batch) -> Outcome:
    if escalation.api == Api.DISPATCH:
        return _dispatch_page_step(escalation, page, batch)
    return _messages_page_step(escalation, page, batch)


def _claim(row: Page | Message, batch: Batch) -> datetime:
    """Record the intent to send before sending: the lease lets another worker retry if this one dies.

    A Dispatch page's `dispatch_requested_at` is written with its claim, right before the request.
    """
    fields = {"claimed_until": batch.now + send_lease(), "send_attempts": row.send_attempts + 1}
    if isinstance(row, Page):
        fields["dispatch_requested_at"] = batch.now
    batch.update(row, **fields)
    return row.claimed_until


def _dispatch_page_step(escalation: Escalation, page: Page, batch: Batch, replayed: bool = False) -> Outcome:
    person, now = plan_person(escalation, page.index), batch.now
    if page.dispatch_uuid is None:
        if page.claimed_until and page.claimed_until > now:
            return Wait(page.claimed_until)
        # While a provider fault holds the escalation, the send's outcome decides when to give up (hold.py).
        if escalation.held_since is None and (page.send_attempts >= settings.ESCALATION_SEND_ATTEMPTS
                                              or now >= page.deadline):
            pass_over(page, f"Vonage did not accept the workflow after {page.send_attempts} attempt(s): "
                            f"{page.last_error or 'no answer'}", batch)
            return PASSED_OVER
        return Wait(_claim(page, batch), Send(escalation, page))
    if page.dispatch_final_status == "error":
        pass_over(page, "Dispatch reported the workflow as failed (final report: error).", batch)
        return PASSED_OVER
    # The workflow's last item: the last channel not skipped when it was built.
    last = batch.message(page, max(map(int, page.item_forms), default=len(person["channels"]) - 1))
    if last is not None and last.status in FAILED_STATUSES:
        pass_over(page, f"last channel ({ChannelType(last.channel_type).label}) was {last.status}.", batch)
        return PASSED_OVER
    if now >= page.deadline:
        recheck = _webhooks_pending_at(page.deadline, batch)
        if recheck:
            return Wait(recheck)
        # A status that raced the commit of this page's dispatch_uuid was stored as unknown after the
        # replay right after the commit had looked; look once more before giving up on the person.
        if not replayed and batch.unmatched_dispatch(page) and replay_unmatched_dispatch(str(page.dispatch_uuid),
                                                                                          now=now):
            escalation.refresh_from_db()
            if escalation.state != EscalationState.ACTIVE:
                return Wait(None)
            page.refresh_from_db()  # in place: decide() carries this instance on, and must see it passed over
            batch.reload_messages(page)
            return _dispatch_page_step(escalation, page, batch, replayed=True)
        pass_over(page, f"no answer within {person_window_seconds(person)} s.", batch)
        return PASSED_OVER
    return Wait(page.deadline)


def _webhooks_pending_at(deadline: datetime, batch: Batch) -> datetime | None:
    """When to look again, if a webhook received by `deadline` is not applied yet; else None.

    Webhooks are applied by the workers a moment after they are stored, and a `read` that reached us in
    time must win over the deadline. The wait is bounded: past PENDING_WEBHOOKS_GRACE the deadline is acted
    on anyway, so an event that cannot be applied never stalls an escalation.
    """
    if batch.now - deadline >= PENDING_WEBHOOKS_GRACE or not batch.webhooks_pending_since(deadline):
        return None
    return batch.now + PENDING_WEBHOOKS_RECHECK


def _messages_page_step(escalation: Escalation, page: Page, batch: Batch) -> Outcome:
    channels, now = plan_person(escalation, page.index)["channels"], batch.now
    last = batch.last_message(page)
    if last is None:
        return _new_message(escalation, page, 0, batch)
    if last.status == MessageStatus.QUEUED:
        if last.claimed_until and last.claimed_until > now:
            return Wait(last.claimed_until)
        if last.send_attempts < settings.ESCALATION_SEND_ATTEMPTS or escalation.held_since is not None:
            return Wait(_claim(last, batch), Send(escalation, page, last))
        give_up = f"gave up after {last.send_attempts} attempt(s): {last.error or 'no answer'}"
        batch.update(last, status=MessageStatus.FAILED, status_rank=FINAL_RANK, failed_at=now, error=give_up[:1000])
        batch.event(escalation, EventKind.SEND_FAILED,
                    f"{page.person_name}'s {ChannelType(last.channel_type).label} {last.to_address}: {give_up}",
                    page=page, message=last)
    if last.deadline is None:
        # Vonage's status webhook reached us, but the worker that sent it died before recording the 202:
        # the message went out, so it is not sent again; its wait counts from when it was written.
        batch.update(last, deadline=last.created_at + timedelta(seconds=last.expiry_time), sent_at=last.created_at,
                     claimed_until=None)
    failed = last.status in FAILED_STATUSES
    if not failed and now >= last.deadline:
        recheck = _webhooks_pending_at(last.deadline, batch)
        if recheck:
            return Wait(recheck)
    if failed or now >= last.deadline:
        if last.channel_index + 1 < len(channels):
            return _new_message(escalation, page, last.channel_index + 1, batch)
        label = ChannelType(last.channel_type).label
        reason = (f"last channel ({label}) {last.status}." if failed
                  else f"no answer within {last.expiry_time} s on the last channel ({label}).")
        pass_over(page, reason, batch)
        return PASSED_OVER
    return Wait(last.deadline)


def _new_message(escalation: Escalation, page: Page, channel_index: int, batch: Batch) -> Wait:
    channel = plan_person(escalation, page.index)["channels"][channel_index]
    message = batch.add(Message(
        page=page, channel_index=channel_index, channel_type=channel["type"], to_address=channel["address"],
        condition=channel["condition"], expiry_time=channel["expiry_time"], created_at=batch.now,
        claimed_until=batch.now + send_lease(), send_attempts=1,
    ))
    return Wait(message.claimed_until, Send(escalation, page, message))
