"""Schedules for the admin, the fire plan, the feeds and the CLI: all of them ask `shifts` through here."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from escalation.models import Layer, LayerParticipant, Override, Person, RosterMember, Schedule
from escalation.schedules import shifts
from escalation.schedules.load import (
    CACHED_SCHEDULES,
    SCHEDULE_FIELDS,
    LoadedSchedule,
    load_overrides,
    load_rules,
    load_schedules,
    rotation_of,
)
from escalation.schedules.picture import Picture, build_picture

# How far ahead of the instant asked about overrides are read, widening only for the schedules whose shift
# runs past the window read (a weekly rotation, a long gap): an override that starts after the shift's end
# cannot change who is on call, nor when that ends. Beyond the last window, overrides only move an `until`
# that is already that far off; reading them all would make every fire read a schedule's whole future.
ON_CALL_WINDOWS = (timedelta(days=1), timedelta(days=8), timedelta(days=60))


@dataclass(frozen=True)
class OnCallNow:
    schedule_id: int
    schedule_name: str
    zone: str
    people: list[tuple[int, str]]  # (person id, name), in order
    until: datetime | None
    layer_name: str = ""

    def until_text(self) -> str:
        """'Mon 09:00 (Europe/London)', or 'further notice' when nothing changes within the horizon."""
        if self.until is None:
            return "further notice"
        local = self.until.astimezone(ZoneInfo(self.zone))
        return f"{local:%a %d %b %H:%M} ({self.zone})"


def _on_call(schedules: Iterable[Schedule], at: datetime) -> dict[int, tuple[LoadedSchedule, shifts.OnCall]]:
    """Who is on call in each schedule at `at` (people as ids), with what was read to say so. Of what this
    process has not kept (see load.py): one query for the layers, one for the overrides of the day ahead, and
    one per wider window only for the schedules whose shift ends beyond the last one read."""
    loaded = load_rules(schedules)
    found: dict[int, tuple[LoadedSchedule, shifts.OnCall]] = {}
    wanted = list(loaded.values())
    for window in ON_CALL_WINDOWS:
        load_overrides(wanted, start=at, end=at + window)
        for entry in wanted:
            found[entry.schedule.pk] = entry, shifts.on_call_at(entry.rules, at, find_since=False)
        wanted = [entry for entry in wanted if not _ends_inside(found[entry.schedule.pk][1], at + window)]
        if not wanted:
            break
    return found


def _ends_inside(now: shifts.OnCall, window_end: datetime) -> bool:
    return now.until is not None and now.until < window_end


def _on_call_now(loaded: LoadedSchedule, now: shifts.OnCall) -> OnCallNow:
    schedule = loaded.schedule
    return OnCallNow(schedule.pk, schedule.name, schedule.time_zone,
                     list(zip(now.people, loaded.people_names(now.people), strict=True)), now.until,
                     loaded.layer_names[now.layer] if now.layer is not None else "")


def schedules_on_call(schedule_ids: list[int], *, at: datetime | None = None) -> dict[int, OnCallNow]:
    """Who is on call in each schedule at `at` (default now), in a fixed number of queries."""
    at = at or timezone.now()
    found = _on_call(Schedule.objects.filter(pk__in=schedule_ids).only(*SCHEDULE_FIELDS), at)
    return {pk: _on_call_now(entry, now) for pk, (entry, now) in found.items()}


def schedules_keep(*, now: datetime | None = None) -> int:
    """Read the schedules that rosters page into this process's keeping, as a fire at `now` reads them, so
    that the first fire a new web process serves finds them there (oncall/wsgi.py calls this at start: a
    3 a.m. alert is often a process's first request). Returns how many schedules were read."""
    ids = list(RosterMember.objects.filter(schedule__isnull=False).order_by("schedule_id")
               .values_list("schedule_id", flat=True).distinct()[:CACHED_SCHEDULES])
    if ids:
        _on_call(Schedule.objects.filter(pk__in=ids).only(*SCHEDULE_FIELDS), now or timezone.now())
    return len(ids)


def schedule_on_call(schedule: Schedule, *, at: datetime | None = None) -> OnCallNow:
    return schedules_on_call([schedule.pk], at=at)[schedule.pk]


def person_on_call_now(person: Person, *, at: datetime | None = None) -> list[OnCallNow]:
    """The schedules in which `person` is on call at `at`."""
    at = at or timezone.now()
    ids = set(LayerParticipant.objects.filter(person=person).values_list("layer__schedule_id", flat=True))
    ids |= set(Override.objects.filter(person=person, start__lte=at, end__gt=at).values_list("schedule_id", flat=True))
    return [now for now in schedules_on_call(sorted(ids), at=at).values()
            if person.pk in {pk for pk, _ in now.people}]


def override_create(*, schedule: Schedule, person: Person, start: datetime, end: datetime,
                    mode: str = "replace", created_by_name: str = "") -> Override:
    """Someone covers [start, end) in `schedule`; as the newest override it wins wherever it overlaps."""
    override = Override(schedule=schedule, person=person, start=start, end=end, mode=mode,
                        created_by_name=created_by_name)
    override.full_clean()
    override.save()
    return override


def layer_participants_changed(*, layer: Layer, before: list[int], now: datetime | None = None) -> None:
    """Re-anchor a rotation whose participants changed from `before`, so whoever holds the current shift
    keeps it (see shifts.reanchored)."""
    now = now or timezone.now()
    after = list(layer.participants.order_by("position", "id").values_list("person_id", flat=True))
    if after == before:
        return
    old = rotation_of(layer, tuple(before))
    new = shifts.reanchored(old, after, shifts.zone_info(layer.schedule.time_zone), now)
    with transaction.atomic():
        Layer.objects.filter(pk=layer.pk).update(anchor_shift=new.anchor_shift, anchor_index=new.anchor_index)


def feed_token_rotate(schedule: Schedule) -> str:
    schedule.feed_token = Schedule._meta.get_field("feed_token").default()
    schedule.save(update_fields=["feed_token"])
    return schedule.feed_token


@dataclass(frozen=True)
class ResolvedMember:
    person_id: int
    name: str
    via: dict | None  # for a person on call in a schedule: what the plan freezes about it


def resolve_members(members: list[RosterMember], *, at: datetime) -> tuple[list[ResolvedMember], list[str]]:
    """A roster's members as the people to page at `at`: each schedule becomes whoever is on call in it then.

    Returns the people in order (each once, active only) and why anyone or any schedule was left out.
    """
    schedules = {m.schedule_id: m.schedule for m in members if m.schedule_id is not None}
    found = _on_call(schedules.values(), at) if schedules else {}
    on_call = {pk: _on_call_now(entry, now) for pk, (entry, now) in found.items()}
    resolved: list[ResolvedMember] = []
    skipped: list[str] = []
    seen: set[int] = set()
    for member in members:
        if member.person_id is not None:
            if member.person.is_active and member.person_id not in seen:
                seen.add(member.person_id)
                resolved.append(ResolvedMember(member.person_id, member.person.name, None))
            continue
        now = on_call[member.schedule_id]
        if not now.people:
            skipped.append(f"Schedule {now.schedule_name}: nobody is on call, skipped.")
            continue
        inactive = found[member.schedule_id][0].inactive
        for person_id, name in now.people:
            if person_id in inactive:
                skipped.append(f"Schedule {now.schedule_name}: {name} is on call but not active, skipped.")
            elif person_id in seen:
                skipped.append(f"Schedule {now.schedule_name}: {name} is on call but already paged earlier.")
            else:
                seen.add(person_id)
                resolved.append(ResolvedMember(person_id, name, {
                    "schedule_id": now.schedule_id, "schedule": now.schedule_name, "zone": now.zone,
                    "until": now.until.isoformat() if now.until else None,
                    "text": f"on call in {now.schedule_name} until {now.until_text()}",
                }))
    return resolved, skipped


def schedule_picture(schedule: Schedule, *, now: datetime | None = None, days: int = 14) -> Picture:
    """The schedule page's picture of the next `days` days from local midnight, in a fixed number of queries."""
    now = now or timezone.now()
    loaded = load_schedules([schedule.pk], start=now - timedelta(days=2), end=now + timedelta(days=days + 2))
    return build_picture(loaded[schedule.pk], now=now, days=days)
