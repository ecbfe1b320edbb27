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
    TEMPLATE_PARAMETERS,
    TEMPLATE_POLICIES,
    ChannelType,
    Condition,
)

E164_DIGITS = re.compile(r"^[1-9][0-9]{6,14}$")
# What people write around the digits of a number: "+44 7700 900060", "(0044) 7700-900060", "+44.7700.900060".
NUMBER_DECORATION = re.compile(r"[\s().\-\u00a0]")
MESSENGER_ID = re.compile(r"^[0-9]{1,50}$")
# Vonage accepts an alphanumeric SMS sender name of up to 11 characters.
ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
# Meta's template names: lower-case letters, digits and underscores.
TEMPLATE_NAME = re.compile(r"^[a-z0-9_]{1,512}$")
# BCP 47 as dispatch.yml asks ("en-GB"); Meta's own spelling ("en_GB") is accepted and stored hyphenated.
LOCALE = re.compile(r"^[a-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
MESSENGER_TAG = re.compile(r"^[A-Z_]{1,50}$")
MIN_CHANNELS_PER_PERSON = 2


def normalise_address(channel_type: str, address: str) -> str:
    """A phone number as people write it, in the stored form (E.164 digits, no '+'); other addresses unchanged.

    Only decoration is removed: spaces, dashes, dots, parentheses, and a leading '+' or international '00'.
    What is left must still pass `validate_address`, so a national number ("07700 900060") is still refused.
    """
    if channel_type == ChannelType.MESSENGER:
        return address.strip()
    digits = NUMBER_DECORATION.sub("", address)
    if digits.startswith("+"):
        digits = digits[1:]
    elif digits.startswith("00"):
        digits = digits[2:]
    return digits


def count_of(number: int, noun: str) -> str:
    """ "1 channel", "2 channels": no "channel(s)" in what people read."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


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
        help_text="Messenger: the person's PSID. Others: the number with its country code, written any usual way "
                  "(+44 7700 900001, 0044-7700-900001); it is stored as digits, 447700900001.",
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
            self.address = normalise_address(self.type, self.address)
            try:
                validate_address(self.type, self.address)
            except ValidationError as e:
                raise ValidationError({"address": e.messages}) from None


class StopRule(models.TextChoices):
    """When an escalation stops paging: the seed's rule, or only when someone confirms."""

    CONDITION = "condition", "when a channel's condition is met (a delivered SMS stops it)"
    ACKNOWLEDGEMENT = "acknowledgement", "only on an acknowledgement: a read or a reply"


class Roster(models.Model):
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    rounds = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(10)],
        help_text="How many times to go through the whole list before giving up (1 to 10).",
    )
    stop_on = models.CharField(
        "stop paging", max_length=16, choices=StopRule.choices, default=StopRule.CONDITION,
        help_text="With the second, a delivered SMS is recorded as 'reached' and the escalation goes on until "
                  "someone reads or replies.",
    )
    people = models.ManyToManyField(Person, through="RosterMember", related_name="rosters")

    class Meta:
        ordering = ["name"]
        permissions = [("fire_escalation", "Can fire an escalation")]
        constraints = [
            models.CheckConstraint(condition=Q(rounds__gte=1) & Q(rounds__lte=10), name="roster_rounds_in_range"),
            models.CheckConstraint(condition=Q(stop_on__in=StopRule.values), name="roster_stop_rule_known"),
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
                {"person": f"{self.person.name} has {count_of(count, 'channel')}; a person on a roster needs at "
                 f"least {MIN_CHANNELS_PER_PERSON}."}
            )


class Sender(models.Model):
    """The company's own id on one channel type (the seed's FROM section)."""

    channel_type = models.CharField(max_length=20, choices=ChannelType.choices, unique=True)
    sender_id = models.CharField(
        max_length=50,
        help_text="Messenger page id, Viber service id, WhatsApp number, or SMS number / alphanumeric name.",
    )

    # Outside a person's 24-hour window WhatsApp delivers only an approved template, Messenger only a tagged
    # message (emulator/spec/VONAGE_FACTS.md). Without these, such a channel is skipped when its window is closed.
    template_name = models.CharField(
        "WhatsApp template", max_length=512, blank=True,
        help_text="WhatsApp only: the approved Message Template sent when the person has not written in 24 "
                  "hours, e.g. oncall_alert (as the Messages API v1 names it).",
    )
    template_namespace = models.CharField(
        max_length=200, blank=True,
        help_text="WhatsApp with the Dispatch API: the template namespace; Dispatch sends namespace:name.",
    )
    template_locale = models.CharField(
        max_length=20, blank=True, default="en-US",
        help_text="The template's language, BCP 47 (en-GB); sent as en_GB on the Messages API v1.",
    )
    template_policy = models.CharField(
        max_length=15, blank=True, default="deterministic", choices=[(p, p) for p in TEMPLATE_POLICIES],
        help_text="deterministic: exactly this locale (WhatsApp refuses the old 'fallback' since 2020).",
    )
    template_parameters = models.CharField(
        max_length=200, blank=True, default="text",
        help_text="What {{1}}, {{2}}, ... carry, comma-separated, from: "
                  + ", ".join(f"{key} ({meaning})" for key, meaning in TEMPLATE_PARAMETERS.items()) + ".",
    )
    messenger_tag = models.CharField(
        max_length=50, blank=True,
        help_text="Messenger only: the message tag sent (category message_tag) when the person has not written "
                  "in 24 hours, e.g. ACCOUNT_UPDATE.",
    )

    class Meta:
        ordering = ["channel_type"]
        constraints = [
            models.CheckConstraint(condition=Q(channel_type__in=ChannelType.values), name="sender_type_known"),
            models.CheckConstraint(condition=~Q(sender_id=""), name="sender_id_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_type_display()}: {self.sender_id}"

    @property
    def parameter_keys(self) -> list[str]:
        return [key.strip() for key in self.template_parameters.split(",") if key.strip()]

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        if self.channel_type and self.sender_id:
            try:
                validate_sender(self.channel_type, self.sender_id)
            except ValidationError as e:
                errors["sender_id"] = e.messages
        # Defaults for a form that leaves them out (a sender of another channel, an older client).
        self.template_locale = self.template_locale.strip().replace("_", "-") or "en-US"
        self.template_policy = self.template_policy or TEMPLATE_POLICIES[0]
        if self.template_name or self.template_namespace:
            errors.update(self._template_errors())
        if self.messenger_tag:
            if self.channel_type != ChannelType.MESSENGER:
                errors["messenger_tag"] = ["A message tag is for the Messenger sender only."]
            elif not MESSENGER_TAG.match(self.messenger_tag):
                errors["messenger_tag"] = ["A Messenger tag is upper-case letters and '_', e.g. ACCOUNT_UPDATE."]
        if errors:
            raise ValidationError(errors)

    def _template_errors(self) -> dict[str, list[str]]:
        if self.channel_type != ChannelType.WHATSAPP:
            return {"template_name": ["A template is for the WhatsApp sender only."]}
        errors = {}
        if not TEMPLATE_NAME.match(self.template_name):
            errors["template_name"] = ["A template name is lower-case letters, digits and '_', e.g. oncall_alert."]
        if ":" in self.template_name or not re.match(r"^[A-Za-z0-9_:.-]*$", self.template_namespace):
            errors["template_namespace"] = ["Give the namespace and the name apart: Dispatch joins them with ':'."]
        if not LOCALE.match(self.template_locale):
            errors["template_locale"] = ["A locale is BCP 47, e.g. en-GB or pt-BR."]
        if self.template_policy not in TEMPLATE_POLICIES:
            errors["template_policy"] = [f"The policy is one of {', '.join(TEMPLATE_POLICIES)}."]
        unknown = [key for key in self.parameter_keys if key not in TEMPLATE_PARAMETERS]
        if unknown:
            errors["template_parameters"] = [f"Unknown parameter(s) {', '.join(unknown)}; each is one of "
                                             f"{', '.join(TEMPLATE_PARAMETERS)}."]
        return errors
