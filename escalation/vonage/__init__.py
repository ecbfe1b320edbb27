"""Talking to Vonage: `get_client()` and the `VonageError` it raises (see client.py and http.py)."""

from escalation.vonage.client import VonageClient, get_client
from escalation.vonage.errors import VonageError

__all__ = ["VonageClient", "VonageError", "get_client"]
