"""How one message goes out when the person has not written lately: a WhatsApp template or a tagged Messenger
message (emulator/spec/VONAGE_FACTS.md, "Business-initiated messages: the 24-hour windows").

Plain values only: the engine decides the form and the body builders turn it into each API's shape.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class TemplateSend:
    """One approved WhatsApp Message Template with its parameter values, {{1}} first."""

    name: str  # as Meta and the Messages API v1 name it: oncall_alert
    namespace: str = ""  # Dispatch / Messages v0.1 want "namespace:name"
    locale: str = "en-US"  # BCP 47
    policy: str = "deterministic"
    values: tuple[str, ...] = ()

    @property
    def dispatch_name(self) -> str:
        return f"{self.namespace}:{self.name}" if self.namespace else self.name

    @property
    def v1_locale(self) -> str:
        # dispatch.yml: "en-GB ... will refer to the en_GB template"; the v1 examples and SDK spell it en_GB.
        return self.locale.replace("-", "_")


@dataclass(frozen=True)
class Form:
    """How a message goes out; with neither field set, as free-form text with Vonage's default category."""

    template: TemplateSend | None = None  # WhatsApp: the template instead of the text
    messenger_tag: str = ""  # Messenger: the text, with category message_tag and this tag

    @property
    def free(self) -> bool:
        return self.template is None and not self.messenger_tag


FREE_TEXT = Form()
