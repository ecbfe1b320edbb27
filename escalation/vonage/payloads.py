"""What a Vonage webhook means, independent of its wire shape (v0.1 Dispatch/Messages or v1 Messages).

The parser (escalation/vonage/webhooks.py) turns a body into one of these; the engine applies them.
"""

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class StatusUpdate:
    """A per-message status: submitted, delivered, read, rejected or undeliverable."""

    message_uuid: str
    status: str
    timestamp: datetime
    to_address: str
    channel_type: str  # our ChannelType value (v1 `viber_service` is mapped to `viber_service_msg`)
    client_ref: str = ""  # v1 only
    dispatch_uuid: str = ""  # Dispatch only: `_links.dispatch` (or the spec's `_links.workflow`)
    error: str = ""  # a readable summary of the `error` object, if any


@dataclass(frozen=True)
class FinalReportMessage:
    message_uuid: str
    channel_type: str
    status: str


@dataclass(frozen=True)
class FinalReport:
    """Dispatch's one report per workflow: `completed` or `error`."""

    dispatch_uuid: str
    status: str
    timestamp: datetime
    messages: tuple[FinalReportMessage, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class InboundReply:
    """A person writing back to us."""

    message_uuid: str
    from_address: str
    channel_type: str
    text: str
    timestamp: datetime
    to_address: str = ""  # our sender the person wrote to (the 24-hour window is per business number)
