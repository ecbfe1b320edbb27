"""Schedules' rows turned into the pure rules of `shifts`, a batch of schedules in a fixed number of queries.

Rows are read as plain values, never model instances: a fire resolving ten busy schedules would otherwise
spend most of its time building hundreds of them. The three reads are apart so that each caller pays only
for what it uses: the fire plan needs no names (it reads the people it pages anyway) and reads overrides
for a day ahead first, the picture and the feeds read everything for their window.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time

from escalation.models import Override, OverrideMode, Person, Schedule
from escalation.models.schedules import Layer, layer_label, parse_weekdays
from escalation.schedules import shifts

ALL_WEEKDAYS = frozenset(range(7))
ROTATION_FIELDS = ("shift_length", "unit", "handoff_date", "handoff_time", "restrict_weekdays", "restrict_start",
                   "restrict_end", "anchor_shift", "anchor_index")


@dataclass(frozen=True)
class OverrideRow:
    """An override as the rules and the picture need it."""

    pk: int
    start: datetime
    end: datetime
    person_id: int
    mode: str

    @property
    def mode_label(self) -> str:
        return str(OverrideMode(self.mode).label)


@dataclass
class LoadedSchedule:
    schedule: Schedule
    rules: shifts.Rules
    layer_names: list[str] = field(default_factory=list)  # in the order of rules.layers
    overrides: list[OverrideRow] = field(default_factory=list)  # those read, oldest first
    names: dict[int, str] = field(default_factory=dict)  # person id -> name, once load_names has run

    def people_names(self, people: Iterable[int]) -> list[str]:
        return [self.names.get(pk, f"person #{pk}") for pk in people]

    def person_ids(self) -> set[int]:
        """Everyone the rules name: the layers' participants and the overrides' people."""
        ids = {pk for rotation in self.rules.layers for pk in rotation.participants}
        return ids | {o.person_id for o in self.overrides}


def rotation(*, shift_length: int, unit: str, handoff_date: date, handoff_time: time, restrict_weekdays: str,
             restrict_start: time | None, restrict_end: time | None, anchor_shift: int, anchor_index: int,
             participants: tuple[int, ...]) -> shifts.Rotation:
    restriction = None
    if restrict_start is not None and restrict_end is not None:
        restriction = shifts.Restriction(parse_weekdays(restrict_weekdays) or ALL_WEEKDAYS, restrict_start,
                                         restrict_end)
    return shifts.Rotation(participants=participants, shift_length=shift_length, unit=shifts.Unit(unit),
                           first_handoff=datetime.combine(handoff_date, handoff_time), restriction=restriction,
                           anchor_shift=anchor_shift, anchor_index=anchor_index)


def rotation_of(layer: Layer, participant_ids: tuple[int, ...]) -> shifts.Rotation:
    return rotation(shift_length=layer.shift_length, unit=layer.unit, handoff_date=layer.handoff_date,
                    handoff_time=layer.handoff_time, restrict_weekdays=layer.restrict_weekdays,
                    restrict_start=layer.restrict_start, restrict_end=layer.restrict_end,
                    anchor_shift=layer.anchor_shift, anchor_index=layer.anchor_index, participants=participant_ids)


def load_rules(schedules: Iterable[Schedule]) -> dict[int, LoadedSchedule]:
    """The schedules' layers and participants, no overrides yet: one query (a layer per participant, joined)."""
    loaded = {s.pk: LoadedSchedule(s, shifts.Rules(s.time_zone)) for s in schedules}
    layers: dict[int, tuple[int, str, dict, list[int]]] = {}
    rows = (Layer.objects.filter(schedule_id__in=loaded)
            .order_by("position", "id", "participants__position", "participants__id")
            .values_list("pk", "schedule_id", "position", "name", *ROTATION_FIELDS, "participants__person_id"))
    for pk, schedule_id, position, name, *settings, person_id in rows:
        if pk not in layers:
            settings_of = dict(zip(ROTATION_FIELDS, settings, strict=True))
            layers[pk] = (schedule_id, layer_label(name, position), settings_of, [])
        if person_id is not None:
            layers[pk][3].append(person_id)
    rotations: dict[int, list[shifts.Rotation]] = {pk: [] for pk in loaded}
    for schedule_id, label, settings, participants in layers.values():
        loaded[schedule_id].layer_names.append(label)
        rotations[schedule_id].append(rotation(**settings, participants=tuple(participants)))
    for pk, entry in loaded.items():
        entry.rules = shifts.Rules(entry.rules.zone, tuple(rotations[pk]))
    return loaded


def load_overrides(loaded: Iterable[LoadedSchedule], *, start: datetime, end: datetime) -> None:
    """Read the overrides overlapping [start, end) into the schedules' rules (replacing any read before)."""
    entries = {entry.schedule.pk: entry for entry in loaded}
    found: dict[int, list[OverrideRow]] = {pk: [] for pk in entries}
    for schedule_id, *values in (Override.objects.filter(schedule_id__in=entries, end__gt=start, start__lt=end)
                                 .order_by("id").values_list("schedule_id", "pk", "start", "end", "person_id", "mode")):
        found[schedule_id].append(OverrideRow(*values))
    for pk, entry in entries.items():
        entry.overrides = found[pk]
        entry.rules = shifts.Rules(entry.rules.zone, entry.rules.layers, tuple(
            shifts.Override(o.start, o.end, o.person_id, shifts.OverrideMode(o.mode), o.pk) for o in found[pk]))


def load_names(loaded: Iterable[LoadedSchedule]) -> None:
    """The names of everyone the schedules' rules name: one query."""
    entries = list(loaded)
    names = dict(Person.objects.filter(pk__in={pk for entry in entries for pk in entry.person_ids()})
                 .values_list("pk", "name"))
    for entry in entries:
        entry.names = names


def load_schedules(schedule_ids: Iterable[int], *, start: datetime, end: datetime) -> dict[int, LoadedSchedule]:
    """The schedules with their layers, the overrides overlapping [start, end) and everyone's names: four
    queries in all."""
    loaded = load_rules(Schedule.objects.filter(pk__in=list(schedule_ids)).only("pk", "name", "time_zone"))
    load_overrides(loaded.values(), start=start, end=end)
    load_names(loaded.values())
    return loaded
