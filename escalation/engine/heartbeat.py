"""A worker's heartbeat: the alarm banner says so when no worker has completed a pass lately."""

import os
import socket
from datetime import datetime, timedelta

from escalation.models import WorkerHeartbeat

# A pass takes milliseconds; one UPDATE a second keeps the heartbeat fresh at a cost no pass notices.
BEAT_EVERY = timedelta(seconds=1)
# Rows of workers gone for this long are deleted when a worker starts (every restart writes a new row).
FORGET_AFTER = timedelta(days=7)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Heartbeat:
    """One worker process's row, moved on after a completed pass at most once per BEAT_EVERY."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name or worker_name()
        self._last: datetime | None = None

    def beat(self, now: datetime) -> None:
        # abs(): an injected clock may go backwards (tests); a beat is then due.
        if self._last is not None and abs(now - self._last) < BEAT_EVERY:
            return
        if self._last is None:
            WorkerHeartbeat.objects.filter(last_pass_at__lt=now - FORGET_AFTER).delete()
        if not WorkerHeartbeat.objects.filter(name=self.name).update(last_pass_at=now):
            WorkerHeartbeat.objects.create(name=self.name, started_at=now, last_pass_at=now)
        self._last = now
