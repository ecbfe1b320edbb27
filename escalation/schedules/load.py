"""Schedules' rows turned into the pure rules of `shifts`, a batch of schedules in a fixed number of queries.

Rows are read as plain values, never model instances: a fire resolving ten busy schedules would otherwise
spend most of its time building hundreds of them. The overrides are read apart from the layers because the
fire plan reads them for a day ahead first and wider only where a shift runs past that; the picture and the
feeds read everything for their window.

Each process keeps what it read (layers with their participants' names and active flags; overrides for the
window read, with their people's) under the schedule's `rules_version`, which the database changes in the same
transaction as any of those rows (migration 0016's triggers). A schedule row read with the version a process
holds means the rows are unchanged, so a fire about unchanged schedules reads nothing more than the roster:
every fire asks about the same few schedules, and reading them again was most of what resolving them cost
(issue 16's benchmark S1). What is kept for a version is read in the same statement as the version itself.

The reads are written in SQL (portable: PostgreSQL and SQLite), built once from the models' own table and
column names: Django's building of these joined, ordered queries cost more CPU than reading and using their
rows. tests/test_schedule_on_call.py checks them against the ORM's answer.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from typing import NamedTuple, TypeVar

from django.db import connection
from django.db.models import Model

from escalation.models import Override, OverrideMode, Person, Schedule
from escalation.models.schedules import Layer, LayerParticipant, layer_label, parse_weekdays
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


# What load_rules needs of a schedule row; a deferred `rules_version` would cost a query per schedule.
SCHEDULE_FIELDS = ("pk", "name", "time_zone", "rules_version")
# Schedules whose layers (and, apart, whose overrides) a process keeps; past this many it starts again. A feed's
# year of a busy schedule's overrides is a few hundred rows, so this bounds a process's share to tens of MB.
CACHED_SCHEDULES = 512


@dataclass
class LoadedSchedule:
    schedule: Schedule
    rules: shifts.Rules
    layer_names: list[str] = field(default_factory=list)  # in the order of rules.layers
    overrides: list[OverrideRow] = field(default_factory=list)  # those read, oldest first
    names: dict[int, str] = field(default_factory=dict)  # person id -> name, of everyone read so far
    inactive: set[int] = field(default_factory=set)  # those of them who are not active

    def people_names(self, people: Iterable[int]) -> list[str]:
        return [self.names.get(pk, f"person #{pk}") for pk in people]

    def note_person(self, pk: int, name: str, active: bool) -> None:
        self.names[pk] = name
        if not active:
            self.inactive.add(pk)


# Pure and keyed by every field, so a rotation read again unchanged (every fire reads every layer) is the same
# object, its derived values (`Rotation.length`) computed once per process.
@lru_cache(maxsize=4096)
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


def _columns(alias: str, model: type[Model], names: Iterable[str]) -> str:
    quote = connection.ops.quote_name
    return ", ".join(f"{alias}.{quote(model._meta.get_field(name).column)}" for name in names)


@cache
def _rules_sql(vendor: str) -> str:
    """Each schedule's rules version, layers and participants (with their names), a row per participant (or
    per layer or schedule without any), in priority and list order. `{ids}` is the schedule ids' placeholders."""
    quote = connection.ops.quote_name
    schedule, layer, participant, person = (quote(m._meta.db_table) for m in (Schedule, Layer, LayerParticipant,
                                                                               Person))
    return (f"SELECT {_columns('s', Schedule, ('id', 'rules_version'))}, "
            f"{_columns('l', Layer, ('id', 'position', 'name', *ROTATION_FIELDS))}, "
            f"{_columns('p', LayerParticipant, ('person',))}, {_columns('pe', Person, ('name', 'is_active'))} "
            f"FROM {schedule} s LEFT JOIN {layer} l ON l.{quote('schedule_id')} = s.{quote('id')} "
            f"LEFT JOIN {participant} p ON p.{quote('layer_id')} = l.{quote('id')} "
            f"LEFT JOIN {person} pe ON pe.{quote('id')} = p.{quote('person_id')} "
            f"WHERE s.{quote('id')} IN ({{ids}}) "
            f"ORDER BY {_columns('l', Layer, ('position', 'id'))}, "
            f"{_columns('p', LayerParticipant, ('position', 'id'))}")


@cache
def _overrides_sql(vendor: str) -> str:
    """Each schedule's rules version and its overrides overlapping [%s, %s) with their people's names, oldest
    first (a row with no override for a schedule with none). `{ids}` as above, after the window."""
    quote = connection.ops.quote_name
    schedule, override, person = (quote(m._meta.db_table) for m in (Schedule, Override, Person))
    return (f"SELECT {_columns('s', Schedule, ('id', 'rules_version'))}, "
            f"{_columns('o', Override, ('id', 'start', 'end', 'person', 'mode'))}, "
            f"{_columns('pe', Person, ('name', 'is_active'))} "
            f"FROM {schedule} s LEFT JOIN {override} o ON o.{quote('schedule_id')} = s.{quote('id')} "
            f"AND o.{quote('end')} > %s AND o.{quote('start')} < %s "
            f"LEFT JOIN {person} pe ON pe.{quote('id')} = o.{quote('person_id')} "
            f"WHERE s.{quote('id')} IN ({{ids}}) ORDER BY o.{quote('id')}")


def _select(sql: str, ids: list[int], params: list) -> list[tuple]:
    """`sql`'s rows, with `params` (for placeholders before the ids) and then the ids in `{ids}`."""
    with connection.cursor() as cursor:
        cursor.execute(sql.format(ids=", ".join(["%s"] * len(ids))), [*params, *ids])
        return cursor.fetchall()


def _aware(value: datetime) -> datetime:
    # SQLite hands raw rows' datetimes back naive; Django stores them in UTC there.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class _Layers:
    """A schedule's layers as read under one rules version; shared between loads, so never changed."""

    version: int
    rotations: tuple[shifts.Rotation, ...] = ()
    layer_names: tuple[str, ...] = ()
    names: dict[int, str] = field(default_factory=dict)
    inactive: frozenset[int] = frozenset()


class _KeptOverride(NamedTuple):
    row: OverrideRow  # as the picture shows it
    rule: shifts.Override  # as the rules apply it
    person_name: str
    person_active: bool


@dataclass(frozen=True)
class _Overrides:
    """A schedule's overrides overlapping [start, end), as read under one rules version; shared, never changed."""

    version: int
    start: datetime
    end: datetime
    rows: tuple[_KeptOverride, ...] = ()  # oldest first

    def covers(self, version: int, start: datetime, end: datetime) -> bool:
        return self.version == version and self.start <= start and end <= self.end


_layers_read: dict[int, _Layers] = {}  # schedule id -> its layers as last read by this process
_overrides_read: dict[int, _Overrides] = {}  # schedule id -> the window of its overrides last read here
# How much further than asked overrides are read (and kept): a fire reads the day ahead, so the fires of the
# next day find what they need kept.
READ_AHEAD = timedelta(days=1)
Kept = TypeVar("Kept", _Layers, _Overrides)


def _kept_or_read(kept: dict[int, Kept], wanted: Iterable[int], is_current: Callable[[int, Kept], bool],
                  read: Callable[[list[int]], dict[int, Kept]]) -> dict[int, Kept]:
    """For each schedule of `wanted`: what this process keeps for it where that is still current, else read
    (`read`, one query for all the rest) and kept from now on."""
    found = {pk: entry for pk in wanted if (entry := kept.get(pk)) is not None and is_current(pk, entry)}
    if missing := [pk for pk in wanted if pk not in found]:
        fresh = read(missing)
        if len(kept) + len(fresh) > CACHED_SCHEDULES:
            kept.clear()
        kept.update(fresh)
        found.update(fresh)
    return found


def _read_layers(schedule_ids: list[int]) -> dict[int, _Layers]:
    """The schedules' layers and participants (with their names), with the version they were read under:
    one query."""
    versions: dict[int, int] = {}
    layers: dict[int, tuple[int, str, tuple, list[int]]] = {}
    names: dict[int, dict[int, str]] = {pk: {} for pk in schedule_ids}
    inactive: dict[int, set[int]] = {pk: set() for pk in schedule_ids}
    for row in _select(_rules_sql(connection.vendor), schedule_ids, []):
        schedule_id, version, pk, position, name = row[:5]
        person_id, person_name, active = row[-3:]
        versions[schedule_id] = version
        if pk is not None and pk not in layers:
            layers[pk] = (schedule_id, layer_label(name, position), row[5:-3], [])
        if person_id is not None:
            layers[pk][3].append(person_id)
            names[schedule_id][person_id] = person_name
            if not active:
                inactive[schedule_id].add(person_id)
    rotations: dict[int, list[tuple[shifts.Rotation, str]]] = {pk: [] for pk in versions}
    for schedule_id, label, settings, participants in layers.values():
        rotations[schedule_id].append((rotation(**dict(zip(ROTATION_FIELDS, settings, strict=True)),
                                                participants=tuple(participants)), label))
    return {pk: _Layers(version, tuple(r for r, _ in rotations[pk]), tuple(label for _, label in rotations[pk]),
                        names[pk], frozenset(inactive[pk]))
            for pk, version in versions.items()}


def load_rules(schedules: Iterable[Schedule]) -> dict[int, LoadedSchedule]:
    """The schedules' layers and participants (with their names), no overrides yet: from this process's
    cache where a schedule's `rules_version` is the one it was read under, else one query for the rest."""
    schedules = list(schedules)
    versions = {schedule.pk: schedule.rules_version for schedule in schedules}
    found = _kept_or_read(_layers_read, versions, lambda pk, read: read.version == versions[pk], _read_layers)
    empty = _Layers(version=0)  # a schedule deleted since its row was read
    loaded = {}
    for schedule in schedules:
        read = found.get(schedule.pk, empty)
        loaded[schedule.pk] = LoadedSchedule(schedule, shifts.Rules(schedule.time_zone, read.rotations),
                                             list(read.layer_names), [], dict(read.names), set(read.inactive))
    return loaded


def _read_overrides(schedule_ids: list[int], start: datetime, end: datetime) -> dict[int, _Overrides]:
    """The schedules' overrides overlapping [start, end), with the version they were read under: one query."""
    adapt = connection.ops.adapt_datetimefield_value
    versions: dict[int, int] = {}
    rows: dict[int, list] = {pk: [] for pk in schedule_ids}
    for schedule_id, version, pk, *override in _select(_overrides_sql(connection.vendor), schedule_ids,
                                                         [adapt(start), adapt(end)]):
        versions[schedule_id] = version
        if pk is not None:
            override_start, override_end, person_id, mode, person_name, active = override
            row = OverrideRow(pk, _aware(override_start), _aware(override_end), person_id, mode)
            rule = shifts.Override(row.start, row.end, person_id, shifts.OverrideMode(mode), pk)
            rows[schedule_id].append(_KeptOverride(row, rule, person_name, active))
    return {pk: _Overrides(version, start, end, tuple(rows[pk])) for pk, version in versions.items()}


def load_overrides(loaded: Iterable[LoadedSchedule], *, start: datetime, end: datetime) -> None:
    """Put the overrides overlapping [start, end), with their people's names, into the schedules' rules
    (replacing any put there before): kept by this process where a schedule's `rules_version` is the one
    they were read under, else read (a day further than asked) in one query for the rest."""
    entries = {entry.schedule.pk: entry for entry in loaded}
    found = _kept_or_read(_overrides_read, entries,
                          lambda pk, read: read.covers(entries[pk].schedule.rules_version, start, end),
                          lambda missing: _read_overrides(missing, start, end + READ_AHEAD))
    for pk, entry in entries.items():
        kept = [o for o in found[pk].rows if o.row.end > start and o.row.start < end] if pk in found else []
        for override in kept:
            entry.note_person(override.row.person_id, override.person_name, override.person_active)
        entry.overrides = [override.row for override in kept]
        entry.rules = shifts.Rules(entry.rules.zone, entry.rules.layers, tuple(override.rule for override in kept))


def load_schedules(schedule_ids: Iterable[int], *, start: datetime, end: datetime) -> dict[int, LoadedSchedule]:
    """The schedules with their layers, the overrides overlapping [start, end) and everyone's names: one query
    for the schedules, and one each for the layers and the overrides not kept by this process."""
    loaded = load_rules(Schedule.objects.filter(pk__in=list(schedule_ids)).only(*SCHEDULE_FIELDS))
    load_overrides(loaded.values(), start=start, end=end)
    return loaded
