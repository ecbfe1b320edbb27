"""Talking to Vonage: the `VonageClient` and the `VonageError` it raises (see client.py and http.py), the
bodies of its webhooks (webhooks.py, payloads.py, signature.py). It imports neither Django nor anything
else of ours: it is given plain values (a `VonageConfig`, channel type strings, addresses)."""

from escalation.vonage.client import VonageClient
from escalation.vonage.errors import VonageError
from escalation.vonage.http import VonageConfig

__all__ = ["VonageClient", "VonageConfig", "VonageError"]
