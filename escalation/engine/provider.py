"""The Vonage client as the app uses it: configured from the settings, counted in the app's metrics, one per
process so every send shares one connection pool and one token cache."""

import os
import threading

from django.conf import settings

from escalation.ops.recorded import vonage_request_observed
from escalation.vonage import VonageClient, VonageConfig


def vonage_config() -> VonageConfig:
    return VonageConfig(
        api_url=settings.VONAGE_API_URL,
        application_id=settings.VONAGE_APPLICATION_ID,
        private_key_path=settings.VONAGE_PRIVATE_KEY_PATH,
        connect_timeout=settings.VONAGE_CONNECT_TIMEOUT,
        read_timeout=settings.VONAGE_READ_TIMEOUT,
    )


_client: VonageClient | None = None
_client_key: tuple[int, VonageConfig] | None = None
_client_lock = threading.Lock()


def get_client() -> VonageClient:
    """The process-wide client for the current settings.

    Recreated after a fork (gunicorn, multiprocessing) so two processes never share pooled sockets, and when
    the settings change (tests point it at an emulator of their own).
    """
    global _client, _client_key
    key = (os.getpid(), vonage_config())
    with _client_lock:
        if _client is None or _client_key != key:
            _client = VonageClient(key[1], observe=vonage_request_observed)
            _client_key = key
        return _client
