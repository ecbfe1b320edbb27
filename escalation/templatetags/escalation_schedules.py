"""`{% on_call_now %}` (admin index) and `{% person_on_call person %}` (a person's page): who is on call now
in each schedule, with the overrides already applied."""

from django import template
from django.conf import settings
from django.urls import reverse

from escalation.models import Person, Schedule
from escalation.services.schedule_feeds import person_feed_token
from escalation.services.schedules import person_on_call_now, schedules_on_call

register = template.Library()


@register.inclusion_tag("admin/escalation/schedule/_on_call_now.html")
def on_call_now() -> dict:
    ids = list(Schedule.objects.order_by("name").values_list("pk", flat=True))
    now = schedules_on_call(ids) if ids else {}
    return {"rows": sorted(now.values(), key=lambda row: row.schedule_name)}


@register.inclusion_tag("admin/escalation/schedule/_person_on_call.html")
def person_on_call(person: Person | None) -> dict:
    if person is None or person.pk is None:
        return {"person": None}
    schedules = list(Schedule.objects.filter(layers__participants__person=person).distinct().order_by("name"))
    feed_url = settings.SITE_URL + reverse("person-feed", args=[person_feed_token(person)])
    return {"person": person, "rows": person_on_call_now(person), "schedules": schedules, "feed_url": feed_url}
