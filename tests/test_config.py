"""import_config and export_config: the seed's config.json in and out, all or nothing.

The seed's own samples hold placeholders ("USER PHONE NUMBER") that are no address, so the imports that
must succeed use copies with demo addresses (tests/fixtures/sample*_demo.json, same structure).
"""

import copy
import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from escalation.models import Channel, Person, Roster, RosterMember, Sender
from escalation.services.config import MAX_CONFIG_BYTES

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures"
DEMO = FIXTURES / "sample_demo.json"
DEMO_CASE3 = FIXTURES / "sample_case3_demo.json"


def import_config(path: Path | str, *args: str) -> str:
    out = StringIO()
    call_command("import_config", str(path), *args, stdout=out)
    return out.getvalue()


def export_config(roster: str) -> str:
    out = StringIO()
    call_command("export_config", roster, stdout=out)
    return out.getvalue()


def write(tmp_path: Path, data: dict | str | bytes) -> Path:
    path = tmp_path / "config.json"
    if isinstance(data, dict):
        data = json.dumps(data)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def demo() -> dict:
    return json.loads(DEMO_CASE3.read_text())


def snapshot() -> tuple:
    """Everything an import may touch, ids included."""
    return (
        list(Person.objects.order_by("id").values_list("id", "name", "notes", "is_active")),
        list(Channel.objects.order_by("id").values_list(
            "id", "person_id", "position", "type", "address", "expiry_time", "condition")),
        list(Sender.objects.order_by("id").values_list("id", "channel_type", "sender_id")),
        list(Roster.objects.order_by("id").values_list("id", "name", "description", "rounds")),
        list(RosterMember.objects.order_by("id").values_list("id", "roster_id", "person_id", "position")),
    )


def channels_of(name: str) -> list[tuple]:
    person = Person.objects.get(name=name)
    return list(person.channels.order_by("position").values_list("type", "address", "expiry_time", "condition"))


def test_it_imports_the_tutorial_sample() -> None:
    out = import_config(DEMO)
    roster = Roster.objects.get(name="default")
    assert [m.person.name for m in roster.ordered_members()] == ["Tony", "Michael"]
    assert channels_of("Tony") == [
        ("messenger", "5550001000000001", 600, "read"),
        ("sms", "447700900001", 600, "read"),
    ]
    assert channels_of("Michael") == [
        ("viber_service_msg", "447700900002", 600, "read"),
        ("whatsapp", "447700900003", 600, "read"),
        ("sms", "447700900004", 600, "read"),
    ]
    assert dict(Sender.objects.values_list("channel_type", "sender_id")) == {
        "messenger": "102938475610293", "viber_service_msg": "16273", "whatsapp": "447700900000", "sms": "OnCall",
    }
    assert (Person.objects.count(), Channel.objects.count(), RosterMember.objects.count()) == (2, 5, 2)
    assert "Roster 'default': 2 people in order (2 new, 0 updated), 5 channels, 4 senders." in out


def test_it_imports_the_per_channel_expiry_sample() -> None:
    import_config(DEMO_CASE3)
    assert channels_of("Tony") == [
        ("messenger", "5550001000000001", 600, "read"),
        ("sms", "447700900001", 600, "read"),
    ]
    assert channels_of("Michael") == [
        ("viber_service_msg", "447700900002", 300, "read"),
        ("whatsapp", "447700900003", 200, "read"),
        ("sms", "447700900004", 600, "read"),
    ]
    assert (Person.objects.count(), Channel.objects.count(), RosterMember.objects.count()) == (2, 5, 2)


def test_it_says_where_the_app_secrets_go_and_does_not_store_them() -> None:
    out = import_config(DEMO)
    assert "Set VONAGE_APPLICATION_ID and VONAGE_PRIVATE_KEY_PATH in the environment" in out
    assert "abcd1234" not in out and "private.key" not in out


def test_it_warns_about_sms_channels_waiting_for_read() -> None:
    out = import_config(DEMO)
    assert "Warning: Tony: channel 2 (SMS 447700900001) waits for 'read', which SMS never reports" in out
    assert "Warning: Michael: channel 3 (SMS 447700900004)" in out


def test_it_takes_numbers_and_the_delivered_condition(tmp_path: Path) -> None:
    data = demo()
    data["USERS"][0]["channels"][1].update(expiry_time=45, condition_status="delivered")
    out = import_config(write(tmp_path, data))
    assert channels_of("Tony")[1] == ("sms", "447700900001", 45, "delivered")
    assert "Tony: channel 2" not in out


def test_it_imports_into_a_named_roster(tmp_path: Path) -> None:
    import_config(DEMO, "--roster", "night")
    assert [m.person.name for m in Roster.objects.get(name="night").ordered_members()] == ["Tony", "Michael"]
    assert not Roster.objects.filter(name="default").exists()


def test_a_second_import_updates_people_by_name_and_replaces_the_roster(tmp_path: Path) -> None:
    import_config(DEMO)
    tony, michael = Person.objects.get(name="Tony"), Person.objects.get(name="Michael")
    Person.objects.filter(pk=tony.pk).update(notes="team lead")
    data = demo()
    data["USERS"] = [
        {"name": "Ann", "channels": [{"type": "sms", "id_num": "447700900031"},
                                     {"type": "whatsapp", "id_num": "447700900032"}]},
        {"name": "Tony", "channels": [{"type": "whatsapp", "id_num": "447700900099", "expiry_time": 30},
                                      {"type": "messenger", "id_num": "5550001000000001"},
                                      {"type": "sms", "id_num": "447700900001", "condition_status": "delivered"}]},
    ]
    data["FROM"] = {"SMS": "OnCallOps"}
    out = import_config(write(tmp_path, data))
    assert [m.person.name for m in Roster.objects.get(name="default").ordered_members()] == ["Ann", "Tony"]
    assert Person.objects.get(name="Tony").pk == tony.pk
    assert Person.objects.get(name="Tony").notes == "team lead"
    assert channels_of("Tony") == [
        ("whatsapp", "447700900099", 30, "read"),
        ("messenger", "5550001000000001", 600, "read"),
        ("sms", "447700900001", 600, "delivered"),
    ]
    # Michael left the roster but is still a person with his channels.
    assert len(channels_of("Michael")) == 3 and Person.objects.filter(pk=michael.pk).exists()
    assert Sender.objects.get(channel_type="sms").sender_id == "OnCallOps"
    assert Sender.objects.get(channel_type="whatsapp").sender_id == "447700900000"
    assert "(1 new, 1 updated)" in out
    assert "Removed from the roster (the people are kept): Michael." in out


@pytest.mark.parametrize("sample", ["seed_sample.json", "seed_sample_case3.json"])
def test_the_seed_placeholders_are_refused_naming_user_and_channel(sample: str) -> None:
    with pytest.raises(CommandError) as caught:
        import_config(FIXTURES / sample)
    message = str(caught.value)
    assert message.startswith(f"Nothing was imported from {FIXTURES / sample}:")
    assert ("USERS user 1 'Tony', channel 1 (messenger): id_num 'USER MESSENGER ID': "
            "A Messenger address is the person's page-scoped id (PSID): digits only.") in message
    assert "USERS user 2 'Michael', channel 3 (sms): id_num 'USER PHONE NUMBER': Enter the number in E.164" in message
    assert "FROM.SMS 'COMPANY SMS NAME/NUMBER': An SMS sender is" in message
    assert snapshot() == ([], [], [], [], [])


def test_a_failed_import_changes_nothing(tmp_path: Path) -> None:
    import_config(DEMO)
    before = snapshot()
    data = demo()
    data["FROM"]["SMS"] = "NewName"
    data["USERS"].insert(0, {"name": "Ann", "channels": [{"type": "sms", "id_num": "447700900031"},
                                                         {"type": "sms", "id_num": "447700900032"}]})
    data["USERS"][2]["channels"][2]["id_num"] = "07700900004"  # the very last channel is wrong: no country code
    with pytest.raises(CommandError) as caught:
        import_config(write(tmp_path, data), "--roster", "default")
    assert "USERS user 3 'Michael', channel 3 (sms): id_num '07700900004'" in str(caught.value)
    assert snapshot() == before


def test_round_trip_is_lossless(tmp_path: Path) -> None:
    data = demo()
    data["USERS"][1]["channels"][2].update(condition_status="delivered", expiry_time="86400")
    import_config(write(tmp_path, data))
    before = snapshot()
    exported = export_config("default")
    import_config(write(tmp_path, exported))
    assert snapshot() == before
    assert export_config("default") == exported
    assert json.loads(exported) == {
        "FROM": data["FROM"],
        "USERS": [
            {"name": "Tony", "channels": [
                {"type": "messenger", "id_num": "5550001000000001", "condition_status": "read", "expiry_time": 600},
                {"type": "sms", "id_num": "447700900001", "condition_status": "read", "expiry_time": 600},
            ]},
            {"name": "Michael", "channels": [
                {"type": "viber_service_msg", "id_num": "447700900002", "condition_status": "read",
                 "expiry_time": 300},
                {"type": "whatsapp", "id_num": "447700900003", "condition_status": "read", "expiry_time": 200},
                {"type": "sms", "id_num": "447700900004", "condition_status": "delivered", "expiry_time": 86400},
            ]},
        ],
    }


def test_round_trip_into_an_empty_database_recreates_the_same_roster(tmp_path: Path) -> None:
    import_config(DEMO_CASE3)
    exported = export_config("default")
    for model in (RosterMember, Roster, Channel, Person, Sender):
        model.objects.all().delete()
    import_config(write(tmp_path, exported))
    assert export_config("default") == exported


def test_export_writes_a_file_and_names_unknown_rosters(tmp_path: Path) -> None:
    import_config(DEMO)
    call_command("export_config", "default", "--output", str(tmp_path / "out.json"))
    assert json.loads((tmp_path / "out.json").read_text())["USERS"][0]["name"] == "Tony"
    with pytest.raises(CommandError, match=r"No roster named 'night'\. Rosters: default\."):
        export_config("night")


def test_export_follows_the_admins_order() -> None:
    import_config(DEMO)
    roster = Roster.objects.get(name="default")
    roster.members.filter(person__name="Michael").update(position=0)
    Person.objects.get(name="Tony").channels.filter(type="sms").update(position=0)
    users = json.loads(export_config("default"))["USERS"]
    assert [u["name"] for u in users] == ["Michael", "Tony"]
    assert [c["type"] for c in users[1]["channels"]] == ["sms", "messenger"]


def user(name: str = "Ann", **channel: object) -> dict:
    return {"name": name, "channels": [{"type": "sms", "id_num": "447700900031", **channel},
                                       {"type": "whatsapp", "id_num": "447700900032"}]}


def with_users(*users: object) -> dict:
    data = demo()
    data["USERS"] = list(users)
    return data


HOSTILE = {
    "not an object": ("[1, 2]", "The file must hold a JSON object with FROM and USERS."),
    "empty": ("", "The file is not valid JSON"),
    "truncated": ('{"USERS": [', "The file is not valid JSON"),
    "not utf-8": (b'{"USERS": "\xff\xfe"}', "The file is not UTF-8 text"),
    "deeply nested": ("[" * 200_000 + "]" * 200_000, "nested too deeply"),
    "deep inside a user": ('{"USERS": [{"name": "Ann", "channels": ' + "[" * 100_000 + "]" * 100_000 + "}]}",
                           "nested too deeply"),
    "huge number": ('{"USERS": [' + "9" * 5000 + "]}", "The file is not valid JSON"),
    "duplicate keys": ('{"USERS": [], "USERS": []}', "The key 'USERS' appears twice in the same object."),
    "unknown top key": ({**demo(), "TO": {}}, "The file: unknown key(s) 'TO'"),
    "no users": ({"FROM": {}}, "USERS: must be a non-empty list of users."),
    "users not a list": ({"USERS": {"name": "Ann"}}, "USERS: must be a non-empty list of users."),
    "user not an object": (with_users("Ann"), "USERS user 1: must be an object with name and channels."),
    "name not a string": (with_users({**user(), "name": 7}), "USERS user 1: name must be a non-empty string."),
    "blank name": (with_users({**user(), "name": "  "}), "USERS user 1: name must be a non-empty string."),
    "name too long": (with_users(user("A" * 101)), "Ensure this value has at most 100 characters (it has 101)."),
    "padded name": (with_users(user(" Ann")), "name ' Ann' has leading or trailing spaces."),
    "channels not a list": (with_users({"name": "Ann", "channels": "sms"}),
                            "USERS user 1 'Ann': channels must be a list."),
    "one channel": (with_users({"name": "Ann", "channels": [{"type": "sms", "id_num": "447700900031"}]}),
                    "USERS user 1 'Ann': has 1 channel; a person on a roster needs at least 2."),
    "channel not an object": (with_users({"name": "Ann", "channels": ["sms", "whatsapp"]}),
                              "USERS user 1 'Ann', channel 1: must be an object with type and id_num."),
    "unknown channel type": (with_users(user(type="telegram")),
                             "USERS user 1 'Ann', channel 1: type 'telegram' is not one of messenger, "
                             "viber_service_msg, whatsapp, sms."),
    "v1 viber name": (with_users(user(type="viber_service")), "type 'viber_service' is not one of"),
    "number as address": (with_users(user(id_num=447700900031)),
                          "USERS user 1 'Ann', channel 1 (sms): id_num must be a string"),
    "unknown channel key": (with_users(user(expiry=30)), "channel 1 (sms): unknown key(s) 'expiry'"),
    "unknown condition": (with_users(user(condition_status="seen")),
                          "channel 1 (sms): condition_status 'seen' is not one of read, delivered."),
    "boolean expiry": (with_users(user(expiry_time=True)), "expiry_time True is not a whole number of seconds."),
    "fractional expiry": (with_users(user(expiry_time=1.5)), "expiry_time 1.5 is not a whole number of seconds."),
    "word expiry": (with_users(user(expiry_time="ten")), "expiry_time 'ten' is not a whole number of seconds."),
    "NaN expiry": ('{"USERS": [{"name": "Ann", "channels": [{"type": "sms", "id_num": "447700900031", '
                   '"expiry_time": NaN}, {"type": "sms", "id_num": "447700900032"}]}]}',
                   "expiry_time nan is not a whole number of seconds."),
    "endless digits expiry": (with_users(user(expiry_time="9" * 5000)), "is not a whole number of seconds."),
    "expiry too short": (with_users(user(expiry_time="14")),
                         "channel 1 (sms): expiry_time '14': Ensure this value is greater than or equal to 15."),
    "expiry too long": (with_users(user(expiry_time=10**30)), "Ensure this value is less than or equal to 86400."),
    "address too long": (with_users(user(type="messenger", id_num="1" * 51)),
                         "Ensure this value has at most 50 characters (it has 51)."),
    "duplicate names": (with_users(user("Ann"), user("Bob"), user("Ann")),
                        "USERS user 3 'Ann': the name is listed twice; names must be unique."),
    "FROM not an object": ({**demo(), "FROM": ["OnCall"]}, "FROM: must be an object"),
    "FROM unknown key": ({**demo(), "FROM": {"TELEGRAM": "x"}}, "FROM: unknown key(s) 'TELEGRAM'"),
    "FROM wrong type": ({**demo(), "FROM": {"SMS": 447700900000}}, "FROM.SMS: must be a string, not 447700900000."),
    "APP not an object": ({**demo(), "APP": "secret"}, "APP: must be an object"),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_a_hostile_file_is_refused_and_changes_nothing(tmp_path: Path, case: str) -> None:
    import_config(DEMO)
    before = snapshot()
    content, expected = HOSTILE[case]
    with pytest.raises(CommandError) as caught:
        import_config(write(tmp_path, copy.deepcopy(content)))
    assert expected in str(caught.value)
    assert len(str(caught.value)) < 2000
    assert snapshot() == before


def test_a_file_over_the_size_cap_is_refused_unread(tmp_path: Path) -> None:
    data = demo()
    data["USERS"][0]["name"] = "x" * MAX_CONFIG_BYTES
    with pytest.raises(CommandError, match=f"larger than {MAX_CONFIG_BYTES} bytes"):
        import_config(write(tmp_path, data))
    assert snapshot() == ([], [], [], [], [])


def test_a_long_value_is_cut_short_in_the_message(tmp_path: Path) -> None:
    with pytest.raises(CommandError) as caught:
        import_config(write(tmp_path, with_users(user(type="t" * 500_000))))
    assert "type 'tttt" in str(caught.value) and len(str(caught.value)) < 1000


def test_a_missing_file_or_a_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="Cannot read .*missing.json: No such file or directory"):
        import_config(tmp_path / "missing.json")
    with pytest.raises(CommandError, match="Cannot read"):
        import_config(tmp_path)


def test_an_invalid_roster_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="Roster name ''"):
        import_config(DEMO, "--roster", " ")
    assert snapshot() == ([], [], [], [], [])


def test_a_shorter_channel_list_keeps_the_first_rows_and_drops_the_rest(tmp_path: Path) -> None:
    import_config(DEMO)
    first_ids = list(Person.objects.get(name="Michael").channels.order_by("position").values_list("id", flat=True))
    data = demo()
    data["USERS"][1]["channels"] = [{"type": "sms", "id_num": "447700900004"},
                                    {"type": "whatsapp", "id_num": "447700900003"}]
    import_config(write(tmp_path, data))
    michael = Person.objects.get(name="Michael")
    assert channels_of("Michael") == [("sms", "447700900004", 600, "read"), ("whatsapp", "447700900003", 600, "read")]
    assert list(michael.channels.order_by("position").values_list("id", flat=True)) == first_ids[:2]
