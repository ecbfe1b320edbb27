"""Admin for what an on-call lead edits: people with their channels, rosters with their members, senders.

Every rule is checked by the model's `clean()` or by the inline formsets below, so a violation comes back
as a form error on the page instead of an IntegrityError. Channels and members are ordered by `position`;
escalation/reorder.js adds drag handles and up/down buttons that renumber it.
"""

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Prefetch, QuerySet
from django.forms import BaseFormSet, ModelForm
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern

from escalation.admin.channel_tests import channel_test_urls
from escalation.admin.filters import id_parameter
from escalation.admin.fire import RosterFireMixin, fire_escalation
from escalation.models import (
    MIN_CHANNELS_PER_PERSON,
    Channel,
    ChannelType,
    Person,
    Roster,
    RosterMember,
    Sender,
)
from escalation.models.people import count_of
from escalation.services.config import sms_read_warnings

REORDER_JS = ("escalation/reorder.js",)
REORDER_CSS = {"all": ("escalation/reorder.css",)}


def channels_summary(channels: list[Channel]) -> str:
    if not channels:
        return "no channels"
    return " → ".join(f"{c.get_type_display()} {c.address}" for c in channels)


def _kept_forms(formset: BaseInlineFormSet) -> list:
    """The forms that will be rows after saving: existing ones not marked for deletion, and filled-in new ones."""
    return [
        form for form in formset.forms
        if not formset._should_delete_form(form) and (form.instance.pk is not None or form.has_changed())
    ]


class ChannelInlineFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        person = self.instance
        if person.pk is None:
            return
        rosters = list(Roster.objects.filter(members__person=person).order_by("name").values_list("name", flat=True))
        kept = len(_kept_forms(self))
        if rosters and kept < MIN_CHANNELS_PER_PERSON:
            raise ValidationError(
                f"{person.name} is on {'the roster' if len(rosters) == 1 else 'the rosters'} {', '.join(rosters)}, "
                "so they need at least "
                f"{MIN_CHANNELS_PER_PERSON} channels; this would leave {kept}. Keep {MIN_CHANNELS_PER_PERSON}, "
                "or take them off those rosters first."
            )


class ChannelInline(admin.TabularInline):
    model = Channel
    formset = ChannelInlineFormSet
    fields = ("position", "type", "address", "condition", "expiry_time")
    extra = 1
    classes = ("reorderable",)

    class Media:
        js = REORDER_JS
        css = REORDER_CSS


class RosterMemberInlineFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        # Checked before the model formset's own unique check, whose message does not name the person.
        seen = set()
        for form in _kept_forms(self):
            person = form.cleaned_data.get("person")
            if person is None:  # a schedule: its own uniqueness is the model formset's check
                continue
            if person.pk in seen:
                raise ValidationError(f"{person.name} is listed twice; a person can be on a roster only once.")
            seen.add(person.pk)
        super().clean()


class RosterMemberInline(admin.TabularInline):
    model = RosterMember
    formset = RosterMemberInlineFormSet
    fields = ("position", "person", "schedule", "channels")
    readonly_fields = ("channels",)
    extra = 1
    classes = ("reorderable",)

    class Media:
        js = REORDER_JS
        css = REORDER_CSS

    @admin.display(description="channels, in order")
    def channels(self, member: RosterMember) -> str:
        if member.schedule_id is not None:
            return "whoever is on call then"
        if member.person_id is None:
            return "-"
        return channels_summary(list(member.person.channels.order_by("position", "id")))


class RosterFilter(admin.SimpleListFilter):
    title = "roster"
    parameter_name = "roster"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(str(pk), name) for pk, name in Roster.objects.values_list("pk", "name")] + [("none", "on no roster")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "none":
            return queryset.filter(memberships__isnull=True)
        roster_id = id_parameter(self.value())
        if roster_id is not None:
            return queryset.filter(memberships__roster_id=roster_id)
        return queryset


class ChannelTypeFilter(admin.SimpleListFilter):
    title = "channel type"
    parameter_name = "channel_type"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return list(ChannelType.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in ChannelType.values:
            return queryset.filter(channels__type=self.value()).distinct()
        return queryset


@admin.register(Person)
class PersonAdmin(admin.ModelAdmin):
    list_display = ("name", "is_active", "channel_list", "roster_list")
    list_filter = ("is_active", RosterFilter, ChannelTypeFilter)
    search_fields = ("name", "notes", "channels__address")
    fields = ("name", "is_active", "notes")
    inlines = [ChannelInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).prefetch_related(
            Prefetch("channels", queryset=Channel.objects.order_by("position", "id")),
            Prefetch("memberships", queryset=RosterMember.objects.select_related("roster").order_by("roster__name")),
        )

    def get_urls(self) -> list[URLPattern]:
        return channel_test_urls(self) + super().get_urls()

    @admin.display(description="channels, in order")
    def channel_list(self, person: Person) -> str:
        return channels_summary(list(person.channels.all()))

    @admin.display(description="rosters")
    def roster_list(self, person: Person) -> str:
        return ", ".join(f"{m.roster.name} (#{m.position})" for m in person.memberships.all()) or "-"

    def save_related(self, request: HttpRequest, form: ModelForm, formsets: list[BaseFormSet], change: bool) -> None:
        super().save_related(request, form, formsets, change)
        person = form.instance
        for formset in formsets:
            for stored in normalised_addresses(formset):
                messages.info(request, stored)
        for warning in sms_read_warnings(person_name=person.name, channels=list(person.channels.order_by("position"))):
            messages.warning(request, warning)
        if shortage := channel_shortage(person):
            messages.warning(request, shortage)

    def render_change_form(self, request: HttpRequest, context: dict, add: bool = False, change: bool = False,
                           form_url: str = "", obj: Person | None = None) -> HttpResponse:
        context["channel_shortage"] = channel_shortage(obj) if obj is not None and obj.pk else ""
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)


def channel_shortage(person: Person) -> str:
    """Said on the person's own page: with fewer channels than the seed's rule asks, no roster takes them."""
    count = person.channels.count()
    if count >= MIN_CHANNELS_PER_PERSON:
        return ""
    return (f"{person.name} has {count_of(count, 'channel')}: a person on a roster needs at least "
            f"{MIN_CHANNELS_PER_PERSON}, so {person.name} cannot join a roster until you add "
            f"{count_of(MIN_CHANNELS_PER_PERSON - count, 'more channel')}.")


def normalised_addresses(formset: BaseInlineFormSet) -> list[str]:
    """ "Stored +44 7700 900060 as 447700900060": what was typed and what was kept, when they differ."""
    said = []
    for form in formset.forms:
        typed = form.data.get(form.add_prefix("address"), "") if "address" in form.fields else ""
        stored = getattr(form.instance, "address", "")
        if typed and stored and form.instance.pk and typed.strip() != stored:
            said.append(f"Stored {typed.strip()} as {stored}.")
    return said


@admin.register(Roster)
class RosterAdmin(RosterFireMixin, admin.ModelAdmin):
    list_display = ("name", "member_list", "member_count", "rounds")
    search_fields = ("name", "description", "members__person__name")
    fields = ("name", "description", "rounds", "stop_on")
    inlines = [RosterMemberInline]
    # Firing needs its own permission (escalation.fire_escalation); RosterFireMixin adds the Fire button's page.
    actions = [fire_escalation]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(member_total=Count("members")).prefetch_related(
            Prefetch("members", queryset=RosterMember.objects.select_related("person", "schedule")
                     .order_by("position", "id")),
        )

    @admin.display(description="people, in order")
    def member_list(self, roster: Roster) -> str:
        return " → ".join(m.person.name if m.person else f"on call in {m.schedule.name}"
                          for m in roster.members.all()) or "nobody yet"

    @admin.display(description="people", ordering="member_total")
    def member_count(self, roster: Roster) -> int:
        return roster.member_total


@admin.register(Sender)
class SenderAdmin(admin.ModelAdmin):
    list_display = ("channel_type", "sender_id", "outside_window")
    fieldsets = [
        (None, {"fields": ("channel_type", "sender_id")}),
        ("WhatsApp: the template sent outside a person's 24-hour window", {
            "fields": ("template_name", "template_namespace", "template_locale", "template_policy",
                       "template_parameters"),
            "description": "WhatsApp delivers free-form text only within 24 hours of the person's last message "
                           "to this number; otherwise only an approved template. Without one, a WhatsApp channel "
                           "whose window is closed is skipped.",
        }),
        ("Messenger: the tag sent outside a person's 24-hour window", {
            "fields": ("messenger_tag",),
            "description": "Outside the window Facebook refuses the default category: the page goes as category "
                           "message_tag with this tag. Without one, such a Messenger channel is skipped.",
        }),
    ]

    @admin.display(description="outside the 24-hour window")
    def outside_window(self, sender: Sender) -> str:
        if sender.channel_type == ChannelType.WHATSAPP:
            return f"template {sender.template_name}" if sender.template_name else "skipped (no template)"
        if sender.channel_type == ChannelType.MESSENGER:
            return f"tag {sender.messenger_tag}" if sender.messenger_tag else "skipped (no tag)"
        return "no window"

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        configured = set(Sender.objects.values_list("channel_type", flat=True))
        missing = [label for value, label in ChannelType.choices if value not in configured]
        if missing and request.method == "GET":
            messages.warning(
                request, f"No sender for {', '.join(missing)}: escalations to those channels are refused."
            )
        return super().changelist_view(request, extra_context)
