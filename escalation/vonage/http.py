"""The one HTTP seam between the app and Vonage: timeouts, authentication and error classification.

It makes exactly ONE attempt per call. Bounded retries belong to the engine, which records each attempt
on its own row and reschedules transient failures with backoff; retrying here as well would multiply the
attempts and hold a worker thread asleep.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import requests
from requests.adapters import HTTPAdapter

from escalation.vonage.auth import application_token
from escalation.vonage.errors import CONFIGURATION, TIMEOUT, UNREACHABLE, UNREADABLE, VonageError, error_from_response

logger = logging.getLogger(__name__)

# Errors of our own configuration (a malformed VONAGE_API_URL): no retry can fix them.
_CONFIGURATION_ERRORS = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidHeader,
)


@dataclass(frozen=True)
class VonageConfig:
    """Where and as whom to call Vonage, given by whoever builds the client (the app reads its settings)."""

    api_url: str
    application_id: str
    private_key_path: str
    connect_timeout: float
    read_timeout: float

    @property
    def request_time(self) -> timedelta:
        """The longest one request can take: its connect and read timeouts."""
        return timedelta(seconds=self.connect_timeout + self.read_timeout)


# Told of every request: (path, HTTP status or "timeout" / "unreachable", its start by time.monotonic()).
RequestObserver = Callable[[str, int | str, float], None]


def observe_nothing(path: str, status: int | str, started: float) -> None:
    """The observer of a client nobody counts the requests of."""


class VonageHttp:
    def __init__(self, config: VonageConfig, observe: RequestObserver = observe_nothing) -> None:
        self.config = config
        self.observe = observe
        self.session = requests.Session()
        # urllib3's pool is thread-safe; pool_maxsize bounds the keep-alive connections the worker's
        # threads share. No urllib3 retries: see the module docstring.
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=16, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        # The environment's proxy and CA bundle for Vonage's URL, read once: requests would read them (and
        # ~/.netrc) again on every call, about 0.4 ms of CPU per send.
        found = self.session.merge_environment_settings(config.api_url, {}, None, None, None)
        self.session.trust_env = False
        self.session.proxies, self.session.verify = found["proxies"], found["verify"]

    def post(self, path: str, body: dict) -> dict:
        """POST `body` as JSON to the API URL + path; return the 2xx JSON answer or raise VonageError."""
        config = self.config
        token = application_token(application_id=config.application_id, key_path=config.private_key_path)
        url = config.api_url + path
        started = time.monotonic()
        try:
            response = self.session.post(
                url,
                json=body,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                timeout=(config.connect_timeout, config.read_timeout),
            )
        except _CONFIGURATION_ERRORS as e:
            raise VonageError("Bad Vonage URL", failure=CONFIGURATION, detail=f"{url}: {e}") from e
        except requests.Timeout as e:
            self.observe(path, "timeout", started)
            # Vonage may have accepted a request whose answer timed out; a retry can then page twice,
            # which beats not paging at all.
            raise VonageError("No answer in time", failure=TIMEOUT, detail=f"POST {url}: {e}") from e
        except requests.RequestException as e:
            self.observe(path, "unreachable", started)
            raise VonageError("Could not reach Vonage", failure=UNREACHABLE, detail=f"POST {url}: {e}") from e
        self.observe(path, response.status_code, started)
        elapsed_ms = (time.monotonic() - started) * 1000
        logger.debug("POST %s -> %s in %.0f ms", path, response.status_code, elapsed_ms)
        if not 200 <= response.status_code < 300:
            raise error_from_response(response)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            # Accepted, so the message is on its way: a retry would page twice. UNREADABLE lets the engine
            # move on instead of stalling on an answer it cannot read.
            raise VonageError(
                "Unreadable answer", failure=UNREADABLE, status=response.status_code, detail=response.text[:200]
            )
        return answer
