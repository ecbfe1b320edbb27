"""The delivery history: escalations as a list and as a timeline page, their events, every webhook Vonage sent.

Nothing here edits run data: escalations change only through the engine's services (fire, cancel,
acknowledge, see `escalation.admin.fire`). Every page costs a fixed number of queries however long the
history is: names are read from the columns frozen at fire time (no joins per row), and an escalation's
page fetches its pages, its messages, the marks and the latest events in one query each (the last two
capped), linking to the full event list, paginated, for the rest.
"""

import re
from datetime import datetime, timedelta
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.views.main import ChangeList
from django.db.models import Exists, F, OuterRef, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.translation import gettext

from escalation.admin import fire
from escalation.admin.filters import id_parameter
from escalation.admin.read_only import ReadOnlyMixin
from escalation.ahead import AFTER_THE_END, next_step, sent_after_the_end
from escalation.models import (
    MARK_KINDS,
    Escalation,
    EscalationState,
    Event,
    EventKind,
    Message,
    Page,
    Person,
    WebhookEvent,
    WebhookKind,
    channel_label,
)
from escalation.models.people import count_of
from escalation.services.webhooks import webhooks_retry
from escalation.story import stories
from escalation.timeline import build_timeline, format_duration, format_offset

# The log in words shows the latest events, the full event list (linked) the rest: a runaway escalation (a flood
# of webhooks) keeps a page that reads at a glance and renders in a fixed time.
EVENT_LOG_LIMIT = 100
# Marks on the picture (replies, retries, send failures): more would only pile up on its 666-pixel axis, and the
# template draws each one.
MARK_LIMIT = 200
# An active escalation's page reloads itself this often (seconds): no JavaScript needed.
REFRESH_SECONDS = 3

GOOD_KINDS = {EventKind.DELIVERED, EventKind.READ, EventKind.REPLIED, EventKind.ACKNOWLEDGED, EventKind.REACHED}
BAD_KINDS = {EventKind.REJECTED, EventKind.UNDELIVERABLE, EventKind.SEND_FAILED, EventKind.EXHAUSTED,
             EventKind.HELD, EventKind.FAILED}
KIND_LABELS = dict(EventKind.choices)
ANSWERED = (EscalationState.ACKNOWLEDGED, EscalationState.REACHED)
ESCALATION_NUMBER = re.compile(r"#?\s*(\d{1,18})")


def time_to_ack(escalation: Escalation) -> timedelta | None:
    """How long until someone acknowledged or was reached; None for any other end."""
    if escalation.state not in ANSWERED or escalation.ended_at is None:
        return None
    return escalation.ended_at - escalation.created_at


class PersonPagedFilter(admin.SimpleListFilter):
    """Escalations that paged one person: the link from a person's page lands here."""

    title = "person paged"
    parameter_name = "person"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(str(pk), name) for pk, name in Person.objects.values_list("pk", "name")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        person_id = id_parameter(self.value())
        if person_id is None:
            return queryset
        # Exists rather than a join: a person paged in several rounds still lists the escalation once.
        return queryset.filter(Exists(Page.objects.filter(escalation=OuterRef("pk"), person_id=person_id)))


class EscalationChangeList(ChangeList):
    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        # The rows shown leave out the frozen plan (a JSON document to decode per row) and the alert text:
        # the list shows neither. The actions still get whole escalations (`get_queryset`).
        self.result_list = self.result_list.defer("plan", "message")


@admin.register(Escalation)
class EscalationAdmin(ReadOnlyMixin, fire.EscalationControlsMixin, admin.ModelAdmin):
    # Methods, not the foreign keys of the same name: a foreign key column would cost a query per row.
    list_display = ["number", "state_badge", "roster_display", "fired_by_display", "when", "acknowledged_by_display",
                    "time_to_ack_display"]
    # Filters whose choices cost no query over the escalations: a date hierarchy or a "rosters that have
    # escalations" filter each read the whole table on every page view, a cost that grows with the history.
    list_filter = ["state", ("created_at", admin.DateFieldListFilter), "roster", PersonPagedFilter]
    search_fields = ["roster_name", "message", "fired_by_name", "acknowledged_by_name", "outcome"]
    search_help_text = "A person paged, words of the alert, the roster, or the escalation's number (#12 or 12)."
    # Every column is a frozen name on the escalation's own row, so the list needs no joins.
    list_select_related = []
    list_per_page = 50
    # Skip the unfiltered COUNT(*) on a large table; the paginator already counts the filtered rows.
    show_full_result_count = False
    actions = [fire.cancel_escalations, fire.acknowledge_escalations]
    readonly_fields = ["state_badge", "roster_link", "message", "api", "fired_by_name", "created_at", "ended_at",
                       "acknowledged_by_display", "time_to_ack_display", "outcome", "plan_summary", "webhooks_link"]
    # The timeline and the log come first (see the change_form template); the record's fields fold away.
    fieldsets = [("Details", {"classes": ["collapse"], "fields": readonly_fields})]

    @admin.display(description="escalation", ordering="-id")
    def number(self, obj: Escalation) -> str:
        return f"#{obj.pk}"

    @admin.display(description="roster", ordering="roster_name")
    def roster_display(self, obj: Escalation) -> str:
        return obj.roster_name

    @admin.display(description="fired by", ordering="fired_by_name")
    def fired_by_display(self, obj: Escalation) -> str:
        return obj.fired_by_name or "—"

    @admin.display(description="when", ordering="created_at")
    def when(self, obj: Escalation) -> str:
        # strftime, not Django's date_format: the same text at a fraction of the cost, 50 times per page.
        return timezone.localtime(obj.created_at).strftime("%Y-%m-%d %H:%M:%S %Z")

    @admin.display(description="answered", ordering="acknowledged_by_name")
    def acknowledged_by_display(self, obj: Escalation) -> str:
        # Named apart: "acknowledged by" only when someone confirmed, "reached" when a phone only got it.
        if obj.state == EscalationState.ACKNOWLEDGED:
            return f"acknowledged by {obj.acknowledged_by_name or 'someone'}"
        if obj.state == EscalationState.REACHED:
            return f"reached {obj.acknowledged_by_name or 'someone'}, not acknowledged"
        return "—"

    @admin.display(description="state", ordering="state")
    def state_badge(self, obj: Escalation) -> str:
        return format_html('<span class="esc-state esc-state-{}">{}</span>', obj.state, obj.get_state_display())

    @admin.display(description="took", ordering=F("ended_at") - F("created_at"))
    def time_to_ack_display(self, obj: Escalation) -> str:
        return format_duration(time_to_ack(obj)) or "—"

    @admin.display(description="roster")
    def roster_link(self, obj: Escalation) -> str:
        if obj.roster_id is None:
            return f"{obj.roster_name} (deleted)"
        url = reverse("admin:escalation_roster_change", args=[obj.roster_id])
        return format_html('<a href="{}">{}</a>', url, obj.roster_name)

    @admin.display(description="plan (frozen at fire time)")
    def plan_summary(self, obj: Escalation) -> str:
        plan = obj.plan or {}
        people = format_html_join(
            "", "<li>{}: {}</li>",
            ((p.get("name", "?"), ", ".join(
                f"{channel_label(c.get('type', ''), c.get('address', ''))} "
                f"({c.get('condition', '')} within {format_duration(timedelta(seconds=c.get('expiry_time', 0)))})"
                for c in p.get("channels", [])))
             for p in plan.get("people", [])),
        )
        return format_html("<ol class=\"esc-plan\">{}</ol>{}", people, count_of(plan.get("rounds", 1), "round"))

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        # A number, with or without '#', is the escalation's: "2" must not find #1 whose alert mentions a 2.
        if number := ESCALATION_NUMBER.fullmatch(term):
            return queryset.filter(pk=int(number.group(1))), False
        found, duplicates = super().get_search_results(request, queryset, search_term)
        if not term:
            return found, duplicates
        # Everyone paged, not only who was credited: Exists keeps one row per escalation.
        paged = queryset.filter(Exists(Page.objects.filter(escalation=OuterRef("pk"), person_name__icontains=term)))
        return found | paged, duplicates

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return EscalationChangeList

    def action_checkbox(self, obj: Escalation) -> str:
        # Django's own renders a form widget template per row, a fifth of the list's time for 50 rows; this is
        # the same markup (a test compares them) at no cost.
        label = format_html(gettext("Select this object for an action - {}"), obj)
        return format_html('<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
                           ACTION_CHECKBOX_NAME, obj.pk, label)

    @admin.display(description="webhooks")
    def webhooks_link(self, obj: Escalation) -> str:
        url = reverse("admin:escalation_webhookevent_changelist") + f"?escalation__id__exact={obj.pk}"
        return format_html('<a href="{}">Raw webhooks tied to this escalation</a>', url)


    def render_change_form(self, request: HttpRequest, context: dict, add: bool = False, change: bool = False,
                           form_url: str = "", obj: Escalation | None = None) -> HttpResponse:
        if obj is not None:
            context.update(history_context(obj, now=timezone.now()))
            context["can_fire"] = self.has_fire_permission(request)
            context["event_list_url"] = event_list_url(obj)
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)


def history_context(escalation: Escalation, *, now: datetime) -> dict:
    """The timeline picture and the log in words for one escalation: four queries, whatever its size."""
    pages = list(Page.objects.filter(escalation=escalation).order_by("round", "index", "id"))
    messages = list(Message.objects.filter(page__escalation=escalation).order_by("page_id", "channel_index", "id"))
    events = Event.objects.filter(escalation=escalation)
    # One more than shown tells whether anything was left out, without counting the whole history.
    marks = list(events.filter(kind__in=MARK_KINDS).only("at", "kind", "text", "page_id", "message_id")
                 .order_by("at", "id")[:MARK_LIMIT + 1])
    latest = list(events.order_by("-at", "-id").values_list("at", "kind", "page_id", "message_id", "text")
                  [:EVENT_LOG_LIMIT + 1])
    log = latest[:EVENT_LOG_LIMIT]
    log.reverse()

    names = {page.id: page.person_name for page in pages}
    channels = {m.id: channel_label(m.channel_type, m.to_address) for m in messages}
    late = {m.id for m in messages if sent_after_the_end(escalation, m)}
    rows = [
        {
            # Formatted here: the template's `date` filter costs about three times as much per row.
            "time": timezone.localtime(at).strftime("%H:%M:%S"),
            "offset": format_offset((at - escalation.created_at).total_seconds()),
            "kind": KIND_LABELS.get(kind, kind),
            "tone": "good" if kind in GOOD_KINDS else "bad" if kind in BAD_KINDS else "",
            "person": names.get(page_id, ""),
            "channel": channels.get(message_id, ""),
            "text": f"{text} ({AFTER_THE_END})" if message_id in late else text,
        }
        for at, kind, page_id, message_id, text in log
    ]
    current = pages[-1] if pages else None
    return {
        "timeline": build_timeline(escalation=escalation, pages=pages, messages=messages, events=marks[:MARK_LIMIT],
                                   now=now),
        "marks_truncated": len(marks) > MARK_LIMIT,
        "mark_limit": MARK_LIMIT,
        "event_log": rows,
        "event_log_truncated": len(latest) > EVENT_LOG_LIMIT,
        "refresh_seconds": REFRESH_SECONDS if escalation.state == EscalationState.ACTIVE else None,
        "time_to_ack": format_duration(time_to_ack(escalation)),
        "next_step": next_step(escalation, current, messages),
        "stories": stories(escalation, pages, messages),
        "time_zone": timezone.localtime(now).strftime("%Z"),
    }


def event_list_url(escalation: Escalation) -> str:
    return reverse("admin:escalation_event_changelist") + "?" + urlencode({"escalation__id__exact": escalation.pk})


@admin.register(Event)
class EventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Every event of the history, paginated: the full log behind an escalation page's latest events."""

    list_display = ["at_display", "escalation_link", "offset", "kind", "person", "channel", "text"]
    list_display_links = None  # an event has nothing more to show than its row
    list_filter = ["kind"]
    search_fields = ["text"]
    list_per_page = 100
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # Only the columns shown (an escalation's plan can be large), through joins on primary keys.
        # select_related rather than annotations: the paginator's COUNT drops it and counts the events alone.
        return super().get_queryset(request).select_related("escalation", "page", "message").only(
            "at", "kind", "text", "escalation__created_at", "page__person_name", "message__channel_type",
            "message__to_address",
        )

    def get_ordering(self, request: HttpRequest) -> list[str]:
        # The global list answers "what just happened?": newest first. One escalation's events read as its story.
        if request.GET.get("escalation__id__exact"):
            return ["at", "id"]
        return ["-at", "-id"]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        escalation_id = request.GET.get("escalation__id__exact", "")
        if escalation_id.isdigit():
            extra_context = {"title": f"Every event of escalation #{escalation_id}", **(extra_context or {})}
        return super().changelist_view(request, extra_context)

    @admin.display(description="time", ordering="at")
    def at_display(self, obj: Event) -> str:
        return date_format(timezone.localtime(obj.at), "Y-m-d H:i:s T")

    @admin.display(description="escalation", ordering="escalation_id")
    def escalation_link(self, obj: Event) -> str:
        url = reverse("admin:escalation_escalation_change", args=[obj.escalation_id])
        return format_html('<a href="{}">#{}</a>', url, obj.escalation_id)

    @admin.display(description="after fire")
    def offset(self, obj: Event) -> str:
        return format_offset((obj.at - obj.escalation.created_at).total_seconds())

    @admin.display(description="person")
    def person(self, obj: Event) -> str:
        return obj.page.person_name if obj.page else ""

    @admin.display(description="channel")
    def channel(self, obj: Event) -> str:
        return channel_label(obj.message.channel_type, obj.message.to_address) if obj.message else ""

    def has_view_permission(self, request: HttpRequest, obj: Event | None = None) -> bool:
        # Events are an escalation's history: whoever may read the escalation may read all of it.
        return request.user.has_perm("escalation.view_escalation") or super().has_view_permission(request, obj)



def webhook_summary(body: object) -> str:
    """Who sent what, from either the v0.1 or the v1 shape; empty when the body is neither."""
    if not isinstance(body, dict):
        return ""
    sender = body.get("from")
    if isinstance(sender, dict):
        sender = sender.get("number") or sender.get("id") or ""
    text = body.get("text")
    message = body.get("message")
    if text is None and isinstance(message, dict):
        content = message.get("content")
        text = content.get("text") if isinstance(content, dict) else None
    status = body.get("status")
    parts = [str(p) for p in (status, sender and f"from {sender}", text and f"\u201c{str(text)[:80]}\u201d") if p]
    return " ".join(parts)


class TiedFilter(admin.SimpleListFilter):
    title = "tied to an escalation"
    parameter_name = "tied"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "yes"), ("no", "no: kept and shown only")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.filter(escalation__isnull=False)
        if self.value() == "no":
            return queryset.filter(escalation__isnull=True)
        return queryset


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyMixin, fire.FirePermissionMixin, admin.ModelAdmin):
    """Every webhook as Vonage sent it, including replies nobody was waiting for."""

    actions = ["apply_again"]
    fire_actions = ("apply_again",)

    list_display = ["received_at", "kind", "summary", "result", "applied_at", "escalation_link"]
    list_filter = ["kind", TiedFilter, ("received_at", admin.DateFieldListFilter)]
    search_fields = ["result", "dedup_key"]
    list_select_related = []
    list_per_page = 100
    show_full_result_count = False
    fields = ["received_at", "kind", "summary", "result", "applied_at", "escalation_link", "message", "dedup_key",
              "body"]
    readonly_fields = fields

    @admin.display(description="what")
    def summary(self, obj: WebhookEvent) -> str:
        return webhook_summary(obj.body)

    @admin.action(description="Apply again (those a worker could not apply)", permissions=["fire"])
    def apply_again(self, request: HttpRequest, queryset: QuerySet) -> None:
        queued = webhooks_retry(list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{queued} event(s) queued; a worker applies them at its next pass. Events "
                                   "already applied are left as they are.", messages.SUCCESS)

    @admin.display(description="escalation", ordering="escalation_id")
    def escalation_link(self, obj: WebhookEvent) -> str:
        if obj.escalation_id is None:
            return "—" if obj.kind != WebhookKind.INBOUND else "not tied: kept"
        url = reverse("admin:escalation_escalation_change", args=[obj.escalation_id])
        return format_html('<a href="{}">#{}</a>', url, obj.escalation_id)

