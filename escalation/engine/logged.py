"""One log line per request the worker made to Vonage, carrying the escalation, page and message ids, so an
operator can follow an escalation through the logs. (Phone numbers are masked by the logging filter.)"""

import logging

from escalation.engine.step import Send
from escalation.vonage import VonageError

log = logging.getLogger("escalation.sends")


def log_sends(answers: list[tuple[Send, str | VonageError]]) -> None:
    for send, answer in answers:
        ids = {"escalation_id": send.escalation.pk, "page_id": send.page.pk,
               "message_id": send.message.pk if send.message is not None else None}
        what = (f"{send.message.channel_type} message to {send.message.to_address}" if send.message is not None
                else f"Dispatch workflow for {send.page.person_name}")
        if isinstance(answer, VonageError):
            log.warning("escalation %s: Vonage did not accept the %s: %s", send.escalation.pk, what, answer,
                        extra=ids)
        else:
            log.info("escalation %s: Vonage accepted the %s (%s)", send.escalation.pk, what, answer, extra=ids)
