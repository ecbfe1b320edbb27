"""Request bodies for Vonage, built from the frozen plan's channel dicts.

A channel dict is {"type", "address", "expiry_time", "condition", "sender", ...} (see Escalation.plan); a
`Form` (escalation/vonage/forms.py) says whether the message is free-form text, a WhatsApp template or a
tagged Messenger message.
"""

from escalation.vonage.channels import MESSENGER, SMS, V1_CHANNEL_NAMES, VIBER, WHATSAPP
from escalation.vonage.forms import FREE_TEXT, Form

# Which field carries the address on each side of a Dispatch item (VONAGE_FACTS.md, and the seed's
# `set_field_types`): Viber sends from a service id to a phone number.
DISPATCH_FIELDS: dict[str, tuple[str, str]] = {
    MESSENGER: ("id", "id"),
    WHATSAPP: ("number", "number"),
    SMS: ("number", "number"),
    VIBER: ("id", "number"),
}


def dispatch_text(*, person_name: str, text: str, reply_number: int | None = None) -> str:
    """The text each Dispatch item carries.

    The tutorial (case-2) sends the bare message; its case-3 `build_user_workflow`, which adds the
    per-channel expiry and condition we use, prefixes the person's name as "[name]: message". We follow
    case-3, so a message forwarded or read on a shared device still says whom it was meant for.
    With `reply_number`, a last line tells a person paged by several incidents how to acknowledge this one.
    """
    hint = f"\nReply {reply_number} to acknowledge #{reply_number}." if reply_number is not None else ""
    return f"[{person_name}]: {text}{hint}"


def failover_workflow(*, person_name: str, channels: list[dict], text: str,
                      forms: list[Form] | None = None, reply_number: int | None = None) -> dict:
    """The Dispatch `failover` workflow for one person: one item per channel, in order, each in its form
    (`forms[i]` for `channels[i]`; free-form text when not given).

    Every item but the last carries `failover` (Dispatch moves to the next item when the condition is not
    met within `expiry_time` seconds); the last is the final fallback and must not have one.
    """
    if not channels:
        raise ValueError(f"{person_name} has no channels to page")
    forms = forms or [FREE_TEXT] * len(channels)
    personal = dispatch_text(person_name=person_name, text=text, reply_number=reply_number)
    workflow = []
    for position, (channel, form) in enumerate(zip(channels, forms, strict=True)):
        kind = channel["type"]
        from_field, to_field = DISPATCH_FIELDS[kind]
        item: dict = {
            "from": {"type": kind, from_field: channel["sender"]},
            "to": {"type": kind, to_field: channel["address"]},
            "message": dispatch_message(personal, form),
        }
        if position < len(channels) - 1:
            # The seed's sample config holds expiry_time as a string; the schema wants an integer.
            item["failover"] = {
                "expiry_time": int(channel["expiry_time"]),
                "condition_status": channel["condition"],
            }
        workflow.append(item)
    return {"template": "failover", "workflow": workflow}


def dispatch_message(text: str, form: Form) -> dict:
    """A Dispatch item's `message` (dispatch.yml: `content` with `TemplateProperty`, `whatsapp`, `messenger`)."""
    if form.template is not None:
        template = form.template
        return {
            "content": {"type": "template", "template": {
                "name": template.dispatch_name, "parameters": [{"default": value} for value in template.values]}},
            "whatsapp": {"policy": template.policy, "locale": template.locale},
        }
    message: dict = {"content": {"type": "text", "text": text}}
    if form.messenger_tag:
        message["messenger"] = {"category": "message_tag", "tag": form.messenger_tag}
    return message


def v1_message(*, channel: dict, text: str, client_ref: str, form: Form = FREE_TEXT) -> dict:
    """One Messages API v1 message, text or template; `client_ref` comes back on every status webhook for it."""
    body: dict = {"message_type": "text", "text": text}
    if form.template is not None:
        template = form.template
        body = {"message_type": "template",
                "template": {"name": template.name, "parameters": list(template.values)},
                "whatsapp": {"policy": template.policy, "locale": template.v1_locale}}
    elif form.messenger_tag:
        body["messenger"] = {"category": "message_tag", "tag": form.messenger_tag}
    return {
        **body,
        "to": channel["address"],
        "from": channel["sender"],
        "channel": V1_CHANNEL_NAMES[channel["type"]],
        "client_ref": client_ref,
    }
