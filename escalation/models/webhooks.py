"""Every webhook Vonage sent us, stored raw by the web process and applied by a worker.

The request only checks, de-duplicates and stores (a few milliseconds, whatever the escalation is doing);
`applied_at` is empty until a worker has applied the event, and the partial index on pending events keeps
finding them cheap however large the table grows.
"""

from django.db import models
from django.db.models import Q


class WebhookKind(models.TextChoices):
    STATUS = "status", "message status"
    FINAL_REPORT = "final_report", "Dispatch final report"
    INBOUND = "inbound", "inbound message"


class WebhookEvent(models.Model):
    # Every index here is paid for on each webhook's INSERT and again when a worker records its outcome,
    # so there are only those something reads: no index on received_at (the admin lists by id, which is
    # the order of receipt), no LIKE index on dedup_key, and the links indexed only once they are set.
    received_at = models.DateTimeField()
    kind = models.CharField(max_length=14, choices=WebhookKind.choices)
    # What makes two deliveries the same event (Vonage retries): the same body, or for statuses the
    # same (message, status) pair.
    dedup_key = models.CharField(max_length=128)
    body = models.JSONField()
    # Dispatch only: the workflow a status or final report belongs to, so the statuses that arrive before
    # our record of the workflow's 202 can be found again by an index lookup once it is recorded.
    dispatch_uuid = models.UUIDField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    message = models.ForeignKey("escalation.Message", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="webhooks", db_index=False)
    escalation = models.ForeignKey("escalation.Escalation", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="webhooks", db_index=False)
    # What applying it did, in words ("unknown message", "status delivered", "acknowledged #12", ...).
    result = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["dedup_key"], name="webhook_once")]
        indexes = [
            models.Index(fields=["id"], condition=Q(applied_at=None), name="webhook_pending"),
            models.Index(fields=["dispatch_uuid"], condition=Q(dispatch_uuid__isnull=False),
                         name="webhook_dispatch_uuid"),
            models.Index(fields=["escalation"], condition=Q(escalation__isnull=False), name="webhook_escalation"),
            models.Index(fields=["message"], condition=Q(message__isnull=False), name="webhook_message"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} at {self.received_at:%Y-%m-%d %H:%M:%S}"
