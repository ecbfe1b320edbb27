"""The seed tutorial's configuration file (`config.json`): import it into people, channels, senders and a
roster, and export a roster back to it.

The format (see tests/fixtures/sample_demo.json):

    {"APP": {...}, "FROM": {"MESSENGER": id, "VIBER": id, "WHATSAPP": number, "SMS": number or name,
                            "WHATSAPP_TEMPLATE"?: {...}, "MESSENGER_TAG"?: tag},  (see config_senders.py)
     "USERS": [{"name": str, "channels": [{"type", "id_num", "condition_status"?, "expiry_time"?}]}]}

`APP` holds the Vonage application id and private key: secrets, so it is never stored (the environment
holds them) and the export leaves it out. An import validates the whole file before it writes anything.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from escalation.models import (
    MIN_CHANNELS_PER_PERSON,
    Channel,
    ChannelType,
    Condition,
    Person,
    Roster,
    RosterMember,
    Schedule,
    Sender,
)
from escalation.models.channels import DEFAULT_EXPIRY_SECONDS
from escalation.models.people import count_of
from escalation.services.config_senders import KEYS as SETTING_KEYS
from escalation.services.config_senders import export_sender_settings, parse_sender_settings
from escalation.services.schedule_config import ParsedSchedule, export_schedule, parse_schedules, write_schedules
from escalation.vonage.shown import shown

# A real roster file is a few kilobytes; the cap keeps a hostile file from eating memory.
MAX_CONFIG_BYTES = 1_000_000
DEFAULT_ROSTER_NAME = "default"
FROM_KEYS = {
    "MESSENGER": ChannelType.MESSENGER,
    "VIBER": ChannelType.VIBER,
    "WHATSAPP": ChannelType.WHATSAPP,
    "SMS": ChannelType.SMS,
}
APP_ENVIRONMENT = ("VONAGE_APPLICATION_ID", "VONAGE_PRIVATE_KEY_PATH")
# PEOPLE (people who are not on the roster, e.g. only in a schedule) and SCHEDULES are ours, not the seed's:
# see escalation/services/schedule_config.py. A USERS entry {"schedule": NAME} puts a schedule on the roster.
TOP_KEYS = {"APP", "FROM", "USERS", "PEOPLE", "SCHEDULES"}
USER_KEYS = {"name", "channels"}
CHANNEL_KEYS = {"type", "id_num", "condition_status", "expiry_time"}
# Errors name the file's keys, not the model's fields.
CHANNEL_KEY_FOR_FIELD = {"type": "type", "address": "id_num", "condition": "condition_status",
                         "expiry_time": "expiry_time"}


class ConfigError(Exception):
    """The file is not a valid roster configuration; `problems` lists every reason, one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass
class ParsedUser:
    name: str
    channels: list[Channel]


@dataclass
class ParsedConfig:
    senders: dict[str, str]
    users: list[ParsedUser]
    has_app: bool
    # Optional: a WhatsApp template, a Messenger tag (config_senders.py), as Sender field values by channel.
    sender_settings: dict[str, dict] = field(default_factory=dict)
    people: list[ParsedUser] = field(default_factory=list)  # PEOPLE: not on the roster
    schedules: list[ParsedSchedule] = field(default_factory=list)
    order: list[tuple[str, str]] = field(default_factory=list)  # the roster: ("person" | "schedule", name)


@dataclass
class ConfigImported:
    roster: Roster
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed_from_roster: list[str] = field(default_factory=list)
    senders: list[str] = field(default_factory=list)
    channel_count: int = 0
    warnings: list[str] = field(default_factory=list)
    has_app: bool = False


def sms_read_warnings(*, person_name: str, channels: list[Channel]) -> list[str]:
    """Warn about SMS channels waiting for 'read': SMS never reports it, so the wait always runs out."""
    return [
        f"{person_name}: channel {number} (SMS {channel.address}) waits for 'read', which SMS never reports; "
        f"it will always wait the full {channel.expiry_time} s. Use 'delivered' unless that is intended."
        for number, channel in enumerate(channels, start=1)
        if channel.type == ChannelType.SMS and channel.condition == Condition.READ
    ]


def config_read(*, path: str | Path) -> bytes:
    """Read at most MAX_CONFIG_BYTES from `path`; a bigger file is refused without reading it all."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as e:
        raise ConfigError([f"Cannot read {path}: {e.strerror or e}."]) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError([f"{path} is larger than {MAX_CONFIG_BYTES} bytes; a roster file is far smaller."])
    return raw


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    # json.loads would silently keep the last of two equal keys: a second USERS list would win unseen.
    result = {}
    for key, value in pairs:
        if key in result:
            raise ConfigError([f"The key {shown(key)} appears twice in the same object."])
        result[key] = value
    return result


def _load_json(raw: bytes) -> object:
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError([f"The file is larger than {MAX_CONFIG_BYTES} bytes; a roster file is far smaller."])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError([f"The file is not UTF-8 text (byte {e.start})."]) from None
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except RecursionError:
        raise ConfigError(["The file is nested too deeply to be a roster configuration."]) from None
    except ValueError as e:  # JSONDecodeError, and int() refusing a number with thousands of digits
        raise ConfigError([f"The file is not valid JSON: {e}."]) from None


def _unknown_keys(obj: dict, allowed: set[str], where: str) -> list[str]:
    unknown = sorted(set(obj) - allowed)
    if not unknown:
        return []
    return [f"{where}: unknown key(s) {', '.join(map(shown, unknown[:5]))}; expected {', '.join(sorted(allowed))}."]


def _expiry_seconds(value: object) -> int | None:
    """The seed writes expiry_time as a string ("600") or a number (600); nothing else is a duration."""
    if isinstance(value, bool):  # bool is an int subclass: `true` is not 1 second
        return None
    if isinstance(value, int):
        return value
    # The length cap keeps int() away from its 4300-digit limit; anything that long is out of range anyway.
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() and len(value) <= 9:
        return int(value.strip())
    return None


def _parse_channel(obj: object, where: str) -> tuple[Channel | None, list[str]]:
    if not isinstance(obj, dict):
        return None, [f"{where}: must be an object with type and id_num."]
    problems = []
    kind = obj.get("type")
    if isinstance(kind, str) and kind in ChannelType.values:
        where = f"{where} ({kind})"
    else:
        problems.append(f"{where}: type {shown(kind)} is not one of {', '.join(ChannelType.values)}.")
    problems += _unknown_keys(obj, CHANNEL_KEYS, where)
    address = obj.get("id_num")
    if not isinstance(address, str):
        problems.append(f"{where}: id_num must be a string, e.g. \"447700900001\".")
    condition = obj.get("condition_status", Condition.READ)
    if not isinstance(condition, str) or condition not in Condition.values:
        problems.append(f"{where}: condition_status {shown(condition)} is not one of {', '.join(Condition.values)}.")
    expiry = _expiry_seconds(obj.get("expiry_time", DEFAULT_EXPIRY_SECONDS))
    if expiry is None:
        problems.append(f"{where}: expiry_time {shown(obj.get('expiry_time'))} is not a whole number of seconds.")
    if problems:
        return None, problems
    channel = Channel(type=kind, address=address, condition=condition, expiry_time=expiry)
    try:
        channel.full_clean(exclude=["person", "position"])
    except ValidationError as e:
        return None, [
            f"{where}: {CHANNEL_KEY_FOR_FIELD.get(name, name)} {shown(obj.get(CHANNEL_KEY_FOR_FIELD.get(name, '')))}: "
            f"{' '.join(messages)}"
            for name, messages in e.message_dict.items()
        ]
    return channel, []


def _parse_user(obj: object, where: str) -> tuple[ParsedUser | None, list[str]]:
    if not isinstance(obj, dict):
        return None, [f"{where}: must be an object with name and channels."]
    problems = _unknown_keys(obj, USER_KEYS, where)
    name = obj.get("name")
    if not isinstance(name, str) or not name.strip():
        return None, [*problems, f"{where}: name must be a non-empty string."]
    if name != name.strip():
        problems.append(f"{where}: name {shown(name)} has leading or trailing spaces.")
    try:
        Person(name=name).full_clean(validate_unique=False, validate_constraints=False)
    except ValidationError as e:
        problems += [f"{where} {shown(name)}: name: {' '.join(m)}" for m in e.message_dict.values()]
    where = f"{where} {shown(name)}"
    raw_channels = obj.get("channels")
    if not isinstance(raw_channels, list):
        return None, [*problems, f"{where}: channels must be a list."]
    if len(raw_channels) < MIN_CHANNELS_PER_PERSON:
        problems.append(
            f"{where}: has {count_of(len(raw_channels), 'channel')}; a person on a roster needs at least "
            f"{MIN_CHANNELS_PER_PERSON}."
        )
    channels = []
    for number, raw_channel in enumerate(raw_channels, start=1):
        channel, channel_problems = _parse_channel(raw_channel, f"{where}, channel {number}")
        problems += channel_problems
        if channel is not None:
            channel.position = number
            channels.append(channel)
    return (None, problems) if problems else (ParsedUser(name=name, channels=channels), [])


def _parse_senders(obj: object) -> tuple[dict[str, str], list[str]]:
    if not isinstance(obj, dict):
        return {}, ["FROM: must be an object like {\"SMS\": \"OnCall\"}."]
    problems = _unknown_keys(obj, set(FROM_KEYS) | SETTING_KEYS, "FROM")
    senders = {}
    for key, channel_type in FROM_KEYS.items():
        if key not in obj:
            continue
        value = obj[key]
        if not isinstance(value, str):
            problems.append(f"FROM.{key}: must be a string, not {shown(value)}.")
            continue
        try:
            Sender(channel_type=channel_type, sender_id=value).full_clean(validate_unique=False)
        except ValidationError as e:
            problems += [f"FROM.{key} {shown(value)}: {' '.join(m)}" for m in e.message_dict.values()]
            continue
        senders[channel_type] = value
    return senders, problems


def config_parse(*, raw: bytes) -> ParsedConfig:
    """Validate a whole file without touching the database; ConfigError lists every problem found."""
    data = _load_json(raw)
    if not isinstance(data, dict):
        raise ConfigError(["The file must hold a JSON object with FROM and USERS."])
    problems = _unknown_keys(data, TOP_KEYS, "The file")
    if "APP" in data and not isinstance(data["APP"], dict):
        problems.append("APP: must be an object (it is not stored anyway).")
    senders, sender_problems = _parse_senders(data.get("FROM", {}))
    problems += sender_problems
    settings, settings_problems = ({}, []) if sender_problems else parse_sender_settings(data.get("FROM", {}),
                                                                                         senders)
    problems += settings_problems
    raw_users = data.get("USERS")
    if not isinstance(raw_users, list) or not raw_users:
        raise ConfigError([*problems, "USERS: must be a non-empty list of users."])
    raw_people = data.get("PEOPLE", [])
    if not isinstance(raw_people, list):
        problems.append("PEOPLE: must be a list of people (like USERS, but not on the roster).")
        raw_people = []
    users, people, order, seen = [], [], [], set()
    entries = [("USERS user", n, u) for n, u in enumerate(raw_users, start=1)]
    entries += [("PEOPLE person", n, u) for n, u in enumerate(raw_people, start=1)]
    roster_schedules = []
    for label, number, raw_user in entries:
        if label == "USERS user" and isinstance(raw_user, dict) and set(raw_user) == {"schedule"}:
            roster_schedules.append((number, raw_user["schedule"]))
            order.append(("schedule", raw_user["schedule"]))
            continue
        user, user_problems = _parse_user(raw_user, f"{label} {number}")
        problems += user_problems
        if user is None:
            continue
        if user.name in seen:
            problems.append(f"{label} {number} {shown(user.name)}: the name is listed twice; names must be unique.")
        seen.add(user.name)
        (users if label == "USERS user" else people).append(user)
        if label == "USERS user":
            order.append(("person", user.name))
    schedules, schedule_problems = parse_schedules(data.get("SCHEDULES", []), seen)
    problems += schedule_problems
    defined = {schedule.name for schedule in schedules}
    for number, name in roster_schedules:
        if not isinstance(name, str) or name not in defined:
            problems.append(f"USERS user {number}: schedule {shown(name)} is not one of the file's SCHEDULES.")
    if len(set(order)) != len(order):
        problems.append("USERS: a schedule is listed twice; a roster lists each schedule once.")
    if problems:
        raise ConfigError(problems)
    return ParsedConfig(senders=senders, users=users, has_app="APP" in data, sender_settings=settings, people=people,
                        schedules=schedules, order=order)


def config_import(*, raw: bytes, roster_name: str = DEFAULT_ROSTER_NAME) -> ConfigImported:
    """Create or update people (by name), replace their channels, set the senders, and make `roster_name`
    list exactly the file's users in file order. All or nothing."""
    parsed = config_parse(raw=raw)
    roster_name = roster_name.strip()
    try:
        Roster(name=roster_name).full_clean(validate_unique=False, validate_constraints=False)
    except ValidationError as e:
        quoted = shown(roster_name)
        raise ConfigError([f"Roster name {quoted}: {' '.join(m)}" for m in e.message_dict.values()]) from None
    try:
        with transaction.atomic():
            return _write(parsed, roster_name)
    except IntegrityError as e:
        # Only a concurrent edit of the same people or roster can get here: everything was validated.
        raise ConfigError([f"The database changed during the import, nothing was imported: {e}"]) from None


def _write(parsed: ParsedConfig, roster_name: str) -> ConfigImported:
    roster, _ = Roster.objects.get_or_create(name=roster_name)
    result = ConfigImported(roster=roster, has_app=parsed.has_app)
    for channel_type, sender_id in parsed.senders.items():
        Sender.objects.update_or_create(channel_type=channel_type, defaults={
            "sender_id": sender_id, **parsed.sender_settings.get(channel_type, {})})
        result.senders.append(channel_type)
    people = {}
    for user in [*parsed.users, *parsed.people]:
        person, created = Person.objects.get_or_create(name=user.name)
        (result.created if created else result.updated).append(person.name)
        _replace_channels(person, user.channels)
        result.channel_count += len(user.channels)
        result.warnings += sms_read_warnings(person_name=person.name, channels=user.channels)
        people[person.name] = person
    schedules = write_schedules(parsed.schedules, people)
    members = [people[name] if kind == "person" else schedules[name] for kind, name in parsed.order]
    result.removed_from_roster = _replace_members(roster, members)
    return result


def _replace_channels(person: Person, channels: list[Channel]) -> None:
    """Give `person` exactly `channels`, reusing their rows by position, so re-importing the same file
    leaves every row as it was."""
    existing = list(person.channels.order_by("position", "id"))
    for row, channel in zip(existing, channels, strict=False):
        values = {f: getattr(channel, f) for f in ("position", "type", "address", "expiry_time", "condition")}
        if any(getattr(row, f) != v for f, v in values.items()):
            Channel.objects.filter(pk=row.pk).update(**values)
    Channel.objects.filter(pk__in=[row.pk for row in existing[len(channels):]]).delete()
    for channel in channels[len(existing):]:
        channel.person = person
    Channel.objects.bulk_create(channels[len(existing):])


def _replace_members(roster: Roster, wanted: list[Person | Schedule]) -> list[str]:
    """Make `roster` list exactly `wanted` (people and schedules) in order, keeping the rows of those already
    on it; returns the names of those taken off."""
    def key(item: Person | Schedule) -> tuple[str, int]:
        return ("schedule" if isinstance(item, Schedule) else "person", item.pk)

    members = {("person", m.person_id) if m.person_id else ("schedule", m.schedule_id): m
               for m in roster.ordered_members()}
    wanted_keys = {key(item) for item in wanted}
    removed = [str(m.person or m.schedule) for k, m in members.items() if k not in wanted_keys]
    RosterMember.objects.filter(pk__in=[m.pk for k, m in members.items() if k not in wanted_keys]).delete()
    for position, item in enumerate(wanted, start=1):
        member = members.get(key(item))
        if member is None:
            RosterMember.objects.create(roster=roster, position=position,
                                        **{"schedule" if isinstance(item, Schedule) else "person": item})
        elif member.position != position:
            RosterMember.objects.filter(pk=member.pk).update(position=position)
    return removed


def _user(person: Person) -> dict:
    return {
        "name": person.name,
        "channels": [
            {"type": c.type, "id_num": c.address, "condition_status": c.condition, "expiry_time": c.expiry_time}
            for c in person.channels.order_by("position", "id")
        ],
    }


def config_export(*, roster: Roster) -> dict:
    """The roster in the seed's format, without APP: the application id and key live in the environment."""
    sender_rows = {sender.channel_type: sender for sender in Sender.objects.all()}
    senders = {key: sender_rows[t].sender_id for key, t in FROM_KEYS.items() if t in sender_rows}
    senders.update(export_sender_settings(sender_rows))
    users, schedules = [], []
    for member in roster.ordered_members():
        if member.schedule_id is not None:
            users.append({"schedule": member.schedule.name})
            schedules.append(export_schedule(member.schedule))
        else:
            users.append(_user(member.person))
    config = {"FROM": senders, "USERS": users}
    if schedules:
        on_roster = {user["name"] for user in users if "name" in user}
        participants = dict.fromkeys(name for schedule in schedules for layer in schedule["layers"]
                                     for name in layer["participants"] if name not in on_roster)
        config["PEOPLE"] = [_user(person) for person in
                            sorted(Person.objects.filter(name__in=participants), key=lambda p: p.name)]
        config["SCHEDULES"] = schedules
    return config


def config_dumps(config: dict) -> str:
    return json.dumps(config, indent=4, ensure_ascii=False) + "\n"
