"""The 24-hour windows: whether a person wrote to us lately, and so how a page to them must go out.

WhatsApp takes free-form text only within 24 hours of the person's last message to our number, otherwise an
approved template; Messenger's default `response` category likewise, otherwise a `message_tag` with a tag
(emulator/spec/VONAGE_FACTS.md, "Business-initiated messages: the 24-hour windows"). Each channel of a
page is decided when its request is built, from the inbound messages recorded here and the sender's
settings frozen in the plan (`template`, `tag`). Without the setting a closed window means the channel is
skipped: sending it would only be refused.
"""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F

from escalation.models import ChannelType, InboundContact, Sender
from escalation.models.channels import WINDOWED_CHANNELS
from escalation.vonage.forms import FREE_TEXT, Form, TemplateSend
from escalation.vonage.payloads import InboundReply

WINDOW = timedelta(hours=24)
# WhatsApp refuses template parameters holding new lines, tabs or runs of spaces; the alert text may have them.
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Choice:
    """How one channel goes out; `form` None means the channel is skipped, and `label` says why."""

    form: Form | None
    label: str

    @property
    def skipped(self) -> bool:
        return self.form is None


@dataclass(frozen=True)
class TemplateValues:
    """What a template's parameters can carry (models.channels.TEMPLATE_PARAMETERS)."""

    text: str
    escalation: str
    person: str
    roster: str


def sender_settings(sender: Sender | None) -> dict:
    """The sender's business-initiated settings, as frozen into each plan channel (absent when unset)."""
    if sender is None:
        return {}
    if sender.channel_type == ChannelType.WHATSAPP and sender.template_name:
        return {"template": {"name": sender.template_name, "namespace": sender.template_namespace,
                             "locale": sender.template_locale, "policy": sender.template_policy,
                             "parameters": sender.parameter_keys}}
    if sender.channel_type == ChannelType.MESSENGER and sender.messenger_tag:
        return {"tag": sender.messenger_tag}
    return {}


def open_windows(channels: list[dict], now: datetime) -> set[tuple[str, str]]:
    """Which of these plan channels' (type, address) the person wrote to (their sender) in the last 24 h.

    One query for them all. A contact recorded without our sender's id (an old webhook) counts for any.
    """
    wanted = {(c["type"], c["address"], c.get("sender", "")) for c in channels if c["type"] in WINDOWED_CHANNELS}
    if not wanted:
        return set()
    # Filtered on the unique index's leading columns (channel_type, address), so it reads only these rows.
    rows = InboundContact.objects.filter(
        channel_type__in={kind for kind, _, _ in wanted}, address__in={address for _, address, _ in wanted},
        last_inbound_at__gt=now - WINDOW,
    ).order_by().values_list("channel_type", "address", "sender_id")
    return {(kind, address) for kind, address, sender in rows
            if any(kind == k and address == a and sender in ("", s) for k, a, s in wanted)}


def choose(channel: dict, *, window_open: bool, values: TemplateValues, dispatch: bool = False) -> Choice:
    """The form of one message on `channel` (a plan channel dict); `dispatch` for a Dispatch workflow item,
    whose template name must carry the namespace (messages-v0.1.yml, `templateMessageWhatsAppContent`)."""
    kind = channel["type"]
    if kind not in WINDOWED_CHANNELS:
        return Choice(FREE_TEXT, "text")
    label = ChannelType(kind).label
    if window_open:
        return Choice(FREE_TEXT, "text (24-hour window open)")
    if kind == ChannelType.WHATSAPP:
        template = channel.get("template")
        if not template:
            return Choice(None, "no template configured and the 24-hour window is closed")
        if dispatch and not template.get("namespace"):
            return Choice(None, f"the template `{template['name']}` has no namespace, which the Dispatch API "
                                "needs, and the 24-hour window is closed")
        return Choice(Form(template=_template_send(template, values)),
                      f"{label} template `{template['name']}` (window closed)")
    tag = channel.get("tag")
    if not tag:
        return Choice(None, "no message tag configured and the 24-hour window is closed")
    return Choice(Form(messenger_tag=tag), f"{label} tagged {tag} (window closed)")


def _template_send(template: dict, values: TemplateValues) -> TemplateSend:
    return TemplateSend(
        name=template["name"], namespace=template.get("namespace", ""), locale=template.get("locale") or "en-US",
        policy=template.get("policy") or "deterministic",
        values=tuple(_WHITESPACE.sub(" ", getattr(values, key)).strip() or "-" for key in template["parameters"]),
    )


def record_inbound(reply: InboundReply, *, now: datetime) -> None:
    """Note that the person wrote to us: their window on this channel (re)opens from the message's time.

    The time is Vonage's `timestamp` (when they wrote), unless it is later than now: a webhook retried for
    hours still dates the message right, and a clock ahead of ours never stretches the window.
    """
    if not reply.from_address or reply.channel_type not in ChannelType.values:
        return
    at = min(reply.timestamp, now) if reply.timestamp else now
    key = {"channel_type": reply.channel_type, "address": reply.from_address, "sender_id": reply.to_address}
    contacts = InboundContact.objects.filter(**key)
    if contacts.filter(last_inbound_at__lt=at).update(last_inbound_at=at, messages=F("messages") + 1):
        return
    if contacts.update(messages=F("messages") + 1):  # an older message, retried late: the window stands
        return
    try:
        with transaction.atomic():
            InboundContact.objects.create(**key, last_inbound_at=at)
    except IntegrityError:  # another worker recorded this contact's first message a moment ago
        record_inbound(reply, now=now)
