"""The one HTTP seam between the app and Vonage: timeouts, authentication and error classification.

It makes exactly ONE attempt per call. Bounded retries belong to the engine, which records each attempt
on its own row and reschedules transient failures with backoff; retrying here as well would multiply the
attempts and hold a worker thread asleep.
"""

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import urllib3
from requests.utils import DEFAULT_CA_BUNDLE_PATH, get_environ_proxies, select_proxy
from urllib3.exceptions import HTTPError, LocationValueError, NewConnectionError, TimeoutError

from escalation.vonage.auth import application_token
from escalation.vonage.errors import CONFIGURATION, TIMEOUT, UNREACHABLE, UNREADABLE, VonageError, error_from_response

logger = logging.getLogger(__name__)


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
    """Requests go through urllib3's pool directly: `requests` cost about 0.4 ms more CPU per send (its
    session, hooks and response wrapping), a fifth of a busy worker's CPU per engine step (issue 18). The
    environment's proxy and CA bundle are still read as `requests` reads them, once, for Vonage's URL."""

    def __init__(self, config: VonageConfig, observe: RequestObserver = observe_nothing) -> None:
        self.config = config
        self.observe = observe
        scheme = urllib3.util.parse_url(config.api_url).scheme if config.api_url else None
        self.bad_url = None if scheme in ("http", "https") else f"{config.api_url!r} is not an http(s) URL"
        # requests' own choice among the environment's proxies (scheme, host, ALL_PROXY; NO_PROXY honoured).
        self.proxy = None if self.bad_url else select_proxy(config.api_url, get_environ_proxies(config.api_url))
        # Thread-safe; maxsize bounds the keep-alive connections the worker's threads share. No retries
        # (retries=False raises the first error as it is): see the module docstring.
        options = {"num_pools": 2, "maxsize": 16, "retries": False, "cert_reqs": "CERT_REQUIRED",
                   "ca_certs": _ca_bundle()}
        self.pool = urllib3.ProxyManager(self.proxy, **options) if self.proxy else urllib3.PoolManager(**options)
        self.timeout = urllib3.Timeout(connect=config.connect_timeout, read=config.read_timeout)

    def post(self, path: str, body: dict) -> dict:
        """POST `body` as JSON to the API URL + path; return the 2xx JSON answer or raise VonageError."""
        config = self.config
        url = config.api_url + path
        if self.bad_url is not None:
            raise VonageError("Bad Vonage URL", failure=CONFIGURATION, detail=self.bad_url)
        token = application_token(application_id=config.application_id, key_path=config.private_key_path)
        started = time.monotonic()
        try:
            response = self.pool.request(
                "POST", url, body=json.dumps(body).encode(), timeout=self.timeout,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json",
                         "Content-Type": "application/json"},
            )
        except LocationValueError as e:
            raise VonageError("Bad Vonage URL", failure=CONFIGURATION, detail=f"{url}: {e}") from e
        except HTTPError as e:
            # urllib3 makes a refused connection a kind of connect timeout: it is not one.
            if isinstance(e, TimeoutError) and not isinstance(e, NewConnectionError):
                self.observe(path, "timeout", started)
                # Vonage may have accepted a request whose answer timed out; a retry can then page twice,
                # which beats not paging at all.
                raise VonageError("No answer in time", failure=TIMEOUT, detail=f"POST {url}: {e}") from e
            self.observe(path, "unreachable", started)
            raise VonageError("Could not reach Vonage", failure=UNREACHABLE, detail=f"POST {url}: {e}") from e
        self.observe(path, response.status, started)
        elapsed_ms = (time.monotonic() - started) * 1000
        logger.debug("POST %s -> %s in %.0f ms", path, response.status, elapsed_ms)
        if not 200 <= response.status < 300:
            raise error_from_response(response.status, response.reason, response.data)
        try:
            answer = json.loads(response.data)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            # Accepted, so the message is on its way: a retry would page twice. UNREADABLE lets the engine
            # move on instead of stalling on an answer it cannot read.
            raise VonageError("Unreadable answer", failure=UNREADABLE, status=response.status,
                              detail=response.data[:200].decode(errors="replace"))
        return answer


def _ca_bundle() -> str:
    """The CA bundle `requests` would use: REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE, else certifi's."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or DEFAULT_CA_BUNDLE_PATH
