"""Schedules: who is on call when, in a time zone. The rules themselves live in escalation/schedules/shifts.py;
these rows only store them (escalation/schedules/load.py turns them into `shifts.Rules`)."""

import secrets
from zoneinfo import available_timezones

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MAX_SHIFT_LENGTH = 1000
MAX_NOTICE_MINUTES = 24 * 60


def layer_label(name: str, position: int) -> str:
    """A layer as people see it: its name, or its place when it has none."""
    return name or f"Layer {position}"


def new_feed_token() -> str:
    return secrets.token_urlsafe(32)


def new_rules_version() -> int:
    # Random, not counted: a test database rolled back hands the same schedule id out again, and a process's
    # cache of loaded rules must not take the new schedule for the old one.
    return secrets.randbits(62)


def validate_time_zone(name: str) -> None:
    if name not in available_timezones():
        raise ValidationError(f"{name!r} is not an IANA time zone name, e.g. Europe/London.")


def parse_weekdays(text: str) -> frozenset[int]:
    """'0,1,2,3,4' (0 = Monday) -> the set; raises ValidationError naming the bad part."""
    days = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        if not part.isdigit() or int(part) > 6:
            raise ValidationError(f"{part!r} is not a weekday number from 0 (Monday) to 6 (Sunday).")
        days.add(int(part))
    return frozenset(days)


class ShiftUnit(models.TextChoices):
    HOURS = "hours", "hours"
    DAYS = "days", "days"
    WEEKS = "weeks", "weeks"


class OverrideMode(models.TextChoices):
    REPLACE = "replace", "replace whoever is on call"
    ADD = "add", "add to whoever is on call"


class Schedule(models.Model):
    name = models.CharField(max_length=100, unique=True)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone],
                                 help_text="IANA name, e.g. Europe/London: hand-offs happen at local wall time.")
    description = models.TextField(blank=True)
    feed_token = models.CharField(max_length=64, unique=True, default=new_feed_token)
    handoff_notice_minutes = models.PositiveIntegerField(
        "hand-off notice (minutes before)", null=True, blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_NOTICE_MINUTES)],
        help_text="Tell each person this many minutes before their shift starts, on their first channel that "
                  "takes a free-form message then. Empty: no notices.")
    # When a worker last created this schedule's coming notices (escalation/engine/handoff.py).
    handoff_planned_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Chosen by the database alone (triggers, migration 0016), anew in the same transaction as any change to
    # the schedule's layers, their participants, its overrides, or the names and active flags of the people in
    # them: the key under which each process keeps the rules it read (escalation/schedules/load.py).
    rules_version = models.BigIntegerField(default=new_rules_version, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Layer(models.Model):
    """One rotation; layers with a lower `position` win where they have someone on call."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="layers")
    position = models.PositiveIntegerField(default=0, help_text="Priority: the lowest number wins.")
    name = models.CharField(max_length=100, blank=True)
    shift_length = models.PositiveIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(MAX_SHIFT_LENGTH)])
    unit = models.CharField(max_length=5, choices=ShiftUnit.choices, default=ShiftUnit.WEEKS)
    handoff_date = models.DateField(help_text="The first hand-off's local date in the schedule's zone.")
    handoff_time = models.TimeField(help_text="Local time of day of every hand-off, e.g. 09:00.")
    restrict_weekdays = models.CharField(
        max_length=20, blank=True, help_text="Only on these days, 0 = Monday, e.g. 0,1,2,3,4. Empty: every day.")
    restrict_start = models.TimeField(null=True, blank=True, help_text="Only from this local time, e.g. 09:00.")
    restrict_end = models.TimeField(null=True, blank=True,
                                    help_text="Until this local time; before the start runs past midnight.")
    # Which participant takes which shift (see shifts.reanchored): moved when the list changes, so adding or
    # removing someone does not reshuffle who is on call now.
    anchor_shift = models.IntegerField(default=0)
    anchor_index = models.PositiveIntegerField(default=0)
    people = models.ManyToManyField("escalation.Person", through="LayerParticipant", related_name="layers")

    class Meta:
        ordering = ["schedule", "position", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(shift_length__gte=1) & Q(shift_length__lte=MAX_SHIFT_LENGTH),
                                   name="layer_shift_length_in_range"),
            models.CheckConstraint(condition=Q(unit__in=ShiftUnit.values), name="layer_unit_known"),
        ]

    def __str__(self) -> str:
        return layer_label(self.name, self.position)

    def clean(self) -> None:
        try:
            parse_weekdays(self.restrict_weekdays)
        except ValidationError as e:
            raise ValidationError({"restrict_weekdays": e.messages}) from None
        if (self.restrict_start is None) != (self.restrict_end is None):
            raise ValidationError("Give both ends of the restriction's time window, or neither.")
        if self.restrict_weekdays.strip() and self.restrict_start is None:
            raise ValidationError("Weekdays need a time window too (00:00 to 00:00 for whole days).")


class LayerParticipant(models.Model):
    layer = models.ForeignKey(Layer, on_delete=models.CASCADE, related_name="participants")
    person = models.ForeignKey("escalation.Person", on_delete=models.PROTECT, related_name="layer_participations")
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["layer", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["layer", "person"], name="layer_participant_once")]

    def __str__(self) -> str:
        return f"{self.layer} #{self.position}: {self.person}"


class Override(models.Model):
    """Someone covers a period. The newest overlapping override (highest id) wins."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="overrides")
    person = models.ForeignKey("escalation.Person", on_delete=models.PROTECT, related_name="overrides")
    start = models.DateTimeField()
    end = models.DateTimeField()
    mode = models.CharField(max_length=7, choices=OverrideMode.choices, default=OverrideMode.REPLACE)
    created_by_name = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["schedule", "start", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(end__gt=F("start")), name="override_ends_after_start"),
            models.CheckConstraint(condition=Q(mode__in=OverrideMode.values), name="override_mode_known"),
        ]
        # Reads ask for overrides overlapping a window (end > A and start < B); the database takes the narrower
        # index: past overrides pile up behind `end`, those planned far ahead lie beyond `start`.
        indexes = [models.Index(fields=["schedule", "end"], name="override_schedule_end"),
                   models.Index(fields=["schedule", "start"], name="override_schedule_start")]

    def __str__(self) -> str:
        return f"{self.person} covers {self.schedule}"

    def clean(self) -> None:
        if self.start and self.end and self.end <= self.start:
            raise ValidationError({"end": "The end must be after the start."})


class PersonFeed(models.Model):
    """The secret of a person's own iCal feed (their shifts in every schedule)."""

    person = models.OneToOneField("escalation.Person", on_delete=models.CASCADE, related_name="feed")
    token = models.CharField(max_length=64, unique=True, default=new_feed_token)

    def __str__(self) -> str:
        return f"feed of {self.person}"
