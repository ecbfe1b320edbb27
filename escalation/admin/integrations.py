"""Admin for monitoring integrations: the secret URL to paste into Alertmanager or Grafana, and rotating it;
its latest alerts and the notifications it received, and the alarm a refused one raised.

The token is never a form field: it is generated when the integration is created and only changes by
rotation, which shows the new URL once and makes the old one answer 404 like any unknown token.
"""

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.timezone import localtime

from escalation.models import AlertReceipt, Escalation, Integration, IntegrationFormat
from escalation.services.alert_receipts import RECEIPTS_KEPT, integration_dismiss_refusals
from escalation.services.alerts import alert_digest
from escalation.services.integrations import integration_rotate_token

RECENT_ESCALATIONS = 10
# The integration page lists this many of its latest alerts and notifications, each with a link to all.
RECENT = 10


def integration_url(integration: Integration) -> str:
    return settings.SITE_URL + reverse("integration-receive", args=[integration.token])


SETUP = {
    IntegrationFormat.ALERTMANAGER: (
        "In alertmanager.yml, add a receiver and route the alerts that should page people to it:",
        "receivers:\n  - name: on-call\n    webhook_configs:\n      - url: {url}\n        send_resolved: true",
    ),
    IntegrationFormat.GRAFANA: (
        "In Grafana: Alerting > Contact points > Add contact point, integration Webhook, method POST, URL:",
        "{url}",
    ),
    IntegrationFormat.GENERIC: (
        "POST a JSON body; status is firing or resolved, and the same dedup_key joins or ends the same "
        "escalation:",
        "curl -X POST -H 'Content-Type: application/json' \\\n"
        "  -d '{{\"summary\": \"Main server is down\", \"dedup_key\": \"main-server\", \"status\": \"firing\"}}' \\\n"
        "  {url}",
    ),
}


@admin.register(Integration)
class IntegrationAdmin(admin.ModelAdmin):
    list_display = ("name", "roster", "format", "is_enabled", "created_at")
    list_filter = ("format", "is_enabled")
    search_fields = ("name", "roster__name")
    fields = ("name", "roster", "format", "is_enabled", "ack_timeout_hours", "url", "setup", "refusals",
              "recent_alerts", "received", "recent_escalations")
    readonly_fields = ("url", "setup", "refusals", "recent_alerts", "received", "recent_escalations")
    actions = ["rotate_tokens"]

    def get_urls(self) -> list:
        wrap = self.admin_site.admin_view
        return [
            path("<int:object_id>/rotate-token/", wrap(self.rotate_token_view), name="escalation_integration_rotate"),
            # The link in every page an integration fires (escalation.services.integrations.alert_link).
            path("<int:object_id>/alert/<str:digest>/", wrap(self.alert_view), name="escalation_integration_alert"),
            path("<int:object_id>/dismiss-refusals/", wrap(self.dismiss_view), name="escalation_integration_dismiss"),
        ] + super().get_urls()

    @admin.display(description="URL")
    def url(self, integration: Integration) -> str:
        if integration.pk is None:
            return "Shown after saving."
        return format_html("<code>{}</code>", integration_url(integration))

    @admin.display(description="set-up")
    def setup(self, integration: Integration) -> str:
        if integration.pk is None:
            return "Shown after saving."
        intro, snippet = SETUP[IntegrationFormat(integration.format)]
        return format_html("<p>{}</p><pre>{}</pre>", intro, snippet.format(url=integration_url(integration)))

    @admin.display(description="alarm")
    def refusals(self, integration: Integration) -> str:
        if integration.refused_since is None:
            return "None: every notification since the last dismissal was accepted."
        return format_html(
            '<strong>Refusing since {}</strong>: {} <a href="{}">Dismiss the alarm…</a>',
            localtime(integration.refused_since).strftime("%Y-%m-%d %H:%M"), integration.refusal,
            reverse("admin:escalation_integration_dismiss", args=[integration.pk]),
        )

    @admin.display(description="latest alerts")
    def recent_alerts(self, integration: Integration) -> str:
        if integration.pk is None:
            return "-"
        recent = list(integration.alerts.order_by("-triggered_at", "-id")[:RECENT])
        if not recent:
            return "None yet."
        return format_html(
            '<ul>{}</ul><p><a href="{}?integration__id__exact={}">All alerts of {}</a></p>',
            format_html_join("", '<li><a href="{}">{}</a> {} {}: {}</li>', (
                (reverse("admin:escalation_alert_change", args=[a.pk]),
                 localtime(a.triggered_at).strftime("%Y-%m-%d %H:%M"), a.state,
                 f"({a.repeats} repeat{'' if a.repeats == 1 else 's'})" if a.repeats else "", a)
                for a in recent)),
            reverse("admin:escalation_alert_changelist"), integration.pk, integration.name,
        )

    @admin.display(description="received")
    def received(self, integration: Integration) -> str:
        if integration.pk is None:
            return "-"
        recent = list(AlertReceipt.objects.filter(integration=integration).order_by("-id")[:RECENT])
        if not recent:
            return "Nothing yet."
        return format_html(
            '<ul>{}</ul><p><a href="{}?integration__id__exact={}">All notifications of {}</a> '
            "(the latest {} are kept)</p>",
            format_html_join("", '<li><a href="{}">{}</a> {} {}: {}</li>', (
                (reverse("admin:escalation_alertreceipt_change", args=[r.pk]),
                 localtime(r.received_at).strftime("%Y-%m-%d %H:%M:%S"), r.outcome, r.status_code, r.text)
                for r in recent)),
            reverse("admin:escalation_alertreceipt_changelist"), integration.pk, integration.name, RECEIPTS_KEPT,
        )

    @admin.display(description="recent escalations")
    def recent_escalations(self, integration: Integration) -> str:
        if integration.pk is None:
            return "-"
        recent = list(integration.escalations.all()[:RECENT_ESCALATIONS])
        if not recent:
            return "None yet."
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "", '<li><a href="{}">#{}</a> {} {}: {}</li>',
                ((_escalation_url(e), e.pk, localtime(e.created_at).strftime("%Y-%m-%d %H:%M %Z"), e.state, e.dedup_key)
                 for e in recent),
            ),
        )

    @admin.action(description="Rotate the token (the old URL stops working)", permissions=["change"])
    def rotate_tokens(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        # The intermediate page of Django's delete_selected: the first POST asks, the confirming one acts.
        if request.POST.get("confirm") == "yes":
            for integration in queryset:
                self._rotate(request, integration)
            return None
        return self._confirmation(request, list(queryset), bulk=True)

    def rotate_token_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        integration = get_object_or_404(Integration, pk=object_id)
        if not self.has_change_permission(request, integration):
            raise PermissionDenied
        if request.method == "POST" and request.POST.get("confirm") == "yes":
            self._rotate(request, integration)
            return HttpResponseRedirect(reverse("admin:escalation_integration_change", args=[integration.pk]))
        return self._confirmation(request, [integration], bulk=False)

    def _rotate(self, request: HttpRequest, integration: Integration) -> None:
        integration_rotate_token(integration=integration)
        self.log_change(request, integration, "Rotated the token.")
        messages.success(request, format_html(
            "{}: the new URL is <code>{}</code>; update the sender, the old URL no longer works.",
            integration.name, integration_url(integration),
        ))

    def _confirmation(self, request: HttpRequest, integrations: list[Integration], *, bulk: bool) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": "Rotate integration tokens" if bulk else f"Rotate the token of {integrations[0].name}",
            "opts": self.model._meta,
            "integrations": integrations,
            "bulk": bulk,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/escalation/integration/rotate_token.html", context)

    def dismiss_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        integration = get_object_or_404(Integration, pk=object_id)
        if not self.has_change_permission(request, integration):
            raise PermissionDenied
        change_url = reverse("admin:escalation_integration_change", args=[integration.pk])
        if request.method == "POST" and request.POST.get("confirm") == "yes":
            if integration_dismiss_refusals(integration=integration):
                self.log_change(request, integration, "Dismissed the alarm about refused notifications.")
                messages.success(request, f"{integration.name}: the alarm is dismissed.")
            return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Dismiss the alarm of {integration.name}",
            "opts": self.model._meta,
            "integration": integration,
            "change_url": change_url,
        }
        return TemplateResponse(request, "admin/escalation/integration/dismiss_refusals.html", context)

    def alert_view(self, request: HttpRequest, object_id: int, digest: str) -> HttpResponse:
        """Redirect a paged person's link to the newest escalation for that alert."""
        # The link carries a digest, not the key, so the scan is over this integration's distinct keys:
        # at most one per alert group it ever fired.
        keys = (Escalation.objects.filter(integration_id=object_id).order_by()
                .values_list("dedup_key", flat=True).distinct())
        key = next((k for k in keys if alert_digest(k) == digest), None)
        if key is None:
            raise Http404("No escalation was fired for this alert.")
        escalation = Escalation.objects.filter(integration_id=object_id, dedup_key=key).first()
        return HttpResponseRedirect(_escalation_url(escalation))


def _escalation_url(escalation: Escalation) -> str:
    return reverse("admin:escalation_escalation_change", args=[escalation.pk])
