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
