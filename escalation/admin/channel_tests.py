"""The Person page's "Send test message": one message to each of the person's channels, and its results.

The results page reloads itself while an answer can still come (Vonage's status webhooks move each test
up the ladder: submitted, delivered, read, or an error), so an on-call lead watches the phone light up.
"""

from datetime import datetime, timedelta

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone

from escalation.models import ChannelTest, ChannelType, MessageStatus, Person, Sender
from escalation.services.integrations import channel_test_send

REFRESH_SECONDS = 2
# After this a missing "read" is an answer in itself (the person has not opened it); stop reloading.
WATCH_FOR = timedelta(minutes=10)


def channel_test_urls(model_admin: admin.ModelAdmin) -> list[URLPattern]:
    """URLs for PersonAdmin.get_urls."""
    wrap = model_admin.admin_site.admin_view

    def send(request: HttpRequest, object_id: int) -> HttpResponse:
        return send_view(model_admin, request, object_id)

    def results(request: HttpRequest, object_id: int) -> HttpResponse:
        return results_view(model_admin, request, object_id)

    return [
        path("<int:object_id>/test-message/", wrap(send), name="escalation_person_test_message"),
        path("<int:object_id>/test-message/results/", wrap(results), name="escalation_person_test_results"),
    ]


def _person(model_admin: admin.ModelAdmin, request: HttpRequest, object_id: int) -> Person:
    person = get_object_or_404(Person, pk=object_id)
    if not model_admin.has_change_permission(request, person):
        raise PermissionDenied
    return person


def _context(model_admin: admin.ModelAdmin, request: HttpRequest, person: Person, title: str) -> dict:
    return {**model_admin.admin_site.each_context(request), "opts": Person._meta, "person": person, "title": title}


def send_view(model_admin: admin.ModelAdmin, request: HttpRequest, object_id: int) -> HttpResponse:
    """GET asks (it costs a message per channel and wakes someone's phone); POST sends."""
    person = _person(model_admin, request, object_id)
    if request.method == "POST":
        channel_test_send(person=person)
        return HttpResponseRedirect(reverse("admin:escalation_person_test_results", args=[person.pk]))
    senders = set(Sender.objects.values_list("channel_type", flat=True))
    channels = [
        {"label": ChannelType(c.type).label, "address": c.address, "has_sender": c.type in senders}
        for c in person.channels.order_by("position", "id")
    ]
    context = _context(model_admin, request, person, f"Send a test message to {person.name}")
    context["channels"] = channels
    return TemplateResponse(request, "admin/escalation/person/test_message.html", context)


def waiting(test: ChannelTest, now: datetime) -> bool:
    """Can a further status still arrive for this test?"""
    if now - test.created_at > WATCH_FOR:
        return False
    if test.status in (MessageStatus.QUEUED, MessageStatus.SUBMITTED):
        return True
    # SMS never reports "read" (VONAGE_FACTS.md); the other channels may still.
    return test.status == MessageStatus.DELIVERED and test.channel_type != ChannelType.SMS


def results_view(model_admin: admin.ModelAdmin, request: HttpRequest, object_id: int) -> HttpResponse:
    """The latest batch of tests (one send shares one created_at), as it is now."""
    person = _person(model_admin, request, object_id)
    tests = []
    if latest := ChannelTest.objects.filter(person=person).first():
        tests = list(ChannelTest.objects.filter(person=person, created_at=latest.created_at).order_by("id"))
    now = timezone.now()
    rows = [{"test": t, "label": ChannelType(t.channel_type).label, "waiting": waiting(t, now)} for t in tests]
    context = _context(model_admin, request, person, f"Test message to {person.name}")
    context.update(rows=rows, refresh=REFRESH_SECONDS if any(r["waiting"] for r in rows) else None)
    return TemplateResponse(request, "admin/escalation/person/test_message_results.html", context)
