"""The schedule page's picture: one lane per layer, the overrides, and the final result, over N days.

Bars are placed in percent of the width, so the picture fits a phone as well as a desktop; every time is
given as UTC (`data-utc`) too, so the page can show it in the viewer's zone where that differs.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from escalation.schedules import shifts
from escalation.schedules.load import LoadedSchedule


@dataclass
class Bar:
    left: float
    width: float
    label: str
    start: datetime
    end: datetime
    start_text: str
    end_text: str
    kind: str = "shift"  # shift, override, gap
    cover: dict = field(default_factory=dict)  # for the final lane: who is covered, to prefill an override


@dataclass
class PictureLane:
    name: str
    bars: list[Bar]


@dataclass
class Picture:
    start: datetime
    end: datetime
    zone: str
    days: list[tuple[float, str]]  # (left %, label) of each local midnight
    lanes: list[PictureLane]
    final: PictureLane
    gaps: list[Bar]
    now_left: float | None


def local_text(moment: datetime, tz: ZoneInfo) -> str:
    return f"{moment.astimezone(tz):%a %d %b %H:%M}"


def build_picture(loaded: LoadedSchedule, *, now: datetime, days: int = 14) -> Picture:
    rules = loaded.rules
    tz = rules.tz
    local_midnight = datetime.combine(shifts.to_local(now, tz).date(), datetime.min.time())
    start = shifts.local_to_instant(local_midnight, tz)
    end = shifts.local_to_instant(local_midnight + timedelta(days=days), tz)
    span = (end - start).total_seconds()

    def bar(begin: datetime, finish: datetime, label: str, kind: str) -> Bar:
        left = (begin - start).total_seconds() / span * 100
        width = (finish - begin).total_seconds() / span * 100
        return Bar(round(left, 3), round(width, 3), label, begin, finish, local_text(begin, tz), local_text(finish, tz),
                   kind)

    def names(people: Iterable[int]) -> str:
        return " + ".join(loaded.people_names(people))

    lanes = []
    for index, layer in enumerate(loaded.layers):
        lane_shifts = shifts.layer_shifts(rules, index, start, end)
        lanes.append(PictureLane(str(layer), [bar(s.start, s.end, names(s.people), "shift") for s in lane_shifts]))
    override_bars = [bar(max(o.start, start), min(o.end, end), f"{o.person_name} ({o.mode_label})", "override")
                     for o in loaded.overrides if o.end > start and o.start < end]
    lanes.append(PictureLane("Overrides", override_bars))
    final_bars = []
    for shift in shifts.shifts_between(rules, start, end):
        if shift.is_gap:
            final_bars.append(bar(shift.start, shift.end, "nobody on call", "gap"))
            continue
        final = bar(shift.start, shift.end, names(shift.people), "override" if shift.overrides else "shift")
        final.cover = {"start": shift.start.isoformat(), "end": shift.end.isoformat(), "covered": names(shift.people)}
        final_bars.append(final)
    day_marks = []
    for day in range(days):
        midnight = shifts.local_to_instant(local_midnight + timedelta(days=day), tz)
        left = round((midnight - start).total_seconds() / span * 100, 3)
        day_marks.append((left, f"{midnight.astimezone(tz):%a %d}"))
    now_left = round((now - start).total_seconds() / span * 100, 3) if start <= now < end else None
    return Picture(start, end, loaded.schedule.time_zone, day_marks, lanes, PictureLane("On call", final_bars),
                   [b for b in final_bars if b.kind == "gap"], now_left)
