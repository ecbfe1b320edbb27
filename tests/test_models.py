"""Each rule on people, channels, rosters and senders, with the message an administrator sees.

`clean()`/`full_clean()` give the message; the database constraints hold even when a caller skips them.
"""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from escalation.models import Channel, Person, Roster, RosterMember, Sender

pytestmark = pytest.mark.django_db


def errors_of(instance) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        instance.full_clean()
    return caught.value.message_dict


def make_person(name: str = "Tony", channels: int = 2) -> Person:
    person = Person.objects.create(name=name)
    for position in range(1, channels + 1):
        Channel.objects.create(person=person, position=position, type="sms", address=f"44770090000{position}")
    return person


@pytest.mark.parametrize(("kind", "address"), [
    ("messenger", "5550001000000001"),
    ("messenger", "1"),
    ("messenger", "9" * 50),
    ("sms", "447700900001"),
    ("whatsapp", "14155550100"),
    ("viber_service_msg", "4915112345678"),
])
def test_it_accepts_valid_addresses(kind: str, address: str) -> None:
    Channel(person=make_person(channels=0), type=kind, address=address).full_clean()


# "+44 7700 900001" and its kind are accepted and stored as digits (test_small_things); these are not numbers.
@pytest.mark.parametrize("address", ["0447700900001", "07700 900001", "123456", "4" * 16, "USER PHONE NUMBER"])
@pytest.mark.parametrize("kind", ["sms", "whatsapp", "viber_service_msg"])
def test_it_rejects_numbers_not_in_e164_digits(kind: str, address: str) -> None:
    errors = errors_of(Channel(person=make_person(channels=0), type=kind, address=address))
    assert errors["address"] == [
        "Enter the number in E.164 form as digits without '+' or spaces, e.g. 447700900001."
    ]


@pytest.mark.parametrize("address", ["USER MESSENGER ID", "12ab", "+123"])
def test_it_rejects_messenger_ids_that_are_not_digits(address: str) -> None:
    errors = errors_of(Channel(person=make_person(channels=0), type="messenger", address=address))
    assert errors["address"] == ["A Messenger address is the person's page-scoped id (PSID): digits only."]


def test_it_limits_addresses_to_50_characters() -> None:
    errors = errors_of(Channel(person=make_person(channels=0), type="messenger", address="1" * 51))
    assert "Ensure this value has at most 50 characters (it has 51)." in errors["address"]


def test_it_defaults_to_read_within_600_seconds() -> None:
    channel = Channel(person=make_person(channels=0), type="sms", address="447700900001")
    assert (channel.expiry_time, channel.condition) == (600, "read")


@pytest.mark.parametrize(("expiry", "message"), [
    (14, "Ensure this value is greater than or equal to 15."),
    (86401, "Ensure this value is less than or equal to 86400."),
])
def test_it_keeps_expiry_between_15_seconds_and_a_day(expiry: int, message: str) -> None:
    errors = errors_of(Channel(person=make_person(channels=0), type="sms", address="447700900001",
                               expiry_time=expiry))
    assert message in errors["expiry_time"]


@pytest.mark.parametrize("expiry", [15, 86400])
def test_it_accepts_expiry_at_the_limits(expiry: int) -> None:
    Channel(person=make_person(channels=0), type="sms", address="447700900001", expiry_time=expiry).full_clean()


def test_it_rejects_unknown_types_and_conditions() -> None:
    errors = errors_of(Channel(person=make_person(channels=0), type="telegram", address="1", condition="seen"))
    assert errors["type"] == ["Value 'telegram' is not a valid choice."]
    assert errors["condition"] == ["Value 'seen' is not a valid choice."]


def test_it_allows_several_channels_of_one_type() -> None:
    person = make_person(channels=3)
    Channel(person=person, position=4, type="messenger", address="5550001000000001").full_clean()
    assert list(person.channels.values_list("type", flat=True)) == ["sms", "sms", "sms"]


@pytest.mark.parametrize("fields", [
    {"expiry_time": 10},
    {"expiry_time": 90000},
    {"type": "telegram"},
    {"condition": "seen"},
    {"address": ""},
])
def test_the_database_refuses_invalid_channels_that_skip_clean(fields: dict) -> None:
    values = {"type": "sms", "address": "447700900001", **fields}
    person = make_person(channels=0)
    with pytest.raises(IntegrityError), transaction.atomic():
        Channel.objects.create(person=person, **values)


def test_person_names_are_unique() -> None:
    make_person("Tony")
    assert errors_of(Person(name="Tony"))["name"] == ["Person with this Name already exists."]


@pytest.mark.parametrize(("rounds", "message"), [
    (0, "Ensure this value is greater than or equal to 1."),
    (11, "Ensure this value is less than or equal to 10."),
])
def test_roster_rounds_are_1_to_10(rounds: int, message: str) -> None:
    assert message in errors_of(Roster(name="ops", rounds=rounds))["rounds"]


def test_roster_rounds_default_to_1_and_the_database_holds_the_limit() -> None:
    assert Roster(name="ops").rounds == 1
    with pytest.raises(IntegrityError), transaction.atomic():
        Roster.objects.create(name="ops", rounds=11)


def test_roster_names_are_unique() -> None:
    Roster.objects.create(name="ops")
    assert errors_of(Roster(name="ops"))["name"] == ["Roster with this Name already exists."]


@pytest.mark.parametrize("channels", [0, 1])
def test_a_roster_member_needs_two_channels(channels: int) -> None:
    member = RosterMember(roster=Roster.objects.create(name="ops"), person=make_person("Tony", channels))
    assert errors_of(member)["person"] == [
        f"Tony has {channels} channel{'' if channels == 1 else 's'}; a person on a roster needs at least 2."
    ]


def test_a_person_with_two_channels_may_join() -> None:
    RosterMember(roster=Roster.objects.create(name="ops"), person=make_person()).full_clean()


def test_a_person_is_on_a_roster_at_most_once() -> None:
    roster, person = Roster.objects.create(name="ops"), make_person()
    RosterMember.objects.create(roster=roster, person=person, position=1)
    errors = errors_of(RosterMember(roster=roster, person=person, position=2))
    assert errors["__all__"] == ["Roster member with this Roster and Person already exists."]
    with pytest.raises(IntegrityError), transaction.atomic():
        RosterMember.objects.create(roster=roster, person=person, position=2)


def test_the_same_person_may_be_on_several_rosters() -> None:
    person = make_person()
    for name in ("day", "night"):
        member = RosterMember(roster=Roster.objects.create(name=name), person=person)
        member.full_clean()
        member.save()
    assert sorted(person.rosters.values_list("name", flat=True)) == ["day", "night"]


@pytest.mark.parametrize(("kind", "sender_id"), [
    ("messenger", "102938475610293"),
    ("viber_service_msg", "16273"),
    ("whatsapp", "447700900000"),
    ("sms", "OnCall"),
    ("sms", "447700900000"),
])
def test_it_accepts_valid_senders(kind: str, sender_id: str) -> None:
    Sender(channel_type=kind, sender_id=sender_id).full_clean()


@pytest.mark.parametrize(("kind", "sender_id", "message"), [
    ("messenger", "COMPANY MESSENGER ID", "A page or service id is 1 to 50 letters, digits, '.', '_' or '-'."),
    ("viber_service_msg", "id/with/slashes", "A page or service id is 1 to 50 letters, digits, '.', '_' or '-'."),
    ("whatsapp", "+447700900000", "A WhatsApp sender is an E.164 number without '+'."),
    ("sms", "OnCallTeam12", "An SMS sender is an E.164 number without '+' or a name of up to 11 letters and digits."),
    ("sms", "+447700900000",
     "An SMS sender is an E.164 number without '+' or a name of up to 11 letters and digits."),
])
def test_it_rejects_invalid_senders(kind: str, sender_id: str, message: str) -> None:
    assert errors_of(Sender(channel_type=kind, sender_id=sender_id))["sender_id"] == [message]


def test_one_sender_per_channel_type() -> None:
    Sender.objects.create(channel_type="sms", sender_id="OnCall")
    assert errors_of(Sender(channel_type="sms", sender_id="Ops"))["channel_type"] == [
        "Sender with this Channel type already exists."
    ]
    with pytest.raises(IntegrityError), transaction.atomic():
        Sender.objects.create(channel_type="sms", sender_id="Ops")


def test_the_database_refuses_empty_or_unknown_senders() -> None:
    for fields in ({"channel_type": "sms", "sender_id": ""}, {"channel_type": "telegram", "sender_id": "x"}):
        with pytest.raises(IntegrityError), transaction.atomic():
            Sender.objects.create(**fields)
