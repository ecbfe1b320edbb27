"""Named cases for the schedule rules (escalation/schedules/shifts.py): the DST changes people trip over."""

from datetime import UTC, datetime, time, timedelta

import pytest

from escalation.schedules.shifts import (
    Override,
    OverrideMode,
    Restriction,
    Rotation,
    Rules,
    Unit,
    layer_shifts,
    local_to_instant,
    on_call_at,
    reanchored,
    shifts_between,
    zone_info,
)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def daily(zone: str, first: datetime, people=("Tony", "Michael")) -> Rules:
    return Rules(zone, (Rotation(tuple(people), 1, Unit.DAYS, first),))


def handoffs(rules: Rules, start: datetime, end: datetime) -> list[datetime]:
    return [shift.start for shift in shifts_between(rules, start, end)[1:]]


# (name, zone, first hand-off local, window start, window end, expected hand-off instants in UTC)
DAILY_CASES = [
    ("london-spring-2026", "Europe/London", datetime(2026, 3, 27, 9), utc(2026, 3, 28, 0), utc(2026, 3, 31, 0),
     [utc(2026, 3, 28, 9), utc(2026, 3, 29, 8), utc(2026, 3, 30, 8)]),
    ("london-autumn-2026", "Europe/London", datetime(2026, 10, 23, 9), utc(2026, 10, 24, 0), utc(2026, 10, 27, 0),
     [utc(2026, 10, 24, 8), utc(2026, 10, 25, 9), utc(2026, 10, 26, 9)]),
    ("new-york-spring-2026", "America/New_York", datetime(2026, 3, 1, 9), utc(2026, 3, 7, 0), utc(2026, 3, 10, 0),
     [utc(2026, 3, 7, 14), utc(2026, 3, 8, 13), utc(2026, 3, 9, 13)]),
    ("new-york-autumn-2026", "America/New_York", datetime(2026, 10, 1, 9), utc(2026, 10, 31, 0), utc(2026, 11, 3, 0),
     [utc(2026, 10, 31, 13), utc(2026, 11, 1, 14), utc(2026, 11, 2, 14)]),
    # Lord Howe moves by 30 minutes: +10:30 standard, +11 in summer (from the first Sunday of October).
    ("lord-howe-spring-2026", "Australia/Lord_Howe", datetime(2026, 10, 1, 9), utc(2026, 10, 2, 12),
     utc(2026, 10, 5, 12), [utc(2026, 10, 2, 22, 30), utc(2026, 10, 3, 22), utc(2026, 10, 4, 22)]),
    ("kolkata-no-dst", "Asia/Kolkata", datetime(2026, 3, 1, 9), utc(2026, 3, 28, 0), utc(2026, 3, 31, 0),
     [utc(2026, 3, 28, 3, 30), utc(2026, 3, 29, 3, 30), utc(2026, 3, 30, 3, 30)]),
]


@pytest.mark.parametrize("name,zone,first,start,end,expected", DAILY_CASES, ids=[c[0] for c in DAILY_CASES])
def test_it_hands_off_daily_at_the_same_local_time_across_changes(name, zone, first, start, end, expected):
    rules = daily(zone, first)
    assert handoffs(rules, start, end) == expected
    tz = zone_info(zone)
    assert {h.astimezone(tz).time() for h in expected} == {time(9)}


def test_it_moves_a_hand_off_in_the_spring_gap_to_the_first_instant_after_it():
    london = zone_info("Europe/London")
    # 01:30 on 2026-03-29 does not exist in London: clocks go from 01:00 GMT to 02:00 BST (01:00 UTC).
    assert local_to_instant(datetime(2026, 3, 29, 1, 30), london) == utc(2026, 3, 29, 1)
    rules = daily("Europe/London", datetime(2026, 3, 27, 1, 30))
    assert handoffs(rules, utc(2026, 3, 28, 12), utc(2026, 3, 30, 12)) == [utc(2026, 3, 29, 1), utc(2026, 3, 30, 0, 30)]


def test_it_moves_a_lord_howe_hand_off_in_its_30_minute_gap():
    # 2026-10-04 02:00 (+10:30) becomes 02:30 (+11): 02:15 does not exist, 02:30 is 15:30 UTC the day before.
    assert local_to_instant(datetime(2026, 10, 4, 2, 15), zone_info("Australia/Lord_Howe")) == utc(2026, 10, 3, 15, 30)


def test_it_uses_the_first_occurrence_of_a_repeated_local_time():
    london = zone_info("Europe/London")
    # 01:30 on 2026-10-25 happens twice in London: 00:30 UTC (BST) and 01:30 UTC (GMT).
    assert local_to_instant(datetime(2026, 10, 25, 1, 30), london) == utc(2026, 10, 25, 0, 30)
    rules = daily("Europe/London", datetime(2026, 10, 23, 1, 30))
    shifts = shifts_between(rules, utc(2026, 10, 24, 12), utc(2026, 10, 26, 12))
    assert [s.start for s in shifts[1:]] == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]
    # The repeated hour belongs to the shift that began at its first occurrence: 25 hours, no overlap.
    assert shifts[1].end - shifts[1].start == timedelta(hours=25)


def test_it_drops_an_hourly_shift_that_falls_entirely_in_the_gap():
    rules = Rules("Europe/London", (Rotation(("A", "B", "C"), 1, Unit.HOURS, datetime(2026, 3, 29, 0)),))
    shifts = shifts_between(rules, utc(2026, 3, 29, 0), utc(2026, 3, 29, 3))
    # Local 01:00-02:00 never happens; B's turn passes and C takes 02:00 BST.
    assert [(s.start, s.people) for s in shifts] == [
        (utc(2026, 3, 29, 0), ("A",)), (utc(2026, 3, 29, 1), ("C",)), (utc(2026, 3, 29, 2), ("A",))]


def test_it_hands_off_a_weekly_rotation_at_monday_0900_across_both_2026_changes():
    rules = Rules("Europe/London", (Rotation(("Tony", "Michael", "Anna"), 1, Unit.WEEKS, datetime(2026, 3, 2, 9)),))
    shifts = shifts_between(rules, utc(2026, 3, 16, 12), utc(2026, 11, 9, 12))
    london = zone_info("Europe/London")
    for shift in shifts[1:]:
        local = shift.start.astimezone(london)
        assert (local.weekday(), local.time()) == (0, time(9))
    by_start = {s.start: s for s in shifts}
    spring = by_start[utc(2026, 3, 23, 9)]
    assert spring.end == utc(2026, 3, 30, 8) and spring.end - spring.start == timedelta(days=7, hours=-1)
    autumn = by_start[utc(2026, 10, 19, 8)]
    assert autumn.end == utc(2026, 10, 26, 9) and autumn.end - autumn.start == timedelta(days=7, hours=1)
    names = [s.people[0] for s in shifts]
    assert names[:4] == ["Anna", "Tony", "Michael", "Anna"]


def test_it_lets_a_lower_layer_show_through_outside_business_hours():
    business = Rotation(("Anna",), 1, Unit.WEEKS, datetime(2026, 3, 2, 9),
                        Restriction(frozenset(range(5)), time(9), time(17)))
    everyone = Rotation(("Tony",), 1, Unit.WEEKS, datetime(2026, 3, 2, 9))
    rules = Rules("Europe/London", (business, everyone))
    # Friday 2026-03-27 then the weekend and Monday after the change to BST.
    assert on_call_at(rules, utc(2026, 3, 27, 12)).people == ("Anna",)
    assert on_call_at(rules, utc(2026, 3, 27, 18)).people == ("Tony",)
    assert on_call_at(rules, utc(2026, 3, 28, 12)).people == ("Tony",)
    monday = on_call_at(rules, utc(2026, 3, 30, 8, 30))
    assert monday.people == ("Anna",) and monday.since == utc(2026, 3, 30, 8) and monday.until == utc(2026, 3, 30, 16)


def test_it_runs_an_overnight_window_past_midnight():
    nights = Rotation(("Night",), 1, Unit.DAYS, datetime(2026, 1, 1, 0),
                      Restriction(frozenset({4}), time(22), time(6)))
    lanes = layer_shifts(Rules("Asia/Kolkata", (nights,)), 0, utc(2026, 1, 9, 0), utc(2026, 1, 11, 0))
    # Friday 22:00 to Saturday 06:00 IST, cut at the rotation's midnight hand-off.
    assert [(s.start, s.end) for s in lanes] == [(utc(2026, 1, 9, 16, 30), utc(2026, 1, 9, 18, 30)),
                                                 (utc(2026, 1, 9, 18, 30), utc(2026, 1, 10, 0, 30))]


def test_it_lets_the_newest_overlapping_override_win():
    rules = daily("Europe/London", datetime(2026, 3, 1, 9), people=("Tony",))
    older = Override(utc(2026, 3, 10, 10), utc(2026, 3, 10, 14), "Michael", OverrideMode.REPLACE, key=1)
    newer = Override(utc(2026, 3, 10, 12), utc(2026, 3, 10, 13), "Anna", OverrideMode.REPLACE, key=2)
    added = Override(utc(2026, 3, 10, 11), utc(2026, 3, 10, 15), "Zoe", OverrideMode.ADD, key=3)
    rules = Rules(rules.zone, rules.layers, (older, newer, added))
    at = {hour: on_call_at(rules, utc(2026, 3, 10, hour, 30)).people for hour in range(9, 16)}
    assert at == {9: ("Tony",), 10: ("Michael",), 11: ("Michael", "Zoe"), 12: ("Anna", "Zoe"),
                  13: ("Michael", "Zoe"), 14: ("Tony", "Zoe"), 15: ("Tony",)}
    cover = on_call_at(rules, utc(2026, 3, 10, 12, 30))
    assert (cover.since, cover.until, cover.overrides) == (utc(2026, 3, 10, 12), utc(2026, 3, 10, 13), (1, 2, 3))


def test_it_reports_a_gap_where_no_layer_covers():
    business = Rotation(("Anna",), 1, Unit.WEEKS, datetime(2026, 3, 2, 9),
                        Restriction(frozenset(range(5)), time(9), time(17)))
    rules = Rules("Europe/London", (business,))
    shifts = shifts_between(rules, utc(2026, 3, 6, 0), utc(2026, 3, 9, 0))
    assert [(s.start, s.end, s.is_gap) for s in shifts] == [
        (utc(2026, 3, 6, 0), utc(2026, 3, 6, 9), True), (utc(2026, 3, 6, 9), utc(2026, 3, 6, 17), False),
        (utc(2026, 3, 6, 17), utc(2026, 3, 9, 0), True)]
    empty = on_call_at(Rules("Europe/London"), utc(2026, 3, 6))
    assert (empty.people, empty.since, empty.until) == ((), None, None)


def test_it_keeps_whoever_is_on_call_now_when_participants_change():
    london = zone_info("Europe/London")
    rotation = Rotation(("Tony", "Michael", "Anna"), 1, Unit.WEEKS, datetime(2026, 3, 2, 9))
    now = utc(2026, 3, 18, 12)  # third week: Anna
    assert on_call_at(Rules("Europe/London", (rotation,)), now).people == ("Anna",)
    added = reanchored(rotation, ("Zoe", "Tony", "Michael", "Anna"), london, now)
    rules = Rules("Europe/London", (added,))
    weeks = [on_call_at(rules, now + timedelta(weeks=w)).people[0] for w in range(5)]
    assert weeks == ["Anna", "Zoe", "Tony", "Michael", "Anna"]
    removed = reanchored(rotation, ("Tony", "Michael"), london, now)
    weeks = [on_call_at(Rules("Europe/London", (removed,)), now + timedelta(weeks=w)).people[0] for w in range(3)]
    assert weeks == ["Tony", "Michael", "Tony"]  # Anna removed: the next in the old order takes her week
