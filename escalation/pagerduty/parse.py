"""A PagerDuty Events API v2 body, checked field by field and turned into the one event we act on.

Sources for every rule (cited as [send] and [schema] below): PagerDuty's developer docs "Send an Event:
Events API v2", and the api-schema repository's `reference/events-v2/openapiv3.json`.

Every problem is collected rather than the first one raised, because PagerDuty answers 400 with an
`errors` list and a sender's operator fixes them all at once.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime

from escalation.integrations.parse import DEDUP_KEY_MAX, MAX_DEPTH, one_line
from escalation.storable import TooDeep, storable

ACTIONS = ("trigger", "acknowledge", "resolve")  # [send] event_action
SEVERITIES = ("critical", "error", "warning", "info")  # [send] payload.severity
SUMMARY_MAX = 1024  # [send] payload.summary: "a brief text summary ... max 1024 characters"
# [schema] the optional strings of payload and the event; none has a documented length, our Alert keeps 500.
OPTIONAL_PAYLOAD_TEXT = ("component", "group", "class")
OPTIONAL_EVENT_TEXT = ("client", "client_url")


class InvalidEvent(ValueError):
    """The body is not an Events API v2 event; `errors` lists every problem found."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class PagerDutyEvent:
    routing_key: str
    action: str  # "trigger" | "acknowledge" | "resolve"
    dedup_key: str
    generated_key: bool  # the sender sent none: PagerDuty returns the one it made ([send] dedup_key)
    title: str  # "[critical] source" for a trigger, else ""
    summary: str  # payload.summary, one line, for a trigger; else ""
    client: str  # who acknowledged or resolved, as the sender names itself


def parse(body: object) -> PagerDutyEvent:
    try:
        # NUL or a lone surrogate would turn an event into a 500, which a sender retries forever.
        body = storable(body, max_depth=MAX_DEPTH)
    except TooDeep:
        raise InvalidEvent([f"the event is nested more than {MAX_DEPTH} levels deep"]) from None
    if not isinstance(body, dict):
        raise InvalidEvent(["the event must be a JSON object"])
    errors: list[str] = []
    routing_key = _text(body, "routing_key", errors, required=True)  # [send] required on every event
    action = body.get("event_action")
    if action not in ACTIONS:  # [send] required, one of three
        errors.append("event_action must be one of " + ", ".join(ACTIONS))
    key = _text(body, "dedup_key", errors, limit=DEDUP_KEY_MAX)  # [send] "maximum of 255 characters"
    # [schema] dedup_key is required for acknowledge and resolve: they name the alert they act on.
    if action in ("acknowledge", "resolve") and not key:
        errors.append(f"dedup_key is required to {action}")
    for name in OPTIONAL_EVENT_TEXT:  # [schema] strings
        _text(body, name, errors)
    _list_of_objects(body, "links", ("href",), errors)  # [send] links[]: href required, text optional
    _list_of_objects(body, "images", ("src",), errors)  # [send] images[]: src required, href and alt optional
    summary = title = ""
    if action == "trigger":  # [send] payload and its three fields are required for a trigger only
        summary, title = _payload(body.get("payload"), errors)
    if errors:
        raise InvalidEvent(errors)
    generated = not key
    return PagerDutyEvent(
        routing_key=routing_key, action=action, dedup_key=key or uuid.uuid4().hex, generated_key=generated,
        title=title, summary=summary, client=one_line(body.get("client") or ""),
    )


def _payload(payload: object, errors: list[str]) -> tuple[str, str]:
    if not isinstance(payload, dict):
        errors.append("payload must be an object for a trigger")
        return "", ""
    summary = _text(payload, "summary", errors, required=True, limit=SUMMARY_MAX, where="payload.")
    source = _text(payload, "source", errors, required=True, where="payload.")
    severity = payload.get("severity")
    if severity not in SEVERITIES:
        errors.append("payload.severity must be one of " + ", ".join(SEVERITIES))
    timestamp = payload.get("timestamp")
    if timestamp is not None and not _is_iso8601(timestamp):  # [send] "ISO 8601"
        errors.append("payload.timestamp must be an ISO 8601 date and time")
    for name in OPTIONAL_PAYLOAD_TEXT:
        _text(payload, name, errors, where="payload.")
    # [send] custom_details: "free-form details", any JSON value, kept by the receipt as sent.
    return one_line(summary), f"[{severity}] {one_line(source)}" if severity in SEVERITIES else ""


def _text(body: dict, name: str, errors: list[str], *, required: bool = False, limit: int | None = None,
          where: str = "") -> str:
    value = body.get(name)
    if value is None:
        if required:
            errors.append(f"{where}{name} is required")
        return ""
    if not isinstance(value, str):
        errors.append(f"{where}{name} must be a string")
        return ""
    if required and not value.strip():
        errors.append(f"{where}{name} must not be empty")
    if limit is not None and len(value) > limit:
        errors.append(f"{where}{name} is longer than {limit} characters")
    return value.strip()


def _list_of_objects(body: dict, name: str, required: tuple[str, ...], errors: list[str]) -> None:
    value = body.get(name)
    if value is None:
        return
    if not isinstance(value, list):
        errors.append(f"{name} must be an array")
        return
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            errors.append(f"{name}[{i}] must be an object")
            continue
        for field in required:
            if not isinstance(item.get(field), str) or not item[field]:
                errors.append(f"{name}[{i}].{field} is required and must be a string")


def _is_iso8601(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True
