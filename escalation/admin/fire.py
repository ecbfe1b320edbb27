"""Firing, cancelling and acknowledging escalations from the admin.

Each is an admin action with an intermediate page (the pattern of Django's `delete_selected`: the first
POST renders a form carrying the selected ids, the confirming POST does the work and goes back to the
list), plus a button on the object's own page that leads to the same form. All of them need the
`escalation.fire_escalation` permission, not merely the right to change rosters: without it the
actions are not offered, the buttons are not shown, and a POST made anyway is answered 403.
The work itself is done by the engine's services; this module only asks and reports.
"""

from collections.abc import Callable
from datetime import timedelta

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from escalation.ahead import clock, vonage_may_still_send
from escalation.engine.plan import page_text_length, personal_text
from escalation.models import (
    TEXT_LIMITS,
    Api,
    ChannelType,
    Escalation,
    EscalationState,
    Message,
    Page,
    Roster,
    short_label,
)
from escalation.services.escalations import (
    FirePreview,
    FireRefused,
    escalation_acknowledge,
    escalation_cancel,
    escalation_fire,
    fire_preview,
)
from escalation.timeline import format_duration

FIRE_PERMISSION = "escalation.fire_escalation"
DEFAULT_MESSAGE = "Production is down: please acknowledge"
SOMEONE_ELSE = "else"  # the acknowledge form's choice for "not one of the people paged"
NOT_CHOSEN = ""  # nobody is credited by default: the admin must say who answered


class FirePermissionMixin:
    """`has_fire_permission` for `@admin.action(permissions=["fire"])`, and a 403 for a forged action POST."""

    fire_actions: tuple[str, ...] = ()

    def has_fire_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(FIRE_PERMISSION)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        # Django would only say "No action selected" for an action it did not offer; refuse loudly instead.
        if (request.method == "POST" and request.POST.get("action") in self.fire_actions
                and not self.has_fire_permission(request)):
            raise PermissionDenied
        return super().changelist_view(request, extra_context)


def require_fire_permission(model_admin: FirePermissionMixin, request: HttpRequest) -> None:
    if not model_admin.has_fire_permission(request):
        raise PermissionDenied


def by_name(request: HttpRequest) -> str:
    return request.user.get_username()


# --- Fire ---------------------------------------------------------------------------------------------------


def preview_rosters(rosters: list[Roster], message: str) -> list[dict]:
    """Each roster's paging order for the confirmation page, or the reasons it cannot be fired."""
    # Firing a roster that is already escalating pages everyone twice; say so before the admin confirms.
    running: dict[int, list[Escalation]] = {}
    for escalation in Escalation.objects.filter(roster__in=rosters, state=EscalationState.ACTIVE).order_by("id"):
        running.setdefault(escalation.roster_id, []).append(escalation)
    previews = []
    for roster in rosters:
        problems: list[str] = []
        try:
            preview = fire_preview(roster=roster, message=message)
        except FireRefused as refused:
            problems = refused.messages
            try:
                # The plan stays in view beside a message that is too long: it shows where the text does not fit.
                preview = fire_preview(roster=roster, message="")
            except FireRefused:
                preview = FirePreview([], [])  # nobody to page: the problems say why, skipped schedules included
        people = preview.people
        offset = 0
        for person in people:
            # When this person is paged at the latest: everyone before them let their whole window run out.
            person["starts_after"] = format_duration(timedelta(seconds=offset))
            person["wait"] = format_duration(timedelta(seconds=person["wait_seconds"]))
            person["text_length"] = page_text_length(person["name"], message)
            for channel in person["channels"]:
                channel["wait"] = format_duration(timedelta(seconds=channel["expiry_time"]))
            offset += person["wait_seconds"]
        previews.append({
            "roster": roster, "people": people, "problems": problems, "running": running.get(roster.pk, []),
            "skipped": preview.skipped,
            "warnings": [warning for person in people for warning in person["warnings"]],
            "round_length": format_duration(timedelta(seconds=offset)),
            "longest": format_duration(timedelta(seconds=offset * roster.rounds)),
        })
    return previews


def fire_rosters(request: HttpRequest, rosters: list[Roster], message: str) -> list[Escalation]:
    # All or nothing: a refusal for the third roster must not leave the first two firing.
    with transaction.atomic():
        return [
            escalation_fire(roster=roster, message=message, fired_by=request.user, fired_by_name=by_name(request))
            for roster in rosters
        ]


def fire_page(model_admin: admin.ModelAdmin, request: HttpRequest, rosters: list[Roster], *,
              via_action: bool) -> TemplateResponse | list[Escalation]:
    """The confirmation page, or the escalations fired when the admin confirmed."""
    require_fire_permission(model_admin, request)
    message = request.POST.get("message", DEFAULT_MESSAGE) if request.method == "POST" else DEFAULT_MESSAGE
    errors: list[str] = []
    if request.method == "POST" and request.POST.get("post") == "yes":
        try:
            return fire_rosters(request, rosters, message)
        except FireRefused as refused:
            errors = refused.messages
    previews = preview_rosters(rosters, message)
    used = {c["type"] for p in previews for person in p["people"] for c in person["channels"]}
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Fire escalation",
        "opts": model_admin.opts,
        "rosters": rosters,
        "previews": previews,
        "message": message,
        "errors": errors,
        "limits": [(ChannelType(t).label, limit) for t, limit in TEXT_LIMITS.items() if not used or t in used],
        # As the pages really arrive ("[Tony]: ..."), for the first person paged.
        "example_text": next((personal_text(person["name"], message) for p in previews for person in p["people"]),
                             personal_text("Tony", message)),
        "via_action": via_action,
        "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        "can_confirm": bool(rosters) and not any(p["problems"] for p in previews),
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "admin/escalation/fire_confirmation.html", context)


def fired_message(escalations: list[Escalation]) -> str:
    links = format_html_join(
        ", ", '<a href="{}">#{} {}</a>',
        ((reverse("admin:escalation_escalation_change", args=[e.pk]), e.pk, e.roster_name) for e in escalations),
    )
    return format_html("Fired {}. The timeline shows who is being paged.", links)


@admin.action(description="Fire escalation…", permissions=["fire"])
def fire_escalation(model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
    result = fire_page(model_admin, request, list(queryset.order_by("name")), via_action=True)
    if isinstance(result, HttpResponse):
        return result
    model_admin.message_user(request, fired_message(result), messages.SUCCESS)
    return None


class RosterFireMixin(FirePermissionMixin):
    """For RosterAdmin: the "Fire" button's page, at <roster>/fire/."""

    fire_actions = ("fire_escalation",)

    def get_urls(self) -> list:
        opts = self.opts
        return [
            path("<path:object_id>/fire/", self.admin_site.admin_view(self.fire_view),
                 name=f"{opts.app_label}_{opts.model_name}_fire"),
        ] + super().get_urls()

    def fire_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        require_fire_permission(self, request)
        roster = self.get_object(request, unquote(object_id))
        if roster is None:
            raise Http404("No such roster.")
        if not self.has_view_or_change_permission(request, roster):
            raise PermissionDenied
        result = fire_page(self, request, [roster], via_action=False)
        if isinstance(result, HttpResponse):
            return result
        self.message_user(request, fired_message(result), messages.SUCCESS)
        # Straight to the new escalation's timeline, which refreshes itself while it runs.
        return HttpResponseRedirect(reverse("admin:escalation_escalation_change", args=[result[0].pk]))


# --- Cancel and acknowledge on someone's behalf ----------------------------------------------------------------


def paged_people(escalations: list[Escalation]) -> dict[int, list[tuple[int, str]]]:
    """For each escalation, the plan positions and names of the people paged so far, latest first."""
    choices: dict[int, list[tuple[int, str]]] = {e.pk: [] for e in escalations}
    for escalation_id, index, name in (
        Page.objects.filter(escalation__in=escalations).order_by("escalation_id", "-round", "-index")
        .values_list("escalation_id", "index", "person_name")
    ):
        if index not in {i for i, _ in choices[escalation_id]}:
            choices[escalation_id].append((index, name))
    return choices


def cancel_page(model_admin: admin.ModelAdmin, request: HttpRequest, escalations: list[Escalation], *,
                via_action: bool) -> TemplateResponse | list[Escalation]:
    require_fire_permission(model_admin, request)
    active = [e for e in escalations if e.state == EscalationState.ACTIVE]
    if request.method == "POST" and request.POST.get("post") == "yes":
        reason = request.POST.get("reason", "").strip()
        return [e for e in active if escalation_cancel(escalation=e, by_name=by_name(request), reason=reason)]
    return _control_page(model_admin, request, "admin/escalation/fire_cancel.html", escalations, active,
                         title="Cancel escalation", via_action=via_action, action="cancel_escalations")


def acknowledge_page(model_admin: admin.ModelAdmin, request: HttpRequest, escalations: list[Escalation], *,
                     via_action: bool) -> TemplateResponse | list[Escalation]:
    require_fire_permission(model_admin, request)
    active = [e for e in escalations if e.state == EscalationState.ACTIVE]
    people = paged_people(active)
    unanswered = [e for e in active if request.POST.get(f"person_{e.pk}", NOT_CHOSEN) == NOT_CHOSEN]
    if request.method == "POST" and request.POST.get("post") == "yes" and not unanswered:
        note = request.POST.get("note", "").strip()
        done = []
        for escalation in active:
            chosen = request.POST.get(f"person_{escalation.pk}", SOMEONE_ELSE)
            names = dict(people[escalation.pk])
            index = int(chosen) if chosen.isdigit() and int(chosen) in names else None
            how = f"acknowledged in the admin by {by_name(request)}" + (f": {note}" if note else "")
            name = names[index] if index is not None else by_name(request)
            if escalation_acknowledge(escalation=escalation, person_index=index, by_name=name, how=how):
                done.append(escalation)
        return done
    rows = [{"escalation": e, "people": people[e.pk], "chosen": request.POST.get(f"person_{e.pk}", NOT_CHOSEN)}
            for e in active]
    asked = request.method == "POST" and request.POST.get("post") == "yes"
    response = _control_page(model_admin, request, "admin/escalation/fire_acknowledge.html", escalations, active,
                             title="Acknowledge on someone's behalf", via_action=via_action,
                             action="acknowledge_escalations",
                             extra={"rows": rows, "someone_else": SOMEONE_ELSE, "missing_answer": asked})
    if asked:
        response.status_code = 400  # nothing was recorded: say who answered first
    return response


def still_sent(escalations: list[Escalation]) -> list[dict]:
    """For each escalation, what ending it now cannot stop: in Dispatch mode Vonage's failover goes on sending
    the paged person's remaining channels and has no call to recall them; in Messages mode nothing more is sent."""
    pages = list(Page.objects.filter(escalation__in=escalations, state="active", dispatch_uuid__isnull=False))
    messages = list(Message.objects.filter(page__in=pages))
    found = []
    for escalation in escalations:
        mine = [p for p in pages if p.escalation_id == escalation.pk]
        steps = vonage_may_still_send(escalation, mine, messages)
        found.append({
            "escalation": escalation,
            "dispatch": escalation.api == Api.DISPATCH,
            "steps": [f"{step.name}'s {short_label(step.channel_type)}, at about {clock(step.at)}: Vonage's "
                      "failover cannot be recalled" for step in steps],
        })
    return found


def _control_page(model_admin: admin.ModelAdmin, request: HttpRequest, template: str, escalations: list[Escalation],
                  active: list[Escalation], *, title: str, via_action: bool, action: str,
                  extra: dict | None = None) -> TemplateResponse:
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "opts": model_admin.opts,
        "escalations": escalations,
        "active": active,
        "ended": [e for e in escalations if e.state != EscalationState.ACTIVE],
        "still_sent": still_sent(active),
        "via_action": via_action,
        "action": action,
        "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        **(extra or {}),
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, template, context)


def _report(model_admin: admin.ModelAdmin, request: HttpRequest, done: list[Escalation], verb: str) -> None:
    if not done:
        model_admin.message_user(request, f"Nothing {verb}: the escalations had already ended.", messages.WARNING)
        return
    links = format_html_join(", ", '<a href="{}">#{}</a>', (
        (reverse("admin:escalation_escalation_change", args=[e.pk]), e.pk) for e in done))
    model_admin.message_user(request, format_html("{} {}.", verb.capitalize(), links), messages.SUCCESS)


@admin.action(description="Cancel escalation…", permissions=["fire"])
def cancel_escalations(model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
    result = cancel_page(model_admin, request, list(queryset), via_action=True)
    if isinstance(result, HttpResponse):
        return result
    _report(model_admin, request, result, "cancelled")
    return None


@admin.action(description="Acknowledge on someone's behalf…", permissions=["fire"])
def acknowledge_escalations(model_admin: admin.ModelAdmin, request: HttpRequest,
                            queryset: QuerySet) -> HttpResponse | None:
    result = acknowledge_page(model_admin, request, list(queryset), via_action=True)
    if isinstance(result, HttpResponse):
        return result
    _report(model_admin, request, result, "acknowledged")
    return None


ControlPage = Callable[..., TemplateResponse | list[Escalation]]


class EscalationControlsMixin(FirePermissionMixin):
    """For EscalationAdmin: the Cancel and Acknowledge buttons' pages, at <escalation>/cancel/ and /acknowledge/."""

    fire_actions = ("cancel_escalations", "acknowledge_escalations")

    def get_urls(self) -> list:
        opts = self.opts
        prefix = f"{opts.app_label}_{opts.model_name}"
        return [
            path("<path:object_id>/cancel/", self.admin_site.admin_view(self.cancel_view), name=f"{prefix}_cancel"),
            path("<path:object_id>/acknowledge/", self.admin_site.admin_view(self.acknowledge_view),
                 name=f"{prefix}_acknowledge"),
        ] + super().get_urls()

    def cancel_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._control_view(request, object_id, cancel_page, "cancelled")

    def acknowledge_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._control_view(request, object_id, acknowledge_page, "acknowledged")

    def _control_view(self, request: HttpRequest, object_id: str, page: ControlPage, verb: str) -> HttpResponse:
        require_fire_permission(self, request)
        escalation = self.get_object(request, unquote(object_id))
        if escalation is None:
            raise Http404("No such escalation.")
        result = page(self, request, [escalation], via_action=False)
        if isinstance(result, HttpResponse):
            return result
        _report(self, request, result, verb)
        return HttpResponseRedirect(reverse("admin:escalation_escalation_change", args=[escalation.pk]))
