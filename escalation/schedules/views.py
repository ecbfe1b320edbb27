"""The secret iCal feed URLs: an unknown token is 404, like an integration's."""

from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from escalation.models import PersonFeed, Schedule
from escalation.services.schedule_feeds import person_feed, schedule_feed

CALENDAR = "text/calendar; charset=utf-8"


@require_GET
def schedule_calendar(request: HttpRequest, token: str) -> HttpResponse:
    schedule = Schedule.objects.filter(feed_token=token).first()
    if schedule is None:
        raise Http404
    return HttpResponse(schedule_feed(schedule), content_type=CALENDAR)


@require_GET
def person_calendar(request: HttpRequest, token: str) -> HttpResponse:
    feed = PersonFeed.objects.filter(token=token).select_related("person").first()
    if feed is None:
        raise Http404
    return HttpResponse(person_feed(feed.person), content_type=CALENDAR)
