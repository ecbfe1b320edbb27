"""Named people and a roster shared by the engine tests (healthchecks-style personas)."""

from escalation.models import Channel, ChannelType, Person, Roster, RosterMember, Sender

SENDERS = {
    ChannelType.MESSENGER: "1923256201474167",
    ChannelType.VIBER: "oncall-viber",
    ChannelType.WHATSAPP: "447700900000",
    ChannelType.SMS: "OnCall",
}

TONY = ("Tony", [("messenger", "23037543461244470", 60, "read"), ("sms", "447700900001", 60, "delivered")])
MICHAEL = ("Michael", [("viber_service_msg", "447700900002", 60, "read"), ("whatsapp", "447700900003", 60, "read"),
                       ("sms", "447700900004", 60, "delivered")])
ANNA = ("Anna", [("whatsapp", "447700900005", 30, "read"), ("sms", "447700900006", 30, "read")])


def make_person(name: str, channels: list[tuple]) -> Person:
    person = Person.objects.create(name=name)
    for position, (type_, address, expiry, condition) in enumerate(channels):
        Channel.objects.create(person=person, position=position, type=type_, address=address,
                               expiry_time=expiry, condition=condition)
    return person


# What a company set up at Meta before going live (README, "Channels"): an approved WhatsApp template and
# a Messenger tag, so a page reaches people who have not written in the last 24 hours.
SENDER_SETTINGS = {
    ChannelType.WHATSAPP: {"template_name": "oncall_alert", "template_namespace": "whatsapp:hsm:it:oncall",
                           "template_locale": "en-GB", "template_parameters": "text,escalation"},
    ChannelType.MESSENGER: {"messenger_tag": "ACCOUNT_UPDATE"},
}


def make_senders(*, business_initiated: bool = True) -> None:
    """The company's senders; `business_initiated=False` leaves out the template and the tag."""
    for channel_type, sender_id in SENDERS.items():
        settings = SENDER_SETTINGS.get(channel_type, {}) if business_initiated else {}
        Sender.objects.create(channel_type=channel_type, sender_id=sender_id, **settings)


def make_roster(*people: tuple, name: str = "primary", rounds: int = 1, business_initiated: bool = True) -> Roster:
    make_senders(business_initiated=business_initiated)
    roster = Roster.objects.create(name=name, rounds=rounds)
    for position, (person_name, channels) in enumerate(people):
        RosterMember.objects.create(roster=roster, person=make_person(person_name, channels), position=position)
    return roster
