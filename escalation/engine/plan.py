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


def personal_text(name: str, text: str) -> str:
    """The text as each person receives it, on either API (the Dispatch body's own wording)."""
    return dispatch_text(person_name=name, text=text)


def text_limit(channel_type: str) -> int:
    return TEXT_LIMITS[ChannelType(channel_type)]
