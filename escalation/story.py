"""The escalation told as a vertical story, for narrow screens: one card per person paged, each channel with
its times and status. Pure, like `timeline.py`: it takes the rows the page already fetched."""

from collections.abc import Sequence
from dataclasses import dataclass, field

from escalation.ahead import AFTER_THE_END, clock, sent_after_the_end
from escalation.models import Escalation, Message, Page, PageState, channel_label


@dataclass(frozen=True)
class ChannelLine:
    label: str
    status: str
    times: str
    note: str = ""


@dataclass
class Card:
    name: str
    state: str
    state_label: str
    heading: str
    outcome: str
    channels: list[ChannelLine] = field(default_factory=list)


def _times(message: Message) -> str:
    steps = [(word, moment) for word, moment in (
        ("sent", message.sent_at), ("delivered", message.delivered_at), ("read", message.read_at),
        (message.status, message.failed_at)) if moment is not None]
    return ", ".join(f"{word} {clock(moment)}" for word, moment in steps)


def stories(escalation: Escalation, pages: Sequence[Page], messages: Sequence[Message]) -> list[Card]:
    people = (escalation.plan or {}).get("people", [])
    many_rounds = (escalation.plan or {}).get("rounds", 1) > 1
    cards = []
    for page in pages:
        planned = people[page.index].get("channels", []) if page.index < len(people) else []
        sent = {m.channel_index: m for m in messages if m.page_id == page.pk}
        until = f" until {clock(page.ended_at)}" if page.ended_at else ""
        card = Card(page.person_name, page.state, page.get_state_display(),
                    (f"round {page.round}: " if many_rounds else "") + f"paged {clock(page.started_at)}{until}",
                    page.outcome)
        for index in sorted(set(range(len(planned))) | set(sent)):
            message = sent.get(index)
            if message is None:
                channel = planned[index]
                waiting = "not sent yet" if page.state == PageState.ACTIVE else "not tried"
                card.channels.append(ChannelLine(channel_label(channel["type"], channel["address"]),
                                                 waiting, ""))
                continue
            note = AFTER_THE_END if sent_after_the_end(escalation, message) else message.error
            card.channels.append(ChannelLine(channel_label(message.channel_type, message.to_address),
                                             message.status, _times(message), note))
        cards.append(card)
    return cards
