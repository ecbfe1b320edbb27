"""The people, roster and sender admin through the test client, posting what the browser would post.

Every rule violation must come back as the form again (200) with the error on the page, never a 500.
"""

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from escalation.models import Channel, Person, Roster, RosterMember, Sender

pytestmark = pytest.mark.django_db

CHANNEL_FIELDS = ("position", "type", "address", "condition", "expiry_time")


def make_person(name: str, *addresses: str, kind: str = "whatsapp") -> Person:
    person = Person.objects.create(name=name)
    for position, address in enumerate(addresses, start=1):
        Channel.objects.create(person=person, position=position, type=kind, address=address)
    return person


def management(prefix: str, total: int, initial: int) -> dict[str, str]:
    return {f"{prefix}-TOTAL_FORMS": str(total), f"{prefix}-INITIAL_FORMS": str(initial),
            f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000"}


def person_post(person: Person | None, rows: list[dict], name: str = "", is_active: bool = True) -> dict:
    """The change form as a browser submits it: the saved channels first (their ids), then new rows."""
    initial = person.channels.count() if person else 0
    data = {"name": name or person.name, "notes": "", **management("channels", len(rows), initial)}
    if is_active:
        data["is_active"] = "on"
    for index, row in enumerate(rows):
        values = {"person": person.pk if person else "", "id": "", "condition": "read", "expiry_time": "600", **row}
        data.update({f"channels-{index}-{key}": value for key, value in values.items() if value is not None})
    return data


def saved_channel_rows(person: Person) -> list[dict]:
    return [
        {"id": c.pk, **{f: getattr(c, f) for f in CHANNEL_FIELDS}}
        for c in person.channels.order_by("position", "id")
    ]


def roster_post(roster: Roster | None, rows: list[dict], name: str = "", rounds: int = 1) -> dict:
    initial = roster.members.count() if roster else 0
    data = {"name": name or roster.name, "description": "", "rounds": str(rounds), "stop_on": "condition",
            **management("members", len(rows), initial)}
    for index, row in enumerate(rows):
        values = {"roster": roster.pk if roster else "", "id": "", **row}
        data.update({f"members-{index}-{key}": value for key, value in values.items() if value is not None})
    return data


def saved_member_rows(roster: Roster) -> list[dict]:
    return [{"id": m.pk, "position": m.position, "person": m.person_id} for m in roster.ordered_members()]


def order_of(person: Person) -> list[str]:
    return list(person.channels.order_by("position", "id").values_list("address", flat=True))


def names_on(roster: Roster) -> list[str]:
    return [m.person.name for m in roster.ordered_members()]


@pytest.fixture
def tony() -> Person:
    return make_person("Tony", "447700900001", "447700900002", "447700900003")


@pytest.fixture
def ops(tony: Person) -> Roster:
    roster = Roster.objects.create(name="ops")
    RosterMember.objects.create(roster=roster, person=tony, position=1)
    return roster


def test_it_adds_a_person_with_channels_in_order(admin_client: Client) -> None:
    response = admin_client.post(reverse("admin:escalation_person_add"), person_post(None, [
        {"position": "1", "type": "messenger", "address": "5550001000000001", "expiry_time": "120"},
        {"position": "2", "type": "sms", "address": "447700900009", "condition": "delivered"},
    ], name="Ann"))
    assert response.status_code == 302
    ann = Person.objects.get(name="Ann")
    assert list(ann.channels.order_by("position").values_list("type", "address", "expiry_time", "condition")) == [
        ("messenger", "5550001000000001", 120, "read"),
        ("sms", "447700900009", 600, "delivered"),
    ]


def test_it_reorders_channels(admin_client: Client, tony: Person) -> None:
    rows = saved_channel_rows(tony)
    for row, position in zip(rows, (3, 1, 2), strict=True):  # what reorder.js leaves after two moves
        row["position"] = position
    response = admin_client.post(reverse("admin:escalation_person_change", args=[tony.pk]), person_post(tony, rows))
    assert response.status_code == 302
    assert order_of(tony) == ["447700900002", "447700900003", "447700900001"]


def test_it_keeps_a_new_channel_where_it_was_dragged(admin_client: Client, tony: Person) -> None:
    # reorder.js keeps saved rows at the low form indexes and puts the order in `position` alone.
    rows = saved_channel_rows(tony)
    for row, position in zip(rows, (1, 3, 4), strict=True):
        row["position"] = position
    rows.append({"position": "2", "type": "messenger", "address": "5550001000000001"})
    response = admin_client.post(reverse("admin:escalation_person_change", args=[tony.pk]), person_post(tony, rows))
    assert response.status_code == 302
    assert order_of(tony) == ["447700900001", "5550001000000001", "447700900002", "447700900003"]


def test_the_change_form_has_the_reorder_controls(admin_client: Client, tony: Person) -> None:
    response = admin_client.get(reverse("admin:escalation_person_change", args=[tony.pk]))
    assert response.status_code == 200
    assert b"escalation/reorder.js" in response.content
    assert b"reorderable" in response.content
    # The inline lists the channels in their saved order.
    formset = response.context["inline_admin_formsets"][0].formset
    assert [form.instance.address for form in formset.initial_forms] == order_of(tony)


def test_an_invalid_address_is_a_form_error(admin_client: Client) -> None:
    response = admin_client.post(reverse("admin:escalation_person_add"), person_post(None, [
        {"position": "1", "type": "sms", "address": "07700 900001"},  # no country code
    ], name="Ann"))
    assert response.status_code == 200
    assert escape("Enter the number in E.164 form as digits without '+' or spaces") in response.content.decode()
    assert not Person.objects.filter(name="Ann").exists()


def test_an_out_of_range_expiry_is_a_form_error(admin_client: Client) -> None:
    response = admin_client.post(reverse("admin:escalation_person_add"), person_post(None, [
        {"position": "1", "type": "sms", "address": "447700900001", "expiry_time": "5"},
    ], name="Ann"))
    assert response.status_code == 200
    assert "Ensure this value is greater than or equal to 15." in response.content.decode()


def test_a_duplicate_person_name_is_a_form_error(admin_client: Client, tony: Person) -> None:
    response = admin_client.post(reverse("admin:escalation_person_add"), person_post(None, [], name="Tony"))
    assert response.status_code == 200
    assert "Person with this Name already exists." in response.content.decode()


def test_a_person_on_a_roster_keeps_two_channels(admin_client: Client, tony: Person, ops: Roster) -> None:
    Roster.objects.create(name="night").members.create(person=tony, position=1)
    rows = saved_channel_rows(tony)
    rows[0]["DELETE"] = "on"
    rows[1]["DELETE"] = "on"
    response = admin_client.post(reverse("admin:escalation_person_change", args=[tony.pk]), person_post(tony, rows))
    assert response.status_code == 200
    assert escape(
        "Tony is on the rosters night, ops, so they need at least 2 channels; this would leave 1."
    ) in response.content.decode()
    assert tony.channels.count() == 3


def test_a_person_on_a_roster_may_drop_to_two_channels(admin_client: Client, tony: Person, ops: Roster) -> None:
    rows = saved_channel_rows(tony)
    rows[0]["DELETE"] = "on"
    response = admin_client.post(reverse("admin:escalation_person_change", args=[tony.pk]), person_post(tony, rows))
    assert response.status_code == 302
    assert order_of(tony) == ["447700900002", "447700900003"]


def test_a_person_on_no_roster_may_have_one_channel(admin_client: Client, tony: Person) -> None:
    rows = saved_channel_rows(tony)
    rows[0]["DELETE"] = rows[1]["DELETE"] = "on"
    response = admin_client.post(reverse("admin:escalation_person_change", args=[tony.pk]), person_post(tony, rows))
    assert response.status_code == 302
    assert tony.channels.count() == 1


def test_saving_an_sms_channel_that_waits_for_read_warns(admin_client: Client) -> None:
    response = admin_client.post(reverse("admin:escalation_person_add"), person_post(None, [
        {"position": "1", "type": "whatsapp", "address": "447700900001"},
        {"position": "2", "type": "sms", "address": "447700900002", "condition": "read"},
    ], name="Ann"))
    assert response.status_code == 302
    warnings = [str(m) for m in get_messages(response.wsgi_request) if m.level_tag == "warning"]
    assert warnings == [
        "Ann: channel 2 (SMS 447700900002) waits for 'read', which SMS never reports; it will always wait the "
        "full 600 s. Use 'delivered' unless that is intended."
    ]


def test_an_sms_channel_waiting_for_delivered_does_not_warn(admin_client: Client) -> None:
    response = admin_client.post(reverse("admin:escalation_person_add"), person_post(None, [
        {"position": "1", "type": "sms", "address": "447700900002", "condition": "delivered"},
        {"position": "2", "type": "whatsapp", "address": "447700900003"},
    ], name="Ann"))
    assert not [m for m in get_messages(response.wsgi_request) if m.level_tag == "warning"]


def test_deleting_a_person_on_a_roster_is_refused_with_a_page(admin_client: Client, tony: Person,
                                                              ops: Roster) -> None:
    url = reverse("admin:escalation_person_delete", args=[tony.pk])
    response = admin_client.post(url, {"post": "yes"})
    assert response.status_code == 200
    assert "protected" in response.content.decode()
    assert Person.objects.filter(pk=tony.pk).exists()


def test_it_adds_a_roster_with_members_in_order(admin_client: Client, tony: Person) -> None:
    michael = make_person("Michael", "447700900011", "447700900012")
    response = admin_client.post(reverse("admin:escalation_roster_add"), roster_post(None, [
        {"position": "1", "person": michael.pk},
        {"position": "2", "person": tony.pk},
        {"position": "0", "person": ""},  # the blank extra row
    ], name="night", rounds=3))
    assert response.status_code == 302
    night = Roster.objects.get(name="night")
    assert (names_on(night), night.rounds) == (["Michael", "Tony"], 3)


def test_it_reorders_members(admin_client: Client, ops: Roster) -> None:
    ann, bob = make_person("Ann", "447700900021", "447700900022"), make_person("Bob", "447700900031", "447700900032")
    RosterMember.objects.create(roster=ops, person=ann, position=2)
    RosterMember.objects.create(roster=ops, person=bob, position=3)
    rows = saved_member_rows(ops)
    for row, position in zip(rows, (2, 3, 1), strict=True):
        row["position"] = position
    response = admin_client.post(reverse("admin:escalation_roster_change", args=[ops.pk]), roster_post(ops, rows))
    assert response.status_code == 302
    assert names_on(ops) == ["Bob", "Tony", "Ann"]


def test_the_same_person_twice_is_a_form_error(admin_client: Client, tony: Person) -> None:
    response = admin_client.post(reverse("admin:escalation_roster_add"), roster_post(None, [
        {"position": "1", "person": tony.pk},
        {"position": "2", "person": tony.pk},
    ], name="night"))
    assert response.status_code == 200
    assert "Tony is listed twice; a person can be on a roster only once." in response.content.decode()
    assert not Roster.objects.filter(name="night").exists()


def test_adding_a_member_again_to_a_saved_roster_is_a_form_error(admin_client: Client, tony: Person,
                                                                 ops: Roster) -> None:
    rows = [*saved_member_rows(ops), {"position": "2", "person": tony.pk}]
    response = admin_client.post(reverse("admin:escalation_roster_change", args=[ops.pk]), roster_post(ops, rows))
    assert response.status_code == 200
    assert "Tony is listed twice" in response.content.decode()
    assert ops.members.count() == 1


def test_a_member_with_fewer_than_two_channels_is_a_form_error(admin_client: Client, tony: Person) -> None:
    solo = make_person("Solo", "447700900041")
    response = admin_client.post(reverse("admin:escalation_roster_add"), roster_post(None, [
        {"position": "1", "person": tony.pk},
        {"position": "2", "person": solo.pk},
    ], name="night"))
    assert response.status_code == 200
    assert "Solo has 1 channel; a person on a roster needs at least 2." in response.content.decode()
    assert not Roster.objects.filter(name="night").exists()


def test_rounds_out_of_range_is_a_form_error(admin_client: Client) -> None:
    response = admin_client.post(reverse("admin:escalation_roster_add"), roster_post(None, [], name="x", rounds=11))
    assert response.status_code == 200
    assert "Ensure this value is less than or equal to 10." in response.content.decode()


def test_the_roster_form_shows_each_members_channels(admin_client: Client, ops: Roster) -> None:
    response = admin_client.get(reverse("admin:escalation_roster_change", args=[ops.pk]))
    assert response.status_code == 200
    assert "WhatsApp 447700900001 → WhatsApp 447700900002 → WhatsApp 447700900003" in response.content.decode()
    assert b"escalation/reorder.js" in response.content


@pytest.fixture
def team(tony: Person, ops: Roster) -> None:
    Person.objects.create(name="Gone", is_active=False)
    ann = make_person("Ann", "5550001000000001", "447700900021", kind="messenger")
    ann.channels.filter(position=2).update(type="sms")
    Roster.objects.create(name="night").members.create(person=ann, position=1)


def listed(response) -> list[str]:
    return [person.name for person in response.context["cl"].result_list]


@pytest.mark.usefixtures("team")
@pytest.mark.parametrize(("query", "names"), [
    ("", ["Ann", "Gone", "Tony"]),
    ("?is_active__exact=0", ["Gone"]),
    ("?channel_type=messenger", ["Ann"]),
    ("?channel_type=whatsapp", ["Tony"]),
    ("?roster=none", ["Gone"]),
    ("?q=447700900021", ["Ann"]),
    ("?q=ton", ["Tony"]),
])
def test_the_people_list_filters_and_searches(admin_client: Client, query: str, names: list[str]) -> None:
    response = admin_client.get(reverse("admin:escalation_person_changelist") + query)
    assert response.status_code == 200
    assert listed(response) == names


@pytest.mark.usefixtures("team")
def test_the_people_list_filters_by_roster(admin_client: Client) -> None:
    night = Roster.objects.get(name="night")
    response = admin_client.get(reverse("admin:escalation_person_changelist") + f"?roster={night.pk}")
    assert listed(response) == ["Ann"]


@pytest.mark.usefixtures("team")
def test_the_people_list_shows_channels_and_rosters(admin_client: Client) -> None:
    page = admin_client.get(reverse("admin:escalation_person_changelist")).content.decode()
    assert "Facebook Messenger 5550001000000001 → SMS 447700900021" in page
    assert "ops (#1)" in page
    assert "no channels" in page


@pytest.mark.usefixtures("team")
def test_the_roster_list_shows_members_in_order(admin_client: Client) -> None:
    ann = Person.objects.get(name="Ann")
    RosterMember.objects.create(roster=Roster.objects.get(name="ops"), person=ann, position=0)
    response = admin_client.get(reverse("admin:escalation_roster_changelist"))
    assert "Ann → Tony" in response.content.decode()
    response = admin_client.get(reverse("admin:escalation_roster_changelist") + "?q=ann")
    assert [r.name for r in response.context["cl"].result_list] == ["night", "ops"]


def test_an_invalid_sender_is_a_form_error(admin_client: Client) -> None:
    response = admin_client.post(reverse("admin:escalation_sender_add"),
                                 {"channel_type": "whatsapp", "sender_id": "+447700900000"})
    assert response.status_code == 200
    assert escape("A WhatsApp sender is an E.164 number without '+'.") in response.content.decode()


def test_a_second_sender_for_one_type_is_a_form_error(admin_client: Client) -> None:
    Sender.objects.create(channel_type="sms", sender_id="OnCall")
    response = admin_client.post(reverse("admin:escalation_sender_add"), {"channel_type": "sms", "sender_id": "Ops"})
    assert response.status_code == 200
    assert "Sender with this Channel type already exists." in response.content.decode()


def test_it_adds_a_sender(admin_client: Client) -> None:
    response = admin_client.post(reverse("admin:escalation_sender_add"), {"channel_type": "sms", "sender_id": "OnCall"})
    assert response.status_code == 302
    assert Sender.objects.get().sender_id == "OnCall"


def test_the_sender_list_names_the_missing_types(admin_client: Client) -> None:
    Sender.objects.create(channel_type="sms", sender_id="OnCall")
    response = admin_client.get(reverse("admin:escalation_sender_changelist"))
    assert response.status_code == 200
    assert ("No sender for Facebook Messenger, Viber, WhatsApp: escalations to those channels are refused."
            in response.content.decode())
