"""Hand-offs: the instants a person goes on call, read from the shifts of `shifts.shifts_between`.

Pure, like `shifts`: the notices (escalation/engine/handoff.py) and their tests ask the one function who is
on call, overrides included, and only read its answer here.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo

from escalation.schedules.shifts import PersonKey, Shift


class Handoff(NamedTuple):
    """`person` goes on call at `start` and stays on call without a break until `until` (None: still on
    call at the end of the shifts read)."""

    person: PersonKey
    start: datetime
    until: datetime | None


def handoffs(shifts: Sequence[Shift]) -> list[Handoff]:
    """Each stretch in which someone is on call without a break, in order of start, from shifts that tile a
    period (as `shifts_between` returns them). A new shift with the same person in it (another layer takes
    over, an override adds someone) is no hand-off to them; someone already on call when the period begins
    is handed nothing then."""
    found: list[Handoff] = []
    open_since: dict[PersonKey, datetime] = {}
    first = shifts[0].start if shifts else None
    for shift in shifts:
        for person in list(open_since):
            if person not in shift.people:
                found.append(Handoff(person, open_since.pop(person), shift.start))
        for person in shift.people:
            open_since.setdefault(person, shift.start)
    found.extend(Handoff(person, start, None) for person, start in open_since.items())
    return sorted((h for h in found if h.start != first), key=lambda h: (h.start, str(h.person)))


def notice_text(schedule_name: str, zone: str, handoff: Handoff) -> str:
    """'You are on call in Primary from Mon 09:00 until Mon 09:00 (Europe/London).', in the schedule's zone."""
    tz = ZoneInfo(zone)
    until = f"{handoff.until.astimezone(tz):%a %H:%M}" if handoff.until is not None else "further notice"
    return f"You are on call in {schedule_name} from {handoff.start.astimezone(tz):%a %H:%M} until {until} ({zone})."
