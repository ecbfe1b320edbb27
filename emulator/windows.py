"""The 24-hour windows of WhatsApp and Messenger, enforced as Vonage and the platforms do (VONAGE_FACTS.md,
"Business-initiated messages: the 24-hour windows").

A business may send free-form WhatsApp text, or a Messenger message of the default `response` (or `update`)
category, only within 24 hours of the person's last message to that sender. Outside it Vonage accepts the
request (202) and then reports the message `rejected` with an error object; a WhatsApp template or a
Messenger `message_tag` message is delivered. Windows count in emulated time (--time-scale).
"""

import time

WINDOW_SECONDS = 24 * 3600
WINDOWED = ("whatsapp", "messenger")
FREE, TEMPLATE, TAGGED = "text", "template", "tagged"
# messages-v0.1.yml x-errors "1340": Outside of the allowed window.
WINDOW_ERROR_CODE = 1340
WINDOW_ERROR_TITLE = "Outside of the allowed window"
WINDOW_ERROR_DETAIL = {
    "whatsapp": "This message is sent outside of allowed response window: the recipient has not messaged this "
                "WhatsApp number in the last 24 hours, so only an approved template can be sent.",
    "messenger": "This message is sent outside of allowed response window: the recipient has not messaged this "
                 "page in the last 24 hours, so only a message with category message_tag and a tag can be sent.",
}


def dispatch_form(message: dict) -> tuple[str, str]:
    """(form, what the phone shows) of a Dispatch item's `message`."""
    content = message["content"]
    if content["type"] == "template":
        return TEMPLATE, _template_text(content["template"]["name"],
                                        [p.get("default", "") for p in content["template"].get("parameters", [])])
    tagged = (message.get("messenger") or {}).get("category") == "message_tag"
    return (TAGGED if tagged else FREE), content["text"]


def v1_form(body: dict) -> tuple[str, str]:
    """(form, what the phone shows) of a Messages v1 send."""
    if body["message_type"] == "template":
        return TEMPLATE, _template_text(body["template"]["name"], body["template"].get("parameters", []))
    tagged = (body.get("messenger") or {}).get("category") == "message_tag"
    return (TAGGED if tagged else FREE), body["text"]


def _template_text(name: str, values: list) -> str:
    # The phone shows the template's own name, not the Dispatch "namespace:" before it.
    return f"[template {name.rsplit(':', 1)[-1]}] " + " | ".join(str(v) for v in values)


def refused(store, message, *, time_scale: float, now: float | None = None) -> bool:
    """Would the platform refuse this message for being free-form outside the recipient's window?"""
    if message.channel not in WINDOWED or message.form != FREE:
        return False
    now = time.time() if now is None else now
    since = now - WINDOW_SECONDS * time_scale
    return not any(m.api == "inbound" and m.to == message.sender and m.created >= since
                   for m in store.conversation(message.channel, message.to))
