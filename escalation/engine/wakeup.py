"""Waking idle workers the moment an escalation is fired, instead of at their next poll.

On PostgreSQL, `notify_workers()` issues NOTIFY inside the firing transaction: PostgreSQL delivers it only
when that transaction commits (and folds repeats within one transaction into one), so a worker never wakes
to look for a fire it cannot see yet. Each worker LISTENs on its own autocommit connection and sleeps in
`Wakeup.wait()` until a notification or the poll interval, whichever comes first. Polling stays the
guarantee: a lost notification (a listener reconnecting, a fire from a process without this code) costs
at most one poll interval. SQLite has no NOTIFY, so there `wait()` is the plain poll sleep.
"""

import logging
import threading

import psycopg
from django.db import connection

log = logging.getLogger(__name__)

CHANNEL = "escalation_due"
# After the listening connection fails, poll only for this long before trying to listen again.
RECONNECT_SECONDS = 5.0


def notify_workers() -> None:
    """Wake every listening worker when the current transaction commits (PostgreSQL only)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"NOTIFY {CHANNEL}")


class Wakeup:
    """One per worker process; `wait()` is called from the worker's loop thread only."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self._listener: psycopg.Connection | None = None
        self._retry_in = 0.0

    def wait(self, timeout: float) -> None:
        if connection.vendor != "postgresql" or self.stop.is_set():
            self.stop.wait(timeout)
            return
        listener = self._listen(timeout)
        if listener is None:
            self.stop.wait(timeout)
            return
        try:
            # Returns at the first notification, or after `timeout`; several fires wake one pass.
            for _ in listener.notifies(timeout=timeout, stop_after=1):
                pass
        except psycopg.Error:
            log.warning("lost the wake-up connection; polling until it is back", exc_info=True)
            self.close()
            self._retry_in = RECONNECT_SECONDS

    def _listen(self, timeout: float) -> psycopg.Connection | None:
        if self._listener is not None:
            return self._listener
        if self._retry_in > 0:
            self._retry_in -= timeout
            return None
        try:
            params = connection.get_connection_params()
            # Django's cursor factory and adapters are for its own connection; this one only listens.
            for key in ("cursor_factory", "context", "prepare_threshold"):
                params.pop(key, None)
            self._listener = psycopg.connect(**params, autocommit=True)
            self._listener.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error:
            log.warning("cannot listen for wake-ups; polling", exc_info=True)
            self.close()
            self._retry_in = RECONNECT_SECONDS
        return self._listener

    def close(self) -> None:
        if self._listener is not None:
            try:
                self._listener.close()
            except psycopg.Error:
                pass
            self._listener = None
