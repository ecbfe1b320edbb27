"""The phones page (`/phones/`): what each recipient's phone shows, with buttons to read and to reply.

For the demo and for looking at a test run by eye. Messages are grouped by the person's address, or by name
when `--phone-names` gives a file like `{"Tony": ["23037543461244470", "447700900001"]}`; each phone lists
its conversations (one per channel and address), newest message first. The buttons post to
/phones/read and /phones/reply, which do what /_emulator/messages/<uuid>/read and /_emulator/reply do.
"""

import json
import time
import urllib.request
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from urllib.parse import parse_qs, quote

from emulator.store import CHANNEL_ALIASES, CHANNELS, Message

CHANNEL_LABELS = {"messenger": "Messenger", "whatsapp": "WhatsApp", "sms": "SMS", "viber_service_msg": "Viber"}
NOT_READABLE = ("read", "rejected", "undeliverable")
# A benchmark leaves tens of thousands of messages behind; the page shows the recent ones only.
MAX_PHONES = 60
MAX_MESSAGES = 12
DEFAULT_REPLY = "OK, on it"
REFRESH_MS = 2000
# The app's demo endpoint that says which escalation each message belongs to (escalation/demo/views.py).
ESCALATIONS_PATH = "/demo/phones/escalations"
ESCALATIONS_TIMEOUT = 0.5


@dataclass
class Answer:
    status: int
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    location: str = ""


@dataclass
class Conversation:
    channel: str
    address: str
    messages: list[dict]  # as_dict() snapshots, oldest first

    @property
    def last_activity(self) -> float:
        return self.messages[-1]["created"] if self.messages else 0.0


@dataclass
class Phone:
    name: str  # "" when the address belongs to nobody in --phone-names
    addresses: list[str]
    conversations: list[Conversation] = field(default_factory=list)

    @property
    def last_activity(self) -> float:
        return max((c.last_activity for c in self.conversations), default=0.0)


def load_phone_names(path: str) -> dict[str, list[str]]:
    """`{"name": ["address", ...]}` from a JSON file; ValueError says what is wrong with it."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read {path}: {e}") from None
    if not isinstance(data, dict) or not all(
        isinstance(name, str) and isinstance(addresses, list) and all(isinstance(a, str) for a in addresses)
        for name, addresses in data.items()
    ):
        raise ValueError(f'{path}: expected {{"name": ["address", ...], ...}}')
    return data


# --- requests -----------------------------------------------------------------------------------------


def answer(emulator, method: str, path: str, query: dict[str, str], raw: bytes) -> Answer:
    route = path.removeprefix("/phones").strip("/")
    if route == "" and method == "GET":
        phones = collect_phones(emulator)
        labels = escalation_labels(emulator.config.webhook_base, phones)
        if query.get("fragment"):
            return Answer(200, render_phones(phones, labels).encode())
        return Answer(200, render_page(phones, labels, note=query.get("note", "")).encode())
    if route in ("read", "reply"):
        if method != "POST":
            return Answer(405, b"POST only", "text/plain; charset=utf-8")
        form = {key: values[-1] for key, values in parse_qs(raw.decode("utf-8", "replace")).items()}
        note = read(emulator, form) if route == "read" else reply(emulator, form)
        # Post/redirect/get: a reload of the page must not read or reply a second time.
        return Answer(303, location="/phones/?note=" + quote(note))
    return Answer(404, b"no such page", "text/plain; charset=utf-8")


def read(emulator, form: dict[str, str]) -> str:
    problem = emulator.engine.mark_read(form.get("message", ""))
    if problem:
        return f"Not read: {problem}."
    address = form.get("address", "")
    owner = next((name for name, addresses in emulator.config.phone_names.items() if address in addresses), "")
    return f"{owner} read the message to {address}." if owner else f"Read the message to {address}."


def reply(emulator, form: dict[str, str]) -> str:
    channel = CHANNEL_ALIASES.get(form.get("channel", ""), form.get("channel", ""))
    sender, text = form.get("address", "").strip(), form.get("text", "").strip()
    if channel not in CHANNELS or not sender:
        return "Not sent: the reply form lost its channel or address."
    if not text:
        return "Not sent: the reply was empty."
    emulator.engine.reply(sender=sender, channel=channel, text=text)
    return f"Replied “{text}” from {sender} on {CHANNEL_LABELS[channel]}."


# --- what the phones show ------------------------------------------------------------------------------


def collect_phones(emulator) -> list[Phone]:
    """Named phones first (in the file's order, even before anything arrives), then the rest by latest news."""
    names: dict[str, list[str]] = emulator.config.phone_names
    owner = {address: name for name, addresses in names.items() for address in addresses}
    store = emulator.store
    with store.lock:
        conversations = [
            Conversation(channel, address, [m.as_dict() for m in _messages(store, uuids)])
            for (channel, address), uuids in store.by_phone.items()
        ]
    named = {name: Phone(name=name, addresses=list(addresses)) for name, addresses in names.items()}
    unnamed: dict[str, Phone] = {}
    for conversation in conversations:
        name = owner.get(conversation.address)
        if name is not None:
            phone = named[name]
        else:
            phone = unnamed.setdefault(conversation.address, Phone(name="", addresses=[conversation.address]))
        phone.conversations.append(conversation)
    for phone in named.values():
        order = {address: i for i, address in enumerate(phone.addresses)}
        phone.conversations.sort(key=lambda c: (order[c.address], c.messages[0]["created"] if c.messages else 0))
    for phone in unnamed.values():
        phone.conversations.sort(key=lambda c: c.messages[0]["created"] if c.messages else 0)
    recent = sorted(unnamed.values(), key=lambda p: p.last_activity, reverse=True)
    return list(named.values()) + recent


def escalation_labels(app_url: str, phones: list[Phone]) -> dict[str, dict]:
    """Ask the app which escalation each shown message belongs to and its state: {uuid: {"escalation", "state"}}.

    Only the app knows (a Dispatch item carries no reference of ours). Empty when there is no app to ask or it
    does not answer at once: the page then shows the messages without their escalation, as before.
    """
    uuids = [m["message_uuid"] for phone in phones[:MAX_PHONES] for c in phone.conversations for m in c.messages
             if m["api"] != "inbound"]
    if not app_url or not uuids:
        return {}
    request = urllib.request.Request(app_url.rstrip("/") + ESCALATIONS_PATH, data=json.dumps(uuids).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=ESCALATIONS_TIMEOUT) as answered:
            found = json.loads(answered.read())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _messages(store, uuids: list[str]) -> list[Message]:
    return [store.messages[u] for u in uuids[-MAX_MESSAGES:]]


def _clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))


def _ago(at: float, now: float) -> str:
    seconds = max(0, int(now - at))
    if seconds < 90:
        return f"{seconds} s ago"
    if seconds < 90 * 60:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def render_message(message: dict, now: float, labels: dict[str, dict] | None = None) -> str:
    inbound = message["api"] == "inbound"
    status = message["status"]
    when = f'{_clock(message["created"])} <span class="ago">({_ago(message["created"], now)})</span>'
    if inbound:
        meta = f"you replied · {when}"
    else:
        history = {h["status"]: h["at"] for h in message["history"]}
        status_at = f" {_clock(history[status])}" if status in history else ""
        api = "Dispatch" if message["api"] == "dispatch" else "Messages API"
        meta = (f'from {escape(message["from"])} via {api} · {when} · '
                f'<span class="status status-{escape(status)}">{escape(status)}{status_at}</span>')
        if message.get("error"):  # e.g. refused outside the 24-hour window
            meta += f' · <span class="error">{escape(str(message["error"][1]))}</span>'
        if message.get("form") in ("template", "tagged"):
            meta += f' · {escape(message["form"])}'

    action = ""
    if not inbound and status not in NOT_READABLE:
        if message["channel"] == "sms":
            action = '<p class="hint">SMS has no read receipts: reply to acknowledge.</p>'
        else:
            action = (
                '<form method="post" action="/phones/read" class="read-form">'
                f'<input type="hidden" name="message" value="{escape(message["message_uuid"])}">'
                f'<input type="hidden" name="address" value="{escape(message["to"])}">'
                '<button type="submit" class="read">Mark read</button></form>'
            )
    kind = "msg-in" if inbound else "msg-out"
    label = (labels or {}).get(message["message_uuid"])
    tag, ended = "", ""
    if isinstance(label, dict) and str(label.get("escalation", "")).isdigit():
        state = str(label.get("state", ""))
        ended = " ended" if state and state != "active" else ""
        tag = (f'<p class="escalation">escalation #{escape(str(label["escalation"]))} · '
               f'{escape(state) if ended else "active"}</p>')
        if ended:
            action = ""  # nothing to acknowledge any more: the escalation is over
    return (f'<li class="msg {kind} status-{escape(status)}{ended}" '
            f'data-message-uuid="{escape(message["message_uuid"])}">{tag}'
            f'<p class="text">{escape(message["text"])}</p><p class="meta">{meta}</p>{action}</li>')


def render_conversation(conversation: Conversation, now: float, labels: dict[str, dict] | None = None) -> str:
    label = CHANNEL_LABELS.get(conversation.channel, conversation.channel)
    newest_first = "".join(render_message(m, now, labels) for m in reversed(conversation.messages))
    form = (
        '<form method="post" action="/phones/reply" class="reply-form">'
        f'<input type="hidden" name="channel" value="{escape(conversation.channel)}">'
        f'<input type="hidden" name="address" value="{escape(conversation.address)}">'
        f'<input type="text" name="text" value="{escape(DEFAULT_REPLY)}" aria-label="Reply on {escape(label)}">'
        '<button type="submit" class="reply">Reply</button></form>'
    )
    return (f'<div class="conversation channel-{escape(conversation.channel)}">'
            f'<h3><span class="channel">{escape(label)}</span> <span class="address">{escape(conversation.address)}'
            f'</span></h3>{form}<ol class="messages">{newest_first}</ol></div>')


def render_phone(phone: Phone, now: float, labels: dict[str, dict] | None = None) -> str:
    title = escape(phone.name) if phone.name else escape(phone.addresses[0])
    subtitle = f'<p class="addresses">{" · ".join(escape(a) for a in phone.addresses)}</p>' if phone.name else ""
    body = "".join(render_conversation(c, now, labels) for c in phone.conversations)
    if not phone.conversations:
        body = '<p class="empty">Nothing has arrived yet.</p>'
    return f'<section class="phone"><h2>{title}</h2>{subtitle}{body}</section>'


def render_phones(phones: list[Phone], labels: dict[str, dict] | None = None) -> str:
    now = time.time()
    shown = phones[:MAX_PHONES]
    cards = "".join(render_phone(p, now, labels) for p in shown)
    if not phones:
        cards = ('<p class="empty">No messages yet. Fire an escalation in the app: '
                 'what it sends appears here within a second.</p>')
    hidden = len(phones) - len(shown)
    more = f'<p class="more">{hidden} quieter phones not shown.</p>' if hidden else ""
    return f'<p class="updated">Updated {_clock(now)}</p><div class="grid">{cards}</div>{more}'


def render_page(phones: list[Phone], labels: dict[str, dict] | None = None, *, note: str = "") -> str:
    banner = f'<p class="note" role="status">{escape(note)}</p>' if note else ""
    return PAGE.format(banner=banner, phones=render_phones(phones, labels), refresh_ms=REFRESH_MS,
                       refresh_s=REFRESH_MS // 1000)


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Phones · Vonage emulator</title>
<noscript><meta http-equiv="refresh" content="{refresh_s}"></noscript>
<style>
  body {{ font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; background: #eef1f5;
         color: #1d2330; }}
  header {{ background: #264b5d; color: #fff; padding: 14px 24px; }}
  header h1 {{ margin: 0; font-size: 22px; }}
  header p {{ margin: 4px 0 0; color: #d5e4ec; }}
  main {{ padding: 16px 24px; }}
  .note {{ background: #fff8d6; border: 1px solid #e8d47a; padding: 8px 12px; border-radius: 6px; margin: 0 0 12px; }}
  .updated {{ color: #667; font-size: 13px; margin: 0 0 10px; }}
  .grid {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); gap: 18px;
          align-items: start; }}
  .phone {{ background: #fff; border: 10px solid #1d2330; border-radius: 26px; padding: 12px 14px 16px;
           box-shadow: 0 3px 10px rgba(0, 0, 0, .12); }}
  .phone h2 {{ margin: 0; font-size: 19px; text-align: center; }}
  .addresses {{ margin: 0 0 6px; text-align: center; color: #667; font-size: 12px; }}
  .conversation {{ border-top: 1px solid #dde2e8; padding-top: 8px; margin-top: 8px; }}
  .conversation h3 {{ font-size: 14px; margin: 0 0 6px; }}
  .channel {{ display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; background: #667; }}
  .channel-messenger .channel {{ background: #0866ff; }}
  .channel-whatsapp .channel {{ background: #1a9e50; }}
  .channel-viber_service_msg .channel {{ background: #7360f2; }}
  .channel-sms .channel {{ background: #5a6270; }}
  .address {{ color: #445; font-weight: normal; font-family: ui-monospace, monospace; font-size: 13px; }}
  .messages {{ list-style: none; margin: 0; padding: 0; }}
  .msg {{ margin: 6px 0; padding: 8px 10px; border-radius: 12px; max-width: 88%; background: #f0f2f5; }}
  .msg-in {{ margin-left: auto; background: #dcf3e4; }}
  .msg .text {{ margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; }}
  .msg .meta {{ margin: 2px 0 0; font-size: 12px; color: #667; }}
  .status {{ font-weight: 600; }}
  .status.status-delivered {{ color: #1f5fbf; }}
  .status.status-read {{ color: #1a7f3c; }}
  .status.status-rejected, .status.status-undeliverable {{ color: #b42318; }}
  .msg-out.status-read {{ box-shadow: inset 3px 0 #1a7f3c; }}
  .hint {{ margin: 4px 0 0; font-size: 12px; color: #8a5a00; }}
  .msg .escalation {{ margin: 0 0 2px; font-size: 12px; font-weight: 600; color: #264b5d; }}
  .msg.ended {{ opacity: .45; }}
  form {{ margin: 6px 0 0; }}
  .reply-form {{ display: flex; gap: 6px; margin-bottom: 4px; }}
  .reply-form input[type=text] {{ flex: 1; padding: 5px 8px; border: 1px solid #c5ccd6; border-radius: 8px;
                                   font: inherit; }}
  button {{ font: inherit; padding: 4px 12px; border-radius: 8px; border: 1px solid #264b5d; cursor: pointer; }}
  button.read {{ background: #264b5d; color: #fff; }}
  button.reply {{ background: #fff; color: #264b5d; }}
  .empty, .more {{ color: #667; }}
</style>
</head>
<body>
<header>
  <h1>Phones</h1>
  <p>The Vonage emulator's recipients: every message the app sent, newest first. “Mark read” is the person
  opening it; “Reply” is the person writing back. This page updates itself every {refresh_s} s.</p>
</header>
<main>
{banner}
<div id="phones">{phones}</div>
</main>
<script>
// Refresh in place rather than reload, so a reply being typed is not lost (and skip while one is).
setInterval(async function () {{
  const phones = document.getElementById("phones");
  const typing = Array.from(phones.querySelectorAll("input[type=text]"))
    .some(input => input === document.activeElement || input.value !== input.defaultValue);
  if (typing) return;
  try {{
    const response = await fetch("/phones/?fragment=1", {{cache: "no-store"}});
    if (response.ok) phones.innerHTML = await response.text();
  }} catch (e) {{
    // The emulator stopped: keep showing the last picture.
  }}
}}, {refresh_ms});
</script>
</body>
</html>
"""
