"""Schedules' rows turned into the pure rules of `shifts`, a batch of schedules in a fixed number of queries."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from escalation.models import Layer, LayerParticipant, Override, OverrideMode, Schedule
from escalation.models.schedules import parse_weekdays
from escalation.schedules import shifts

ALL_WEEKDAYS = frozenset(range(7))


@dataclass(frozen=True)
class OverrideRow:
    """An override as the rules and the picture need it: read as plain values, not a model instance (a fire
    resolving ten busy schedules would otherwise spend most of its time building hundreds of them)."""

    pk: int
    start: datetime
    end: datetime
    person_id: int
    person_name: str
    mode: str

    @property
    def mode_label(self) -> str:
        return str(OverrideMode(self.mode).label)


@dataclass
class LoadedSchedule:
    schedule: Schedule
    rules: shifts.Rules
    layers: list[Layer]
    overrides: list[OverrideRow]
    names: dict[int, str] = field(default_factory=dict)  # person id -> name, for everyone in the rules

    def people_names(self, people: Iterable[int]) -> list[str]:
        return [self.names.get(pk, f"person #{pk}") for pk in people]


def rotation_of(layer: Layer, participant_ids: tuple[int, ...]) -> shifts.Rotation:
    restriction = None
    if layer.restrict_start is not None and layer.restrict_end is not None:
        restriction = shifts.Restriction(parse_weekdays(layer.restrict_weekdays) or ALL_WEEKDAYS,
                                         layer.restrict_start, layer.restrict_end)
    return shifts.Rotation(
        participants=participant_ids,
        shift_length=layer.shift_length,
        unit=shifts.Unit(layer.unit),
        first_handoff=datetime.combine(layer.handoff_date, layer.handoff_time),
        restriction=restriction,
        anchor_shift=layer.anchor_shift,
        anchor_index=layer.anchor_index,
    )


def load_schedules(schedule_ids: Iterable[int], *, start: datetime, end: datetime) -> dict[int, LoadedSchedule]:
    """The schedules with their layers and the overrides overlapping [start, end): four queries in all."""
    ids = list(schedule_ids)
    schedules = {s.pk: s for s in Schedule.objects.filter(pk__in=ids).only("pk", "name", "time_zone")}
    layers = list(Layer.objects.filter(schedule_id__in=schedules).order_by("position", "id"))
    members: dict[int, list[tuple[int, str]]] = {layer.pk: [] for layer in layers}
    for layer_id, person_id, name in (LayerParticipant.objects.filter(layer__schedule_id__in=schedules)
                                      .order_by("position", "id").values_list("layer_id", "person_id", "person__name")):
        members[layer_id].append((person_id, name))
    loaded = {pk: LoadedSchedule(schedule, shifts.Rules(schedule.time_zone), [], [])
              for pk, schedule in schedules.items()}
    rotations: dict[int, list[shifts.Rotation]] = {pk: [] for pk in schedules}
    for layer in layers:
        entry = loaded[layer.schedule_id]
        entry.layers.append(layer)
        entry.names.update(members[layer.pk])
        rotations[layer.schedule_id].append(rotation_of(layer, tuple(pk for pk, _ in members[layer.pk])))
    overrides = (Override.objects.filter(schedule_id__in=schedules, end__gt=start, start__lt=end).order_by("id")
                 .values_list("schedule_id", "pk", "start", "end", "person_id", "person__name", "mode"))
    for schedule_id, *values in overrides:
        row = OverrideRow(*values)
        loaded[schedule_id].overrides.append(row)
        loaded[schedule_id].names[row.person_id] = row.person_name
    for pk, entry in loaded.items():
        entry.rules = shifts.Rules(entry.rules.zone, tuple(rotations[pk]), tuple(
            shifts.Override(o.start, o.end, o.person_id, shifts.OverrideMode(o.mode), o.pk) for o in entry.overrides))
    return loaded
