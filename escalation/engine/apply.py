"""Applying Vonage's webhooks to escalations.

Statuses only move up the ladder in STATUS_RANK (a compare-and-set on `status_rank`), so a duplicated or
late webhook never moves a status backwards and the same event applied twice changes nothing the second
time. Reaching a person acknowledges the escalation at once; anything that needs a new send only pokes
the escalation's timer, and the worker does the sending.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q

from escalation.engine.batch import applied_unmatched, save_changes
from escalation.engine.event_time import event_time
from escalation.engine.events import clock, new_event, record_event, save_events
from escalation.engine.plan import plan_person
from escalation.engine.replies import answered_page
from escalation.engine.transitions import acknowledge
from escalation.engine.windows import record_inbound
from escalation.models import (
    FAILED_STATUSES,
    STATUS_RANK,
    ChannelType,
    Escalation,
    EscalationState,
    EventKind,
    Message,
    MessageStatus,
    Page,
    PageState,
    StopRule,
    WebhookEvent,
    short_label,
)
from escalation.vonage.payloads import FinalReport, InboundReply, StatusUpdate
from escalation.vonage.webhooks import parse_webhook

STATUS_TIME_FIELD = {
    MessageStatus.DELIVERED: "delivered_at",
    MessageStatus.READ: "read_at",
    MessageStatus.REJECTED: "failed_at",
    MessageStatus.UNDELIVERABLE: "failed_at",
}


UNKNOWN_MESSAGE = "unknown message"
UNKNOWN_WORKFLOW = "unknown workflow"


@dataclass(frozen=True)
class Applied:
    result: str
    escalation_id: int | None = None
    message_id: int | None = None


def meets_condition(status: str, condition: str) -> bool:
    # `read` implies `delivered`: a read message satisfies either condition.
    return status == MessageStatus.READ or (status == MessageStatus.DELIVERED and condition == "delivered")


@dataclass(frozen=True)
class Stop:
    """A status that ends the escalation, and how: `reached` when only a delivery met the condition."""
    how: str
    reached: bool


def stop_for(status: str, message: Message, escalation: Escalation, now: datetime) -> Stop | None:
    """A read always acknowledges; a delivery meeting a `delivered` condition reaches the person, which stops
    the escalation only under the roster's default rule (frozen in the plan)."""
    if not meets_condition(status, message.condition):
        return None
    label = short_label(message.channel_type)
    if status == MessageStatus.READ:
        return Stop(f"read on {label} at {clock(now)}", reached=False)
    if escalation.plan.get("stop_on", StopRule.CONDITION) == StopRule.ACKNOWLEDGEMENT:
        return None
    return Stop(f"{label} delivered at {clock(now)}", reached=True)


def apply_status(update: StatusUpdate, *, now: datetime, received_at: datetime | None = None) -> Applied:
    """One status on its own: `apply_statuses` of one."""
    with transaction.atomic(savepoint=False):
        [applied] = apply_statuses([update], now=now, received=None if received_at is None else [received_at])
    return applied or Applied(UNKNOWN_MESSAGE)


def apply_statuses(updates: list[StatusUpdate], *, now: datetime,
                   received: list[datetime] | None = None) -> list[Applied | None]:
    """Statuses of messages we sent, applied together, each in the list's order.

    `received` is when each update's webhook reached us (default: `now`, for an update applied as it
    arrives). What a status records happened then, or at Vonage's own timestamp when that is plausible
    (`event_time`), never when a worker got round to it; `now` only moves the escalation's timer.

    A few statements for the whole list (the worker's batches of stored webhooks): find the messages, and
    the workflows of Dispatch items seen for the first time; lock their escalations in id order (so two
    batches never deadlock); read the messages and pages again under those locks (a row read while waiting
    for a lock may be one step behind), make the Dispatch items' messages from the plan, then write. None
    for an update that matches nothing of ours (a channel test's, or unknown). Runs inside the caller's
    transaction.
    """
    results: list[Applied | None] = [None] * len(updates)
    received = received or [now] * len(updates)
    wanted = []
    for i, update in enumerate(updates):
        if update.status not in STATUS_RANK or update.status in (MessageStatus.QUEUED, MessageStatus.FAILED):
            results[i] = Applied(f"ignored status {update.status!r}")
        else:
            wanted.append(i)
    uuids = {updates[i].message_uuid for i in wanted if updates[i].message_uuid}
    refs = {updates[i].client_ref for i in wanted if updates[i].client_ref}
    if not uuids and not refs:
        return results
    found = list(Message.objects.filter(Q(message_uuid__in=uuids) | Q(client_ref__in=refs)).order_by()
                 .values_list("pk", "message_uuid", "client_ref", "page__escalation_id"))
    by_uuid = {str(row[1]): row[0] for row in found if row[1] is not None}
    by_ref = {row[2]: row[0] for row in found}
    matched = {i: by_uuid.get(updates[i].message_uuid) or by_ref.get(updates[i].client_ref) for i in wanted}
    # A Dispatch item's first status: its message is made now, from the plan, under the escalation's lock.
    workflows = {updates[i].dispatch_uuid for i, message_id in matched.items()
                 if message_id is None and updates[i].dispatch_uuid}
    pages = list(Page.objects.filter(dispatch_uuid__in=workflows).order_by()
                 .values_list("pk", "escalation_id")) if workflows else []
    if not found and not pages:
        return results
    escalations = {e.pk: e for e in Escalation.objects.select_for_update()
                   .filter(pk__in={row[3] for row in found} | {row[1] for row in pages}).order_by("pk")}
    messages = Message.objects.select_related("page").filter(pk__in=[row[0] for row in found]).order_by()
    messages = {m.pk: m for m in messages}
    items = _DispatchItems([pk for pk, _ in pages], escalations)
    pairs = []
    for i, message_id in matched.items():
        if message_id is not None:
            pairs.append((i, updates[i], messages[message_id], received[i]))
        elif updates[i].dispatch_uuid in items.pages:
            message = items.message(updates[i], received_at=received[i])
            if message is None:
                results[i] = Applied("unknown message: its address is not in the person's plan",
                                     items.pages[updates[i].dispatch_uuid].escalation_id)
            else:
                pairs.append((i, updates[i], message, received[i]))
    items.save()
    for i, applied in _apply_locked(pairs, escalations, taken_uuids=set(by_uuid) | items.uuids, now=now):
        results[i] = applied
    return results


class _DispatchItems:
    """The messages of Dispatch workflows whose items report for the first time, made from each person's plan
    by matching the status's channel and address. Read and made under the escalations' locks, so two statuses
    of one item cannot both make it."""

    def __init__(self, page_ids: list[int], escalations: dict[int, Escalation]) -> None:
        self.pages: dict[str, Page] = {}  # by dispatch_uuid
        self._channels: dict[int, dict[int, Message]] = {}
        self._by_uuid: dict[str, Message] = {}
        self._new: list[Message] = []
        if not page_ids:
            return
        by_id = {}
        for page in Page.objects.filter(pk__in=page_ids).order_by():
            page.escalation = escalations[page.escalation_id]
            self.pages[str(page.dispatch_uuid)] = by_id[page.pk] = page
            self._channels[page.pk] = {}
        for message in Message.objects.filter(page_id__in=page_ids).order_by():
            message.page = by_id[message.page_id]
            self._channels[message.page_id][message.channel_index] = message
            if message.message_uuid is not None:
                self._by_uuid[str(message.message_uuid)] = message

    @property
    def uuids(self) -> set[str]:
        return set(self._by_uuid)

    def message(self, update: StatusUpdate, *, received_at: datetime) -> Message | None:
        """The item's message; a new one is sent when its first status says (a Dispatch item is sent by
        Vonage, after the previous item's expiry, so only its statuses tell us when)."""
        if update.message_uuid in self._by_uuid:
            return self._by_uuid[update.message_uuid]
        page = self.pages[update.dispatch_uuid]
        channels = plan_person(page.escalation, page.index)["channels"]
        candidates = [i for i, c in enumerate(channels)
                      if c["type"] == update.channel_type and c["address"] == update.to_address]
        if not candidates:
            return None
        taken = self._channels[page.pk]
        free = [i for i in candidates if i not in taken]
        if not free:
            return taken[candidates[0]]
        channel = channels[free[0]]
        sent_at = event_time(update.timestamp, received_at=received_at,
                             not_before=page.dispatch_requested_at or page.started_at)
        message = Message(
            page=page, channel_index=free[0], channel_type=channel["type"], to_address=channel["address"],
            condition=channel["condition"], expiry_time=channel["expiry_time"], message_uuid=update.message_uuid,
            form=page.item_forms.get(str(free[0]), ""),
            created_at=sent_at, sent_at=sent_at, deadline=sent_at + timedelta(seconds=int(channel["expiry_time"])),
        )
        self._new.append(message)
        taken[message.channel_index] = message
        if update.message_uuid:
            self._by_uuid[update.message_uuid] = message
        return message

    def save(self) -> None:
        if self._new:
            Message.objects.bulk_create(self._new)


def _apply_locked(pairs: list[tuple[int, StatusUpdate, Message, datetime]], escalations: dict[int, Escalation], *,
                  taken_uuids: set[str], now: datetime) -> list[tuple[int, Applied]]:
    """Move each message up the ladder and say what follows, under its escalation's lock; then write it all.

    The messages were read under those locks, so comparing ranks here is exact: no compare-and-set is needed.
    """
    results, changed, events, stopping, poke = [], {}, [], [], set()
    # The escalations that have ended, or end in this batch, with their end state.
    acknowledged = {pk: e.state for pk, e in escalations.items() if e.state != EscalationState.ACTIVE}
    for i, update, message, received_at in pairs:
        page, escalation = message.page, escalations[message.page.escalation_id]
        at = event_time(update.timestamp, received_at=received_at, not_before=message.sent_at or message.created_at)
        if message.message_uuid is None and update.message_uuid and update.message_uuid not in taken_uuids:
            _learn_uuid(message, update.message_uuid)
            taken_uuids.add(update.message_uuid)
        rank = STATUS_RANK[update.status]
        if message.status_rank >= rank:
            results.append((i, Applied(f"{update.status} ignored: already {message.status}", escalation.pk,
                                       message.pk)))
            continue
        fields = {"status": update.status, "status_rank": rank}
        if update.status in STATUS_TIME_FIELD:
            fields[STATUS_TIME_FIELD[update.status]] = at
        if update.error:
            fields["error"] = update.error[:1000]
        for field, value in fields.items():
            setattr(message, field, value)
        changed.setdefault(message.pk, (message, set()))[1].update(fields)
        label = ChannelType(message.channel_type).label
        text = f"{page.person_name}'s {label} {message.to_address}: {update.status}"
        events.append(new_event(escalation, update.status, text + (f" ({update.error})" if update.error else ""),
                                at=at, page=page, message=message))
        if escalation.pk in acknowledged:
            applied = Applied(f"status {update.status} (escalation already {acknowledged[escalation.pk]})",
                              escalation.pk, message.pk)
        elif (stop := stop_for(update.status, message, escalation, at)) is not None:
            acknowledged[escalation.pk] = EscalationState.REACHED if stop.reached else EscalationState.ACKNOWLEDGED
            stopping.append((escalation, page, stop, at))
            applied = Applied(f"status {update.status}: {'reached' if stop.reached else 'acknowledged'}",
                              escalation.pk, message.pk)
        else:
            if update.status in FAILED_STATUSES and page.state == PageState.ACTIVE:
                # The worker fails over to the next channel (or person) now rather than at the expiry.
                poke.add(escalation.pk)
            applied = Applied(f"status {update.status}", escalation.pk, message.pk)
        results.append((i, applied))
    save_changes(Message, changed.values())
    save_events(events)
    for escalation, page, stop, at in stopping:
        acknowledge(escalation=escalation, person_index=page.index, by_name=page.person_name, how=stop.how,
                    reached=stop.reached, now=at)
    if poke - acknowledged.keys():
        Escalation.objects.filter(pk__in=poke - acknowledged.keys()).update(next_action_at=now)
    return results


def _learn_uuid(message: Message, message_uuid: str) -> None:
    """The status beat the 202's outcome record: learn the uuid from the webhook.

    A uuid already taken by another message (only possible with a forged, unsigned body) is ignored
    rather than allowed to break the unique index.
    """
    try:
        with transaction.atomic():
            if Message.objects.filter(pk=message.pk, message_uuid=None).update(message_uuid=message_uuid):
                message.message_uuid = message_uuid
    except IntegrityError:
        pass


def apply_final_report(report: FinalReport, *, now: datetime, received_at: datetime | None = None) -> Applied:
    page = Page.objects.filter(dispatch_uuid=report.dispatch_uuid).order_by("pk").first()
    if page is None:
        return Applied(UNKNOWN_WORKFLOW)
    received_at = received_at or now
    at = event_time(report.timestamp, received_at=received_at, not_before=page.dispatch_requested_at or page.started_at)
    with transaction.atomic(savepoint=False):
        escalation = Escalation.objects.select_for_update().get(pk=page.escalation_id)
        if not Page.objects.filter(pk=page.pk, dispatch_final_status="").update(dispatch_final_status=report.status):
            return Applied("duplicate final report", escalation.pk)
        record_event(escalation, EventKind.NOTE, f"Dispatch final report for {page.person_name}: {report.status}.",
                     at=at, page=page)
        if report.status == "error" and escalation.state == EscalationState.ACTIVE and page.state == PageState.ACTIVE:
            Escalation.objects.filter(pk=escalation.pk).update(next_action_at=now)
    # The report lists each item's last status; it may arrive before the per-message webhooks.
    for item in report.messages:
        if item.status in STATUS_RANK and Message.objects.filter(message_uuid=item.message_uuid).exists():
            apply_status(StatusUpdate(message_uuid=item.message_uuid, status=item.status, timestamp=report.timestamp,
                                      to_address="", channel_type=item.channel_type), now=now, received_at=received_at)
    return Applied(f"final report {report.status}", escalation.pk)


def apply_inbound(reply: InboundReply, *, now: datetime, received_at: datetime | None = None) -> Applied:
    """A reply acknowledges the one escalation it answers (`answered_page`), if that is still active. Every
    reply opens the person's 24-hour window on that channel."""
    received_at = received_at or now
    record_inbound(reply, now=received_at)
    answered = answered_page(channel_type=reply.channel_type, address=reply.from_address, text=reply.text,
                             received_at=received_at)
    if answered is None:
        return Applied("reply kept: no active escalation paged this sender")
    page, escalation = answered.page, answered.page.escalation
    if escalation.ended_at is not None and escalation.ended_at < received_at:
        return Applied(f"reply kept: it answers #{escalation.pk}, which had ended before it arrived", escalation.pk)
    label = short_label(reply.channel_type)
    at = event_time(reply.timestamp, received_at=received_at, not_before=answered.not_before)
    quote = reply.text[:80]
    text = f"{page.person_name} replied on {label} {reply.from_address}: \u201c{quote}\u201d"
    with transaction.atomic():
        Escalation.objects.select_for_update().filter(pk=escalation.pk).first()
        record_event(escalation, EventKind.REPLIED, text + (f" ({answered.note})." if answered.note else ""),
                     at=at, page=page)
        acknowledged = acknowledge(escalation=escalation, person_index=page.index, by_name=page.person_name,
                                   how=f"replied on {label}: \u201c{quote}\u201d", now=at)
    note = f" ({answered.note})" if answered.note else ""
    if acknowledged:
        return Applied(f"reply: acknowledged #{escalation.pk}{note}", escalation.pk)
    return Applied(f"reply to #{escalation.pk}, which had already ended{note}", escalation.pk)


def replay_unmatched_dispatch(dispatch_uuid: str, *, now: datetime) -> int:
    """Apply again the applied-but-unmatched events of a workflow whose dispatch_uuid is now recorded.

    Vonage may post the first status before our outcome transaction for the 202 has committed; a worker
    then applied it as "unknown". Events still pending need nothing: they are applied after this commit.
    Returns how many were replayed.
    """
    count = 0
    for event in applied_unmatched([dispatch_uuid]).order_by("id"):
        webhook = parse_webhook(event.body, kind_hint="status")
        if isinstance(webhook, FinalReport):
            applied = apply_final_report(webhook, now=now, received_at=event.received_at)
        else:
            applied = apply_status(webhook, now=now, received_at=event.received_at)
        WebhookEvent.objects.filter(pk=event.pk).update(
            result=f"{applied.result} (applied late)"[:300], escalation_id=applied.escalation_id,
            message_id=applied.message_id)
        count += 1
    return count

