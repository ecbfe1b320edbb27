"""When each person last wrote to us on each channel: whether a business may still write to them freely.

WhatsApp and Messenger let a business send free-form messages only within 24 hours of the person's last
message to it (emulator/spec/VONAGE_FACTS.md, "Business-initiated messages: the 24-hour windows"). Every
inbound message moves its row's `last_inbound_at` forward; the engine reads it when it sends.
"""

from django.db import models


class InboundContact(models.Model):
    """The latest message from one address to one of our senders on one channel."""

    channel_type = models.CharField(max_length=20)
    address = models.CharField(max_length=50, help_text="The person's number or Messenger PSID.")
    # Our sender the person wrote to ("" when the webhook did not say): the window is per business number.
    sender_id = models.CharField(max_length=50, blank=True)
    last_inbound_at = models.DateTimeField()
    messages = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel_type", "address", "sender_id"], name="one_contact_per_sender"),
        ]

    def __str__(self) -> str:
        return f"{self.channel_type} {self.address} -> {self.sender_id or '?'}: {self.last_inbound_at:%Y-%m-%d %H:%M}"
