"""Monitoring systems that fire escalations themselves."""

import secrets

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


def new_token() -> str:
    return secrets.token_urlsafe(32)


class IntegrationFormat(models.TextChoices):
    ALERTMANAGER = "alertmanager", "Prometheus Alertmanager"
    GRAFANA = "grafana", "Grafana alerting"
    GENERIC = "generic", "Generic JSON"


class Integration(models.Model):
    name = models.CharField(max_length=100, unique=True)
    roster = models.ForeignKey("escalation.Roster", on_delete=models.CASCADE, related_name="integrations")
    format = models.CharField(max_length=14, choices=IntegrationFormat.choices)
    token = models.CharField(max_length=64, unique=True, default=new_token)
    is_enabled = models.BooleanField("enabled", default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # PagerDuty's "acknowledgement timeout": off when empty. Checked when a firing repeat arrives, which is
    # also the only evidence that the alert still fires (escalation.services.alerts).
    ack_timeout_hours = models.PositiveSmallIntegerField(
        "re-page after an acknowledgement silent for (hours)", null=True, blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(720)],
        help_text="Empty: an acknowledged alert pages nobody until it resolves. N: a firing notification "
                  "arriving N hours or more after the acknowledgement pages the roster again.",
    )
    # Set by the first refused notification since the last accepted one (or dismissal): the alarm's start.
    refused_since = models.DateTimeField(null=True, blank=True, editable=False)
    refusal = models.CharField("latest refusal", max_length=500, blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(ack_timeout_hours__gte=1) | models.Q(ack_timeout_hours=None),
                                   name="integration_ack_timeout_positive"),
        ]

    def __str__(self) -> str:
        return self.name


class ChannelTest(models.Model):
    """One "Send test message" to one of a person's channels: not an escalation, nobody else involved."""

    person = models.ForeignKey("escalation.Person", on_delete=models.CASCADE, related_name="channel_tests")
    channel_type = models.CharField(max_length=20)
    to_address = models.CharField(max_length=50)
    client_ref = models.CharField(max_length=100, unique=True)
    message_uuid = models.UUIDField(null=True, blank=True, unique=True)
    # Same vocabulary and ladder as Message.status (escalation.models.runs.MessageStatus / STATUS_RANK).
    status = models.CharField(max_length=14, default="queued")
    status_rank = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    form = models.CharField(max_length=200, blank=True)  # how it went out, as Message.form

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"test {self.channel_type} {self.to_address}: {self.status}"
