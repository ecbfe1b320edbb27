"""Issue 19: the senders' settings for pages outside the 24-hour window (a WhatsApp template, a Messenger tag),
in the configuration file and the admin, and what the fire page and the timeline say about them."""

import json
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.urls import reverse

from escalation.models import ChannelType, Message, Sender
from escalation.services.config import ConfigError, config_export, config_import, config_parse
from escalation.timeline import short_form
from tests.personas import make_roster

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
SEED_SAMPLE = ROOT / "tests" / "fixtures" / "sample_demo.json"
DEMO_CONFIG = ROOT / "escalation" / "fixtures" / "demo_config.json"
TEMPLATE = {"name": "oncall_alert", "namespace": "whatsapp:hsm:it:oncall", "locale": "en-GB",
            "policy": "deterministic", "parameters": ["text", "escalation"]}
ANNA = ("Anna", [("whatsapp", "447700900005", 30, "read"), ("sms", "447700900006", 30, "delivered")])


def with_from(**extra) -> bytes:
    data = json.loads(SEED_SAMPLE.read_text())
    data["FROM"].update(extra)
    return json.dumps(data).encode()


def test_it_imports_the_seeds_sample_unchanged_and_keeps_settings_set_in_the_admin():
    Sender.objects.create(channel_type=ChannelType.WHATSAPP, sender_id="447700900000", template_name="kept")
    config_import(raw=SEED_SAMPLE.read_bytes())
    assert Sender.objects.get(channel_type=ChannelType.WHATSAPP).template_name == "kept"


def test_it_imports_and_exports_a_template_and_a_tag():
    result = config_import(raw=with_from(WHATSAPP_TEMPLATE=TEMPLATE, MESSENGER_TAG="ACCOUNT_UPDATE"))
    whatsapp = Sender.objects.get(channel_type=ChannelType.WHATSAPP)
    assert (whatsapp.template_name, whatsapp.template_namespace, whatsapp.template_locale,
            whatsapp.parameter_keys) == ("oncall_alert", "whatsapp:hsm:it:oncall", "en-GB", ["text", "escalation"])
    assert Sender.objects.get(channel_type=ChannelType.MESSENGER).messenger_tag == "ACCOUNT_UPDATE"
    exported = config_export(roster=result.roster)["FROM"]
    assert exported["WHATSAPP_TEMPLATE"] == TEMPLATE
    assert exported["MESSENGER_TAG"] == "ACCOUNT_UPDATE"


def test_the_demo_config_gives_its_senders_a_template_and_a_tag():
    config_import(raw=DEMO_CONFIG.read_bytes())
    assert Sender.objects.get(channel_type=ChannelType.WHATSAPP).template_name == "oncall_alert"
    assert Sender.objects.get(channel_type=ChannelType.MESSENGER).messenger_tag == "ACCOUNT_UPDATE"


@pytest.mark.parametrize(("extra", "problem"), [
    ({"WHATSAPP_TEMPLATE": "oncall_alert"}, "FROM.WHATSAPP_TEMPLATE: must be an object"),
    ({"WHATSAPP_TEMPLATE": {"locale": "en-GB"}}, "FROM.WHATSAPP_TEMPLATE.name: is required."),
    ({"WHATSAPP_TEMPLATE": {"name": "oncall_alert", "colour": "red"}}, "unknown key(s) 'colour'"),
    ({"WHATSAPP_TEMPLATE": {"name": "Oncall Alert"}}, "lower-case letters, digits and '_'"),
    ({"WHATSAPP_TEMPLATE": {"name": "oncall_alert", "policy": "fallback"}}, "The policy is one of deterministic."),
    ({"WHATSAPP_TEMPLATE": {"name": "oncall_alert", "parameters": ["text", "mood"]}}, "Unknown parameter(s) mood"),
    ({"WHATSAPP_TEMPLATE": {"name": "oncall_alert", "locale": "English"}}, "A locale is BCP 47"),
    ({"MESSENGER_TAG": 7}, "FROM.MESSENGER_TAG: must be a string"),
    ({"MESSENGER_TAG": "account update"}, "upper-case letters and '_'"),
])
def test_it_refuses_bad_settings_with_a_clear_reason_and_imports_nothing(extra, problem):
    with pytest.raises(ConfigError) as refused:
        config_parse(raw=with_from(**extra))
    assert problem in str(refused.value)
    assert not Sender.objects.exists()


def test_a_sender_refuses_a_template_on_another_channel():
    sender = Sender(channel_type=ChannelType.SMS, sender_id="OnCall", template_name="oncall_alert",
                    messenger_tag="ACCOUNT_UPDATE")
    with pytest.raises(ValidationError) as refused:
        sender.full_clean()
    assert set(refused.value.message_dict) == {"template_name", "messenger_tag"}


def test_the_sender_admin_edits_the_template(client):
    client.force_login(User.objects.create(username="admin", is_staff=True, is_superuser=True))
    add = client.post(reverse("admin:escalation_sender_add"), {
        "channel_type": "whatsapp", "sender_id": "447700900000", "template_name": "oncall_alert",
        "template_namespace": "whatsapp:hsm:it:oncall", "template_locale": "en_GB",
        "template_policy": "deterministic", "template_parameters": "text, person", "messenger_tag": ""})
    assert add.status_code == 302
    sender = Sender.objects.get()
    assert (sender.template_locale, sender.parameter_keys) == ("en-GB", ["text", "person"])
    listing = client.get(reverse("admin:escalation_sender_changelist")).content.decode()
    assert "template oncall_alert" in listing


def test_the_fire_page_says_which_form_each_channel_takes_and_which_is_skipped(client):
    client.force_login(User.objects.create(username="admin", is_staff=True, is_superuser=True))
    roster = make_roster(ANNA, business_initiated=False)
    page = client.post(reverse("admin:escalation_roster_fire", args=[roster.pk]),
                       {"message": "Main server down"}).content.decode()
    assert ("Anna&#x27;s WhatsApp: no template configured and the 24-hour window is closed: it will be skipped."
            in page)
    Sender.objects.filter(channel_type=ChannelType.WHATSAPP).update(template_name="oncall_alert",
                                                                     template_namespace="ns")
    page = client.post(reverse("admin:escalation_roster_fire", args=[roster.pk]),
                       {"message": "Main server down"}).content.decode()
    assert "WhatsApp template `oncall_alert` (window closed)" in page
    assert "it will be skipped" not in page


def test_the_timeline_names_the_form_in_a_word():
    assert [short_form(m.form) for m in [
        Message(form="WhatsApp template `oncall_alert` (window closed)"),
        Message(form="Facebook Messenger tagged ACCOUNT_UPDATE (window closed)"),
        Message(form="text (24-hour window open)"), Message(form="text"), Message(form="")]] == [
        "template", "tagged", "free text", "", ""]
