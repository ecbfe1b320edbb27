"""Every webhook Vonage sent us, stored raw before it is applied."""

from django.db import models


class WebhookKind(models.TextChoices):
    STATUS = "status", "message status"
    FINAL_REPORT = "final_report", "Dispatch final report"
    INBOUND = "inbound", "inbound message"


class WebhookEvent(models.Model):
    received_at = models.DateTimeField(db_index=True)
    kind = models.CharField(max_length=14, choices=WebhookKind.choices)
    # What makes two deliveries the same event (Vonage retries): the same body, or for statuses the
    # same (message, status) pair.
    dedup_key = models.CharField(max_length=128, unique=True)
    body = models.JSONField()
    message = models.ForeignKey("escalation.Message", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="webhooks")
    escalation = models.ForeignKey("escalation.Escalation", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="webhooks")
    # What applying it did, in words ("unknown message", "status delivered", "acknowledged #12", ...).
    result = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} at {self.received_at:%Y-%m-%d %H:%M:%S}"
