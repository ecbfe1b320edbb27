"""Reading the frozen plan of an escalation."""

from datetime import datetime, timedelta

from escalation.models import TEXT_LIMITS, ChannelType, Escalation
from escalation.vonage.bodies import dispatch_text


def plan_people(escalation: Escalation) -> list[dict]:
    return escalation.plan["people"]


def plan_person(escalation: Escalation, index: int) -> dict:
    return escalation.plan["people"][index]


def person_window_seconds(person: dict) -> int:
    """How long a person has before the next one is paged: the sum of their channels' expiry times."""
    return sum(int(channel["expiry_time"]) for channel in person["channels"])


def person_deadline(person: dict, start: datetime) -> datetime:
    return start + timedelta(seconds=person_window_seconds(person))


def personal_text(name: str, text: str, *, reply_number: int | None = None) -> str:
    """The text as each person receives it, on either API (the Dispatch body's own wording); with
    `reply_number` when the person is paged by several escalations at once (engine/replies.py)."""
    return dispatch_text(person_name=name, text=text, reply_number=reply_number)


# Text limits are checked at fire time, before the escalation has its id, and the "reply N" line is added
# only at send time: room is kept for it with an id this long, so adding it never makes a page too long.
LONGEST_REPLY_NUMBER = 10**10 - 1


def page_text_length(name: str, text: str) -> int:
    """The longest the text can be as sent to this person: with the "reply N" line."""
    return len(personal_text(name, text, reply_number=LONGEST_REPLY_NUMBER))


def reply_number_fits(name: str, text: str, number: int, channel_types: list[str]) -> bool:
    """Does the text with the "reply N" line fit all these channels? (Always, for an escalation fired with
    room kept for it; not for one fired before that room was kept, which is then sent without it.)"""
    length = len(personal_text(name, text, reply_number=number))
    return all(length <= text_limit(channel_type) for channel_type in channel_types)


def text_limit(channel_type: str) -> int:
    return TEXT_LIMITS[ChannelType(channel_type)]
