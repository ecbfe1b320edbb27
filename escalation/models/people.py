"""People, their channels, rosters and the company's senders: what an administrator edits."""

import re

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from escalation.models.channels import (
    DEFAULT_EXPIRY_SECONDS,
    MAX_EXPIRY_SECONDS,
    MIN_EXPIRY_SECONDS,
    ChannelType,
    Condition,
)

E164_DIGITS = re.compile(r"^[1-9][0-9]{6,14}$")
MESSENGER_ID = re.compile(r"^[0-9]{1,50}$")
# Vonage accepts an alphanumeric SMS sender name of up to 11 characters.
ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
MIN_CHANNELS_PER_PERSON = 2


def validate_address(channel_type: str, address: str) -> None:
    """Raise ValidationError when `address` is not a valid recipient for `channel_type`."""
    if channel_type == ChannelType.MESSENGER:
        if not MESSENGER_ID.match(address):
            raise ValidationError("A Messenger address is the person's page-scoped id (PSID): digits only.")
    elif not E164_DIGITS.match(address):
        raise ValidationError(
            "Enter the number in E.164 form as digits without '+' or spaces, e.g. 447700900001."
        )


def validate_sender(channel_type: str, sender_id: str) -> None:
    if channel_type in (ChannelType.MESSENGER, ChannelType.VIBER):
        if not re.match(r"^[A-Za-z0-9._-]{1,50}$", sender_id):
            raise ValidationError("A page or service id is 1 to 50 letters, digits, '.', '_' or '-'.")
    elif channel_type == ChannelType.SMS:
        if not (E164_DIGITS.match(sender_id) or ALPHANUMERIC_SENDER.match(sender_id)):
            raise ValidationError(
                "An SMS sender is an E.164 number without '+' or a name of up to 11 letters and digits."
            )
    elif not E164_DIGITS.match(sender_id):
        raise ValidationError("A WhatsApp sender is an E.164 number without '+'.")


class Person(models.Model):
    name = models.CharField(max_length=100, unique=True)
    notes = models.TextField(blank=True)
    is_active = models.BooleanField("active", default=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "people"

    def __str__(self) -> str:
        return self.name


class Channel(models.Model):
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="channels")
    position = models.PositiveIntegerField(default=0, help_text="Order in which the channels are tried.")
    type = models.CharField(max_length=20, choices=ChannelType.choices)
    address = models.CharField(
        max_length=50,
        help_text="Messenger: the person's PSID. Others: E.164 digits without '+', e.g. 447700900001.",
    )
    expiry_time = models.PositiveIntegerField(
        "expiry (seconds)",
        default=DEFAULT_EXPIRY_SECONDS,
        validators=[MinValueValidator(MIN_EXPIRY_SECONDS), MaxValueValidator(MAX_EXPIRY_SECONDS)],
        help_text="How long to wait for the condition before the next channel (15 to 86400 seconds).",
    )
    condition = models.CharField(
        max_length=10,
        choices=Condition.choices,
        default=Condition.READ,
        help_text="SMS never reports 'read': use 'delivered' for SMS, or the wait always runs out.",
    )

    class Meta:
        ordering = ["person", "position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(expiry_time__gte=MIN_EXPIRY_SECONDS) & Q(expiry_time__lte=MAX_EXPIRY_SECONDS),
                name="channel_expiry_in_range",
            ),
            models.CheckConstraint(condition=Q(type__in=ChannelType.values), name="channel_type_known"),
            models.CheckConstraint(condition=Q(condition__in=Condition.values), name="channel_condition_known"),
            models.CheckConstraint(condition=~Q(address=""), name="channel_address_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.get_type_display()} {self.address}"

    def clean(self) -> None:
        if self.type and self.address:
            try:
                validate_address(self.type, self.address)
            except ValidationError as e:
                raise ValidationError({"address": e.messages}) from None


class Roster(models.Model):
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    rounds = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(10)],
        help_text="How many times to go through the whole list before giving up (1 to 10).",
    )
    people = models.ManyToManyField(Person, through="RosterMember", related_name="rosters")

    class Meta:
        ordering = ["name"]
        permissions = [("fire_escalation", "Can fire an escalation")]
        constraints = [
            models.CheckConstraint(condition=Q(rounds__gte=1) & Q(rounds__lte=10), name="roster_rounds_in_range"),
        ]

    def __str__(self) -> str:
        return self.name

    def ordered_members(self) -> list["RosterMember"]:
        return list(self.members.select_related("person", "schedule").order_by("position", "id"))


class RosterMember(models.Model):
    """One place on a roster: a person, or a schedule ("whoever is on call in Primary" at fire time)."""

    roster = models.ForeignKey(Roster, on_delete=models.CASCADE, related_name="members")
    person = models.ForeignKey(Person, on_delete=models.PROTECT, related_name="memberships", null=True, blank=True)
    schedule = models.ForeignKey("escalation.Schedule", on_delete=models.PROTECT, related_name="memberships",
                                 null=True, blank=True, help_text="Instead of a person: whoever is on call in it.")
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["roster", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["roster", "person"], name="roster_member_once"),
            models.UniqueConstraint(fields=["roster", "schedule"], name="roster_schedule_once"),
            models.CheckConstraint(condition=Q(person__isnull=False, schedule__isnull=True)
                                   | Q(person__isnull=True, schedule__isnull=False),
                                   name="roster_member_person_or_schedule"),
        ]

    def __str__(self) -> str:
        return f"{self.roster} #{self.position}: {self.person or self.schedule}"

    def clean(self) -> None:
        if (self.person_id is None) == (self.schedule_id is None):
            raise ValidationError("Choose a person or a schedule (one of them).")
        if self.person_id is None:
            return
        count = Channel.objects.filter(person_id=self.person_id).count()
        if count < MIN_CHANNELS_PER_PERSON:
            raise ValidationError(
                {"person": f"{self.person.name} has {count} channel(s); a person on a roster needs at least "
                 f"{MIN_CHANNELS_PER_PERSON}."}
            )


class Sender(models.Model):
    """The company's own id on one channel type (the seed's FROM section)."""

    channel_type = models.CharField(max_length=20, choices=ChannelType.choices, unique=True)
    sender_id = models.CharField(
        max_length=50,
        help_text="Messenger page id, Viber service id, WhatsApp number, or SMS number / alphanumeric name.",
    )

    class Meta:
        ordering = ["channel_type"]
        constraints = [
            models.CheckConstraint(condition=Q(channel_type__in=ChannelType.values), name="sender_type_known"),
            models.CheckConstraint(condition=~Q(sender_id=""), name="sender_id_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_type_display()}: {self.sender_id}"

    def clean(self) -> None:
        if self.channel_type and self.sender_id:
            try:
                validate_sender(self.channel_type, self.sender_id)
            except ValidationError as e:
                raise ValidationError({"sender_id": e.messages}) from None
