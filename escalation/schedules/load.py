"""Schedules' rows turned into the pure rules of `shifts`, a batch of schedules in a fixed number of queries."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Prefetch

from escalation.models import Layer, LayerParticipant, Override, Schedule
from escalation.models.schedules import parse_weekdays
from escalation.schedules import shifts

ALL_WEEKDAYS = frozenset(range(7))


@dataclass
class LoadedSchedule:
    schedule: Schedule
    rules: shifts.Rules
    layers: list[Layer]
    overrides: list[Override]
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
    participants = LayerParticipant.objects.select_related("person").order_by("position", "id")
    schedules = (Schedule.objects.filter(pk__in=list(schedule_ids))
                 .prefetch_related(Prefetch("layers", queryset=Layer.objects.order_by("position", "id")
                                            .prefetch_related(Prefetch("participants", queryset=participants)))))
    loaded = {}
    for schedule in schedules:
        names: dict[int, str] = {}
        rotations = []
        layers = list(schedule.layers.all())
        for layer in layers:
            members = list(layer.participants.all())
            names.update((m.person_id, m.person.name) for m in members)
            rotations.append(rotation_of(layer, tuple(m.person_id for m in members)))
        loaded[schedule.pk] = LoadedSchedule(schedule, shifts.Rules(schedule.time_zone, tuple(rotations)), layers, [],
                                             names)
    overrides = (Override.objects.filter(schedule_id__in=loaded, end__gt=start, start__lt=end)
                 .select_related("person").order_by("id"))
    for override in overrides:
        entry = loaded[override.schedule_id]
        entry.overrides.append(override)
        entry.names[override.person_id] = override.person.name
    for entry in loaded.values():
        entry.rules = shifts.Rules(entry.rules.zone, entry.rules.layers, tuple(
            shifts.Override(o.start, o.end, o.person_id, shifts.OverrideMode(o.mode), o.pk) for o in entry.overrides))
    return loaded
