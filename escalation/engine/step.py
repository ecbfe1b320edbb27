"""Deciding what is due for one escalation at a given moment.

`decide()` runs inside a transaction holding the escalation's row lock. It applies every transition that
is due (start the next person, fail over to the next channel, pass a person over, start a new round, end
the escalation as exhausted), claims the one send that is needed, if any, and sets the escalation's timer.
It never talks to Vonage: the claimed send is performed outside the transaction by `sending.py`, so a
webhook never waits on a worker's lock for longer than this bookkeeping takes.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Subquery

from escalation.engine.apply import replay_unmatched_dispatch
from escalation.engine.events import record_event
from escalation.engine.plan import person_deadline, person_window_seconds, plan_people, plan_person
from escalation.models import (
    FAILED_STATUSES,
    Api,
    ChannelType,
    Escalation,
    EscalationState,
    EventKind,
    Message,
    MessageStatus,
    Page,
    PageState,
    Person,
)
from escalation.services.webhooks import webhooks_pending_since


@dataclass(frozen=True)
class SendMessage:
    message_id: int


@dataclass(frozen=True)
class SendDispatch:
    page_id: int


Action = SendMessage | SendDispatch


@dataclass(frozen=True)
class Wait:
    until: datetime | None
    action: Action | None = None


PASSED_OVER = object()

# How long a deadline waits for webhooks received before it to be applied, and how often it looks again.
PENDING_WEBHOOKS_GRACE = timedelta(seconds=10)
PENDING_WEBHOOKS_RECHECK = timedelta(milliseconds=100)


def send_lease() -> timedelta:
    return timedelta(seconds=settings.ESCALATION_SEND_LEASE_SECONDS)


def decide(escalation: Escalation, now: datetime) -> Action | None:
    if escalation.state != EscalationState.ACTIVE:
        return None
    page = _current_page(escalation)
    # Each pass either returns or moves past one person, so the plan's length bounds the loop.
    for _ in range(len(plan_people(escalation)) * escalation.plan["rounds"] + 2):
        if page is None or page.state != PageState.ACTIVE:
            page = _start_next_page(escalation, page, now)
            if page is None:
                return None
            outcome = _first_send(escalation, page, now)
        else:
            outcome = _page_step(escalation, page, now)
        if outcome is PASSED_OVER:
            continue  # `page` is the one just passed over: the next pass starts the person after it
        _set_timer(escalation, outcome.until)
        return outcome.action
    raise RuntimeError(f"escalation {escalation.pk}: no decision after walking the whole plan")


def _current_page(escalation: Escalation) -> Page | None:
    if escalation.current_round == 0:
        return None
    return Page.objects.filter(
        escalation=escalation, round=escalation.current_round, index=escalation.current_index
    ).order_by("pk").first()


def _set_timer(escalation: Escalation, until: datetime | None) -> None:
    """Save the timer, and with it the position a page started by this decision moved to."""
    escalation.next_action_at = until
    Escalation.objects.filter(pk=escalation.pk).update(
        next_action_at=until, current_round=escalation.current_round, current_index=escalation.current_index
    )


def _start_next_page(escalation: Escalation, previous: Page | None, now: datetime) -> Page | None:
    people = plan_people(escalation)
    if previous is None and escalation.current_round == 0:
        round_, index = 1, 0
    elif escalation.current_index + 1 < len(people):
        round_, index = escalation.current_round, escalation.current_index + 1
    else:
        round_, index = escalation.current_round + 1, 0
        if round_ > escalation.plan["rounds"]:
            _exhaust(escalation, now)
            return None
        record_event(escalation, EventKind.ROUND,
                     f"Nobody reached in round {round_ - 1}: starting round {round_} of {escalation.plan['rounds']}.",
                     at=now)
    person = people[index]
    first_claim = {}
    if escalation.api == Api.DISPATCH:
        # The page is the person's one Dispatch send: it is written already claimed (see `_claim`).
        first_claim = {"claimed_until": now + send_lease(), "send_attempts": 1, "dispatch_requested_at": now}
    page = Page.objects.create(
        escalation=escalation, round=round_, index=index, person_id=_existing_person_id(person),
        person_name=person["name"], started_at=now, deadline=person_deadline(person, now), **first_claim,
    )
    # Saved with the timer (`_set_timer`), which every decision that starts a page ends with.
    escalation.current_round, escalation.current_index = round_, index
    channels = ", then ".join(
        f"{ChannelType(c['type']).label} ({c['expiry_time']} s, until {c['condition']})" for c in person["channels"]
    )
    record_event(escalation, EventKind.PAGED,
                 f"Paging {person['name']} (person {index + 1} of {len(people)}, round {round_}): {channels}; "
                 f"up to {person_window_seconds(person)} s.", at=now, page=page)
    return page


def _existing_person_id(person: dict) -> Subquery | None:
    """The person's id if they still exist, looked up inside the page's INSERT rather than by a query of its own.

    The plan outlives the person: a deleted person is paged from the snapshot, linked to nobody. As with an
    F() expression, the new Page instance keeps this subquery as its `person_id` until reloaded.
    """
    if person["person_id"] is None:
        return None
    return Subquery(Person.objects.filter(pk=person["person_id"]).order_by().values("pk"))


def _exhaust(escalation: Escalation, now: datetime) -> None:
    outcome = f"Nobody was reached after {escalation.plan['rounds']} round(s)."
    Escalation.objects.filter(pk=escalation.pk, state=EscalationState.ACTIVE).update(
        state=EscalationState.EXHAUSTED, ended_at=now, next_action_at=None, outcome=outcome,
        current_round=escalation.current_round, current_index=escalation.current_index,
    )
    escalation.state = EscalationState.EXHAUSTED
    escalation.next_action_at = None
    record_event(escalation, EventKind.EXHAUSTED, f"Exhausted: {outcome}", at=now)


def pass_over(page: Page, reason: str, now: datetime) -> None:
    Page.objects.filter(pk=page.pk).update(state=PageState.PASSED_OVER, ended_at=now, outcome=reason[:300])
    page.state = PageState.PASSED_OVER
    record_event(page.escalation_id, EventKind.PASSED_OVER, f"{page.person_name} passed over: {reason}",
                 at=now, page=page)


def _first_send(escalation: Escalation, page: Page, now: datetime) -> Wait:
    """A page just started: nothing to look up, its first send is claimed at once."""
    if escalation.api == Api.DISPATCH:
        return Wait(page.claimed_until, SendDispatch(page.pk))
    return _new_message(page, plan_person(escalation, page.index)["channels"], 0, now)


def _page_step(escalation: Escalation, page: Page, now: datetime):
    if escalation.api == Api.DISPATCH:
        return _dispatch_page_step(escalation, page, now)
    return _messages_page_step(escalation, page, now)


def _claim(model, pk: int, now: datetime) -> datetime:
    """Record the intent to send before sending: the lease lets another worker retry if this one dies.

    A Dispatch page's `dispatch_requested_at` is written with its claim, right before the request.
    """
    until = now + send_lease()
    fields = {"claimed_until": until, "send_attempts": F("send_attempts") + 1}
    if model is Page:
        fields["dispatch_requested_at"] = now
    model.objects.filter(pk=pk).update(**fields)
    return until


def _dispatch_page_step(escalation: Escalation, page: Page, now: datetime, replayed: bool = False):
    person = plan_person(escalation, page.index)
    if page.dispatch_uuid is None:
        if page.claimed_until and page.claimed_until > now:
            return Wait(page.claimed_until)
        if page.send_attempts >= settings.ESCALATION_SEND_ATTEMPTS or now >= page.deadline:
            pass_over(page, f"Vonage did not accept the workflow after {page.send_attempts} attempt(s): "
                            f"{page.last_error or 'no answer'}", now)
            return PASSED_OVER
        return Wait(_claim(Page, page.pk, now), SendDispatch(page.pk))
    if page.dispatch_final_status == "error":
        pass_over(page, "Dispatch reported the workflow as failed (final report: error).", now)
        return PASSED_OVER
    last_index = len(person["channels"]) - 1
    last = page.messages.filter(channel_index=last_index).order_by("pk").first()
    if last is not None and last.status in FAILED_STATUSES:
        pass_over(page, f"last channel ({ChannelType(last.channel_type).label}) was {last.status}.", now)
        return PASSED_OVER
    if now >= page.deadline:
        recheck = _webhooks_pending_at(page.deadline, now)
        if recheck:
            return Wait(recheck)
        # A status that raced the commit of this page's dispatch_uuid was stored as unknown after the
        # replay right after the commit had looked; look once more before giving up on the person.
        if not replayed and replay_unmatched_dispatch(str(page.dispatch_uuid), now=now):
            escalation.refresh_from_db()
            if escalation.state != EscalationState.ACTIVE:
                return Wait(None)
            page.refresh_from_db()  # in place: decide() carries this instance on, and must see it passed over
            return _dispatch_page_step(escalation, page, now, replayed=True)
        pass_over(page, f"no answer within {person_window_seconds(person)} s.", now)
        return PASSED_OVER
    return Wait(page.deadline)


def _webhooks_pending_at(deadline: datetime, now: datetime) -> datetime | None:
    """When to look again, if a webhook received by `deadline` is not applied yet; else None.

    Webhooks are applied by the workers a moment after they are stored, and a `read` that reached us in
    time must win over the deadline. The wait is bounded: past PENDING_WEBHOOKS_GRACE the deadline is acted
    on anyway, so an event that cannot be applied never stalls an escalation.
    """
    if now - deadline >= PENDING_WEBHOOKS_GRACE or not webhooks_pending_since(deadline):
        return None
    return now + PENDING_WEBHOOKS_RECHECK


def _messages_page_step(escalation: Escalation, page: Page, now: datetime):
    channels = plan_person(escalation, page.index)["channels"]
    last = page.messages.order_by("-channel_index").first()
    if last is None:
        return _new_message(page, channels, 0, now)
    if last.status == MessageStatus.QUEUED:
        if last.claimed_until and last.claimed_until > now:
            return Wait(last.claimed_until)
        if last.send_attempts < settings.ESCALATION_SEND_ATTEMPTS:
            return Wait(_claim(Message, last.pk, now), SendMessage(last.pk))
        give_up = f"gave up after {last.send_attempts} attempt(s): {last.error or 'no answer'}"
        Message.objects.filter(pk=last.pk, status_rank__lt=3).update(
            status=MessageStatus.FAILED, status_rank=3, failed_at=now, error=give_up[:1000]
        )
        last.status = MessageStatus.FAILED
        record_event(escalation, EventKind.SEND_FAILED,
                     f"{page.person_name}'s {ChannelType(last.channel_type).label} {last.to_address}: {give_up}",
                     at=now, page=page, message=last)
    if last.deadline is None:
        # Vonage's status webhook reached us, but the worker that sent it died before recording the 202:
        # the message went out, so it is not sent again; its wait counts from when it was written.
        last.deadline = last.created_at + timedelta(seconds=last.expiry_time)
        Message.objects.filter(pk=last.pk).update(deadline=last.deadline, sent_at=last.created_at,
                                                  claimed_until=None)
    failed = last.status in FAILED_STATUSES
    if not failed and now >= last.deadline:
        recheck = _webhooks_pending_at(last.deadline, now)
        if recheck:
            return Wait(recheck)
    if failed or now >= last.deadline:
        if last.channel_index + 1 < len(channels):
            return _new_message(page, channels, last.channel_index + 1, now)
        label = ChannelType(last.channel_type).label
        reason = (f"last channel ({label}) {last.status}." if failed
                  else f"no answer within {last.expiry_time} s on the last channel ({label}).")
        pass_over(page, reason, now)
        return PASSED_OVER
    return Wait(last.deadline)


def _new_message(page: Page, channels: list[dict], channel_index: int, now: datetime) -> Wait:
    channel = channels[channel_index]
    message = Message.objects.create(
        page=page, channel_index=channel_index, channel_type=channel["type"], to_address=channel["address"],
        condition=channel["condition"], expiry_time=channel["expiry_time"], created_at=now,
        claimed_until=now + send_lease(), send_attempts=1,
    )
    return Wait(message.claimed_until, SendMessage(message.pk))
