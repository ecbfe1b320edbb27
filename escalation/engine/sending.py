"""Performing a claimed send and recording its outcome.

Order, always: the claim was committed by `decide()` (record), then the request goes out here outside any
transaction (side effect), then the outcome is written under the row lock (outcome). A worker killed
between the request and the outcome leaves a claim whose lease runs out; the send is then repeated once.

While a send is in flight the escalation's timer holds its claim lease (set by `decide()`). The outcome moves
it on itself (to the deadline, or the retry) when it still holds that lease; anything else found there was
put since the claim (a failed status poked it to now, an acknowledgement cleared it) and wins.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, PositiveSmallIntegerField, Q, Value, When

from escalation.engine.apply import replay_unmatched_dispatch
from escalation.engine.events import record_event
from escalation.engine.plan import person_window_seconds, personal_text, plan_person
from escalation.engine.step import SendDispatch, SendMessage, pass_over
from escalation.models import (
    ChannelType,
    Escalation,
    EscalationState,
    EventKind,
    Message,
    MessageStatus,
    Page,
)
from escalation.vonage import VonageError, get_client

log = logging.getLogger(__name__)


def retry_delay(attempt: int) -> timedelta:
    """Exponential backoff between attempts: base, 2 x base, 4 x base, ..."""
    return timedelta(seconds=settings.ESCALATION_RETRY_BASE_SECONDS * 2 ** max(attempt - 1, 0))


def perform(action: SendMessage | SendDispatch, clock) -> bool:
    """Make the claimed send and record its outcome; True when something is due at once (decide again now)."""
    if isinstance(action, SendMessage):
        return _send_message(action.message_id, clock)
    return _send_dispatch(action.page_id, clock)


def _send_message(message_id: int, clock) -> bool:
    message = Message.objects.select_related("page__escalation").get(pk=message_id)
    page, escalation = message.page, message.page.escalation
    # A last look before the side effect: an acknowledgement committed since the claim wins. The row was
    # read after the claim's commit, so its state is as fresh as a query of its own would be.
    if escalation.state != EscalationState.ACTIVE:
        Message.objects.filter(pk=message_id).update(claimed_until=None)
        return False
    channel = plan_person(escalation, page.index)["channels"][message.channel_index]
    try:
        message_uuid = get_client().send_message(
            channel=channel, text=personal_text(page.person_name, escalation.message), client_ref=message.client_ref
        )
    except VonageError as error:
        return _message_failed(message, error, clock())
    return _message_accepted(message, message_uuid, clock())


def _message_accepted(message: Message, message_uuid: str, now: datetime) -> bool:
    label = ChannelType(message.channel_type).label
    deadline = now + timedelta(seconds=message.expiry_time)
    # A status webhook (matched by client_ref) may already have moved it past `submitted`.
    not_yet_submitted = Q(status_rank=0)
    with transaction.atomic():
        timer_moved = _lock_and_move_timer(message.page.escalation_id, lease=message.claimed_until, at=deadline)
        Message.objects.filter(pk=message.pk).update(
            message_uuid=message_uuid, sent_at=now, deadline=deadline, claimed_until=None, error="",
            status=Case(When(not_yet_submitted, then=Value(MessageStatus.SUBMITTED)), default=F("status")),
            status_rank=Case(When(not_yet_submitted, then=Value(1)), default=F("status_rank"),
                             output_field=PositiveSmallIntegerField()),
        )
        record_event(message.page.escalation_id, EventKind.SENT,
                     f"Sent to {message.page.person_name} on {label} {message.to_address}; waiting "
                     f"{message.expiry_time} s for '{message.condition}'.", at=now, page=message.page, message=message)
    return not timer_moved


def _message_failed(message: Message, error: VonageError, now: datetime) -> bool:
    label = ChannelType(message.channel_type).label
    with transaction.atomic():
        _lock(message.page.escalation_id)
        attempts = Message.objects.values_list("send_attempts", flat=True).get(pk=message.pk)
        if error.permanent or attempts >= settings.ESCALATION_SEND_ATTEMPTS:
            why = "refused" if error.permanent else f"failed {attempts} time(s)"
            Message.objects.filter(pk=message.pk, status_rank__lt=3).update(
                status=MessageStatus.FAILED, status_rank=3, failed_at=now, claimed_until=None, error=str(error)[:1000]
            )
            record_event(message.page.escalation_id, EventKind.SEND_FAILED,
                         f"Vonage {why} the {label} message to {message.to_address}: {error}",
                         at=now, page=message.page, message=message)
            _poke(message.page.escalation_id, now)
            return True
        retry_at = now + retry_delay(attempts)
        # The claim doubles as "not before": decide() leaves the message alone until the backoff is over.
        Message.objects.filter(pk=message.pk).update(claimed_until=retry_at, error=str(error)[:1000])
        record_event(message.page.escalation_id, EventKind.RETRIED,
                     f"{label} to {message.to_address} failed ({error}); retrying in "
                     f"{(retry_at - now).total_seconds():g} s (attempt {attempts + 1} of "
                     f"{settings.ESCALATION_SEND_ATTEMPTS}).", at=now, page=message.page, message=message)
        return not _move_timer(message.page.escalation_id, lease=message.claimed_until, at=retry_at)


def _send_dispatch(page_id: int, clock) -> bool:
    page = Page.objects.select_related("escalation").get(pk=page_id)
    escalation = page.escalation
    # As in _send_message: this row's state is as fresh as a query of its own would be.
    if escalation.state != EscalationState.ACTIVE:
        Page.objects.filter(pk=page_id).update(claimed_until=None)
        return False
    person = plan_person(escalation, page.index)
    try:
        dispatch_uuid = get_client().dispatch_failover(
            person_name=person["name"], channels=person["channels"], text=escalation.message
        )
    except VonageError as error:
        return _dispatch_failed(page, error, clock())
    return _dispatch_accepted(page, person, dispatch_uuid, clock())


def _dispatch_accepted(page: Page, person: dict, dispatch_uuid: str, now: datetime) -> bool:
    window = person_window_seconds(person)
    # Vonage's clock for the workflow starts now, so the person's window does too.
    deadline = now + timedelta(seconds=window)
    with transaction.atomic():
        timer_moved = _lock_and_move_timer(page.escalation_id, lease=page.claimed_until, at=deadline)
        Page.objects.filter(pk=page.pk).update(
            dispatch_uuid=dispatch_uuid, claimed_until=None, last_error="", deadline=deadline
        )
        record_event(page.escalation_id, EventKind.SENT,
                     f"Dispatch workflow accepted for {page.person_name} ({len(person['channels'])} channels, "
                     f"up to {window} s).", at=now, page=page)
    # Webhooks for this workflow may have arrived before we knew its uuid; apply them now. What they change
    # (a failed last channel, an error report) is for a decision made at once.
    replayed = replay_unmatched_dispatch(dispatch_uuid, now=now)
    return not timer_moved or replayed > 0


def _dispatch_failed(page: Page, error: VonageError, now: datetime) -> bool:
    lease = page.claimed_until  # this send's, as read before the request
    with transaction.atomic():
        _lock(page.escalation_id)
        page.refresh_from_db()
        retry_at = now + retry_delay(page.send_attempts)
        if error.permanent or page.send_attempts >= settings.ESCALATION_SEND_ATTEMPTS or retry_at >= page.deadline:
            why = "refused the workflow" if error.permanent else f"failed {page.send_attempts} time(s)"
            Page.objects.filter(pk=page.pk).update(claimed_until=None, last_error=str(error)[:1000])
            record_event(page.escalation_id, EventKind.SEND_FAILED, f"Vonage {why}: {error}", at=now, page=page)
            pass_over(page, f"Vonage {why}: {error}", now)
            _poke(page.escalation_id, now)
            return True
        Page.objects.filter(pk=page.pk).update(claimed_until=retry_at, last_error=str(error)[:1000])
        record_event(page.escalation_id, EventKind.RETRIED,
                     f"Dispatch for {page.person_name} failed ({error}); retrying in "
                     f"{(retry_at - now).total_seconds():g} s (attempt {page.send_attempts + 1} of "
                     f"{settings.ESCALATION_SEND_ATTEMPTS}).", at=now, page=page)
        return not _move_timer(page.escalation_id, lease=lease, at=retry_at)


def _lock(escalation_id: int) -> None:
    # Lock order, everywhere: the escalation row first, then its pages and messages.
    Escalation.objects.select_for_update().filter(pk=escalation_id).values_list("pk").order_by("pk").first()


def _move_timer(escalation_id: int, *, lease: datetime | None, at: datetime) -> bool:
    """Move the timer from this send's claim lease to `at`; False when something else is there now."""
    moved = Escalation.objects.filter(pk=escalation_id, state=EscalationState.ACTIVE, next_action_at=lease)
    return bool(moved.update(next_action_at=at))


def _lock_and_move_timer(escalation_id: int, *, lease: datetime | None, at: datetime) -> bool:
    """`_move_timer` as the transaction's first statement: when it matches, its UPDATE takes the row lock."""
    timer_moved = _move_timer(escalation_id, lease=lease, at=at)
    if not timer_moved:
        _lock(escalation_id)
    return timer_moved


def _poke(escalation_id: int, at: datetime) -> None:
    Escalation.objects.filter(pk=escalation_id, state=EscalationState.ACTIVE).update(next_action_at=at)
