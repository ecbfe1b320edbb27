"""The optional FROM keys of the configuration file for pages outside the 24-hour window (README, "Channels").

    "FROM": {"WHATSAPP": "447700900000",
             "WHATSAPP_TEMPLATE": {"name": "oncall_alert", "namespace": "whatsapp:hsm:it:oncall",
                                   "locale": "en-GB", "policy": "deterministic", "parameters": ["text", "escalation"]},
             "MESSENGER": "1923256201474167", "MESSENGER_TAG": "ACCOUNT_UPDATE", ...}

Only `name` is required in WHATSAPP_TEMPLATE (locale en-US, policy deterministic and parameters ["text"] by
default). A file without these keys (the seed's own) leaves the senders' settings as they are.
"""

from typing import Any

from django.core.exceptions import ValidationError

from escalation.models import ChannelType, Sender

TEMPLATE_KEY = "WHATSAPP_TEMPLATE"
TAG_KEY = "MESSENGER_TAG"
KEYS = {TEMPLATE_KEY, TAG_KEY}
TEMPLATE_FIELDS = {"name": "template_name", "namespace": "template_namespace", "locale": "template_locale",
                   "policy": "template_policy", "parameters": "template_parameters"}


def parse_sender_settings(obj: dict, senders: dict[str, str]) -> tuple[dict[str, dict], list[str]]:
    """{channel type: Sender field values} from FROM's optional keys, and the problems found.

    `senders` are the sender ids parsed from the same FROM section: each setting needs its channel's id.
    """
    settings, problems = {}, []
    if TEMPLATE_KEY in obj:
        fields, found = _template_fields(obj[TEMPLATE_KEY])
        problems += found
        if fields:
            settings[ChannelType.WHATSAPP] = fields
    if TAG_KEY in obj:
        tag = obj[TAG_KEY]
        if not isinstance(tag, str):
            problems.append(f"FROM.{TAG_KEY}: must be a string such as \"ACCOUNT_UPDATE\".")
        else:
            settings[ChannelType.MESSENGER] = {"messenger_tag": tag}
    for channel_type, fields in settings.items():
        key = "WHATSAPP" if channel_type == ChannelType.WHATSAPP else "MESSENGER"
        if channel_type not in senders:
            problems.append(f"FROM.{key}: needed beside FROM.{TEMPLATE_KEY if key == 'WHATSAPP' else TAG_KEY}.")
            continue
        try:
            Sender(channel_type=channel_type, sender_id=senders[channel_type], **fields).full_clean(
                validate_unique=False)
        except ValidationError as e:
            problems += [f"FROM.{key} settings: {' '.join(m)}" for m in e.message_dict.values()]
    return settings, problems


def _template_fields(value: object) -> tuple[dict, list[str]]:
    where = f"FROM.{TEMPLATE_KEY}"
    if not isinstance(value, dict):
        return {}, [f"{where}: must be an object like {{\"name\": \"oncall_alert\", \"locale\": \"en-GB\"}}."]
    unknown = sorted(set(value) - set(TEMPLATE_FIELDS))
    if unknown:
        return {}, [f"{where}: unknown key(s) {', '.join(map(repr, unknown[:5]))[:200]}; expected "
                    f"{', '.join(TEMPLATE_FIELDS)}."]
    fields, problems = {}, []
    for key, field in TEMPLATE_FIELDS.items():
        if key not in value:
            continue
        item = value[key]
        if key == "parameters":
            if not isinstance(item, list) or not all(isinstance(p, str) for p in item):
                problems.append(f"{where}.parameters: must be a list of strings such as [\"text\", \"escalation\"].")
                continue
            item = ",".join(item)
        elif not isinstance(item, str):
            problems.append(f"{where}.{key}: must be a string.")
            continue
        fields[field] = item
    if "template_name" not in fields and not problems:
        problems.append(f"{where}.name: is required.")
    return fields, problems


def export_sender_settings(senders: dict[str, Sender]) -> dict:
    """FROM's optional keys for the senders' settings that are set."""
    exported: dict[str, Any] = {}
    whatsapp = senders.get(ChannelType.WHATSAPP)
    if whatsapp is not None and whatsapp.template_name:
        exported[TEMPLATE_KEY] = {
            "name": whatsapp.template_name, "namespace": whatsapp.template_namespace,
            "locale": whatsapp.template_locale, "policy": whatsapp.template_policy,
            "parameters": whatsapp.parameter_keys,
        }
    messenger = senders.get(ChannelType.MESSENGER)
    if messenger is not None and messenger.messenger_tag:
        exported[TAG_KEY] = messenger.messenger_tag
    return exported
