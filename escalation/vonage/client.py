"""The Vonage client: Dispatch failover workflows and Messages v1 sends, from plain values (channel dicts of
type strings and addresses, a `VonageConfig`). The engine builds one per process (engine/provider.py)."""

import uuid

from escalation.vonage.bodies import failover_workflow, v1_message
from escalation.vonage.errors import UNREADABLE, VonageError
from escalation.vonage.forms import FREE_TEXT, Form
from escalation.vonage.http import RequestObserver, VonageConfig, VonageHttp, observe_nothing


class VonageClient:
    def __init__(self, config: VonageConfig, observe: RequestObserver = observe_nothing) -> None:
        self.http = VonageHttp(config, observe)

    def dispatch_failover(self, *, person_name: str, channels: list[dict], text: str,
                          forms: list[Form] | None = None, reply_number: int | None = None) -> str:
        """Start one Dispatch failover workflow for one person; return its dispatch_uuid."""
        answer = self.http.post("/v0.1/dispatch", failover_workflow(person_name=person_name, channels=channels,
                                                                    text=text, forms=forms,
                                                                    reply_number=reply_number))
        return answer_uuid(answer, "dispatch_uuid")

    def send_message(self, *, channel: dict, text: str, client_ref: str, form: Form = FREE_TEXT) -> str:
        """Send one Messages API v1 message (text, template or tagged) on one channel; return its message_uuid."""
        answer = self.http.post("/v1/messages", v1_message(channel=channel, text=text, client_ref=client_ref,
                                                           form=form))
        return answer_uuid(answer, "message_uuid")


def answer_uuid(answer: dict, key: str) -> str:
    """The answer's uuid, in its canonical form (it is stored and matched against webhooks)."""
    try:
        return str(uuid.UUID(answer.get(key)))
    except (TypeError, ValueError, AttributeError):
        # Same reasoning as an unreadable 2xx body: accepted, so never retried.
        raise VonageError("Unexpected answer", failure=UNREADABLE, detail=f"no {key} in {answer!r:.200}") from None
