"""Schedules in the JSON config file (see escalation/services/config.py and docs/schedules.md).

    "SCHEDULES": [{"name": "Primary", "time_zone": "Europe/London", "handoff_notice_minutes": 15,
                   "layers": [{"name": "Weekly", "shift_length": 1, "unit": "weeks",
                               "first_handoff": "2026-03-02T09:00",
                               "restriction": {"weekdays": [0, 1, 2, 3, 4], "start": "09:00", "end": "17:00"},
                               "anchor": {"shift": 0, "index": 0},
                               "participants": ["Tony", "Michael"]}]}]

Every participant must be a person of the file (USERS or PEOPLE), so a file always imports on an empty
database. Overrides are not part of the file: they are day-to-day cover, not configuration.
`handoff_notice_minutes` is optional: absent or null, the schedule sends no hand-off notices.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, time

from django.core.exceptions import ValidationError

from escalation.models import Layer, LayerParticipant, Person, Schedule, ShiftUnit
from escalation.models.schedules import MAX_NOTICE_MINUTES, MAX_SHIFT_LENGTH, validate_time_zone
from escalation.vonage.shown import shown

SCHEDULE_KEYS = {"name", "time_zone", "description", "handoff_notice_minutes", "layers"}
LAYER_KEYS = {"name", "shift_length", "unit", "first_handoff", "restriction", "anchor", "participants"}
RESTRICTION_KEYS = {"weekdays", "start", "end"}


@dataclass
class ParsedLayer:
    fields: dict
    participants: list[str] = field(default_factory=list)


@dataclass
class ParsedSchedule:
    name: str
    time_zone: str
    description: str
    layers: list[ParsedLayer]
    handoff_notice_minutes: int | None = None


def _time(value: object, where: str, problems: list[str]) -> time | None:
    if isinstance(value, str) and len(value) == 5:
        try:
            return time.fromisoformat(value)
        except ValueError:
            pass
    problems.append(f"{where}: {shown(value)} is not a local time like \"09:00\".")
    return None


def _parse_layer(obj: object, where: str, people: set[str]) -> tuple[ParsedLayer | None, list[str]]:
    if not isinstance(obj, dict):
        return None, [f"{where}: must be an object with shift_length, unit, first_handoff and participants."]
    problems = [f"{where}: unknown key {shown(k)}." for k in sorted(set(obj) - LAYER_KEYS)]
    length = obj.get("shift_length", 1)
    if isinstance(length, bool) or not isinstance(length, int) or not 1 <= length <= MAX_SHIFT_LENGTH:
        problems.append(f"{where}: shift_length {shown(length)} is not a whole number from 1 to {MAX_SHIFT_LENGTH}.")
    unit = obj.get("unit", ShiftUnit.WEEKS)
    if unit not in ShiftUnit.values:
        problems.append(f"{where}: unit {shown(unit)} is not one of {', '.join(ShiftUnit.values)}.")
    first = obj.get("first_handoff")
    try:
        first = datetime.fromisoformat(first) if isinstance(first, str) else None
    except ValueError:
        first = None
    if first is None or first.tzinfo is not None:
        problems.append(f"{where}: first_handoff {shown(obj.get('first_handoff'))} is not a local date and time "
                        "like \"2026-03-02T09:00\" (no offset: it is in the schedule's zone).")
    fields: dict = {"name": obj.get("name", ""), "shift_length": length, "unit": unit,
                    "handoff_date": first.date() if first else date.min,
                    "handoff_time": first.time() if first else None}
    if not isinstance(fields["name"], str) or len(fields["name"]) > 100:
        problems.append(f"{where}: name must be a string of at most 100 characters.")
    restriction = obj.get("restriction")
    if restriction is not None:
        if not isinstance(restriction, dict) or set(restriction) - RESTRICTION_KEYS:
            problems.append(f"{where}: restriction must be an object with weekdays, start and end.")
        else:
            days = restriction.get("weekdays", [])
            if not isinstance(days, list) or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6
                                                     for d in days):
                problems.append(f"{where}: restriction weekdays must be numbers from 0 (Monday) to 6 (Sunday).")
                days = []
            fields["restrict_weekdays"] = ",".join(str(d) for d in sorted(set(days)))
            fields["restrict_start"] = _time(restriction.get("start"), f"{where} restriction start", problems)
            fields["restrict_end"] = _time(restriction.get("end"), f"{where} restriction end", problems)
    anchor = obj.get("anchor", {"shift": 0, "index": 0})
    if (not isinstance(anchor, dict) or set(anchor) != {"shift", "index"}
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in anchor.values()) or anchor["index"] < 0):
        problems.append(f"{where}: anchor must be {{\"shift\": whole number, \"index\": whole number >= 0}}.")
    else:
        fields["anchor_shift"], fields["anchor_index"] = anchor["shift"], anchor["index"]
    participants = obj.get("participants", [])
    if not isinstance(participants, list) or not all(isinstance(p, str) for p in participants):
        return None, [*problems, f"{where}: participants must be a list of names."]
    for name in participants:
        if name not in people:
            problems.append(f"{where}: participant {shown(name)} is not a person of the file (USERS or PEOPLE).")
    if len(set(participants)) != len(participants):
        problems.append(f"{where}: a participant is listed twice.")
    return (None, problems) if problems else (ParsedLayer(fields, participants), [])


def parse_schedules(obj: object, people: set[str]) -> tuple[list[ParsedSchedule], list[str]]:
    """The SCHEDULES section, checked without the database; `people` are the names the file defines."""
    if not isinstance(obj, list):
        return [], ["SCHEDULES: must be a list of schedules."]
    parsed, problems, seen = [], [], set()
    for number, raw in enumerate(obj, start=1):
        where = f"SCHEDULES schedule {number}"
        if not isinstance(raw, dict):
            problems.append(f"{where}: must be an object with name, time_zone and layers.")
            continue
        problems += [f"{where}: unknown key {shown(k)}." for k in sorted(set(raw) - SCHEDULE_KEYS)]
        name, zone = raw.get("name"), raw.get("time_zone", "UTC")
        if not isinstance(name, str) or not name.strip() or len(name) > 100 or name != name.strip():
            problems.append(f"{where}: name must be a non-empty string of at most 100 characters.")
            continue
        where = f"{where} {shown(name)}"
        if name in seen:
            problems.append(f"{where}: the name is listed twice.")
        seen.add(name)
        try:
            validate_time_zone(zone if isinstance(zone, str) else "")
        except ValidationError:
            problems.append(f"{where}: time_zone {shown(zone)} is not an IANA time zone name, e.g. Europe/London.")
        description = raw.get("description", "")
        if not isinstance(description, str):
            problems.append(f"{where}: description must be a string.")
        minutes = raw.get("handoff_notice_minutes")
        if minutes is not None and (isinstance(minutes, bool) or not isinstance(minutes, int)
                                    or not 1 <= minutes <= MAX_NOTICE_MINUTES):
            problems.append(f"{where}: handoff_notice_minutes {shown(minutes)} is not a whole number from 1 to "
                            f"{MAX_NOTICE_MINUTES}, or null for no notices.")
        raw_layers = raw.get("layers", [])
        if not isinstance(raw_layers, list):
            problems.append(f"{where}: layers must be a list.")
            continue
        layers = []
        for layer_number, raw_layer in enumerate(raw_layers, start=1):
            layer, layer_problems = _parse_layer(raw_layer, f"{where} layer {layer_number}", people)
            problems += layer_problems
            if layer is not None:
                layers.append(layer)
        parsed.append(ParsedSchedule(name, zone, description if isinstance(description, str) else "", layers,
                                     minutes if isinstance(minutes, int) else None))
    return parsed, problems


def write_schedules(parsed: list[ParsedSchedule], people: dict[str, Person]) -> dict[str, Schedule]:
    """Create or update each schedule by name and give it exactly the file's layers. Inside the import's
    transaction."""
    schedules = {}
    for entry in parsed:
        schedule, _ = Schedule.objects.update_or_create(
            name=entry.name, defaults={"time_zone": entry.time_zone, "description": entry.description,
                                       "handoff_notice_minutes": entry.handoff_notice_minutes})
        schedule.layers.all().delete()
        for position, layer_entry in enumerate(entry.layers):
            layer = Layer.objects.create(schedule=schedule, position=position, **layer_entry.fields)
            LayerParticipant.objects.bulk_create(
                LayerParticipant(layer=layer, person=people[name], position=index)
                for index, name in enumerate(layer_entry.participants))
        schedules[entry.name] = schedule
    return schedules


def export_schedule(schedule: Schedule) -> dict:
    layers = []
    for layer in schedule.layers.order_by("position", "id"):
        exported = {"name": layer.name, "shift_length": layer.shift_length, "unit": layer.unit,
                    "first_handoff": datetime.combine(layer.handoff_date, layer.handoff_time).isoformat(
                        timespec="minutes")}
        if layer.restrict_start is not None and layer.restrict_end is not None:
            exported["restriction"] = {
                "weekdays": [int(d) for d in layer.restrict_weekdays.split(",") if d.strip()],
                "start": f"{layer.restrict_start:%H:%M}", "end": f"{layer.restrict_end:%H:%M}"}
        exported["anchor"] = {"shift": layer.anchor_shift, "index": layer.anchor_index}
        exported["participants"] = [p.person.name for p in
                                    layer.participants.select_related("person").order_by("position", "id")]
        layers.append(exported)
    notices = {} if schedule.handoff_notice_minutes is None else {
        "handoff_notice_minutes": schedule.handoff_notice_minutes}
    return {"name": schedule.name, "time_zone": schedule.time_zone, "description": schedule.description,
            **notices, "layers": layers}
