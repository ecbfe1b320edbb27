"""What the emulator remembers: messages per recipient, running workflows, scenarios and its records.

Everything is guarded by one lock (`Store.lock`): HTTP handler threads, the scheduler thread and the
webhook lanes all touch it, and each holds it only for a few dictionary operations.
"""

import json
import threading
from collections import deque
from dataclasses import dataclass, field, fields

STATUS_RANK = {"accepted": 0, "submitted": 1, "delivered": 2, "read": 3, "rejected": 3, "undeliverable": 3}
ACTIONS = ("deliver", "read", "reject", "undeliverable", "never_deliver")
CHANNEL_ALIASES = {"viber_service": "viber_service_msg"}  # accept the v1 name wherever a channel is given
CHANNELS = ("messenger", "whatsapp", "sms", "viber_service_msg")


@dataclass(slots=True)
class Message:
    """One message on one phone, either direction; slots keep thousands of them small."""

    uuid: str
    api: str  # "dispatch" | "messages" | "inbound"
    channel: str  # Dispatch type names (viber_service_msg)
    to: str
    sender: str
    text: str
    created: float
    dispatch_uuid: str = ""
    client_ref: str = ""
    webhook_url: str = ""
    status: str = "accepted"
    history: list = field(default_factory=list)  # [(status, wall time)]
    form: str = "text"  # text | template | tagged (emulator/windows.py)
    error: tuple | None = None  # (code, title, detail) reported with a rejection, instead of the default

    @property
    def person(self) -> str:
        """The phone this message belongs to: the recipient, or for an inbound reply its sender."""
        return self.sender if self.api == "inbound" else self.to

    def as_dict(self) -> dict:
        return {
            "message_uuid": self.uuid, "api": self.api, "channel": self.channel, "to": self.to,
            "from": self.sender, "text": self.text, "created": self.created, "status": self.status,
            "dispatch_uuid": self.dispatch_uuid, "client_ref": self.client_ref, "form": self.form,
            "error": list(self.error) if self.error else None,
            "history": [{"status": s, "at": at} for s, at in self.history],
        }


@dataclass(slots=True)
class Dispatch:
    uuid: str
    items: list  # the workflow items as received; dropped once the workflow has finished
    created: float
    current: int = -1
    status: str = "running"  # running | completed | error
    message_uuids: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"dispatch_uuid": self.uuid, "status": self.status, "current": self.current,
                "message_uuids": list(self.message_uuids)}


@dataclass(slots=True)
class Scenario:
    """What a person's phone does with messages to `address` (on `channel`, or "*" for every channel).

    `after` is in emulated seconds from the send: when the message is read (read), delivered (deliver),
    rejected (reject) or found undeliverable (undeliverable). `reply` is sent back as an inbound message
    at that moment. `times` limits the scenario to the next N messages.
    """

    address: str
    channel: str = "*"
    action: str = "deliver"
    after: float | None = None
    reply: str = ""
    times: int | None = None

    @classmethod
    def from_dict(cls, data: dict) -> "Scenario":
        if not isinstance(data, dict) or not data.get("address"):
            raise ValueError("a scenario needs an address")
        channel = CHANNEL_ALIASES.get(data.get("channel") or "*", data.get("channel") or "*")
        if channel != "*" and channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}")
        action = data.get("action", "deliver")
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
        after = data.get("after")
        times = data.get("times")
        if after is not None and (not isinstance(after, int | float) or after < 0):
            raise ValueError("after must be a number of seconds >= 0")
        if times is not None and (not isinstance(times, int) or times < 1):
            raise ValueError("times must be a positive integer")
        return cls(address=str(data["address"]), channel=channel, action=action, after=after,
                   reply=str(data.get("reply") or ""), times=times)

    def as_dict(self) -> dict:
        return {"address": self.address, "channel": self.channel, "action": self.action, "after": self.after,
                "reply": self.reply, "times": self.times}


@dataclass(slots=True)
class RequestRecord:
    """One request to Vonage's API as received, and what the emulator answered."""

    at: float
    path: str
    body: bytes
    method: str = "POST"
    status: int | None = None  # None: the request was left hanging
    response: dict | None = None
    auth: dict | None = None  # the JWT's claims, or {"error": why it was refused}
    fault: str = ""
    seq: int = 0


@dataclass(slots=True)
class WebhookRecord:
    """One delivery attempt of one webhook, and the app's answer."""

    at: float
    kind: str  # status | final_report | inbound
    url: str
    body: bytes
    attempt: int
    signed: bool
    status: int | None = None
    answer: str = ""
    error: str = ""
    retry_in: float | None = None  # emulated seconds until the next attempt, if one is scheduled
    seq: int = 0


def _as_dict(record: RequestRecord | WebhookRecord) -> dict:
    data = {f.name: getattr(record, f.name) for f in fields(record)}
    try:
        data["body"] = json.loads(record.body)
    except ValueError:
        data["body"] = record.body.decode("utf-8", "replace")
    return data


class Records:
    """An append-only, bounded log readable with `since` (a sequence number) so pollers read only news.

    Records are slotted objects holding the raw body: tens of thousands of webhooks stay a few MB.
    """

    def __init__(self, limit: int) -> None:
        self._items: deque = deque(maxlen=limit)
        self._seq = 0

    def add(self, record: RequestRecord | WebhookRecord) -> None:
        self._seq += 1
        record.seq = self._seq
        self._items.append(record)

    def read(self, *, since: int = 0, limit: int | None = None, kind: str = "") -> list[dict]:
        found = []
        for record in self._items:
            if record.seq > since and (not kind or record.kind == kind):
                found.append(_as_dict(record))
                if limit is not None and len(found) >= limit:
                    break
        return found

    def clear(self) -> None:
        self._items.clear()


class Store:
    def __init__(self, *, record_limit: int = 200_000) -> None:
        self.lock = threading.RLock()
        self.messages: dict[str, Message] = {}
        # (channel, person's address) -> message uuids in order: one phone's conversation.
        self.by_phone: dict[tuple[str, str], list[str]] = {}
        self.dispatches: dict[str, Dispatch] = {}
        self.scenarios: dict[tuple[str, str], Scenario] = {}
        self.requests = Records(record_limit)
        self.webhooks = Records(record_limit)

    def add_message(self, message: Message) -> None:
        self.messages[message.uuid] = message
        self.by_phone.setdefault((message.channel, message.person), []).append(message.uuid)

    def conversation(self, channel: str, address: str) -> list[Message]:
        return [self.messages[u] for u in self.by_phone.get((channel, address), ())]

    def latest_sent_to(self, channel: str, address: str) -> Message | None:
        for message in reversed(self.conversation(channel, address)):
            if message.api != "inbound":
                return message
        return None

    def take_scenario(self, channel: str, address: str) -> Scenario | None:
        """The scenario for the next message to this phone, counting down a limited one."""
        for key in ((channel, address), ("*", address)):
            scenario = self.scenarios.get(key)
            if scenario is not None:
                if scenario.times is not None:
                    scenario.times -= 1
                    if scenario.times == 0:
                        del self.scenarios[key]
                return scenario
        return None

    def set_scenario(self, scenario: Scenario) -> None:
        self.scenarios[(scenario.channel, scenario.address)] = scenario

    def reset(self) -> None:
        self.messages.clear()
        self.by_phone.clear()
        self.dispatches.clear()
        self.scenarios.clear()
        self.requests.clear()
        self.webhooks.clear()
