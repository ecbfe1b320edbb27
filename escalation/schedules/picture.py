"""The schedule page's picture: one lane per layer, the overrides, and the final result, over N days.

Bars are placed in percent of the width, so the picture fits a phone as well as a desktop; every time is
given as UTC (`data-utc`) too, so the page can show it in the viewer's zone where that differs.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode
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
    # For the final lane: the cover form's query string, prefilled with the shift and whom it covers (a gap's
    # with its times only, to fill it); "" elsewhere.
    cover_query: str = ""
    covers: bool = False  # someone is on call here, so the link covers them (else it fills a gap)


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
    for index, layer_name in enumerate(loaded.layer_names):
        lane_shifts = shifts.layer_shifts(rules, index, start, end)
        lanes.append(PictureLane(layer_name, [bar(s.start, s.end, names(s.people), "shift") for s in lane_shifts]))
    override_bars = [bar(max(o.start, start), min(o.end, end), f"{names((o.person_id,))} ({o.mode_label})", "override")
                     for o in loaded.overrides if o.end > start and o.start < end]
    lanes.append(PictureLane("Overrides", override_bars))
    final_bars = []
    for shift in shifts.shifts_between(rules, start, end):
        times = {"start": shift.start.isoformat(), "end": shift.end.isoformat()}
        if shift.is_gap:
            final = bar(shift.start, shift.end, "nobody on call", "gap")
            final.cover_query = urlencode(times)
        else:
            final = bar(shift.start, shift.end, names(shift.people), "override" if shift.overrides else "shift")
            final.cover_query, final.covers = urlencode({**times, "covered": final.label}), True
        final_bars.append(final)
    day_marks = []
    for day in range(days):
        midnight = shifts.local_to_instant(local_midnight + timedelta(days=day), tz)
        left = round((midnight - start).total_seconds() / span * 100, 3)
        day_marks.append((left, f"{midnight.astimezone(tz):%a %d}"))
    now_left = round((now - start).total_seconds() / span * 100, 3) if start <= now < end else None
    return Picture(start, end, loaded.schedule.time_zone, day_marks, lanes, PictureLane("On call", final_bars),
                   [b for b in final_bars if b.kind == "gap"], now_left)
