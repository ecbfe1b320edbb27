"""Vonage webhook bodies turned into what they mean (escalation/vonage/payloads.py).

Three wire families reach us (emulator/spec/VONAGE_FACTS.md):
- Dispatch / Messages v0.1: `to` and `from` are objects `{type, number|id}`; a Dispatch status links its
  workflow as `_links.dispatch` (what the live service sends) or `_links.workflow` (what the spec file says).
- Dispatch's final report, one per workflow: `{template, status: completed|error, dispatch_uuid,
  _links.messages[]}`.
- Messages API v1: flat `to`/`from` strings, a `channel` named the v1 way (`viber_service`), `client_ref`,
  and `error {type, title, detail, instance}`.

Anything that is not one of these is a `PayloadError`, answered 400. The body is untrusted until the
signature is checked, and possibly forever when no signature secret is configured, so every field is
checked for type and size before use.
"""

import uuid
from collections.abc import Container, Iterable
from datetime import UTC, datetime
from typing import Any

from escalation.vonage.channels import CHANNEL_TYPE_FROM_V1, CHANNEL_TYPES, VIBER
from escalation.vonage.payloads import FinalReport, FinalReportMessage, InboundReply, StatusUpdate
from escalation.vonage.shown import shown


class PayloadError(ValueError):
    """The body is not JSON, or not a Vonage webhook; the message says what is wrong."""


Webhook = StatusUpdate | FinalReport | InboundReply

MESSAGE_STATUSES = frozenset({"submitted", "delivered", "read", "rejected", "undeliverable"})
FINAL_REPORT_STATUSES = frozenset({"completed", "error"})

# Vonage's channel names, v0.1 and v1, mapped to ours. `mms` and `rcs` are Vonage channels we never send
# on, so an event about them is valid but can only ever be about an unknown message.
CHANNELS = {
    **{channel: channel for channel in CHANNEL_TYPES},
    **CHANNEL_TYPE_FROM_V1,
    "viber_sevice_msg": VIBER,  # dispatch.yml's final-report enum spells it this way
    "mms": "mms",
    "rcs": "rcs",
}

MAX_ADDRESS_LENGTH = 50  # `to`/`from` ids and numbers are 1..50 characters (messages-v0.1.yml)
MAX_ERROR_LENGTH = 500


def parse_webhook(body: dict[str, Any], *, kind_hint: str) -> Webhook:
    """What `body` means. The shape decides; `kind_hint` (the endpoint it came to) only breaks ties,
    so an application that points both of Vonage's URLs at one endpoint still works."""
    if "dispatch_uuid" in body and ("template" in body or _one_of(body.get("status"), FINAL_REPORT_STATUSES)):
        return _final_report(body)
    if "message_uuid" not in body:
        raise PayloadError(
            f"Not a Vonage {kind_hint} webhook: there is no message_uuid (nor a Dispatch final report's "
            "dispatch_uuid and template)."
        )
    looks_inbound = any(key in body for key in ("message", "message_type", "text"))
    if "status" in body and not (looks_inbound and kind_hint == "inbound"):
        return _status(body)
    if looks_inbound:
        return _inbound(body)
    raise PayloadError(
        f"Not a Vonage {kind_hint} webhook: it has a message_uuid but neither a status nor a message."
    )


def _status(body: dict[str, Any]) -> StatusUpdate:
    status = body["status"]
    if not _one_of(status, MESSAGE_STATUSES):
        raise PayloadError(f"Unknown message status {shown(status)}; expected one of {_listed(MESSAGE_STATUSES)}.")
    to_address, to_type = _address(body.get("to"), "to")
    _, from_type = _address(body.get("from"), "from", required=False)
    client_ref = body.get("client_ref", "")
    if not isinstance(client_ref, str):
        raise PayloadError("client_ref must be a string.")
    return StatusUpdate(
        message_uuid=_uuid(body["message_uuid"], "message_uuid"),
        status=status,
        timestamp=_timestamp(body.get("timestamp")),
        to_address=to_address,
        channel_type=_channel(body.get("channel") or to_type or from_type),
        client_ref=client_ref,
        dispatch_uuid=_dispatch_link(body.get("_links")),
        error=_error_summary(body.get("error")),
    )


def _final_report(body: dict[str, Any]) -> FinalReport:
    status = body.get("status")
    if not _one_of(status, FINAL_REPORT_STATUSES):
        raise PayloadError(
            f"Unknown final report status {shown(status)}; expected one of {_listed(FINAL_REPORT_STATUSES)}."
        )
    links = body.get("_links", {})
    if not isinstance(links, dict):
        raise PayloadError("_links must be an object.")
    items = links.get("messages", [])
    if not isinstance(items, list):
        raise PayloadError("_links.messages must be a list.")
    messages = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise PayloadError(f"_links.messages item {number} is not an object.")
        item_status = item.get("status")
        if not _one_of(item_status, MESSAGE_STATUSES):
            raise PayloadError(f"_links.messages item {number} has an unknown status {shown(item_status)}.")
        messages.append(FinalReportMessage(
            message_uuid=_uuid(item.get("message_uuid"), f"_links.messages item {number} message_uuid"),
            channel_type=_channel(item.get("channel")),
            status=item_status,
        ))
    return FinalReport(
        dispatch_uuid=_uuid(body["dispatch_uuid"], "dispatch_uuid"),
        status=status,
        timestamp=_timestamp(body.get("timestamp")),
        messages=tuple(messages),
    )


def _inbound(body: dict[str, Any]) -> InboundReply:
    from_address, from_type = _address(body.get("from"), "from")
    # Viber's inbound `from` is a bare `{number}`; the channel is then only named on `to`.
    to_address, to_type = _address(body.get("to"), "to", required=False)
    return InboundReply(
        message_uuid=_uuid(body["message_uuid"], "message_uuid"),
        from_address=from_address,
        channel_type=_channel(body.get("channel") or from_type or to_type),
        text=_inbound_text(body),
        timestamp=_timestamp(body.get("timestamp")),
        to_address=to_address,
    )


def _inbound_text(body: dict[str, Any]) -> str:
    """The text a person sent; for a picture, a location, ... a short placeholder such as "[image]"."""
    message = body.get("message")
    if isinstance(message, dict):  # v0.1: message.content {type, text}
        content = message.get("content")
        if not isinstance(content, dict):
            raise PayloadError("message.content must be an object.")
        content_type, text = content.get("type"), content.get("text")
    else:  # v1: message_type and a field named after it, e.g. `text`
        content_type, text = body.get("message_type", "text"), body.get("text")
        reply = body.get("reply")
        if content_type == "reply" and isinstance(reply, dict):  # WhatsApp quick-reply button
            text = reply.get("title")
    if isinstance(text, str):
        return text
    if content_type == "text":
        raise PayloadError("A text message has no text.")
    return f"[{content_type}]" if isinstance(content_type, str) and content_type else "[message]"


def _address(value: object, name: str, *, required: bool = True) -> tuple[str, str]:
    """(address, Vonage channel name or "") from a v0.1 object `{type, number|id}` or a v1 string."""
    if value is None and not required:
        return "", ""
    if isinstance(value, str):
        address, channel = value, ""
    elif isinstance(value, dict):
        address = value.get("number") or value.get("id")
        channel = value.get("type", "")
        if not isinstance(channel, str):
            raise PayloadError(f"{name}.type must be a string.")
    else:
        raise PayloadError(f"{name} must be an address string (v1) or an object {{type, number|id}} (v0.1).")
    if not isinstance(address, str) or not 1 <= len(address) <= MAX_ADDRESS_LENGTH:
        raise PayloadError(f"{name} must carry a number or id of 1 to {MAX_ADDRESS_LENGTH} characters.")
    return address, channel


def _channel(name: object) -> str:
    if not _one_of(name, CHANNELS):
        raise PayloadError(f"Unknown channel {shown(name)}; expected one of {_listed(CHANNELS)}.")
    return CHANNELS[name]


def _uuid(value: object, name: str) -> str:
    # Our message and dispatch ids are UUID columns: anything else could never match, and would make the
    # lookup itself fail.
    try:
        return str(uuid.UUID(value))
    except (TypeError, ValueError, AttributeError):
        raise PayloadError(f"{name} must be a UUID, got {shown(value)}.") from None


def _dispatch_link(links: object) -> str:
    if links is None:
        return ""
    if not isinstance(links, dict):
        raise PayloadError("_links must be an object.")
    link = links.get("dispatch") or links.get("workflow")
    if link is None:
        return ""
    if not isinstance(link, dict):
        raise PayloadError("_links.dispatch must be an object.")
    if "dispatch_uuid" in link:
        return _uuid(link["dispatch_uuid"], "_links.dispatch.dispatch_uuid")
    href = link.get("href")
    if isinstance(href, str):  # "v0.1/dispatch/<uuid>"
        return _uuid(href.rstrip("/").rsplit("/", 1)[-1], "_links.dispatch.href")
    return ""


def _timestamp(value: object) -> datetime:
    if not isinstance(value, str):
        raise PayloadError("timestamp must be an ISO 8601 string.")
    try:
        moment = datetime.fromisoformat(value)
        # A naive time from Vonage is UTC (their examples all end in Z).
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise PayloadError(f"timestamp {shown(value)} is not an ISO 8601 date and time.") from None


def _error_summary(error: object) -> str:
    """One readable line from v0.1's `{code, reason}` or v1's `{type, title, detail, instance}`."""
    if isinstance(error, str):
        summary = error
    elif isinstance(error, dict):
        def part(key: str) -> str:
            value = error.get(key)
            return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""

        if part("title") or part("detail"):
            summary = ": ".join(p for p in (part("title"), part("detail")) if p)
            if part("type"):
                summary += f" ({part('type')})"
        else:
            summary = " ".join(p for p in (part("code"), part("reason")) if p)
    else:
        summary = ""
    return summary[:MAX_ERROR_LENGTH]


def _one_of(value: object, allowed: Container[str]) -> bool:
    # Checked as a string first: a list or object from the body is unhashable and cannot be looked up.
    return isinstance(value, str) and value in allowed


def _listed(values: Iterable[str]) -> str:
    return ", ".join(sorted(values))
