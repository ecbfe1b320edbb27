"""Who is on call: the one pure function behind the schedule picture, the fire plan, the feeds and the CLI.

Django-free on purpose (stdlib `zoneinfo` only), so every view of a schedule is computed by the same rules
and the rules can be tested over every time zone without a database.

The rules
---------
- A schedule has a time zone and layers in priority order (index 0 first). At any instant the first layer
  with someone on call wins; where it has nobody, the next layer shows through.
- A layer is a rotation: ordered participants, a shift length of N hours, days or weeks, and the first
  hand-off as a local date and time in the schedule's zone. Hand-off k is at local wall time
  `first_handoff + k * length` (wall-clock arithmetic: a daily 09:00 hand-off is at 09:00 local on both
  sides of a DST change, so the shift across the change is 23 or 25 hours long).
- A local time that does not exist (spring forward) moves to the first instant after the gap; a repeated
  local time (fall back) uses its first occurrence. Local time to instant is therefore monotonic, so
  shifts tile time with no gap and no overlap, in every zone, with no exception: the repeated hour belongs
  to the shift that began at its first occurrence. A shift whose two ends fall in the same gap (an hourly
  rotation's hand-off inside a spring-forward gap) lasts no time and is dropped; its participant's turn
  passes, as their hour never happened.
- Restrictions (optional) keep a layer on call only inside a local time-of-day window on some weekdays
  (Mon-Fri 09:00-17:00). A window whose end is not after its start runs past midnight into the next day
  (22:00-06:00); equal ends mean 24 hours. The window is computed with the same local-to-instant rule.
- Participant changes never reshuffle who is on call now: the rotation is anchored. Shift k is taken by
  participant `(anchor_index + k - anchor_shift) mod n`. `reanchored()` keeps the anchor on whoever holds the
  current shift when the list changes; if that person was removed, the next remaining person in the old
  order takes the current shift (removal skips).
- Overrides cover a period with one person, `replace` (they alone are on call) or `add` (they join whoever
  is). Overrides apply oldest first, so the newest overlapping one wins: a newer replace drops an older add.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from functools import cache, cached_property, lru_cache
from itertools import pairwise
from typing import NamedTuple
from zoneinfo import ZoneInfo

PersonKey = Hashable


class Unit(StrEnum):
    HOURS = "hours"
    DAYS = "days"
    WEEKS = "weeks"


class OverrideMode(StrEnum):
    REPLACE = "replace"
    ADD = "add"


UNIT_DELTA = {Unit.HOURS: timedelta(hours=1), Unit.DAYS: timedelta(days=1), Unit.WEEKS: timedelta(weeks=1)}
ONE_DAY = timedelta(days=1)
# How far on_call_at looks for the ends of the shift around an instant before saying "no change".
HORIZON = timedelta(days=400)


@dataclass(frozen=True)
class Restriction:
    """On call only from `start` to `end` local time on `weekdays` (0 = Monday), where each window begins."""

    weekdays: frozenset[int]
    start: time
    end: time

    @cached_property
    def length(self) -> timedelta:
        """The window's local length: past midnight where the end is not after the start."""
        length = datetime.combine(datetime.min, self.end) - datetime.combine(datetime.min, self.start)
        return length if length > timedelta(0) else length + ONE_DAY


@dataclass(frozen=True)
class Rotation:
    participants: tuple[PersonKey, ...]
    shift_length: int
    unit: Unit
    first_handoff: datetime  # naive: a local wall time in the schedule's zone
    restriction: Restriction | None = None
    anchor_shift: int = 0
    anchor_index: int = 0

    @cached_property
    def length(self) -> timedelta:
        return self.shift_length * UNIT_DELTA[Unit(self.unit)]

    def participant(self, shift_number: int) -> PersonKey | None:
        if not self.participants:
            return None
        return self.participants[(self.anchor_index + shift_number - self.anchor_shift) % len(self.participants)]


@dataclass(frozen=True)
class Override:
    start: datetime  # aware
    end: datetime
    person: PersonKey
    mode: OverrideMode = OverrideMode.REPLACE
    key: Hashable = 0  # identifies it; overrides apply in the order given, so list them oldest first


@dataclass(frozen=True)
class Rules:
    zone: str
    layers: tuple[Rotation, ...] = ()
    overrides: tuple[Override, ...] = ()  # oldest first

    @property
    def tz(self) -> ZoneInfo:
        return zone_info(self.zone)


class Shift(NamedTuple):
    """A stretch of time with the same people on call for the same reason.

    `layer` is the winning layer's index (None where nobody's rotation applies), `shift_number` its
    rotation shift, `overrides` the keys of the overrides that changed the result. `people` empty is a gap.
    A named tuple, not a dataclass: a year of a busy schedule makes thousands, and this is the cheap kind.
    """

    start: datetime
    end: datetime
    people: tuple[PersonKey, ...]
    layer: int | None = None
    shift_number: int | None = None
    overrides: tuple[Hashable, ...] = ()

    @property
    def is_gap(self) -> bool:
        return not self.people


@dataclass(frozen=True)
class OnCall:
    """Who is on call at an instant, and the shift's real ends (None: no change within `HORIZON`)."""

    people: tuple[PersonKey, ...]
    since: datetime | None
    until: datetime | None
    layer: int | None
    overrides: tuple[Hashable, ...]


@cache
def zone_info(name: str) -> ZoneInfo:
    return ZoneInfo(name)


# Memoized: the same hand-off and window instants are asked again and again (every fire and every page of
# a schedule around now), and each answer costs several zoneinfo lookups. Pure, keyed by its arguments (a
# naive time equals itself with either fold, which it ignores anyway); 16,384 entries are a few MB.
@lru_cache(maxsize=16384)
def local_to_instant(local: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant of a naive local wall time: a repeated time's first occurrence, a skipped time's
    first instant after the gap."""
    # PEP 495: fold=0 takes the offset from before a change, fold=1 the one after. Equal, the time is plain;
    # the earlier one larger, it is repeated (fall back) and fold=0 is its first occurrence.
    if local.fold:
        local = local.replace(fold=0)
    offset = tz.utcoffset(local)
    if offset >= tz.utcoffset(local.replace(fold=1)):
        return (local - offset).replace(tzinfo=UTC)
    # In a gap, fold=0 applies the offset from before the change (an instant after the gap) and fold=1
    # the one after it (an instant before the gap): the change lies between them. Find it to the second.
    low = local.replace(tzinfo=tz, fold=1).astimezone(UTC)
    high = local.replace(tzinfo=tz, fold=0).astimezone(UTC)
    after = high.astimezone(tz).utcoffset()
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        middle = middle.replace(microsecond=0)
        if middle <= low:
            break
        if middle.astimezone(tz).utcoffset() == after:
            high = middle
        else:
            low = middle
    return high


def to_local(instant: datetime, tz: ZoneInfo) -> datetime:
    return instant.astimezone(tz).replace(tzinfo=None)


def shift_number_at(rotation: Rotation, tz: ZoneInfo, at: datetime) -> int:
    """The rotation shift containing `at` (shifts of no length never contain anything)."""
    return _shift_around(rotation, tz, at)[0]


def _shift_around(rotation: Rotation, tz: ZoneInfo, at: datetime) -> tuple[int, datetime, datetime]:
    """The rotation shift containing `at`, with the instants it starts and ends."""
    length, first = rotation.length, rotation.first_handoff
    number = (to_local(at, tz) - first) // length
    start = local_to_instant(first + number * length, tz)
    while start > at:
        number -= 1
        start = local_to_instant(first + number * length, tz)
    end = local_to_instant(first + (number + 1) * length, tz)
    while end <= at:
        number, start = number + 1, end
        end = local_to_instant(first + (number + 1) * length, tz)
    return number, start, end


def _restriction_windows(restriction: Restriction, tz: ZoneInfo, start: datetime,
                         end: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The restriction's windows overlapping [start, end), as (start, end) instants, in order."""
    day = start.astimezone(tz).date() - ONE_DAY  # a window that began the day before may still be open
    last_day = end.astimezone(tz).date()
    while day <= last_day:
        if day.weekday() in restriction.weekdays:
            local_start = datetime.combine(day, restriction.start)
            window_start = local_to_instant(local_start, tz)
            if window_start >= end:
                return  # windows start in order (local to instant is monotonic): none later overlaps
            window_end = local_to_instant(local_start + restriction.length, tz)
            if window_end > start and window_start < window_end:
                yield max(window_start, start), min(window_end, end)
        day += ONE_DAY


def layer_shifts(rules: Rules, layer_index: int, start: datetime, end: datetime) -> list[Shift]:
    """One layer's own shifts overlapping [start, end), clipped to it: the layer's lane in the picture.
    Times when the layer has nobody on call are left out."""
    rotation = rules.layers[layer_index]
    tz = rules.tz
    if not rotation.participants or start >= end:
        return []
    shifts = []
    length, first = rotation.length, rotation.first_handoff
    number, shift_start, shift_end = _shift_around(rotation, tz, start)
    while True:
        if shift_end > shift_start:
            shifts.append(Shift(max(shift_start, start), min(shift_end, end), (rotation.participant(number),),
                                layer_index, number))
        if shift_end >= end:
            break
        number += 1
        shift_start, shift_end = shift_end, local_to_instant(first + (number + 1) * length, tz)
    if rotation.restriction is None:
        return shifts
    windows = list(_restriction_windows(rotation.restriction, tz, start, end))
    return _intersect(shifts, windows)


def _intersect(shifts: list[Shift], windows: list[tuple[datetime, datetime]]) -> list[Shift]:
    """The parts of `shifts` inside `windows` (both sorted, neither overlapping itself), in one pass."""
    pieces = []
    shift_index = window_index = 0
    while shift_index < len(shifts) and window_index < len(windows):
        shift = shifts[shift_index]
        window_start, window_end = windows[window_index]
        piece_start, piece_end = max(shift.start, window_start), min(shift.end, window_end)
        if piece_start < piece_end:
            pieces.append(Shift(piece_start, piece_end, shift.people, shift.layer, shift.shift_number))
        if shift.end <= window_end:
            shift_index += 1
        else:
            window_index += 1
    return pieces


def _apply_overrides(people: tuple, active: Iterable[Override]) -> tuple[tuple, tuple]:
    keys = []
    for override in active:
        keys.append(override.key)
        if override.mode == OverrideMode.REPLACE:
            people = (override.person,)
        elif override.person not in people:
            people = (*people, override.person)
    return people, tuple(keys)


def shifts_between(rules: Rules, start: datetime, end: datetime) -> list[Shift]:
    """The final result over [start, end): shifts that tile it exactly, gaps included (empty `people`).

    Adjacent stretches with the same people for the same reason (same layer shift, same overrides) are one
    shift; a change of layer, rotation shift or override starts a new one, even with the same person.
    """
    if start >= end:
        return []
    lanes = []
    for index, rotation in enumerate(rules.layers):
        lanes.append(layer_shifts(rules, index, start, end))
        if rotation.restriction is None and rotation.participants:
            break  # a layer on call around the clock hides every layer under it
    overrides = [(position, o) for position, o in enumerate(rules.overrides) if o.start < end and o.end > start
                 and o.start < o.end]
    points = {start, end}
    for lane in lanes:
        for shift in lane:
            points.add(shift.start)
            points.add(shift.end)
    for _, override in overrides:
        points.add(max(override.start, start))
        points.add(min(override.end, end))
    ordered = sorted(points)
    cursors = [0] * len(lanes)
    overrides.sort(key=lambda item: item[1].start)
    next_override = 0
    active: list[tuple[int, Override]] = []
    result: list[Shift] = []
    last: Shift | None = None
    for segment_start, segment_end in pairwise(ordered):
        winner: Shift | None = None
        for index, lane in enumerate(lanes):
            cursor = cursors[index]
            while cursor < len(lane) and lane[cursor].end <= segment_start:
                cursor += 1
            cursors[index] = cursor
            if winner is None and cursor < len(lane) and lane[cursor].start <= segment_start:
                winner = lane[cursor]
        changed = False
        while next_override < len(overrides) and overrides[next_override][1].start <= segment_start:
            active.append(overrides[next_override])
            next_override += 1
            changed = True
        if active and (changed or any(o.end <= segment_start for _, o in active)):
            active = sorted(item for item in active if item[1].end > segment_start)
        if winner is not None:
            people, layer, number = winner.people, winner.layer, winner.shift_number
        else:
            people, layer, number = (), None, None
        keys: tuple = ()
        if active:
            people, keys = _apply_overrides(people, (o for _, o in active))
            if any(o.mode == OverrideMode.REPLACE for _, o in active):
                # A replace wipes whatever the layers said, so the layer's shift is no reason for this result.
                layer, number = None, None
        if (last is not None and last.people == people and last.layer == layer
                and last.shift_number == number and last.overrides == keys):
            last = result[-1] = Shift(last.start, segment_end, people, layer, number, keys)
        else:
            last = Shift(segment_start, segment_end, people, layer, number, keys)
            result.append(last)
    return result


def on_call_at(rules: Rules, at: datetime, *, find_since: bool = True) -> OnCall:
    """Who is on call at instant `at`: exactly the shift of `shifts_between` that contains it.

    `find_since=False` leaves `since` unknown (None) and computes nothing before `at`: the shift containing
    `at` is then the first of `shifts_between(rules, at, ...)`, as who is on call and why at an instant, and
    where that ends, do not depend on what came before (the fire plan only says until when).
    """
    rules = _down_to_first_on_call(rules, at)
    forward = _initial_reach(rules)
    back = forward if find_since else timedelta(0)
    while True:
        shifts = shifts_between(rules, at - back, at + forward)
        index = bisect_right([s.start for s in shifts], at) - 1
        shift = shifts[index]
        starts_inside, ends_inside = index > 0, index < len(shifts) - 1
        if ((starts_inside or back >= HORIZON or not find_since)
                and (ends_inside or forward >= HORIZON)):
            return OnCall(shift.people, shift.start if starts_inside else None,
                          shift.end if ends_inside else None, shift.layer, shift.overrides)
        # Look further only on the side whose end is not found yet (a long gap or a long override).
        if not starts_inside and find_since:
            back = min(back * 4, HORIZON)
        if not ends_inside:
            forward = min(forward * 4, HORIZON)


def _down_to_first_on_call(rules: Rules, at: datetime) -> Rules:
    """The rules without the layers under the first one with someone on call at `at`.

    They cannot change the shift containing `at`: inside it that layer (or a replace override) wins
    throughout, so a lower layer's hand-off there only splits a stretch that `shifts_between` merges again,
    and where the shift ends a change happens with or without them. A fire resolving a layered schedule
    then computes one or two layers' shifts, not all of them.
    """
    tz = rules.tz
    for index, rotation in enumerate(rules.layers[:-1]):
        # Shifts tile time, so a layer with participants has one of them on call at every instant its
        # restriction (if any) lets it.
        if rotation.participants and (rotation.restriction is None or any(
                _restriction_windows(rotation.restriction, tz, at, at + timedelta(microseconds=1)))):
            return replace(rules, layers=rules.layers[:index + 1])
    return rules


def _initial_reach(rules: Rules) -> timedelta:
    # Small first: the shift around an instant of a many-layered schedule usually ends within hours, and a
    # longer one costs a few more rounds of a cheap computation.
    return timedelta(hours=12)


def person_shifts(shifts: Sequence[Shift], person: PersonKey) -> list[Shift]:
    return [shift for shift in shifts if person in shift.people]


def reanchored(rotation: Rotation, participants: Sequence[PersonKey], tz: ZoneInfo, now: datetime) -> Rotation:
    """The rotation with a new participant list, anchored so that whoever holds the current shift keeps it
    (if removed, the next remaining participant in the old order takes it) and the order continues from
    there."""
    participants = tuple(participants)
    number = shift_number_at(rotation, tz, now)
    if not participants:
        return replace(rotation, participants=(), anchor_shift=number, anchor_index=0)
    index = 0
    if rotation.participants:
        current = (rotation.anchor_index + number - rotation.anchor_shift) % len(rotation.participants)
        old = rotation.participants
        for step in range(len(old)):
            candidate = old[(current + step) % len(old)]
            if candidate in participants:
                index = participants.index(candidate)
                break
    return replace(rotation, participants=participants, anchor_shift=number, anchor_index=index)
