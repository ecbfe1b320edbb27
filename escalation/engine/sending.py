"""Performing a claimed send and recording its outcome.

Order, always: the claim was committed by `decide()` (record), then the request goes out here outside any
transaction (side effect), then the outcome is written under the row lock (outcome). A worker killed
between the request and the outcome leaves a claim whose lease runs out; the send is then repeated once.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

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


def perform(action: SendMessage | SendDispatch, clock) -> None:
    if isinstance(action, SendMessage):
        _send_message(action.message_id, clock)
    else:
        _send_dispatch(action.page_id, clock)


def _still_active(escalation_id: int) -> bool:
    # A last look before the side effect: an acknowledgement committed since the claim wins.
    return Escalation.objects.filter(pk=escalation_id, state=EscalationState.ACTIVE).exists()


def _send_message(message_id: int, clock) -> None:
    message = Message.objects.select_related("page__escalation").get(pk=message_id)
    page, escalation = message.page, message.page.escalation
    if not _still_active(escalation.pk):
        Message.objects.filter(pk=message_id).update(claimed_until=None)
        return
    channel = plan_person(escalation, page.index)["channels"][message.channel_index]
    try:
        message_uuid = get_client().send_message(
            channel=channel, text=personal_text(page.person_name, escalation.message), client_ref=message.client_ref
        )
    except VonageError as error:
        _message_failed(message, error, clock())
    else:
        _message_accepted(message, message_uuid, clock())


def _message_accepted(message: Message, message_uuid: str, now: datetime) -> None:
    label = ChannelType(message.channel_type).label
    with transaction.atomic():
        Escalation.objects.select_for_update().filter(pk=message.page.escalation_id).first()
        Message.objects.filter(pk=message.pk).update(
            message_uuid=message_uuid, sent_at=now, deadline=now + timedelta(seconds=message.expiry_time),
            claimed_until=None, error="",
        )
        # A status webhook (matched by client_ref) may already have moved it past `submitted`.
        Message.objects.filter(pk=message.pk, status_rank=0).update(status=MessageStatus.SUBMITTED, status_rank=1)
        record_event(message.page.escalation_id, EventKind.SENT,
                     f"Sent to {message.page.person_name} on {label} {message.to_address}; waiting "
                     f"{message.expiry_time} s for '{message.condition}'.", at=now, page=message.page, message=message)


def _message_failed(message: Message, error: VonageError, now: datetime) -> None:
    label = ChannelType(message.channel_type).label
    with transaction.atomic():
        Escalation.objects.select_for_update().filter(pk=message.page.escalation_id).first()
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
            return
        delay = retry_delay(attempts)
        # The claim doubles as "not before": decide() leaves the message alone until the backoff is over.
        Message.objects.filter(pk=message.pk).update(claimed_until=now + delay, error=str(error)[:1000])
        record_event(message.page.escalation_id, EventKind.RETRIED,
                     f"{label} to {message.to_address} failed ({error}); retrying in {delay.total_seconds():g} s "
                     f"(attempt {attempts + 1} of {settings.ESCALATION_SEND_ATTEMPTS}).",
                     at=now, page=message.page, message=message)
        _poke(message.page.escalation_id, now + delay)


def _send_dispatch(page_id: int, clock) -> None:
    page = Page.objects.select_related("escalation").get(pk=page_id)
    escalation = page.escalation
    if not _still_active(escalation.pk):
        Page.objects.filter(pk=page_id).update(claimed_until=None)
        return
    person = plan_person(escalation, page.index)
    Page.objects.filter(pk=page_id).update(dispatch_requested_at=clock())
    try:
        dispatch_uuid = get_client().dispatch_failover(
            person_name=person["name"], channels=person["channels"], text=escalation.message
        )
    except VonageError as error:
        _dispatch_failed(page, error, clock())
    else:
        _dispatch_accepted(page, person, dispatch_uuid, clock())


def _dispatch_accepted(page: Page, person: dict, dispatch_uuid: str, now: datetime) -> None:
    window = person_window_seconds(person)
    with transaction.atomic():
        Escalation.objects.select_for_update().filter(pk=page.escalation_id).first()
        # Vonage's clock for the workflow starts now, so the person's window does too.
        Page.objects.filter(pk=page.pk).update(
            dispatch_uuid=dispatch_uuid, claimed_until=None, last_error="", deadline=now + timedelta(seconds=window)
        )
        record_event(page.escalation_id, EventKind.SENT,
                     f"Dispatch workflow accepted for {page.person_name} ({len(person['channels'])} channels, "
                     f"up to {window} s).", at=now, page=page)
        _poke(page.escalation_id, now)
    # Webhooks for this workflow may have arrived before we knew its uuid; apply them now.
    replay_unmatched_dispatch(dispatch_uuid, now=now)


def _dispatch_failed(page: Page, error: VonageError, now: datetime) -> None:
    with transaction.atomic():
        Escalation.objects.select_for_update().filter(pk=page.escalation_id).first()
        page.refresh_from_db()
        retry_at = now + retry_delay(page.send_attempts)
        if error.permanent or page.send_attempts >= settings.ESCALATION_SEND_ATTEMPTS or retry_at >= page.deadline:
            why = "refused the workflow" if error.permanent else f"failed {page.send_attempts} time(s)"
            Page.objects.filter(pk=page.pk).update(claimed_until=None, last_error=str(error)[:1000])
            record_event(page.escalation_id, EventKind.SEND_FAILED, f"Vonage {why}: {error}", at=now, page=page)
            pass_over(page, f"Vonage {why}: {error}", now)
            _poke(page.escalation_id, now)
            return
        Page.objects.filter(pk=page.pk).update(claimed_until=retry_at, last_error=str(error)[:1000])
        record_event(page.escalation_id, EventKind.RETRIED,
                     f"Dispatch for {page.person_name} failed ({error}); retrying in "
                     f"{(retry_at - now).total_seconds():g} s (attempt {page.send_attempts + 1} of "
                     f"{settings.ESCALATION_SEND_ATTEMPTS}).", at=now, page=page)
        _poke(page.escalation_id, retry_at)


def _poke(escalation_id: int, at: datetime) -> None:
    Escalation.objects.filter(pk=escalation_id, state=EscalationState.ACTIVE).update(next_action_at=at)
