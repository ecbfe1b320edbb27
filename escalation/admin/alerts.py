"""Alerts (incidents from monitoring) and the notifications integrations received, read-only but for two
actions on alerts: acknowledge (someone owns it: repeats page nobody) and resolve (it is over).

Both stop an escalation that may be paging people, so they need `escalation.fire_escalation`, like the
admin's cancel and acknowledge of an escalation.
"""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from escalation.admin.fire import FIRE_PERMISSION
from escalation.admin.read_only import ReadOnlyMixin
from escalation.models import Alert, AlertReceipt
from escalation.services.alerts import alert_acknowledge_one, alert_resolve_one


@admin.register(Alert)
class AlertAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("__str__", "integration", "state", "triggered_at", "repeats", "acknowledged_by_name",
                    "resolved_at", "escalation_link")
    list_filter = ("state", "integration")
    list_select_related = ["integration"]
    search_fields = ("title", "summary", "dedup_key")
    show_full_result_count = False
    fields = ("integration", "dedup_key", "state", "title", "summary", "escalation_link", "escalations",
              "triggered_at", "last_fired_at", "repeats", "acknowledged_at", "acknowledged_by_name", "resolved_at",
              "resolved_by_name")
    readonly_fields = fields
    actions = ["acknowledge", "resolve"]

    @admin.display(description="escalation", ordering="escalation_id")
    def escalation_link(self, alert: Alert) -> str:
        if alert.escalation_id is None:
            return "-"
        url = reverse("admin:escalation_escalation_change", args=[alert.escalation_id])
        return format_html('<a href="{}">#{}</a>', url, alert.escalation_id)

    def has_fire_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(FIRE_PERMISSION)

    @admin.action(description="Acknowledge: I own these (repeats page nobody)", permissions=["fire"])
    def acknowledge(self, request: HttpRequest, queryset: QuerySet) -> None:
        alerts = list(queryset)
        done = [a for a in alerts if alert_acknowledge_one(alert=a, by_name=request.user.get_username())]
        self._report(request, len(alerts), done, "acknowledged", "were not triggered")

    @admin.action(description="Resolve: these are over (the next firing pages again)", permissions=["fire"])
    def resolve(self, request: HttpRequest, queryset: QuerySet) -> None:
        alerts = list(queryset)
        done = [a for a in alerts if alert_resolve_one(alert=a, by_name=request.user.get_username())]
        self._report(request, len(alerts), done, "resolved", "were already resolved")

    def _report(self, request: HttpRequest, selected: int, done: list[Alert], verb: str, others: str) -> None:
        for alert in done:
            self.log_change(request, alert, f"{verb.capitalize()} the alert.")
        messages.success(request, f"{len(done)} alert(s) {verb}." + (
            f" {selected - len(done)} {others}." if selected > len(done) else ""))


@admin.register(AlertReceipt)
class AlertReceiptAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("received_at", "integration", "outcome", "status_code", "text")
    list_filter = ("outcome", "integration")
    list_select_related = ["integration"]
    show_full_result_count = False
    fields = ("integration", "received_at", "outcome", "status_code", "text", "body")
    readonly_fields = fields
