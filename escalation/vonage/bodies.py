"""Request bodies for Vonage, built from the frozen plan's channel dicts.

A channel dict is {"type", "address", "expiry_time", "condition", "sender"} (see Escalation.plan).
"""

from escalation.models.channels import V1_CHANNEL_NAMES, ChannelType

# Which field carries the address on each side of a Dispatch item (VONAGE_FACTS.md, and the seed's
# `set_field_types`): Viber sends from a service id to a phone number.
DISPATCH_FIELDS: dict[str, tuple[str, str]] = {
    ChannelType.MESSENGER: ("id", "id"),
    ChannelType.WHATSAPP: ("number", "number"),
    ChannelType.SMS: ("number", "number"),
    ChannelType.VIBER: ("id", "number"),
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


def failover_workflow(*, person_name: str, channels: list[dict], text: str, reply_number: int | None = None) -> dict:
    """The Dispatch `failover` workflow for one person: one item per channel, in order.

    Every item but the last carries `failover` (Dispatch moves to the next item when the condition is not
    met within `expiry_time` seconds); the last is the final fallback and must not have one.
    """
    if not channels:
        raise ValueError(f"{person_name} has no channels to page")
    content = {"type": "text", "text": dispatch_text(person_name=person_name, text=text, reply_number=reply_number)}
    workflow = []
    for position, channel in enumerate(channels):
        kind = channel["type"]
        from_field, to_field = DISPATCH_FIELDS[kind]
        item: dict = {
            "from": {"type": kind, from_field: channel["sender"]},
            "to": {"type": kind, to_field: channel["address"]},
            "message": {"content": dict(content)},
        }
        if position < len(channels) - 1:
            # The seed's sample config holds expiry_time as a string; the schema wants an integer.
            item["failover"] = {
                "expiry_time": int(channel["expiry_time"]),
                "condition_status": channel["condition"],
            }
        workflow.append(item)
    return {"template": "failover", "workflow": workflow}


def v1_message(*, channel: dict, text: str, client_ref: str) -> dict:
    """One Messages API v1 text message; `client_ref` comes back on every status webhook for it."""
    return {
        "message_type": "text",
        "text": text,
        "to": channel["address"],
        "from": channel["sender"],
        "channel": V1_CHANNEL_NAMES[channel["type"]],
        "client_ref": client_ref,
    }
