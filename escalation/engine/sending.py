"""Making claimed sends and recording their outcomes, for a whole batch at once.

Order, always: the claims were committed by `decide_due()` (record), then the requests go out here outside
any transaction, side by side in the worker's threads (side effect), then every outcome is written in one
transaction under the escalations' row locks (outcome). A worker killed between a request and its outcome
leaves a claim whose lease runs out; the send is then repeated once.

While a send is in flight the escalation's timer holds its claim lease (set by `decide()`). The outcome moves
it on itself (to the deadline, or the retry) when it still holds that lease; anything else found there was
put since the claim (a failed status poked it to now, an acknowledgement cleared it) and wins.
"""

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import F, Q

from escalation.engine.apply import replay_unmatched_dispatch
from escalation.engine.batch import Batch, workflows_applied_unmatched
from escalation.engine.hold import hold, provider_faults, release
from escalation.engine.logged import log_sends
from escalation.engine.plan import personal_text, plan_person, reply_number_fits
from escalation.engine.provider import get_client, vonage_config
from escalation.engine.step import Send, pass_over, send_lease
from escalation.engine.windows import Choice, TemplateValues, choose, open_windows
from escalation.models import (
    FINAL_RANK,
    STATUS_RANK,
    Api,
    ChannelType,
    Escalation,
    EscalationState,
    EventKind,
    Message,
    MessageStatus,
    Page,
)
from escalation.vonage import VonageError

log = logging.getLogger(__name__)


class SendPool(ThreadPoolExecutor):
    """The worker's threads, which make that many requests at once."""

    def __init__(self, width: int) -> None:
        super().__init__(max_workers=width, thread_name_prefix="escalate")
        self.width = width


def perform(sends: list[Send], clock: Callable[[], datetime], pool: SendPool | None = None) -> set[int]:
    """Make the claimed sends and record their outcomes; returns the escalations with something due at once
    (decide for them again now).

    The requests go out as many at a time as the pool has threads, and each such group's outcomes are
    recorded together before the next group goes: a worker killed mid-pass has at most that many sends made
    but not recorded, which are repeated once after their lease (more would repeat more pages).
    """
    # A last look before the side effect: an acknowledgement committed since the claim wins.
    paging = _active_paging(sends)
    active = {escalation_id for escalations in paging.values() for escalation_id in escalations}
    _release([s for s in sends if s.escalation.pk not in active])
    sends = [s for s in sends if s.escalation.pk in active]
    numbers = [_reply_number(send, paging) for send in sends]
    # The 24-hour windows are read once for the pass (one query), not once per group.
    choices = _choices(sends, clock())
    width = pool.width if pool is not None else 1
    again: set[int] = set()
    accepted: dict[str, Send] = {}
    for start in range(0, len(sends), width):
        group = list(zip(sends[start:start + width], choices[start:start + width], numbers[start:start + width],
                         strict=True))
        # A claim must outlast its request. In a pass slowed down by a slow provider, one whose lease would
        # run out first is given back and decided again at once, instead of being sent while another worker
        # may take it over. (With a lease too short for any request, a misconfiguration that check E005
        # reports, nothing is given back: giving back every claim would stall every escalation.)
        now = clock()
        request_time = vonage_config().request_time
        late = [s for s, _, _ in group if s.lease <= now + request_time] if send_lease() > request_time else []
        if late:
            _give_back(late, now)
            again |= {s.escalation.pk for s in late}
            group = [item for item in group if item[0] not in late]
        if not group:
            continue
        answers = list(pool.map(_request, *zip(*group, strict=True)) if pool is not None
                       else map(_request, *zip(*group, strict=True)))
        outcomes = [(send, made, answer) for (send, made, _), answer in zip(group, answers, strict=True)]
        again |= _record(outcomes, clock())
        accepted |= {answer: send for send, _, answer in outcomes if send.message is None and isinstance(answer, str)}
    # Webhooks of a workflow may have arrived before we knew its uuid; apply them now, once for the pass (one
    # query). What they change (a failed last channel, an error report) is for a decision made at once. A
    # worker killed before this leaves them to the decision at the page's deadline (Batch.unmatched_dispatch).
    for dispatch_uuid in workflows_applied_unmatched(list(accepted)):
        if replay_unmatched_dispatch(dispatch_uuid, now=clock()):
            again.add(accepted[dispatch_uuid].escalation.pk)
    return again


@dataclass(frozen=True)
class Skipped:
    """No request was made: every channel of the send was skipped (engine/windows.py says why)."""

    reason: str


Answer = str | VonageError | Skipped


def _choices(sends: list[Send], now: datetime) -> list[list[Choice]]:
    """How each send's channels go out (one for a message, every channel for a workflow), decided now from
    the 24-hour windows: a Dispatch workflow is built once, so each item's form is fixed here."""
    channels = [_send_channels(send) for send in sends]
    opened = open_windows([c for pairs in channels for _, c in pairs], now)
    choices = []
    for send, send_channels in zip(sends, channels, strict=True):
        escalation = send.escalation
        values = TemplateValues(text=escalation.message, escalation=str(escalation.pk), person=send.page.person_name,
                                roster=escalation.roster_name)
        choices.append([choose(channel, window_open=(channel["type"], channel["address"]) in opened, values=values,
                               dispatch=escalation.api == Api.DISPATCH) for _, channel in send_channels])
    return choices


def _send_channels(send: Send) -> list[tuple[int, dict]]:
    """(index in the plan, channel) of what this send is about."""
    channels = plan_person(send.escalation, send.page.index)["channels"]
    if send.message is not None:
        return [(send.message.channel_index, channels[send.message.channel_index])]
    return list(enumerate(channels))


def _give_back(sends: list[Send], now: datetime) -> None:
    """Undo claims not used: the attempt was never made, and the escalation is due now. A claim another
    worker has taken over since (ours ran out) is theirs, and left alone."""
    for send in sends:
        row = send.message or send.page
        type(row).objects.filter(pk=row.pk, claimed_until=send.lease).update(
            claimed_until=None, send_attempts=F("send_attempts") - 1)
        Escalation.objects.filter(pk=send.escalation.pk, state=EscalationState.ACTIVE,
                                  next_action_at=send.lease).update(next_action_at=now)


def _record(answers: list[tuple[Send, list[Choice], Answer]], now: datetime) -> set[int]:
    with transaction.atomic():
        again = _record_outcomes(answers, now)
    log_sends([(send, answer) for send, _, answer in answers if not isinstance(answer, Skipped)])
    return again


def _release(sends: list[Send]) -> None:
    """Claims of escalations that ended since: nothing will be sent, so nothing is in flight."""
    messages = [s.message.pk for s in sends if s.message is not None]
    pages = [s.page.pk for s in sends if s.message is None]
    if messages:
        Message.objects.filter(pk__in=messages).update(claimed_until=None)
    if pages:
        Page.objects.filter(pk__in=pages).update(claimed_until=None)


def _active_paging(sends: list[Send]) -> dict[int | None, set[int]]:
    """The active escalations among the sends', and those paging the same people, by person (one query)."""
    people = {s.page.person_id for s in sends} - {None}
    pages = Page.objects.filter(Q(escalation_id__in={s.escalation.pk for s in sends}) | Q(person_id__in=people),
                                escalation__state=EscalationState.ACTIVE)
    paging: dict[int | None, set[int]] = {}
    for person_id, escalation_id in pages.order_by().values_list("person_id", "escalation_id").distinct():
        paging.setdefault(person_id, set()).add(escalation_id)
    return paging


def _reply_number(send: Send, paging: dict[int | None, set[int]]) -> int | None:
    """The escalation's id if its person is paged by another active escalation too: the page then says
    "reply N to acknowledge #N" (a plain reply answers only the latest page: engine/replies.py)."""
    escalation, page = send.escalation, send.page
    if page.person_id is None or not paging.get(page.person_id, set()) - {escalation.pk}:
        return None
    channels = plan_person(escalation, page.index)["channels"]
    types = [channels[send.message.channel_index]["type"]] if send.message else [c["type"] for c in channels]
    return escalation.pk if reply_number_fits(page.person_name, escalation.message, escalation.pk, types) else None


def _request(send: Send, choices: list[Choice], reply_number: int | None) -> Answer:
    """The one request of a send: Vonage's uuid for it, or why it failed or was not made. Touches no
    database. A workflow leaves its skipped channels out."""
    escalation, page = send.escalation, send.page
    person = plan_person(escalation, page.index)
    sent = [(channel, choice) for (_, channel), choice in zip(_send_channels(send), choices, strict=True)
            if not choice.skipped]
    if not sent:
        return Skipped("; ".join(choice.label for choice in choices))
    try:
        if send.message is None:
            return get_client().dispatch_failover(person_name=person["name"], channels=[c for c, _ in sent],
                                                  text=escalation.message, forms=[choice.form for _, choice in sent],
                                                  reply_number=reply_number)
        [(channel, choice)] = sent
        return get_client().send_message(channel=channel,
                                         text=personal_text(page.person_name, escalation.message,
                                                            reply_number=reply_number),
                                         client_ref=send.message.client_ref, form=choice.form)
    except VonageError as error:
        return error


def _locked(escalation_ids: set[int]) -> dict[int, Escalation]:
    """The escalations' rows, locked in id order (so two workers never deadlock), with what an outcome reads.

    Written as SQL: the ORM's compile of this one query was a seventh of a busy worker's CPU per step
    (issue 18). SQLite has no FOR UPDATE; there the write transaction is the lock.
    """
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in (Escalation._meta.pk, *(
        Escalation._meta.get_field(name) for name in ("state", "next_action_at", "held_since", "held_by"))))
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    rows = Escalation.objects.raw(
        f"SELECT {columns} FROM {quote(Escalation._meta.db_table)} WHERE {quote(Escalation._meta.pk.column)} "
        f"IN ({', '.join(['%s'] * len(escalation_ids))}) ORDER BY {quote(Escalation._meta.pk.column)}{lock}",
        sorted(escalation_ids))
    return {escalation.pk: escalation for escalation in rows}


def _record_outcomes(answers: list[tuple[Send, list[Choice], Answer]], now: datetime) -> set[int]:
    """Every outcome under its escalation's lock, read fresh; the writes saved together."""
    locked = _locked({s.escalation.pk for s, _, _ in answers})
    # Webhooks may have moved a message since the claim (matched by client_ref); the lock makes this exact.
    messages = [s.message.pk for s, _, _ in answers if s.message is not None]
    ranks = dict(Message.objects.filter(pk__in=messages).values_list("pk", "status_rank")) if messages else {}
    # A skipped send made no request, so it says nothing about the provider.
    provider_faults.observe([answer for _, _, answer in answers if not isinstance(answer, Skipped)], now)
    batch = Batch(now)
    again = set()
    for send, choices, answer in answers:
        lease = send.lease  # as claimed: the outcome below moves the claim on
        escalation = locked[send.escalation.pk]
        if send.message is not None:
            at = _message_outcome(send, escalation, choices[0], answer, ranks[send.message.pk], batch)
        else:
            at = _dispatch_outcome(send, escalation, choices, answer, batch)
        if escalation.state != EscalationState.ACTIVE:
            continue
        if at is not None and escalation.next_action_at == lease:
            batch.update(escalation, next_action_at=at)
        else:
            if at is None:  # decide now, not when the lease runs out
                batch.update(escalation, next_action_at=now)
            again.add(escalation.pk)
    batch.save()
    return again


def _message_outcome(send: Send, escalation: Escalation, choice: Choice, answer: Answer, rank: int,
                     batch: Batch) -> datetime | None:
    """Record a message's outcome; returns when the escalation is next due, or None for at once."""
    message, page, now = send.message, send.page, batch.now
    label = ChannelType(message.channel_type).label
    if isinstance(answer, Skipped):
        # Nothing was sent, so nothing can arrive: the next channel is tried at once.
        if rank < FINAL_RANK:
            batch.update(message, status=MessageStatus.FAILED, status_rank=FINAL_RANK, failed_at=now,
                         claimed_until=None, error=f"skipped: {answer.reason}"[:1000], form="skipped")
        batch.event(page.escalation_id, EventKind.SEND_FAILED,
                    f"Skipped {page.person_name}'s {label} {message.to_address}: {answer.reason}.",
                    page=page, message=message)
        return None
    if isinstance(answer, str):
        deadline = now + timedelta(seconds=message.expiry_time)
        fields = {"message_uuid": answer, "sent_at": now, "deadline": deadline, "claimed_until": None, "error": "",
                  "form": choice.label[:200]}
        # A status webhook (matched by client_ref) may already have moved it on.
        if rank == STATUS_RANK[MessageStatus.QUEUED]:
            fields.update(status=MessageStatus.SUBMITTED, status_rank=STATUS_RANK[MessageStatus.SUBMITTED])
        batch.update(message, **fields)
        release(escalation, page, batch)
        batch.event(page.escalation_id, EventKind.SENT,
                    f"Sent to {page.person_name} on {label} {message.to_address} as {choice.label}; waiting "
                    f"{message.expiry_time} s for '{message.condition}'.", page=page, message=message)
        return deadline
    if answer.provider_fault:
        return hold(escalation, answer, message, batch)
    # This recipient or channel was refused: the person's next channel, if any, is tried at once.
    if rank < FINAL_RANK:
        batch.update(message, status=MessageStatus.FAILED, status_rank=FINAL_RANK, failed_at=now, claimed_until=None,
                     error=str(answer)[:1000])
    batch.event(page.escalation_id, EventKind.SEND_FAILED,
                f"Vonage refused the {label} message to {message.to_address}: {answer}", page=page, message=message)
    return None


def _dispatch_outcome(send: Send, escalation: Escalation, choices: list[Choice], answer: Answer,
                      batch: Batch) -> datetime | None:
    """Record a workflow's outcome; returns when the escalation is next due, or None for at once."""
    page, now = send.page, batch.now
    person = plan_person(send.escalation, page.index)
    if isinstance(answer, Skipped):
        batch.update(page, claimed_until=None, last_error=f"skipped: {answer.reason}"[:1000])
        pass_over(page, f"every channel was skipped: {answer.reason}.", batch)
        return None
    if isinstance(answer, str):
        sent = {index: choice for index, choice in enumerate(choices) if not choice.skipped}
        window = sum(int(person["channels"][index]["expiry_time"]) for index in sent)
        # Vonage's clock for the workflow starts now, so the person's window does too.
        deadline = now + timedelta(seconds=window)
        batch.update(page, dispatch_uuid=answer, claimed_until=None, last_error="", deadline=deadline,
                     item_forms={str(index): choice.label for index, choice in sent.items()})
        release(escalation, page, batch)
        forms = ", then ".join(f"{ChannelType(person['channels'][index]['type']).label} as {choice.label}"
                               for index, choice in sent.items())
        skipped = "".join(f" Skipped {ChannelType(person['channels'][index]['type']).label}: {choice.label}."
                          for index, choice in enumerate(choices) if choice.skipped)
        batch.event(page.escalation_id, EventKind.SENT,
                    f"Dispatch workflow accepted for {page.person_name} ({len(sent)} channels, up to {window} s): "
                    f"{forms}.{skipped}"[:500], page=page)
        return deadline
    if answer.provider_fault:
        return hold(escalation, answer, page, batch)
    batch.update(page, claimed_until=None, last_error=str(answer)[:1000])
    batch.event(page.escalation_id, EventKind.SEND_FAILED, f"Vonage refused the workflow: {answer}", page=page)
    pass_over(page, f"Vonage refused the workflow: {answer}", batch)
    return None
