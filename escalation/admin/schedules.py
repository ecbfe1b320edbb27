"""Admin for schedules: layers and their participants, overrides, the 14-day picture, covering a shift in two
clicks, the secret iCal feed URLs (rotated like integrations' tokens), and the hand-off notices sent."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from escalation.admin.people import REORDER_CSS, REORDER_JS
from escalation.admin.read_only import ReadOnlyMixin
from escalation.models import HandoffNotice, Layer, LayerParticipant, Override, Person, Schedule
from escalation.models.schedules import WEEKDAY_NAMES, parse_weekdays
from escalation.schedules.shifts import local_to_instant
from escalation.services.handoff_notices import ScheduleNotices, schedule_handoff_notices
from escalation.services.schedule_feeds import person_feed_rotate
from escalation.services.schedules import (
    feed_token_rotate,
    layer_participants_changed,
    override_create,
    schedule_on_call,
    schedule_picture,
)

SCHEDULE_CSS = {"all": ("escalation/schedules.css",)}


def schedule_feed_url(schedule: Schedule) -> str:
    return settings.SITE_URL + reverse("schedule-feed", args=[schedule.feed_token])


class LayerInline(admin.StackedInline):
    model = Layer
    fields = (("position", "name"), ("shift_length", "unit"), ("handoff_date", "handoff_time"),
              ("restrict_weekdays", "restrict_start", "restrict_end"), "participants_link")
    readonly_fields = ("participants_link",)
    extra = 0
    show_change_link = True

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        participants = LayerParticipant.objects.select_related("person").order_by("position", "id")
        return super().get_queryset(request).prefetch_related(Prefetch("participants", queryset=participants))

    @admin.display(description="participants, in order")
    def participants_link(self, layer: Layer) -> str:
        if layer.pk is None:
            return "Save first, then add people on the layer's own page."
        names = " → ".join(p.person.name for p in layer.participants.all()) or "nobody yet"
        url = reverse("admin:escalation_layer_change", args=[layer.pk])
        return format_html('{} · <a href="{}">edit participants</a>', names, url)


def layer_rule_text(layer: Layer) -> str:
    """'Every week, first hand-off Mon 05 Jan 2026 09:00, only Mon Tue Wed Thu Fri 09:00-17:00'."""
    first = datetime.combine(layer.handoff_date, layer.handoff_time)
    length = layer.unit.removesuffix("s") if layer.shift_length == 1 else f"{layer.shift_length} {layer.unit}"
    text = f"Every {length}, first hand-off {first:%a %d %b %Y %H:%M}"
    if layer.restrict_start is None or layer.restrict_end is None:
        return text
    days = sorted(parse_weekdays(layer.restrict_weekdays))
    return (f"{text}, only {' '.join(WEEKDAY_NAMES[day] for day in days) or 'daily'} "
            f"{layer.restrict_start:%H:%M}-{layer.restrict_end:%H:%M}")


class CoverForm(forms.Form):
    person = forms.ModelChoiceField(queryset=Person.objects.filter(is_active=True), empty_label=None)
    start = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    end = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    mode = forms.ChoiceField(choices=Override._meta.get_field("mode").choices, initial="replace")


def _local_input(value: str, tz: ZoneInfo) -> str:
    """An ISO instant as a datetime-local field's value in the schedule's zone; '' if it is not one."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return ""
    if moment.tzinfo is None:
        return ""
    return f"{moment.astimezone(tz):%Y-%m-%dT%H:%M}"


def notices_html(notices: ScheduleNotices, tz: ZoneInfo) -> str:
    """The next notices (who, when due, for which shift) and the last ones (with what became of them, and
    the latest delivery status Vonage reported)."""
    def when(moment: datetime) -> str:
        return f"{moment.astimezone(tz):%a %d %b %H:%M}"

    coming = format_html_join("", "<li>{} at {}: {}'s shift from {}</li>", (
        ("due", when(n.due_at), n.person_name, when(n.shift_start)) for n in notices.coming))
    def delivery(notice: HandoffNotice) -> str:
        return f"; {notice.status} at {when(notice.status_at)}" if notice.status_at else ""

    last = format_html_join("", "<li>{} at {}: {}, {}{}</li>", (
        (n.get_state_display(), when(n.settled_at or n.due_at), n.person.name, n.outcome, delivery(n))
        for n in notices.last))
    return format_html('<p>Next:</p><ul class="handoff-notices">{}</ul><p>Last:</p><ul class="handoff-notices">{}</ul>',
                       coming or "none in the next 60 days", last or "none yet")


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    list_display = ("name", "time_zone", "on_call_now")
    search_fields = ("name", "description")
    fields = ("name", "time_zone", "description", "handoff_notice_minutes", "handoff_notices", "layer_list",
              "feed_url")
    readonly_fields = ("handoff_notices", "layer_list", "feed_url")
    inlines = [LayerInline]

    def get_inlines(self, request: HttpRequest, obj: Schedule | None) -> list:
        # A new schedule gets its first layers inline; a saved one lists them, each edited on its own page
        # with its people. Five layers' forms cost more than the rest of the page, picture included
        # (bench/schedules.py), and the page is for seeing who is on call.
        return [] if obj is not None else self.inlines

    @admin.display(description="layers, in priority order")
    def layer_list(self, schedule: Schedule) -> str:
        if schedule.pk is None:
            return "Add them below; a layer's people are added on its own page once it is saved."
        participants = LayerParticipant.objects.select_related("person").order_by("position", "id")
        layers = list(schedule.layers.order_by("position", "id")
                      .prefetch_related(Prefetch("participants", queryset=participants)))
        items = format_html_join("", '<li><strong>{}</strong>: {}; {} · <a href="{}">edit participants</a></li>', (
            (str(layer), layer_rule_text(layer), " → ".join(p.person.name for p in layer.participants.all())
             or "nobody yet", reverse("admin:escalation_layer_change", args=[layer.pk]))
            for layer in layers))
        position = max((layer.position for layer in layers), default=-1) + 1
        add = f"{reverse('admin:escalation_layer_add')}?{urlencode({'schedule': schedule.pk, 'position': position})}"
        return format_html('<ul class="schedule-layers">{}</ul><a class="addlink" href="{}">Add a layer</a>', items,
                           add)

    class Media:
        css = SCHEDULE_CSS

    def get_urls(self) -> list:
        wrap = self.admin_site.admin_view
        return [
            path("<int:object_id>/cover/", wrap(self.cover_view), name="escalation_schedule_cover"),
            path("<int:object_id>/rotate-feed/", wrap(self.rotate_feed_view), name="escalation_schedule_rotate_feed"),
            path("person-feed/<int:person_id>/rotate/", wrap(self.rotate_person_feed_view),
                 name="escalation_schedule_rotate_person_feed"),
        ] + super().get_urls()

    @admin.display(description="on call now")
    def on_call_now(self, schedule: Schedule) -> str:
        now = schedule_on_call(schedule)
        if not now.people:
            return "nobody"
        return f"{', '.join(name for _, name in now.people)} until {now.until_text()}"

    @admin.display(description="hand-off notices")
    def handoff_notices(self, schedule: Schedule) -> str:
        if schedule.pk is None or schedule.handoff_notice_minutes is None:
            return "Off: set the minutes above to tell each person before their shift."
        return notices_html(schedule_handoff_notices(schedule), ZoneInfo(schedule.time_zone))

    @admin.display(description="iCal feed")
    def feed_url(self, schedule: Schedule) -> str:
        if schedule.pk is None:
            return "Shown after saving."
        rotate = reverse("admin:escalation_schedule_rotate_feed", args=[schedule.pk])
        return format_html('<code>{}</code> <a href="{}">Rotate…</a>', schedule_feed_url(schedule), rotate)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict | None = None) -> HttpResponse:
        extra_context = extra_context or {}
        schedule = self.get_object(request, object_id)
        if schedule is not None:
            extra_context["picture"] = schedule_picture(schedule)
            extra_context["cover_url"] = reverse("admin:escalation_schedule_cover", args=[schedule.pk])
        return super().change_view(request, object_id, form_url, extra_context)

    def cover_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """'I'll cover Tony from ... to ...': reached from a bar of the picture or a person's page, prefilled."""
        schedule = get_object_or_404(Schedule, pk=object_id)
        if not self.has_change_permission(request, schedule):
            raise PermissionDenied
        tz = ZoneInfo(schedule.time_zone)
        if request.method == "POST":
            form = CoverForm(request.POST)
            if form.is_valid():
                # The form's times are the schedule's wall times, whatever the server's own zone.
                start, end = (local_to_instant(form.cleaned_data[k].replace(tzinfo=None), tz) for k in ("start", "end"))
                try:
                    override = override_create(schedule=schedule, person=form.cleaned_data["person"], start=start,
                                               end=end, mode=form.cleaned_data["mode"],
                                               created_by_name=request.user.get_username())
                except ValidationError as e:
                    form.add_error(None, e)
                else:
                    messages.success(request, f"{override.person.name} covers {schedule.name} from "
                                     f"{start:%a %d %b %H:%M} to {end:%a %d %b %H:%M} ({schedule.time_zone}).")
                    return HttpResponseRedirect(reverse("admin:escalation_schedule_change", args=[schedule.pk]))
        else:
            now = timezone.now()
            form = CoverForm(initial={
                "person": request.GET.get("person") or None,
                "start": _local_input(request.GET.get("start", ""), tz) or _local_input(now.isoformat(), tz),
                "end": _local_input(request.GET.get("end", ""), tz)
                or _local_input((now + timedelta(hours=8)).isoformat(), tz),
            })
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "schedule": schedule,
                   "form": form, "covered": request.GET.get("covered", "")[:200], "title": f"Cover in {schedule}"}
        return TemplateResponse(request, "admin/escalation/schedule/cover.html", context)

    def rotate_feed_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        schedule = get_object_or_404(Schedule, pk=object_id)
        if not self.has_change_permission(request, schedule):
            raise PermissionDenied
        if request.method == "POST":
            feed_token_rotate(schedule)
            messages.success(request, f"New feed URL: {schedule_feed_url(schedule)} (the old one no longer works).")
            return HttpResponseRedirect(reverse("admin:escalation_schedule_change", args=[schedule.pk]))
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "schedule": schedule,
                   "title": f"Rotate the feed URL of {schedule}"}
        return TemplateResponse(request, "admin/escalation/schedule/rotate_feed.html", context)

    def rotate_person_feed_view(self, request: HttpRequest, person_id: int) -> HttpResponse:
        person = get_object_or_404(Person, pk=person_id)
        if not request.user.has_perm("escalation.change_person"):
            raise PermissionDenied
        if request.method == "POST":
            person_feed_rotate(person)
            messages.success(request, f"{person.name}'s calendar has a new URL; the old one no longer works.")
            return HttpResponseRedirect(reverse("admin:escalation_person_change", args=[person.pk]))
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "schedule": None,
                   "person": person, "title": f"Rotate the calendar URL of {person}"}
        return TemplateResponse(request, "admin/escalation/schedule/rotate_feed.html", context)


class LayerParticipantInline(admin.TabularInline):
    model = LayerParticipant
    fields = ("position", "person")
    extra = 1
    classes = ("reorderable",)

    class Media:
        js = REORDER_JS
        css = REORDER_CSS


@admin.register(Layer)
class LayerAdmin(admin.ModelAdmin):
    list_display = ("__str__", "schedule", "shift_length", "unit", "handoff_date", "handoff_time")
    list_filter = ("schedule",)
    fields = ("schedule", ("position", "name"), ("shift_length", "unit"), ("handoff_date", "handoff_time"),
              ("restrict_weekdays", "restrict_start", "restrict_end"))
    inlines = [LayerParticipantInline]

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: list[forms.BaseFormSet],
                     change: bool) -> None:
        layer = form.instance
        before = []
        if change:
            before = list(layer.participants.order_by("position", "id").values_list("person_id", flat=True))
        super().save_related(request, form, formsets, change)
        if change:
            # Adding or removing someone must not hand the current shift to someone else.
            layer_participants_changed(layer=layer, before=before)


@admin.register(Override)
class OverrideAdmin(admin.ModelAdmin):
    list_display = ("schedule", "person", "start", "end", "mode", "created_by_name")
    list_filter = ("schedule", "mode")
    search_fields = ("person__name", "schedule__name")
    fields = ("schedule", "person", "start", "end", "mode")

    def save_model(self, request: HttpRequest, obj: Override, form: forms.ModelForm, change: bool) -> None:
        if not change:
            obj.created_by_name = request.user.get_username()
        super().save_model(request, obj, form, change)


@admin.register(HandoffNotice)
class HandoffNoticeAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Each notice as the worker settled it, and what Vonage's status webhooks said of it since: whether the
    person got (or read) their notice."""

    list_display = ("due_at", "schedule", "person", "shift_start", "state", "status", "status_at", "to_address")
    list_filter = ("state", "status", "schedule")
    list_select_related = ["schedule", "person"]
    search_fields = ("person__name", "schedule__name", "to_address")
    show_full_result_count = False
    fields = ("schedule", "person", "shift_start", "shift_end", "due_at", "state", "outcome", "settled_at",
              "attempts", "channel_type", "to_address", "text", "status", "status_at", "status_error",
              "message_uuid", "client_ref")
    readonly_fields = fields
