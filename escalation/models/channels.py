"""Channel types and their Vonage facts, shared by the models, the client and the admin."""

from django.db import models


class ChannelType(models.TextChoices):
    # The values are Vonage's names (escalation/vonage/channels.py), given to the client as they are.
    MESSENGER = "messenger", "Facebook Messenger"
    VIBER = "viber_service_msg", "Viber"
    WHATSAPP = "whatsapp", "WhatsApp"
    SMS = "sms", "SMS"


# Short names for sentences and narrow columns ("replied on Messenger").
SHORT_LABELS = {ChannelType.MESSENGER: "Messenger", ChannelType.VIBER: "Viber", ChannelType.WHATSAPP: "WhatsApp",
                ChannelType.SMS: "SMS"}


def short_label(channel_type: str) -> str:
    return SHORT_LABELS.get(channel_type, channel_type)


def channel_label(channel_type: str, address: str) -> str:
    """A channel where space is short: "Viber 447700900001"."""
    return f"{short_label(channel_type)} {address}"


class Condition(models.TextChoices):
    READ = "read", "read"
    DELIVERED = "delivered", "delivered"


# Vonage's text limits per channel (emulator/spec/VONAGE_FACTS.md).
TEXT_LIMITS = {
    ChannelType.MESSENGER: 640,
    ChannelType.VIBER: 1000,
    ChannelType.WHATSAPP: 4096,
    ChannelType.SMS: 1000,
}

MIN_EXPIRY_SECONDS = 15
MAX_EXPIRY_SECONDS = 86400
DEFAULT_EXPIRY_SECONDS = 600

# What a WhatsApp template's parameters can carry, in the order the Sender lists them ({{1}}, {{2}}, ...).
TEMPLATE_PARAMETERS = {
    "text": "the alert text",
    "escalation": "the escalation's number",
    "person": "the paged person's name",
    "roster": "the roster's name",
}
# Policies a WhatsApp template send may ask for. dispatch.yml still lists `fallback`, but messages-v0.1.yml
# (`templateMessageWhatsApp`) says WhatsApp deprecated it in January 2020 and such requests are rejected.
TEMPLATE_POLICIES = ("deterministic",)
# The channels where a business may write freely only within 24 hours of the person's last message
# (emulator/spec/VONAGE_FACTS.md, "Business-initiated messages: the 24-hour windows").
WINDOWED_CHANNELS = (ChannelType.WHATSAPP, ChannelType.MESSENGER)
