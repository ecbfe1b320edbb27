"""Applying stored webhooks: the worker's half of the intake (the request's half, which verifies and stores
each delivery, is services/webhooks.py).

A worker applies each stored event exactly once (`webhook_apply`, under the event's row lock), so a webhook
never waits on an escalation's lock, and an event whose application fails stays pending until it succeeds.
The statuses of known messages are applied together (`webhooks_apply`); what they change is in apply.py.
"""

import logging
from collections.abc import Callable
from datetime import datetime

from django.db import DatabaseError, connection, transaction
from django.db.models import Model, Q, QuerySet

from escalation.engine.apply import (
    UNKNOWN_MESSAGE,
    UNKNOWN_WORKFLOW,
    Applied,
    apply_final_report,
    apply_inbound,
    apply_status,
    apply_statuses,
)
from escalation.engine.event_time import event_time
from escalation.models import STATUS_RANK, ChannelTest, HandoffNotice, Page, WebhookEvent, WebhookKind
from escalation.vonage.payloads import FinalReport, InboundReply, StatusUpdate
from escalation.vonage.webhooks import PayloadError, Webhook, parse_webhook

log = logging.getLogger(__name__)


# The start of the result of an event a worker could not apply (kept, and retried only on request).
NOT_APPLIED = "not applied"


def webhooks_pending(limit: int) -> list[int]:
    """Ids of stored events no worker has applied yet, oldest first."""
    pending = WebhookEvent.objects.filter(applied_at=None).order_by("id")
    return list(pending.values_list("pk", flat=True)[:limit])



def webhooks_apply(event_ids: list[int], *, now: datetime) -> int:
    """Apply stored events, the worker's way: the statuses of known messages together in one transaction
    (a few statements for the lot), every other event on its own with `webhook_apply`. Returns how many
    events were applied.

    If the batch fails it is rolled back and each event is tried on its own, so one bad event costs only
    itself. An event that fails on its own stays pending if the database failed (it may be back at the
    next pass); any other failure is a fault no retry will mend, so the event is kept, marked as not
    applied, and logged, rather than retried for ever (and holding every deadline for its grace).
    """
    try:
        rest, applied = _apply_batch(event_ids, now=now)
    except Exception:
        log.warning("applying %d webhook events together failed; applying them one by one", len(event_ids),
                    exc_info=True)
        rest, applied = event_ids, 0
    for event_id in rest:
        try:
            if webhook_apply(event_id, now=now) is not None:
                applied += 1
        except DatabaseError:
            log.warning("applying webhook event %s failed; it stays pending", event_id, exc_info=True)
        except Exception as error:
            log.exception("applying webhook event %s failed; it is kept and marked as not applied", event_id)
            WebhookEvent.objects.filter(pk=event_id, applied_at=None).update(
                applied_at=now, result=f"{NOT_APPLIED}: {type(error).__name__} (see the worker's log)"[:300])
    return applied



def _apply_batch(event_ids: list[int], *, now: datetime) -> tuple[list[int], int]:
    """(ids left to apply one by one, how many were applied here)."""
    with transaction.atomic():
        pending = WebhookEvent.objects.filter(pk__in=event_ids, applied_at=None)
        if connection.features.has_select_for_update_skip_locked:
            pending = pending.select_for_update(skip_locked=True)
        done, statuses, reports = [], [], []
        for event in pending.order_by("pk"):
            if event.kind == WebhookKind.INBOUND:
                continue
            try:
                webhook = parse_webhook(event.body, kind_hint="status")
            except PayloadError as e:
                done.append(_applied(event, Applied(result=f"{NOT_APPLIED}: {e}"), now=now))
                continue
            if isinstance(webhook, StatusUpdate):
                statuses.append((event, webhook))
            else:
                reports.append((event, webhook))
        outcomes = apply_statuses([webhook for _, webhook in statuses], now=now,
                                  received=[event.received_at for event, _ in statuses])
        unmatched = []
        for (event, webhook), applied in zip(statuses, outcomes, strict=True):
            if applied is not None:
                done.append(_applied(event, applied, now=now))
            else:
                unmatched.append((event, webhook))
        done += _unknown(unmatched + reports, now=now)
        _record_all(done, now=now)
    applied_ids = {event.pk for event in done}
    return [pk for pk in event_ids if pk not in applied_ids], len(done)



def _unknown(items: list[tuple[WebhookEvent, StatusUpdate | FinalReport]], *, now: datetime) -> list[WebhookEvent]:
    """Those of `items` that match nothing we sent, recorded as such, found with three queries for them all.

    A storm of events about messages and workflows that are not ours (or no longer exist) then costs the
    worker next to nothing; the rest (a final report, a channel test's or a hand-off notice's status) is
    left for `webhook_apply`, one by one.
    """
    if not items:
        return []
    workflows = {webhook.dispatch_uuid for _, webhook in items if webhook.dispatch_uuid}
    known_workflows = {str(u) for u in Page.objects.filter(dispatch_uuid__in=workflows)
                       .values_list("dispatch_uuid", flat=True)} if workflows else set()
    uuids = {w.message_uuid for _, w in items if isinstance(w, StatusUpdate) and w.message_uuid}
    refs = {w.client_ref for _, w in items if isinstance(w, StatusUpdate) and w.client_ref}
    # The keys of channel tests' and hand-off notices' messages: one query each.
    ours = Q(message_uuid__in=uuids) | Q(client_ref__in=refs)
    other_keys = {str(key) for model in (ChannelTest, HandoffNotice)
                  for pair in model.objects.filter(ours).order_by().values_list("message_uuid", "client_ref")
                  for key in pair if key}
    unknown = []
    for event, webhook in items:
        if webhook.dispatch_uuid in known_workflows:
            continue
        if isinstance(webhook, FinalReport):
            unknown.append(_applied(event, Applied(UNKNOWN_WORKFLOW), now=now))
        elif webhook.message_uuid not in other_keys and webhook.client_ref not in other_keys:
            unknown.append(_applied(event, Applied(UNKNOWN_MESSAGE), now=now))
    return unknown



def webhook_apply(event_id: int, *, now: datetime) -> Applied | None:
    """Apply one stored event, once. None when it is already applied or another worker is applying it.

    Lock order: the event's row, then (inside apply_*) the escalation's row; nothing takes them the other
    way round, so workers applying events and workers advancing escalations cannot deadlock.
    """
    with transaction.atomic():
        pending = WebhookEvent.objects.filter(pk=event_id, applied_at=None)
        if connection.features.has_select_for_update_skip_locked:
            pending = pending.select_for_update(skip_locked=True)
        event = pending.order_by("pk").first()
        if event is None:
            return None
        kind_hint = "inbound" if event.kind == WebhookKind.INBOUND else "status"
        try:
            webhook = parse_webhook(event.body, kind_hint=kind_hint)
        except PayloadError as e:  # stored by an older parser that was more lenient
            applied = Applied(result=f"{NOT_APPLIED}: {e}")
        else:
            applied = _apply(webhook, now=now, received_at=event.received_at)
        _record(event, applied, now=now)
    return applied



def _record(event: WebhookEvent, applied: Applied, *, now: datetime) -> None:
    _applied(event, applied, now=now).save(update_fields=["result", "escalation", "message", "applied_at"])



def _record_all(events: list[WebhookEvent], *, now: datetime) -> None:
    """Each event's own result and links, in one UPDATE of plain CASEs. Django's bulk_update writes the
    same SQL but builds an expression per row and field, which cost more CPU than the rest of the batch."""
    if not events:
        return
    ids = [event.pk for event in events]
    sets, params = [], []
    # The casts type a CASE whose values are all NULL (PostgreSQL would take it for text).
    for column, cast, values in (("result", "varchar(300)", [e.result for e in events]),
                                 ("escalation_id", "bigint", [e.escalation_id for e in events]),
                                 ("message_id", "bigint", [e.message_id for e in events])):
        cases = " ".join(["WHEN %s THEN %s"] * len(events))
        sets.append(f"{column} = CAST(CASE id {cases} END AS {cast})")
        params += [item for pair in zip(ids, values, strict=True) for item in pair]
    sets.append("applied_at = %s")
    params.append(connection.ops.adapt_datetimefield_value(now))
    table = WebhookEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {', '.join(sets)} WHERE id IN ({', '.join(['%s'] * len(ids))})",
                       params + ids)



def _applied(event: WebhookEvent, applied: Applied, *, now: datetime) -> WebhookEvent:
    event.result = applied.result[:300]
    event.escalation_id = applied.escalation_id
    event.message_id = applied.message_id
    event.applied_at = now
    return event



def _apply(webhook: Webhook, *, now: datetime, received_at: datetime) -> Applied:
    """Apply one webhook that reached us at `received_at`: what it records happened then (or at Vonage's own
    plausible timestamp), not `now`, when a worker got round to it."""
    if isinstance(webhook, StatusUpdate):
        applied = apply_status(webhook, now=now, received_at=received_at)
        if applied.result == UNKNOWN_MESSAGE:
            # Not an escalation's message: maybe a channel test's or a hand-off notice's (rare, so looked for
            # only now).
            result = (_apply_to_channel_test(webhook, now=now)
                      or _apply_to_handoff_notice(webhook, received_at=received_at))
            if result is not None:
                return Applied(result=result, escalation_id=None, message_id=None)
        return applied
    if isinstance(webhook, FinalReport):
        return apply_final_report(webhook, now=now, received_at=received_at)
    assert isinstance(webhook, InboundReply)
    return apply_inbound(webhook, now=now, received_at=received_at)


def _move_up(rows: QuerySet, what: str, update: StatusUpdate, fields: Callable[[Model], dict]) -> str | None:
    """Move the status of the row of `rows` that sent the update's message up the same ladder as a Message's,
    writing `fields(row)` beside it; None if none of `rows` sent it."""
    match = Q(message_uuid=update.message_uuid)
    if update.client_ref:
        match |= Q(client_ref=update.client_ref)
    row = rows.filter(match).first()
    if row is None:
        return None
    rank = STATUS_RANK[update.status]
    # Compare-and-set on the rank: a late `delivered` never replaces `read`, whatever order they arrive in.
    moved = rows.model.objects.filter(pk=row.pk, status_rank__lt=rank).update(
        status=update.status, status_rank=rank, **fields(row))
    if moved:
        return f"{what} #{row.pk}: {update.status}"
    return f"{what} #{row.pk}: {update.status} ignored, already {row.status}"


def _apply_to_channel_test(update: StatusUpdate, *, now: datetime) -> str | None:
    """A test message's status; None if it is not a test message."""
    return _move_up(ChannelTest.objects.all(), "channel test", update,
                    lambda test: {"error": update.error, "updated_at": now})


def _apply_to_handoff_notice(update: StatusUpdate, *, received_at: datetime) -> str | None:
    """A hand-off notice's delivery status, with when it happened; None if it is not a notice's message."""
    # A status may beat the send's outcome record (settled_at): the notice was not sent before it was due.
    return _move_up(HandoffNotice.objects.order_by("pk"), "hand-off notice", update, lambda notice: {
        "status_at": event_time(update.timestamp, received_at=received_at,
                                not_before=notice.settled_at or notice.due_at),
        "status_error": update.error[:500]})
