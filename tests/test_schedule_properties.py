"""Property tests of the schedule rules over every zone that changes its offset between 2026 and 2030.

Windows are drawn around one of the zone's own changes, so the generated rotations, restrictions and
overrides meet skipped and repeated local times rather than quiet weeks.
"""

from datetime import UTC, datetime, time, timedelta
from functools import cache, lru_cache
from itertools import pairwise
from zoneinfo import ZoneInfo, available_timezones

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escalation.schedules.shifts import (
    Override,
    OverrideMode,
    Restriction,
    Rotation,
    Rules,
    Unit,
    layer_shifts,
    on_call_at,
    shifts_between,
    to_local,
)

FIRST, LAST = datetime(2026, 1, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC)
WEEK = timedelta(days=7)
# Tuned so the file runs in about 15 s here; every zone is also walked through below without Hypothesis.
PROPERTY = settings(deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow])
LOOKUPS = settings(PROPERTY, max_examples=50)


def _changes(tz: ZoneInfo) -> list[datetime]:
    """The instants the zone's offset changes in 2026-2030, to the second (weekly samples, then bisection)."""
    changes = []
    at = FIRST
    while at < LAST:
        if at.astimezone(tz).utcoffset() != (at + WEEK).astimezone(tz).utcoffset():
            low, high = at, at + WEEK
            while high - low > timedelta(seconds=1):
                middle = (low + (high - low) / 2).replace(microsecond=0)
                if middle.astimezone(tz).utcoffset() == low.astimezone(tz).utcoffset():
                    low = middle
                else:
                    high = middle
            changes.append(high)
        at += WEEK
    return changes


@lru_cache(maxsize=1)
def zones_with_changes() -> tuple[str, ...]:
    return tuple(sorted(name for name in available_timezones() if _changes(ZoneInfo(name))))


@cache
def changes_of(zone: str) -> tuple[datetime, ...]:
    return tuple(_changes(ZoneInfo(zone)))


def test_it_finds_the_zones_with_a_change_between_2026_and_2030():
    zones = zones_with_changes()
    assert {"Europe/London", "America/New_York", "Australia/Lord_Howe"} <= set(zones)
    assert "Asia/Kolkata" not in zones and len(zones) > 100


def test_it_hands_off_daily_through_every_change_of_every_zone():
    """No sampling: each zone's every change in 2026-2030, with hand-offs before, inside and after it."""
    for zone in zones_with_changes():
        tz = ZoneInfo(zone)
        for change in changes_of(zone):
            around = to_local(change, tz)
            for local_time in (time(0), around.time(), (around - timedelta(minutes=30)).time()):
                first = datetime.combine(around.date() - timedelta(days=3), local_time)
                rules = Rules(zone, (Rotation(("Tony", "Michael"), 1, Unit.DAYS, first),))
                start, end = change - timedelta(days=2), change + timedelta(days=2)
                shifts = layer_shifts(rules, 0, start, end)
                assert shifts[0].start == start and shifts[-1].end == end, (zone, change)
                for before, after in pairwise(shifts):
                    assert before.end == after.start and before.people != after.people, (zone, change)
                    local = first + after.shift_number * rules.layers[0].length
                    assert (_is_first_occurrence(after.start, local, tz)
                            or _is_first_instant_after_gap(after.start, local, tz)), (zone, change, local)


PEOPLE = ("Tony", "Michael", "Anna", "Zoe", "Raj")
# Local times that land in or next to common gaps and repeats (01:00-03:00), plus any minute of the day.
LOCAL_TIMES = st.one_of(st.sampled_from([time(0), time(1), time(1, 30), time(2), time(2, 15), time(2, 30), time(3)]),
                        st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45])))


@st.composite
def rotations(draw, around: datetime) -> Rotation:
    unit = draw(st.sampled_from(list(Unit)))
    length = draw(st.integers(1, {Unit.HOURS: 12, Unit.DAYS: 3, Unit.WEEKS: 2}[unit]))
    days_before = draw(st.integers(0, 40))
    first = datetime.combine(around.date() - timedelta(days=days_before), draw(LOCAL_TIMES))
    restriction = None
    if draw(st.booleans()):
        weekdays = draw(st.frozensets(st.integers(0, 6), min_size=1))
        restriction = Restriction(weekdays, draw(LOCAL_TIMES), draw(LOCAL_TIMES))
    participants = tuple(draw(st.lists(st.sampled_from(PEOPLE), min_size=1, max_size=4, unique=True)))
    return Rotation(participants, length, unit, first, restriction)


@st.composite
def cases(draw, with_overrides: bool = True):
    zone = draw(st.sampled_from(zones_with_changes()))
    change = draw(st.sampled_from(changes_of(zone)))
    start = change - timedelta(minutes=draw(st.integers(0, 3 * 24 * 60)))
    end = start + timedelta(minutes=draw(st.integers(60, 8 * 24 * 60)))
    layers = tuple(draw(st.lists(rotations(change), min_size=1, max_size=3)))
    overrides = []
    if with_overrides:
        for key in range(draw(st.integers(0, 4))):
            span_minutes = int((end - start).total_seconds() // 60)
            override_start = start + timedelta(minutes=draw(st.integers(-600, span_minutes)))
            override_end = override_start + timedelta(minutes=draw(st.integers(1, 3 * 24 * 60)))
            overrides.append(Override(override_start, override_end, draw(st.sampled_from(PEOPLE)),
                                      draw(st.sampled_from(list(OverrideMode))), key))
    return Rules(zone, layers, tuple(overrides)), start, end


def instants(start: datetime, end: datetime):
    span = int((end - start).total_seconds())
    return st.integers(0, span - 1).map(lambda seconds: start + timedelta(seconds=seconds))


@PROPERTY
@given(cases())
def test_it_tiles_time_with_no_gap_and_no_overlap(case):
    rules, start, end = case
    shifts = shifts_between(rules, start, end)
    assert shifts[0].start == start and shifts[-1].end == end
    for before, after in pairwise(shifts):
        assert before.start < before.end == after.start
        # Two neighbours are never the same stretch cut in two.
        assert (before.people, before.layer, before.shift_number, before.overrides) != (
            after.people, after.layer, after.shift_number, after.overrides)


def _is_first_instant_after_gap(instant: datetime, local: datetime, tz: ZoneInfo) -> bool:
    return to_local(instant - timedelta(seconds=1), tz) < local < to_local(instant, tz)


def _is_first_occurrence(instant: datetime, local: datetime, tz: ZoneInfo) -> bool:
    if to_local(instant, tz) != local:
        return False
    offset_before = (instant - timedelta(hours=6)).astimezone(tz).utcoffset()
    drop = offset_before - (instant + timedelta(hours=6)).astimezone(tz).utcoffset()
    return drop <= timedelta(0) or to_local(instant - drop, tz) != local


@PROPERTY
@given(cases(with_overrides=False))
def test_it_hands_off_at_the_local_time_or_its_documented_substitute(case):
    rules, start, end = case
    tz = rules.tz
    for index, rotation in enumerate(rules.layers):
        unrestricted = Rules(rules.zone, (rotation.__class__(**{**rotation.__dict__, "restriction": None}),))
        for shift in layer_shifts(unrestricted, 0, start, end):
            if shift.start == start:
                continue
            local = rotation.first_handoff + shift.shift_number * rotation.length
            assert (_is_first_occurrence(shift.start, local, tz)
                    or _is_first_instant_after_gap(shift.start, local, tz)), (index, shift, local)


@LOOKUPS
@given(st.data())
def test_it_says_on_call_at_t_is_the_shift_containing_t(data):
    rules, start, end = data.draw(cases())
    shifts = shifts_between(rules, start, end)
    for at in data.draw(st.lists(instants(start, end), min_size=1, max_size=5)):
        containing = next(s for s in shifts if s.start <= at < s.end)
        now = on_call_at(rules, at)
        assert (now.people, now.layer, now.overrides) == (containing.people, containing.layer, containing.overrides)
        if containing.start > start:
            assert now.since == containing.start
        if containing.end < end:
            assert now.until == containing.end
        ahead = on_call_at(rules, at, find_since=False)  # as the fire plan asks: the same answer
        assert (ahead.people, ahead.until) == (now.people, now.until)


@LOOKUPS
@given(st.data())
def test_it_lets_an_override_win_inside_its_period_and_resumes_the_rotation_after(data):
    rules, start, end = data.draw(cases())
    override_start = data.draw(instants(start, end))
    override_end = override_start + timedelta(minutes=data.draw(st.integers(1, 3 * 24 * 60)))
    override = Override(override_start, override_end, "Cover", data.draw(st.sampled_from(list(OverrideMode))), "new")
    covered = Rules(rules.zone, rules.layers, (*rules.overrides, override))
    for at in data.draw(st.lists(instants(override_start, override_end), min_size=1, max_size=3)):
        people = on_call_at(covered, at).people
        if override.mode == OverrideMode.REPLACE:
            assert people == ("Cover",)
        else:
            assert "Cover" in people and set(on_call_at(rules, at).people) <= set(people)
    for at in data.draw(st.lists(instants(override_end, override_end + 3 * WEEK), min_size=1, max_size=3)):
        assert on_call_at(covered, at).people == on_call_at(rules, at).people
