"""Vonage's channels, as the plain strings the client is given and the webhooks carry.

These are Vonage's names (Dispatch and Messages v0.1); the app's `ChannelType` (escalation/models/channels.py)
uses the same values, so a channel's type goes from the database to a request body unchanged.
"""

MESSENGER = "messenger"
VIBER = "viber_service_msg"
WHATSAPP = "whatsapp"
SMS = "sms"
CHANNEL_TYPES = (MESSENGER, VIBER, WHATSAPP, SMS)

# The Messages API v1 calls Viber `viber_service`; Dispatch calls it `viber_service_msg`.
V1_CHANNEL_NAMES = {MESSENGER: "messenger", VIBER: "viber_service", WHATSAPP: "whatsapp", SMS: "sms"}
CHANNEL_TYPE_FROM_V1 = {v: k for k, v in V1_CHANNEL_NAMES.items()}
