"""Firing, cancelling and acknowledging escalations: the services the admin, the CLI and the integrations
call. Cancelling and acknowledging are the engine's transitions (engine/transitions.py), which a webhook
reaches from the engine itself."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from escalation.engine.events import new_event, save_events
from escalation.engine.plan import page_text_length, person_window_seconds, text_limit
from escalation.engine.transitions import acknowledge, cancel
from escalation.engine.wakeup import notify_workers
from escalation.engine.windows import TemplateValues, choose, open_windows, sender_settings
from escalation.models import (
    MIN_CHANNELS_PER_PERSON,
    Api,
    Channel,
    ChannelType,
    Escalation,
    EventKind,
    Integration,
    Roster,
    Sender,
)
from escalation.models.people import count_of
from escalation.services.schedules import resolve_members


class FireRefused(ValidationError):
    """Firing was refused before anything was created; the message says why, naming the person."""


def _build_plan(roster: Roster, message: str, now: datetime) -> dict:
    sender_rows = {sender.channel_type: sender for sender in Sender.objects.all()}
    senders = {kind: sender.sender_id for kind, sender in sender_rows.items()}
    # Schedules become whoever is on call in them now; the plan freezes that, like everything else.
    members, skipped = resolve_members(roster.ordered_members(), at=now)
    if not members:
        reasons = " ".join(skipped)
        raise FireRefused(f"Roster {roster.name} has no active people to page." + (f" {reasons}" if reasons else ""))
    channels_by_person: dict[int, list] = {m.person_id: [] for m in members}
    for channel in (
        Channel.objects.filter(person_id__in=channels_by_person)
        .order_by("position", "id")
    ):
        channels_by_person[channel.person_id].append(channel)
    problems = []
    people = []
    for member in members:
        name = member.name
        channels = channels_by_person[member.person_id]
        if len(channels) < MIN_CHANNELS_PER_PERSON:
            problems.append(
                f"{name} has {count_of(len(channels), 'channel')}; at least {MIN_CHANNELS_PER_PERSON} are "
                "needed."
            )
            continue
        length = page_text_length(name, message)
        for number, channel in enumerate(channels, start=1):
            label = ChannelType(channel.type).label
            if channel.type not in senders:
                problems.append(f"No sender is configured for {label} (needed for {name}'s channel {number}).")
            if length > text_limit(channel.type):
                problems.append(
                    f"The message is {length} characters for {name}'s {label} (channel {number}); "
                    f"{label} allows {text_limit(channel.type)}."
                )
        people.append({
            "person_id": member.person_id,
            "name": name,
            "channels": [
                {"type": c.type, "address": c.address, "expiry_time": c.expiry_time,
                 "condition": c.condition, "sender": senders.get(c.type, ""),
                 **sender_settings(sender_rows.get(c.type))}
                for c in channels
            ],
            **({"via": member.via} if member.via else {}),
        })
    if problems:
        raise FireRefused(list(dict.fromkeys(problems)))
    return {"rounds": roster.rounds, "stop_on": roster.stop_on, "people": people,
            **({"skipped": skipped} if skipped else {})}


@dataclass(frozen=True)
class FirePreview:
    people: list[dict]
    skipped: list[str]  # schedule members that page nobody, and why: the escalation records the same


def fire_preview(*, roster: Roster, message: str, now: datetime | None = None) -> FirePreview:
    """Who would be paged, in which order, on which channels, how long each step waits, and in which form
    each message would go out if sent now (text, template, tagged, or skipped: see engine/windows.py); and
    which schedule members would be skipped, with the reason.

    Raises FireRefused exactly as escalation_fire would.
    """
    now = now or timezone.now()
    plan = _build_plan(roster, message, now)
    opened = open_windows([c for person in plan["people"] for c in person["channels"]], now)
    preview = []
    for person in plan["people"]:
        values = TemplateValues(text=message, escalation="(its number)", person=person["name"], roster=roster.name)
        channels, warnings = [], []
        for channel in person["channels"]:
            label = ChannelType(channel["type"]).label
            choice = choose(channel, window_open=(channel["type"], channel["address"]) in opened, values=values,
                            dispatch=settings.ESCALATION_API == Api.DISPATCH)
            if choice.skipped:
                warnings.append(f"{person['name']}'s {label}: {choice.label}: it will be skipped.")
            channels.append({**channel, "type_label": label, "text_limit": text_limit(channel["type"]),
                             "form": choice.label, "skipped": choice.skipped})
        preview.append({"name": person["name"], "via": person.get("via", {}).get("text", ""),
                        "wait_seconds": person_window_seconds(person),
                        "channels": channels, "warnings": warnings})
    return FirePreview(preview, plan.get("skipped", []))


def escalation_fire(
    *,
    roster: Roster,
    message: str,
    fired_by: AbstractBaseUser | None = None,
    fired_by_name: str = "",
    integration: Integration | None = None,
    dedup_key: str = "",
    now: datetime | None = None,
) -> Escalation:
    """Freeze the roster's plan and start escalating: the worker sends the first page at once."""
    now = now or timezone.now()
    message = message.strip()
    if not message:
        raise FireRefused("The message is empty.")
    plan = _build_plan(roster, message, now)
    with transaction.atomic():
        escalation = Escalation.objects.create(
            roster=roster,
            roster_name=roster.name,
            message=message,
            api=settings.ESCALATION_API,
            plan=plan,
            fired_by=fired_by,
            fired_by_name=fired_by_name or (fired_by.get_username() if fired_by else ""),
            created_at=now,
            next_action_at=now,
            integration=integration,
            dedup_key=dedup_key,
        )
        names = ", ".join(p["name"] for p in plan["people"])
        fired = new_event(escalation, EventKind.FIRED,
                          f"Fired by {escalation.fired_by_name or 'unknown'}: {names}; "
                          f"{count_of(plan['rounds'], 'round')}, via {escalation.get_api_display()}.", at=now)
        # Then who each schedule resolved to, and what was skipped: one INSERT with the fired event.
        notes = [f"{p['name']} — {p['via']['text']}." for p in plan["people"] if "via" in p]
        save_events([fired, *(new_event(escalation, EventKind.NOTE, text, at=now)
                              for text in [*notes, *plan.get("skipped", [])])])
        notify_workers()
    return escalation


def escalation_acknowledge(
    *,
    escalation: Escalation | int,
    person_index: int | None,
    by_name: str,
    how: str,
    now: datetime | None = None,
    reached: bool = False,
) -> bool:
    """Someone acknowledged (or, with `reached`, a channel's `delivered` condition was met): stop paging
    anyone for this escalation, for good (engine/transitions.py). False when it had already ended."""
    return acknowledge(escalation=escalation, person_index=person_index, by_name=by_name, how=how,
                       now=now or timezone.now(), reached=reached)


def escalation_cancel(
    *, escalation: Escalation | int, by_name: str, reason: str = "", now: datetime | None = None
) -> bool:
    """Stop an active escalation like an acknowledgement, but credit nobody. False if it had ended."""
    return cancel(escalation=escalation, by_name=by_name, reason=reason, now=now or timezone.now())
