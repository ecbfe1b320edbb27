"""Alerts from monitoring systems, as incidents, and every notification that brought them.

An `Alert` is one incident: an integration's alert key (Alertmanager's group key, a generic `dedup_key`)
from its first firing notification until it is resolved. While it is open, repeats are noted on it; only a
firing notification after it is resolved opens a new one. Its escalation is the one paging (or that paged)
for it. The lifecycle's decisions are `escalation.services.alerts`; the one transition made elsewhere is
`AlertQuerySet.owned_through`, called when an escalation is acknowledged or cancelled.

An `AlertReceipt` is one notification received on an integration's URL, accepted or refused, kept so that a
refused alert (which the sender does not retry) leaves a trace and raises an alarm.
"""

from datetime import datetime

from django.db import models
from django.db.models import Q


class AlertState(models.TextChoices):
    TRIGGERED = "triggered", "triggered"  # escalating, or escalated and nobody answered
    ACKNOWLEDGED = "acknowledged", "acknowledged"  # someone owns it: repeats page nobody
    RESOLVED = "resolved", "resolved"


class AlertQuerySet(models.QuerySet):
    def open(self) -> "AlertQuerySet":
        return self.exclude(state=AlertState.RESOLVED)

    def owned_through(self, escalation_id: int, *, by_name: str, now: datetime) -> int:
        """The escalation paging for an alert was acknowledged or cancelled: someone owns the alert now.

        Called inside the transaction that ends the escalation, so the two never disagree.
        """
        return self.filter(escalation_id=escalation_id, state=AlertState.TRIGGERED).update(
            state=AlertState.ACKNOWLEDGED, acknowledged_at=now, acknowledged_by_name=by_name[:150]
        )


class Alert(models.Model):
    integration = models.ForeignKey("escalation.Integration", on_delete=models.CASCADE, related_name="alerts")
    dedup_key = models.CharField(max_length=255)
    state = models.CharField(max_length=12, choices=AlertState.choices, default=AlertState.TRIGGERED)
    # What the latest firing notification said.
    title = models.CharField(max_length=300, blank=True)
    summary = models.CharField(max_length=500, blank=True)
    # The escalation paging for it now, or the latest one that did.
    escalation = models.ForeignKey("escalation.Escalation", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    triggered_at = models.DateTimeField()
    last_fired_at = models.DateTimeField()
    repeats = models.PositiveIntegerField(default=0, help_text="Firing notifications after the first.")
    escalations = models.PositiveSmallIntegerField(default=0, help_text="Escalations fired for it.")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by_name = models.CharField(max_length=150, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by_name = models.CharField(max_length=150, blank=True)

    objects = AlertQuerySet.as_manager()

    class Meta:
        ordering = ["-triggered_at", "-id"]
        indexes = [
            # The integration page's "latest alerts", newest first.
            models.Index(fields=["integration", "triggered_at", "id"], name="alert_by_integration"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(state__in=AlertState.values), name="alert_state_known"),
            # The invariant that makes two deliveries of one notification one incident: the second one's
            # INSERT waits for the first and fails, and it then joins the first's alert.
            models.UniqueConstraint(fields=["integration", "dedup_key"], condition=~Q(state="resolved"),
                                    name="one_open_alert_per_key"),
        ]

    def __str__(self) -> str:
        return self.title or self.summary or self.dedup_key


class ReceiptOutcome(models.TextChoices):
    ACCEPTED = "accepted", "accepted"
    REFUSED = "refused", "refused"


class AlertReceipt(models.Model):
    """One notification received on an integration's URL: when, what was done, or why it was refused."""

    integration = models.ForeignKey("escalation.Integration", on_delete=models.CASCADE, related_name="receipts")
    received_at = models.DateTimeField()
    outcome = models.CharField(max_length=8, choices=ReceiptOutcome.choices)
    status_code = models.PositiveSmallIntegerField(help_text="The HTTP status we answered.")
    # What was done ("fired #12 for InstanceDown"), or the reason it was refused: the answer's text.
    text = models.CharField(max_length=500)
    # The start of the body as received (clipped): enough to see what the sender meant, never its bulk.
    body = models.CharField(max_length=2000, blank=True)

    class Meta:
        verbose_name = "received notification"
        ordering = ["-id"]
        indexes = [
            # The integration page's latest receipts, the pruning of old ones, and counting a refusal streak.
            models.Index(fields=["integration", "id"], name="receipt_by_integration"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(outcome__in=ReceiptOutcome.values), name="receipt_outcome_known"),
        ]

    def __str__(self) -> str:
        return f"{self.outcome} {self.status_code}: {self.text[:80]}"
