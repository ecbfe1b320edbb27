from django.urls import re_path

from escalation.demo import views as demo_views
from escalation.integrations import views as integration_views
from escalation.pagerduty import views as pagerduty_views
from escalation.schedules import views as schedule_views
from escalation.webhooks import views as webhook_views

urlpatterns: list = [
    # With or without a trailing slash: Vonage does not follow APPEND_SLASH's redirect of a POST, so a
    # dashboard URL typed with a slash would otherwise lose every webhook.
    re_path(r"^webhooks/status/?$", webhook_views.status, name="webhook-status"),
    re_path(r"^webhooks/inbound/?$", webhook_views.inbound, name="webhook-inbound"),
    re_path(r"^integrations/(?P<token>[^/]+)/?$", integration_views.receive, name="integration-receive"),
    # PagerDuty's Events API v2: at the root, as senders append /v2/enqueue to a base URL, and under an
    # integration's own URL.
    re_path(r"^v2/enqueue/?$", pagerduty_views.enqueue, name="pagerduty-enqueue"),
    re_path(r"^integrations/(?P<token>[^/]+)/v2/enqueue/?$", pagerduty_views.enqueue,
            name="integration-pagerduty-enqueue"),
    re_path(r"^demo/phones/escalations/?$", demo_views.phones_escalations, name="demo-phones-escalations"),
    re_path(r"^calendars/schedule/(?P<token>[^/]+)\.ics$", schedule_views.schedule_calendar, name="schedule-feed"),
    re_path(r"^calendars/person/(?P<token>[^/]+)\.ics$", schedule_views.person_calendar, name="person-feed"),
]
