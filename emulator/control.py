"""A small client for the emulator's /_emulator/ endpoints, for tests, demos and benchmarks.

Works the same whether the emulator runs in a thread or as a separate process.
"""

import time
from collections.abc import Callable
from typing import TypeVar

import requests

T = TypeVar("T")


def wait_for(fetch: Callable[[], T], until: Callable[[T], bool] = bool, *, timeout: float = 5.0,
             interval: float = 0.02) -> T:
    """Poll `fetch()` until `until(result)` holds; raise TimeoutError with the last result otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        result = fetch()
        if until(result):
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout} s; last result: {result!r:.2000}")
        time.sleep(interval)


class EmulatorControl:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()

    def _get(self, name: str, **params: object) -> object:
        response = self.session.get(f"{self.url}/_emulator/{name}", params=params, timeout=10)
        response.raise_for_status()
        return response.json()

    def _post(self, name: str, body: object = None) -> object:
        response = self.session.post(f"{self.url}/_emulator/{name}", json=body or {}, timeout=10)
        if response.status_code >= 400:
            raise ValueError(f"{name}: {response.status_code} {response.text}")
        return response.json()

    def health(self) -> dict:
        return self._get("health")

    def configure(self, **changes: object) -> dict:
        """Change webhook_base, signature_secret, time_scale, application_id, api_key or hang_seconds."""
        return self._post("config", changes)

    def scenario(self, address: str, action: str, **options: object) -> None:
        """What the phone at `address` does: deliver|read|reject|undeliverable|never_deliver.

        Options: channel, after (emulated seconds), reply (text sent back), times (next N messages only).
        """
        self._post("scenarios", {"address": address, "action": action, **options})

    def scenarios(self, scenarios: list[dict]) -> None:
        self._post("scenarios", scenarios)

    def fault(self, mode: str, count: int = 1) -> dict:
        """The next `count` API requests answer 429|500|503|401|422|low_balance, or hang."""
        return self._post("faults", {"mode": mode, "count": count})

    def clear_faults(self) -> dict:
        """The pending faults are forgotten and hanging requests released: the outage is over."""
        return self._post("faults", {"clear": True})

    def webhook_faults(self, *, duplicate: bool | None = None, reorder: bool | None = None) -> dict:
        body = {}
        if duplicate is not None:
            body["duplicate_webhooks"] = duplicate
        if reorder is not None:
            body["reorder_webhooks"] = reorder
        return self._post("faults", body)

    def reply(self, *, sender: str, channel_type: str, text: str, **options: object) -> str:
        """The person at `sender` writes back; returns the inbound message_uuid."""
        body = {"from": sender, "channel_type": channel_type, "text": text, **options}
        return self._post("reply", body)["message_uuid"]

    def mark_read(self, message_uuid: str) -> None:
        self._post(f"messages/{message_uuid}/read")

    def reset(self) -> None:
        self._post("reset")

    def requests(self, *, since: int = 0) -> list[dict]:
        return self._get("requests", since=since)

    def webhooks(self, *, kind: str = "", since: int = 0) -> list[dict]:
        return self._get("webhooks", kind=kind, since=since)

    def messages(self, **filters: str) -> list[dict]:
        """Filters: to, channel, dispatch_uuid, client_ref, api."""
        return self._get("messages", **filters)

    def dispatches(self) -> list[dict]:
        return self._get("dispatches")

    def wait_for(self, fetch: Callable[[], T], until: Callable[[T], bool], *, timeout: float = 5.0) -> T:
        """Poll `fetch()` until `until(result)` holds; raise TimeoutError with the last result otherwise."""
        return wait_for(fetch, until, timeout=timeout)
