"""What an active escalation will do next, read from its frozen plan: for the timeline, `escalate --follow`, and
the cancel and acknowledge pages.

Pure, like `timeline.py`: it takes rows already fetched. Times are estimates ("at about"): they assume each
channel's wait runs out, which is exactly what happens when nobody answers.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from escalation.engine.events import clock
from escalation.models import Api, Escalation, EscalationState, Message, Page, PageState, short_label


@dataclass(frozen=True)
class Step:
    """One message the plan will send unless someone answers first; `name` None means nobody is left."""
    name: str | None
    channel_type: str
    at: datetime

    def __str__(self) -> str:
        if self.name is None:
            return f"next: nobody left; it ends exhausted at about {clock(self.at)} unless someone answers"
        return f"next: {self.name} on {short_label(self.channel_type)} at about {clock(self.at)}"


def _page_messages(page: Page, messages: Iterable[Message]) -> dict[int, Message]:
    return {m.channel_index: m for m in messages if m.page_id == page.pk}


def _channel_due(page: Page, channels: list[dict], sent: dict[int, Message], index: int) -> datetime:
    """When channel `index` of this page goes out if nobody answers: after the previous channel's wait."""
    previous = sent.get(index - 1)
    if previous is not None:
        if previous.deadline is not None:
            return previous.deadline
        return (previous.sent_at or previous.created_at) + timedelta(seconds=previous.expiry_time)
    # Dispatch reports a channel only once Vonage sent it: count the waits from the person's start.
    return page.started_at + timedelta(seconds=sum(int(c["expiry_time"]) for c in channels[:index]))


def next_step(escalation: Escalation, page: Page | None, messages: Iterable[Message]) -> Step | None:
    """The next message the escalation sends if nobody answers, or None when it is not running."""
    if escalation.state != EscalationState.ACTIVE or page is None or page.state != PageState.ACTIVE:
        return None
    people = escalation.plan["people"]
    channels = people[page.index]["channels"]
    sent = _page_messages(page, messages)
    upcoming = max(sent, default=0 if escalation.api == Api.DISPATCH else -1) + 1
    if upcoming < len(channels):
        return Step(page.person_name, channels[upcoming]["type"], _channel_due(page, channels, sent, upcoming))
    last = sent.get(len(channels) - 1)
    ends = last.deadline if last is not None and last.deadline is not None else page.deadline
    if page.index + 1 < len(people):
        following = people[page.index + 1]
    elif page.round < escalation.plan.get("rounds", 1):
        following = people[0]
    else:
        return Step(None, "", ends)
    return Step(following["name"], following["channels"][0]["type"], ends)


def vonage_may_still_send(escalation: Escalation, pages: Iterable[Page], messages: Iterable[Message]) -> list[Step]:
    """Dispatch only: the channels of the person being paged that Vonage's failover has not sent yet.

    Vonage runs a person's whole workflow itself and has no call to recall it, so ending the escalation cannot
    stop these: each goes out at about its time unless the person meets a channel's condition first.
    """
    if escalation.api != Api.DISPATCH or escalation.state != EscalationState.ACTIVE:
        return []
    messages = list(messages)
    steps = []
    for page in pages:
        if page.state != PageState.ACTIVE or page.dispatch_uuid is None:
            continue
        channels = escalation.plan["people"][page.index]["channels"]
        sent = _page_messages(page, messages)
        start = max(sent, default=0) + 1
        steps += [Step(page.person_name, channels[i]["type"], _channel_due(page, channels, sent, i))
                  for i in range(start, len(channels))]
    return steps


def sent_after_the_end(escalation: Escalation, message: Message) -> bool:
    """A message Vonage's failover sent after the escalation had ended (Dispatch only)."""
    return (escalation.api == Api.DISPATCH and escalation.ended_at is not None
            and (message.sent_at or message.created_at) > escalation.ended_at)


AFTER_THE_END = "sent by Vonage's failover after the escalation ended"
