"""Monitoring systems that fire escalations themselves."""

import secrets

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

    class Meta:
        ordering = ["name"]

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
