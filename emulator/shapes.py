"""Webhook bodies in Vonage's exact wire shapes (VONAGE_FACTS.md, real payloads first, spec second)."""

import time
import uuid
from datetime import UTC, datetime

# Address field per channel type for v0.1 bodies, (our side, the person's side), as in Dispatch items.
V01_FIELDS = {
    "messenger": ("id", "id"),
    "whatsapp": ("number", "number"),
    "sms": ("number", "number"),
    "viber_service_msg": ("id", "number"),
}
V1_NAMES = {"messenger": "messenger", "whatsapp": "whatsapp", "sms": "sms", "viber_service_msg": "viber_service"}
# Made-up prices in Vonage's format (a stringified EUR amount); only their presence matters.
PRICES = {"messenger": "0.0000", "whatsapp": "0.0147", "sms": "0.0333", "viber_service_msg": "0.0110"}
# Error codes from messages-v0.1.yml's x-errors list.
ERRORS = {
    "rejected": (1300, "Not part of the provider network"),
    "undeliverable": (1260, "Destination unreachable"),
}


def timestamp(at: float | None = None) -> str:
    """Vonage's timestamp format: UTC, milliseconds, `Z` (e.g. 2018-10-19T11:33:27.385Z)."""
    moment = datetime.fromtimestamp(time.time() if at is None else at, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _usage(channel: str) -> dict:
    return {"price": PRICES[channel], "currency": "EUR"}


def v01_status(message, status: str, at: float) -> dict:
    """A Dispatch item's status, as the live service sends it (with `_links.dispatch`, not `workflow`)."""
    ours, theirs = V01_FIELDS[message.channel]
    body = {
        "message_uuid": message.uuid,
        "to": {theirs: message.to, "type": message.channel},
        "from": {ours: message.sender, "type": message.channel},
        "timestamp": timestamp(at),
        "status": status,
    }
    if status in ("delivered", "read"):
        body["usage"] = _usage(message.channel)
    if status in ERRORS:
        code, title, detail = _error(message, status)
        # messages-v0.1.yml's x-errors read "Title - detail"; the usual errors carry the detail alone.
        body["error"] = {"code": code, "reason": f"{title} - {detail}" if message.error else detail}
    if message.dispatch_uuid:
        body["_links"] = {"dispatch": {"href": f"v0.1/dispatch/{message.dispatch_uuid}",
                                       "dispatch_uuid": message.dispatch_uuid}}
    return body


def v1_status(message, status: str, at: float) -> dict:
    """A Messages v1 status: flat strings, v1 channel name, our client_ref echoed back."""
    body = {
        "message_uuid": message.uuid,
        "to": message.to,
        "from": message.sender,
        "timestamp": timestamp(at),
        "status": status,
        "channel": V1_NAMES[message.channel],
    }
    if message.client_ref:
        body["client_ref"] = message.client_ref
    if status in ("delivered", "read"):
        body["usage"] = {"currency": "EUR", "price": PRICES[message.channel]}
    if status in ERRORS:
        code, title, detail = _error(message, status)
        body["error"] = {"type": f"https://developer.nexmo.com/api-errors/messages-olympus#{code}",
                         "title": title, "detail": detail, "instance": str(uuid.uuid4())}
    return body


def _error(message, status: str) -> tuple[int, str, str]:
    """(code, title, detail): the message's own error (a closed window), else the status's usual one."""
    if message.error is not None and status == "rejected":
        return message.error
    code, reason = ERRORS[status]
    return code, str(code), reason


def final_report(dispatch, messages: list, status: str, at: float) -> dict:
    """Dispatch's one report per workflow, listing every item actually sent with its current status."""
    links = []
    for message in messages:
        link = {"message_uuid": message.uuid, "href": f"v0.1/messages/{message.uuid}",
                "channel": message.channel}
        if message.status in ("delivered", "read"):
            link["usage"] = _usage(message.channel)
        link["status"] = message.status
        links.append(link)
    total = sum(float(link["usage"]["price"]) for link in links if "usage" in link)
    return {
        "template": "failover",
        "status": status,
        "timestamp": timestamp(at),
        "usage": {"price": f"{total:.4f}", "currency": "EUR"},
        "dispatch_uuid": dispatch.uuid,
        "_links": {"messages": links},
    }


def v01_inbound(*, message_uuid: str, channel: str, sender: str, to: str, text: str, at: float) -> dict:
    """A person writing to us, v0.1 shape: `from` is the person, `to` is our sender id."""
    ours, theirs = V01_FIELDS[channel]
    body = {
        "message_uuid": message_uuid,
        "to": {ours: to, "type": channel},
        "from": {theirs: sender, "type": channel},
        "timestamp": timestamp(at),
        "direction": "inbound",
        "message": {"content": {"type": "text", "text": text}},
    }
    if channel == "sms":
        # messages-v0.1.yml's SmsInbound requires the segment count and the price of the inbound SMS.
        body["message"]["sms"] = {"num_messages": "1"}
        body["usage"] = {"currency": "EUR", "price": "0.0057"}
    return body


def v1_inbound(*, message_uuid: str, channel: str, sender: str, to: str, text: str, at: float) -> dict:
    return {
        "channel": V1_NAMES[channel],
        "message_uuid": message_uuid,
        "to": to,
        "from": sender,
        "timestamp": timestamp(at),
        "message_type": "text",
        "text": text,
    }
