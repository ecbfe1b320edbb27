"""Request validation: Vonage's own dispatch.yml for Dispatch, the README's rules for Messages v1.

Problems come back as Vonage's `invalid_parameters` entries: {"name": "workflow[1].to.number", "reason": ...}.
"""

import functools
import re
from pathlib import Path

import yaml
from jsonschema import Draft4Validator
from jsonschema.exceptions import ValidationError, best_match

SPEC_DIR = Path(__file__).resolve().parent / "spec"

# Which address field each channel type uses in a Dispatch item (VONAGE_FACTS.md).
DISPATCH_FIELDS = {
    "messenger": ("id", "id"),
    "whatsapp": ("number", "number"),
    "sms": ("number", "number"),
    "viber_service_msg": ("id", "number"),
}
TEXT_LIMITS = {"messenger": 640, "sms": 1000, "viber_service_msg": 1000, "whatsapp": 4096}
V1_TO_TYPE = {"messenger": "messenger", "whatsapp": "whatsapp", "sms": "sms", "viber_service": "viber_service_msg"}
E164 = re.compile(r"^[1-9][0-9]{6,14}$")

# Written from the README (VONAGE_FACTS.md, "Messages API v1"): there is no v1 spec file beside it.
V1_MESSAGE_SCHEMA = {
    "type": "object",
    "required": ["message_type", "to", "from", "channel"],
    "properties": {
        "message_type": {"type": "string", "enum": ["text", "image", "audio", "video", "file", "template",
                                                    "custom", "vcard", "sticker", "location"]},
        "text": {"type": "string", "minLength": 1, "maxLength": 4096},
        "to": {"type": "string", "minLength": 1, "maxLength": 50},
        "from": {"type": "string", "minLength": 1, "maxLength": 50},
        "channel": {"type": "string", "enum": ["sms", "mms", "rcs", "whatsapp", "messenger", "viber_service"]},
        "client_ref": {"type": "string", "maxLength": 100},
        "webhook_url": {"type": "string", "minLength": 1, "maxLength": 2000},
        "webhook_version": {"type": "string", "enum": ["v0.1", "v1"]},
        # VONAGE_FACTS.md, "Business-initiated messages": Vonage's SDK model `WhatsappTemplate`.
        "template": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 512},
            "parameters": {"type": "array", "items": {"type": "string"}},
        }},
        "whatsapp": {"type": "object", "properties": {
            "policy": {"type": "string", "enum": ["deterministic", "fallback"]},
            "locale": {"type": "string", "minLength": 2, "maxLength": 20},
        }},
        "messenger": {"type": "object", "properties": {
            "category": {"type": "string", "enum": ["response", "update", "message_tag"]},
            "tag": {"type": "string", "minLength": 1},
        }},
    },
}


def _inline_refs(node: object, document: dict) -> object:
    """Replace every local `$ref` by the schema it points at (dispatch.yml has no recursive schemas)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            target: object = document
            for part in ref[2:].split("/"):
                target = target[part]  # type: ignore[index]
            return _inline_refs(target, document)
        return {key: _inline_refs(value, document) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline_refs(value, document) for value in node]
    return node


@functools.cache
def _spec(name: str) -> dict:
    return yaml.safe_load((SPEC_DIR / name).read_text())


def warm() -> None:
    """Parse the spec files and build every validator now, before the first request: parsed on first use, a
    burst of first requests (two workers starting at once) each waited seconds on a slow machine, past the
    app's read timeout, and a workflow accepted that late was sent again as a provider fault's retry."""
    for kind in ("dispatch", "failover", "v1"):
        _validator(kind)
    for name in V01_MESSAGE_SCHEMAS.values():
        _v01_message_validator(name)


@functools.cache
def create_workflow_schema() -> dict:
    """dispatch.yml's `createWorkflow`, refs resolved, with the README's oneOf -> anyOf fix for items."""
    document = _spec("dispatch.yml")
    schema = _inline_refs(document["components"]["schemas"]["createWorkflow"], document)
    items = schema["properties"]["workflow"]["items"]
    # Both alternatives match any item (failover is optional, extra fields are allowed), so a literal
    # oneOf rejects every body; the failover rule is enforced in words below instead.
    items["anyOf"] = items.pop("oneOf")
    return schema


# Each Dispatch item's `message` is a Messages API v0.1 message: messages-v0.1.yml's schema for its channel and
# content type (only those the emulator plays; SMS has no such `message` object there).
V01_MESSAGE_SCHEMAS = {
    ("whatsapp", "text"): "textMessageWhatsApp",
    ("whatsapp", "template"): "templateMessageWhatsApp",
    ("messenger", "text"): "textMessageFacebook",
    ("viber_service_msg", "text"): "textMessageViber",
}


@functools.cache
def _v01_message_validator(name: str) -> Draft4Validator:
    document = _spec("messages-v0.1.yml")
    schema = _inline_refs(document["components"]["schemas"][name], document)
    if name == "templateMessageWhatsApp":
        # The two spec copies disagree on template parameters: messages-v0.1.yml has plain strings, dispatch.yml
        # (the API these items are sent to) and VONAGE_FACTS.md have [{"default": ...}]. dispatch.yml checks them.
        del schema["properties"]["message"]["properties"]["content"]["properties"]["template"]["properties"][
            "parameters"]
    return Draft4Validator(schema)


@functools.cache
def _validator(kind: str) -> Draft4Validator:
    # OpenAPI 3.0 schema objects are a draft-4 dialect (boolean exclusiveMinimum and friends).
    if kind == "dispatch":
        return Draft4Validator(create_workflow_schema())
    if kind == "failover":
        # With anyOf, an item whose `failover` is broken still matches sendMessage (which ignores it), so
        # a present failover is checked on its own against sendWithFailoverMessage's FailoverProperty.
        with_failover = create_workflow_schema()["properties"]["workflow"]["items"]["anyOf"][0]
        return Draft4Validator(with_failover["properties"]["failover"])
    return Draft4Validator(V1_MESSAGE_SCHEMA)


def _name(path: list) -> str:
    name = ""
    for part in path:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


def _leaves(error: ValidationError) -> list[ValidationError]:
    if not error.context:
        return [error]
    if error.validator == "anyOf":
        # A workflow item failing both alternatives: report the first one's errors. sendWithFailoverMessage
        # is sendMessage plus `failover`, so its errors cover both.
        first = [e for e in error.context if e.relative_schema_path[0] == 0]
        return [leaf for e in first for leaf in _leaves(e)]
    return _leaves(best_match(error.context))


def _schema_problems(kind: str, body: object, prefix: tuple = (), validator: Draft4Validator | None = None
                     ) -> list[dict]:
    problems = []
    validator = validator or _validator(kind)
    errors = sorted(validator.iter_errors(body), key=lambda e: [str(p) for p in e.absolute_path])
    for leaf in (leaf for error in errors for leaf in _leaves(error)):
        path = [*prefix, *leaf.absolute_path]
        if leaf.validator == "required":
            # One error per missing property; its name is only in the message ("'from' is a required ...").
            path.append(leaf.message.split("'")[1])
            reason = "is required"
        else:
            reason = leaf.message if len(leaf.message) <= 200 else leaf.message[:197] + "..."
        problems.append({"name": _name(path), "reason": reason})
    return problems


def dispatch_problems(body: object) -> list[dict]:
    """Everything wrong with a createWorkflow body; empty when Vonage would accept it."""
    problems = _schema_problems("dispatch", body)
    if problems or not isinstance(body, dict):
        return problems or [{"name": "body", "reason": "must be a JSON object"}]
    for key in ("template", "workflow"):
        if key not in body:
            problems.append({"name": key, "reason": "is required"})
    workflow = body.get("workflow") or []
    if "workflow" in body and not workflow:
        problems.append({"name": "workflow", "reason": "needs at least one item"})
    for index, item in enumerate(workflow):
        problems += _item_problems(index, item, last=index == len(workflow) - 1)
    return problems


def _item_problems(index: int, item: dict, *, last: bool) -> list[dict]:
    prefix = f"workflow[{index}]"
    problems = []
    # The spec says it in words: "the last message does not have failover ... all other messages must".
    if last and "failover" in item:
        problems.append({"name": f"{prefix}.failover", "reason": "the last item must not have failover"})
    if not last:
        failover = item.get("failover")
        if failover is None:
            problems.append({"name": f"{prefix}.failover", "reason": "every item but the last needs failover"})
        else:
            problems += _schema_problems("failover", failover, ("workflow", index, "failover"))
            for key in ("expiry_time", "condition_status"):
                if isinstance(failover, dict) and key not in failover:
                    problems.append({"name": f"{prefix}.failover.{key}", "reason": "is required"})
    kind = item["to"]["type"]
    if item["from"]["type"] != kind:
        problems.append({"name": f"{prefix}.from.type", "reason": f"must match to.type ({kind})"})
    from_field, to_field = DISPATCH_FIELDS[kind]
    if from_field not in item["from"]:
        problems.append({"name": f"{prefix}.from.{from_field}", "reason": f"is required for {kind}"})
    if to_field not in item["to"]:
        problems.append({"name": f"{prefix}.to.{to_field}", "reason": f"is required for {kind}"})
    elif to_field == "number" and not E164.match(item["to"]["number"]):
        problems.append({"name": f"{prefix}.to.number", "reason": "must be E.164 digits without '+'"})
    problems += _form_problems(f"{prefix}.message", kind, item["message"])
    schema = V01_MESSAGE_SCHEMAS.get((kind, item["message"]["content"]["type"]))
    if schema is not None:
        # Named from the item: the schema's own root is `{message: ...}`, hence the path's first part dropped.
        problems += _schema_problems("", {"message": item["message"]}, ("workflow", index),
                                     _v01_message_validator(schema))
    content = item["message"]["content"]
    if content["type"] == "template":
        if kind != "whatsapp":
            problems.append({"name": f"{prefix}.message.content.type", "reason": "a template is for whatsapp only"})
        elif not (content.get("template") or {}).get("name"):
            problems.append({"name": f"{prefix}.message.content.template.name", "reason": "is required"})
        elif ":" not in content["template"]["name"]:
            # messages-v0.1.yml: "use your WhatsApp namespace ..., followed by a colon and the name of the template".
            problems.append({"name": f"{prefix}.message.content.template.name",
                             "reason": "must be the WhatsApp namespace, a colon, then the template's name"})
    elif content["type"] != "text":
        problems.append({"name": f"{prefix}.message.content.type", "reason": "the emulator plays text and template"})
    elif "text" not in content:
        problems.append({"name": f"{prefix}.message.content.text", "reason": "is required"})
    elif len(content["text"]) > TEXT_LIMITS[kind]:
        problems.append({"name": f"{prefix}.message.content.text",
                         "reason": f"longer than {TEXT_LIMITS[kind]} characters for {kind}"})
    return problems


def message_problems(body: object) -> list[dict]:
    """Everything wrong with a Messages v1 send; empty when Vonage would accept it."""
    problems = _schema_problems("v1", body)
    if problems or not isinstance(body, dict):
        return problems or [{"name": "body", "reason": "must be a JSON object"}]
    if body["message_type"] not in ("text", "template"):
        return [{"name": "message_type", "reason": "the emulator plays text and template"}]
    kind = V1_TO_TYPE.get(body["channel"])
    if kind is None:
        return [{"name": "channel", "reason": f"the emulator does not play {body['channel']}"}]
    problems += [{**p, "name": p["name"].removeprefix("message.")} for p in _form_problems("message", kind, body)]
    if body["message_type"] == "template":
        if kind != "whatsapp":
            problems.append({"name": "message_type", "reason": "a template is for whatsapp only"})
        elif "template" not in body:
            problems.append({"name": "template", "reason": "is required"})
    elif "text" not in body:
        problems.append({"name": "text", "reason": "is required"})
    elif len(body["text"]) > TEXT_LIMITS[kind]:
        problems.append({"name": "text", "reason": f"longer than {TEXT_LIMITS[kind]} characters for {kind}"})
    if kind != "messenger" and not E164.match(body["to"]):
        problems.append({"name": "to", "reason": "must be E.164 digits without '+'"})
    return problems


def _form_problems(prefix: str, kind: str, message: dict) -> list[dict]:
    """The channel options both APIs share: `messenger` {category, tag} and `whatsapp` {policy, locale}.

    dispatch.yml: "If `message_tag` is used, then an additional `tag` for that type is mandatory."
    """
    problems = []
    messenger = message.get("messenger")
    if messenger is not None and kind != "messenger":
        problems.append({"name": f"{prefix}.messenger", "reason": "is for messenger only"})
    elif isinstance(messenger, dict) and messenger.get("category") == "message_tag" and not messenger.get("tag"):
        problems.append({"name": f"{prefix}.messenger.tag", "reason": "is required with category message_tag"})
    if message.get("whatsapp") is not None and kind != "whatsapp":
        problems.append({"name": f"{prefix}.whatsapp", "reason": "is for whatsapp only"})
    return problems
