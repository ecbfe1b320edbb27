"""The Vonage client the engine and the admin use: Dispatch failover workflows and Messages v1 sends."""

import os
import threading
import uuid

from escalation.vonage.bodies import failover_workflow, v1_message
from escalation.vonage.errors import UNREADABLE, VonageError
from escalation.vonage.forms import FREE_TEXT, Form
from escalation.vonage.http import VonageHttp


class VonageClient:
    def __init__(self) -> None:
        self.http = VonageHttp()

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


_client: VonageClient | None = None
_client_pid = 0
_client_lock = threading.Lock()


def get_client() -> VonageClient:
    """The process-wide client, so every send shares one connection pool and one token cache.

    Recreated after a fork (gunicorn, multiprocessing) so two processes never share pooled sockets.
    """
    global _client, _client_pid
    with _client_lock:
        if _client is None or _client_pid != os.getpid():
            _client = VonageClient()
            _client_pid = os.getpid()
        return _client
