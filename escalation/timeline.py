"""The picture of one escalation: a lane per person paged, a bar per channel message, laid out for SVG.

Pure: it takes rows the admin has already fetched and an explicit `now`, and never touches the database,
so the escalation page costs the same few queries however long the history is, and the layout can be
tested without a browser. The template only copies the coordinates computed here into SVG elements.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from escalation.ahead import AFTER_THE_END, sent_after_the_end
from escalation.models import (
    FAILED_STATUSES,
    MARK_KINDS,
    Escalation,
    EscalationState,
    Event,
    EventKind,
    Message,
    Page,
    PageState,
    channel_label,
)

WIDTH = 1000
PLOT_LEFT = 310
PLOT_RIGHT = WIDTH - 24
AXIS_HEIGHT = 46
LANE_HEADER = 24
ROW_HEIGHT = 20
BAR_HEIGHT = 10
LANE_GAP = 6
LEGEND_HEIGHT = 34
# Below this span the picture would zoom into milliseconds; a fired-and-cancelled escalation still reads.
MIN_SPAN_SECONDS = 10
TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
MAX_TICKS = 9

# Events that become marks on the picture; everything else is only in the log in words.
LABEL_CHARS = 30

Scale = Callable[[datetime], float]  # a moment to its x coordinate
Label = Callable[[datetime], str]  # a moment to "+m:ss" after the fire


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    status: str
    title: str


@dataclass(frozen=True)
class Mark:
    x: float
    y: float
    kind: str  # delivered | read | replied | error
    title: str


@dataclass
class Row:
    y: float
    label: str
    status: str = ""
    note: str = ""
    form: str = ""  # how a WhatsApp/Messenger message went out, in a word: template, tagged, free text
    wait: Bar | None = None
    bar: Bar | None = None
    marks: list[Mark] = field(default_factory=list)

    @property
    def short_label(self) -> str:
        return _short(self.label)

    @property
    def text_y(self) -> float:
        return self.y + 4


@dataclass
class Lane:
    y: float
    height: float
    name: str
    subtitle: str
    state: str
    title: str
    span: Bar | None = None
    deadline_x: float | None = None
    deadline_title: str = ""
    marks: list[Mark] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    shaded: bool = False

    @property
    def text_y(self) -> float:
        return self.y + LANE_HEADER / 2 + 4

    @property
    def bottom(self) -> float:
        return self.y + self.height


@dataclass(frozen=True)
class Line:
    x: float
    kind: str  # acknowledged | reached | cancelled | exhausted | now
    label: str
    anchor: str  # where the label hangs: "start" right of the line, "end" left of it


@dataclass
class Timeline:
    width: int
    height: float
    plot_left: int
    plot_right: int
    axis_y: float
    lanes_bottom: float
    legend_y: float
    start: datetime
    end: datetime
    ticks: list[Tick]
    lanes: list[Lane]
    lines: list[Line]

    @property
    def status_x(self) -> int:
        return self.plot_left - 10


def format_offset(seconds: float) -> str:
    """+m:ss (or +h:mm:ss) after the escalation was fired."""
    total = max(0, int(round(seconds)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"+{hours}:{minutes:02d}:{secs:02d}"
    return f"+{minutes}:{secs:02d}"


def format_duration(delta: timedelta | None) -> str:
    if delta is None:
        return ""
    return format_offset(delta.total_seconds()).lstrip("+")


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def _tick_step(span: float) -> int:
    for step in TICK_STEPS:
        if span / step <= MAX_TICKS:
            return step
    return TICK_STEPS[-1] * int(span // (TICK_STEPS[-1] * MAX_TICKS) + 1)


def build_timeline(
    *,
    escalation: Escalation,
    pages: Sequence[Page],
    messages: Iterable[Message],
    events: Iterable[Event],
    now: datetime,
) -> Timeline:
    """Lay out `escalation`'s pages (with their `messages` and mark `events`) on one shared time axis."""
    start = escalation.created_at
    by_page: dict[int, list[Message]] = defaultdict(list)
    for message in messages:
        by_page[message.page_id].append(message)
    message_marks: dict[int, list[Event]] = defaultdict(list)
    page_marks: dict[int, list[Event]] = defaultdict(list)
    for event in events:
        if event.kind not in MARK_KINDS:
            continue
        if event.message_id is not None:
            message_marks[event.message_id].append(event)
        elif event.page_id is not None:
            page_marks[event.page_id].append(event)

    active = escalation.state == EscalationState.ACTIVE
    stop = now if active else (escalation.ended_at or now)
    moments = [stop]
    for page in pages:
        moments += [page.started_at, page.ended_at]
        if active and page.state == PageState.ACTIVE:
            # Show how long the person being paged has left, not only what has happened so far.
            moments.append(page.deadline)
        for message in by_page[page.id]:
            moments += [message.sent_at, message.delivered_at, message.read_at, message.failed_at]
    for event_list in (*message_marks.values(), *page_marks.values()):
        moments += [event.at for event in event_list]
    end = max(m for m in moments if m is not None)
    span = max((end - start).total_seconds(), MIN_SPAN_SECONDS)
    end = start + timedelta(seconds=span)
    plot_width = PLOT_RIGHT - PLOT_LEFT

    def x(moment: datetime) -> float:
        offset = (moment - start).total_seconds()
        return round(PLOT_LEFT + min(max(offset, 0), span) / span * plot_width, 1)

    def rel(moment: datetime) -> str:
        return format_offset((moment - start).total_seconds())

    step = _tick_step(span)
    ticks = [Tick(x(start + timedelta(seconds=s)), format_offset(s)) for s in range(0, int(span) + 1, step)]

    plan_people = (escalation.plan or {}).get("people", [])
    many_rounds = (escalation.plan or {}).get("rounds", 1) > 1 or any(p.round > 1 for p in pages)
    lanes: list[Lane] = []
    y = float(AXIS_HEIGHT)
    for number, page in enumerate(pages):
        planned = plan_people[page.index].get("channels", []) if page.index < len(plan_people) else []
        lane = _lane(page=page, y=y, planned=planned, messages=by_page[page.id], page_marks=page_marks[page.id],
                     message_marks=message_marks, x=x, rel=rel, stop=stop, end=end, many_rounds=many_rounds)
        for row, message in zip(lane.rows, _row_messages(planned, by_page[page.id]), strict=True):
            if message is not None and sent_after_the_end(escalation, message):
                row.note = AFTER_THE_END
        lane.shaded = number % 2 == 1
        lanes.append(lane)
        y += lane.height + LANE_GAP

    lines: list[Line] = []
    if active:
        lines.append(Line(x(now), "now", f"now {rel(now)}", _anchor(x(now))))
    elif escalation.ended_at is not None:
        at = x(escalation.ended_at)
        who = escalation.acknowledged_by_name or "someone"
        if escalation.state == EscalationState.ACKNOWLEDGED:
            label = f"acknowledged by {who} {rel(escalation.ended_at)}"
        elif escalation.state == EscalationState.REACHED:
            label = f"reached {who} {rel(escalation.ended_at)}"
        else:
            label = f"{escalation.get_state_display()} {rel(escalation.ended_at)}"
        lines.append(Line(at, escalation.state, label, _anchor(at)))

    return Timeline(
        width=WIDTH, height=y + LEGEND_HEIGHT, plot_left=PLOT_LEFT, plot_right=PLOT_RIGHT, axis_y=AXIS_HEIGHT - 6,
        lanes_bottom=y - LANE_GAP, legend_y=y + 18, start=start, end=end, ticks=ticks, lanes=lanes, lines=lines,
    )


def _row_messages(planned: list[dict], messages: list[Message]) -> list[Message | None]:
    """Each row's message, in the rows' order (see `_lane`), None for a channel never tried."""
    by_index = {m.channel_index: m for m in messages}
    return [by_index.get(i) for i in sorted(set(range(len(planned))) | set(by_index))]


def _anchor(at: float) -> str:
    # Labels near the right edge hang to the left of their line so they stay inside the picture.
    return "end" if at > PLOT_LEFT + (PLOT_RIGHT - PLOT_LEFT) * 0.6 else "start"


def _lane(*, page: Page, y: float, planned: list[dict], messages: list[Message], page_marks: list[Event],
          message_marks: dict[int, list[Event]], x: Scale, rel: Label, stop: datetime, end: datetime,
          many_rounds: bool) -> Lane:
    page_stop = page.ended_at or stop
    by_index = {m.channel_index: m for m in messages}
    # Every planned channel gets a row, so "never tried" is visible; a message outside the plan still shows.
    indexes = sorted(set(range(len(planned))) | set(by_index))
    height = LANE_HEADER + ROW_HEIGHT * len(indexes) + 4
    state_label = page.get_state_display()
    subtitle = f"round {page.round} · {state_label}" if many_rounds else state_label
    header_y = y + LANE_HEADER / 2
    lane = Lane(
        y=y, height=height, name=page.person_name, subtitle=subtitle, state=page.state,
        title=f"{page.person_name}: {state_label}" + (f" ({page.outcome})" if page.outcome else ""),
        span=Bar(x(page.started_at), header_y - 1.5, max(round(x(page_stop) - x(page.started_at), 1), 2), page.state,
                 f"paged {rel(page.started_at)} until {rel(page_stop)}"),
    )
    if page.deadline <= end:
        lane.deadline_x = x(page.deadline)
    lane.deadline_title = f"{page.person_name}'s deadline {rel(page.deadline)}"
    lane.marks = [Mark(x(e.at), header_y, _mark_kind(e), f"{rel(e.at)} {e.text}") for e in page_marks]

    for row_number, index in enumerate(indexes):
        row_y = y + LANE_HEADER + ROW_HEIGHT * row_number + ROW_HEIGHT / 2
        message = by_index.get(index)
        if message is None:
            channel = planned[index]
            # A workflow built without this channel: its 24-hour window was closed with nothing configured.
            skipped = page.dispatch_uuid is not None and page.item_forms and str(index) not in page.item_forms
            lane.rows.append(Row(row_y, channel_label(channel.get("type", ""), channel.get("address", "")),
                                 note="skipped: 24-hour window closed" if skipped else "not tried"))
            continue
        lane.rows.append(_row(message, row_y, message_marks.get(message.id, []), x, rel, page_stop,
                              page.state == PageState.ACTIVE))
    return lane


def _row(message: Message, row_y: float, events: list[Event], x: Scale, rel: Label, page_stop: datetime,
         page_active: bool) -> Row:
    status = message.status
    row = Row(row_y, channel_label(message.channel_type, message.to_address), status=status,
              form=short_form(message.form))
    failed = status in FAILED_STATUSES
    reached = [t for t in (message.delivered_at, message.read_at, message.failed_at) if t is not None]
    first = message.sent_at or (min(reached) if reached else None)
    bar_y = row_y - BAR_HEIGHT / 2
    if first is None:
        if failed:
            at = message.failed_at or message.created_at
            row.marks.append(Mark(x(at), row_y, "error", f"{rel(at)} {status}: {message.error or 'not sent'}"))
            row.note = f"not sent: {message.error}" if message.error else "not sent"
        else:
            row.note = "sending…" if page_active else "not sent"
    else:
        last = max(reached) if reached else first
        steps = [f"sent {rel(first)}"]
        if message.delivered_at:
            steps.append(f"delivered {rel(message.delivered_at)}")
        if message.read_at:
            steps.append(f"read {rel(message.read_at)}")
        if message.failed_at:
            steps.append(f"{status} {rel(message.failed_at)}")
        title = (f"{row.label}: {status} ({', '.join(steps)})" + (f" as {message.form}" if message.form else "")
                 + (f" {message.error}" if message.error else ""))
        # The wait: how long the engine (or Vonage's failover) gives this channel before moving on.
        wait_until = message.deadline or first + timedelta(seconds=message.expiry_time)
        wait_until = min(wait_until, page_stop)
        if wait_until > last and not failed:
            row.wait = Bar(x(first), bar_y, round(x(wait_until) - x(first), 1), "waiting",
                           f"waiting for {message.condition} until {rel(wait_until)}")
        row.bar = Bar(x(first), bar_y, max(round(x(last) - x(first), 1), 3), status, title)
        if message.delivered_at:
            row.marks.append(Mark(x(message.delivered_at), row_y, "delivered",
                                  f"delivered {rel(message.delivered_at)}"))
        if message.read_at:
            row.marks.append(Mark(x(message.read_at), row_y, "read", f"read {rel(message.read_at)}"))
        if failed:
            at = message.failed_at or first
            row.marks.append(Mark(x(at), row_y, "error", f"{status} {rel(at)}: {message.error or status}"))
    row.marks += [Mark(x(e.at), row_y, _mark_kind(e), f"{rel(e.at)} {e.text}") for e in events]
    return row


def short_form(form: str) -> str:
    """Message.form in a word for the row's status ("WhatsApp template `oncall_alert` (window closed)": template)."""
    if " template `" in form:
        return "template"
    if " tagged " in form:
        return "tagged"
    return "free text" if "window open" in form else ""


def _mark_kind(event: Event) -> str:
    return "replied" if event.kind == EventKind.REPLIED else "error"
