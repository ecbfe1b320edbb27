"""The Dispatch failover workflow we build, against the seed and against Vonage's own schema."""

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from emulator.schemas import dispatch_problems, message_problems
from escalation.engine.provider import get_client
from escalation.vonage.bodies import failover_workflow, v1_message

SPEC = Path(__file__).resolve().parent.parent / "emulator" / "spec" / "dispatch.yml"
SENDERS = {"messenger": "acme-page", "viber_service_msg": "acme-viber", "whatsapp": "447700900000", "sms": "ACME"}


def channel(kind: str, address: str, expiry_time: int = 600, condition: str = "read") -> dict:
    return {"type": kind, "address": address, "expiry_time": expiry_time, "condition": condition,
            "sender": SENDERS[kind]}


def load_validators() -> tuple[Draft4Validator, Draft4Validator, Draft4Validator]:
    """createWorkflow from dispatch.yml as-is, refs resolved by `referencing` (not the emulator's loader).

    VONAGE_FACTS.md: both item schemas match any item, so the literal oneOf refuses every body; anyOf is
    what the spec means, and the only change made to Vonage's file. anyOf alone lets a broken `failover`
    through (sendMessage ignores it), so items are also checked against the rule the spec states in words:
    every item but the last is a sendWithFailoverMessage with failover, the last a sendMessage without.
    """
    document = yaml.safe_load(SPEC.read_text())
    items = document["components"]["schemas"]["createWorkflow"]["properties"]["workflow"]["items"]
    items["anyOf"] = items.pop("oneOf")
    registry = Registry().with_resource("urn:dispatch", Resource.from_contents(document, DRAFT4))

    def validator(schema: dict) -> Draft4Validator:
        return Draft4Validator(schema, registry=registry)

    return (
        validator({"$ref": "urn:dispatch#/components/schemas/createWorkflow"}),
        validator({"allOf": [{"$ref": "urn:dispatch#/components/schemas/sendWithFailoverMessage"},
                             {"required": ["failover"]}]}),
        validator({"allOf": [{"$ref": "urn:dispatch#/components/schemas/sendMessage"},
                             {"not": {"required": ["failover"]}}]}),
    )


WORKFLOW, WITH_FAILOVER, LAST = load_validators()


def schema_errors(body: dict) -> list[str]:
    errors = [e.message for e in WORKFLOW.iter_errors(body)]
    *items, last = body["workflow"]
    errors += [e.message for item in items for e in WITH_FAILOVER.iter_errors(item)]
    return errors + [e.message for e in LAST.iter_errors(last)]


def test_it_builds_the_seeds_workflow():
    # The seed's case-3 sample: Michael on Viber, then WhatsApp, then SMS as the final fallback.
    channels = [channel("viber_service_msg", "447700900001", 300), channel("whatsapp", "447700900002", 200),
                channel("sms", "447700900003")]

    body = failover_workflow(person_name="Michael", channels=channels, text="Important message!")

    text = {"type": "text", "text": "[Michael]: Important message!"}
    assert body == {
        "template": "failover",
        "workflow": [
            {"from": {"type": "viber_service_msg", "id": "acme-viber"},
             "to": {"type": "viber_service_msg", "number": "447700900001"},
             "message": {"content": text},
             "failover": {"expiry_time": 300, "condition_status": "read"}},
            {"from": {"type": "whatsapp", "number": "447700900000"},
             "to": {"type": "whatsapp", "number": "447700900002"},
             "message": {"content": text},
             "failover": {"expiry_time": 200, "condition_status": "read"}},
            {"from": {"type": "sms", "number": "ACME"},
             "to": {"type": "sms", "number": "447700900003"},
             "message": {"content": text}},
        ],
    }
    assert schema_errors(body) == []


def test_messenger_uses_ids_on_both_sides():
    channels = [channel("messenger", "2301"), channel("sms", "447700900003")]

    body = failover_workflow(person_name="Tony", channels=channels, text="x")

    assert body["workflow"][0]["from"] == {"type": "messenger", "id": "acme-page"}
    assert body["workflow"][0]["to"] == {"type": "messenger", "id": "2301"}


def test_a_string_expiry_from_a_seed_config_becomes_an_integer():
    channels = [{**channel("whatsapp", "447700900002"), "expiry_time": "600"}, channel("sms", "447700900003")]

    body = failover_workflow(person_name="Tony", channels=channels, text="x")

    assert body["workflow"][0]["failover"]["expiry_time"] == 600


def test_a_person_without_channels_is_refused():
    with pytest.raises(ValueError):
        failover_workflow(person_name="Nobody", channels=[], text="x")


NUMBERS = st.integers(10**6, 10**15 - 1).map(str)  # E.164 digits without '+'
PSIDS = st.integers(0, 10**50 - 1).map(str)
CHANNELS = st.one_of(
    st.builds(channel, st.just("messenger"), PSIDS, st.integers(15, 86400),
              st.sampled_from(["read", "delivered"])),
    *[st.builds(channel, st.just(kind), NUMBERS, st.integers(15, 86400), st.sampled_from(["read", "delivered"]))
      for kind in ("whatsapp", "sms", "viber_service_msg")],
)
TEXTS = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=500)
NAMES = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=100)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=NAMES, channels=st.lists(CHANNELS, min_size=1, max_size=6), text=TEXTS)
def test_every_generated_roster_builds_a_valid_workflow(name, channels, text):
    body = failover_workflow(person_name=name, channels=channels, text=text)

    assert schema_errors(body) == []
    # The rule dispatch.yml states in words: failover on every item but the last.
    assert ["failover" in item for item in body["workflow"]] == [True] * (len(channels) - 1) + [False]
    # ... and the emulator, which adds the per-channel address rules, agrees.
    assert dispatch_problems(body) == []


@settings(max_examples=100, deadline=None)
@given(channel=CHANNELS, text=TEXTS, client_ref=st.text(st.characters(codec="ascii"), max_size=100))
def test_every_generated_v1_message_is_valid(channel, text, client_ref):
    assert message_problems(v1_message(channel=channel, text=text, client_ref=client_ref)) == []


def test_the_schema_check_catches_a_broken_failover():
    channels = [channel("whatsapp", "447700900002"), channel("sms", "447700900003")]
    body = failover_workflow(person_name="Ann", channels=channels, text="x")
    body["workflow"][0]["failover"]["expiry_time"] = 5

    assert schema_errors(body) == ["5 is less than the minimum of 15"]
    assert dispatch_problems(body) == [{"name": "workflow[0].failover.expiry_time",
                                        "reason": "5 is less than the minimum of 15"}]


def test_the_schema_check_catches_a_broken_workflow():
    body = failover_workflow(person_name="Ann", channels=[channel("sms", "447700900003")], text="x")
    body["workflow"][0]["to"]["type"] = "telegram"
    body["workflow"][0]["failover"] = {"expiry_time": 5, "condition_status": "seen"}

    assert len(schema_errors(body)) == 3  # to.type against createWorkflow; to.type and failover as a last item
    assert {p["name"] for p in dispatch_problems(body)} >= {
        "workflow[0].to.type", "workflow[0].failover.expiry_time", "workflow[0].failover.condition_status",
    }


def test_the_emulator_plays_the_workflow_it_accepted(emulator):
    channels = [channel("messenger", "2301", 15), channel("viber_service_msg", "447700900001", 15),
                channel("sms", "447700900003")]

    dispatch_uuid = get_client().dispatch_failover(person_name="Ann", channels=channels, text="db down")

    messages = emulator.wait_for(lambda: emulator.messages(dispatch_uuid=dispatch_uuid), lambda m: len(m) == 3)
    assert [(m["channel"], m["to"], m["from"]) for m in messages] == [
        ("messenger", "2301", "acme-page"), ("viber_service_msg", "447700900001", "acme-viber"),
        ("sms", "447700900003", "ACME"),
    ]
    assert {m["text"] for m in messages} == {"[Ann]: db down"}
