"""Delivering webhooks to the app the way Vonage does: signed, retried with backoff, in lanes.

Each event goes to one of a few lane threads chosen by a key (the dispatch or message uuid), so the
events of one message normally arrive in order while a slow answer for one message does not hold up the
rest. Faults can duplicate every event or swap neighbouring events in a lane.
"""

import json
import logging
import queue
import threading
import time
import zlib
from dataclasses import dataclass

import urllib3

from emulator.auth import sign_webhook
from emulator.store import WebhookRecord

logger = logging.getLogger(__name__)

# Vonage's delivery policy (VONAGE_FACTS.md, "Retries"): 3 s to connect, 15 s for the answer, 200..205
# is success, 429/5xx (and no answer) are retried after 5 s, doubling up to every 15 min, for 24 h.
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 15.0
FIRST_RETRY = 5.0
MAX_RETRY_INTERVAL = 15 * 60.0
RETRY_PERIOD = 24 * 3600.0
# A held (reordered) event waits this long (real seconds) for a neighbour to overtake it.
REORDER_HOLD = 0.2


@dataclass(slots=True)
class Job:
    path: str  # /webhooks/status or /webhooks/inbound, unless `url` overrides it
    raw: bytes
    kind: str  # status | final_report | inbound
    key: str
    url: str = ""
    authorization: str = ""
    generation: int = 0  # the emulator's reset count when the event was made; older events are dropped
    attempt: int = 0
    elapsed: float = 0.0  # emulated seconds of retry waiting so far


class WebhookSender:
    def __init__(self, emulator, lanes: int = 8) -> None:
        self.emulator = emulator
        self.duplicate = False
        self.reorder = False
        # SimpleQueue: written in C, so handing a webhook to its lane costs a fraction of queue.Queue's
        # Python-level locking (no maxsize or task_done is needed).
        self._queues = [queue.SimpleQueue() for _ in range(lanes)]
        self._threads = [threading.Thread(target=self._lane, args=(q,), name=f"emulator-webhooks-{i}", daemon=True)
                         for i, q in enumerate(self._queues)]
        # Webhooks made since the start, and those not yet settled: queued, being posted, held or waiting for a
        # retry. A webhook is settled once its last attempt is recorded, after the app's answer.
        self._count_lock = threading.Lock()
        self.made = 0
        self.unsettled = 0

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        for q in self._queues:
            q.put(None)
        for thread in self._threads:
            thread.join(timeout=2)

    def clear(self) -> None:
        for q in self._queues:
            while True:
                try:
                    q.get_nowait()
                except queue.Empty:
                    break
        with self._count_lock:
            self.unsettled = 0  # those of the reset's older generation are dropped, never settled

    def counts(self) -> tuple[int, int]:
        """(webhooks made so far, those not yet settled)."""
        with self._count_lock:
            return self.made, self.unsettled

    def send(self, *, path: str, body: dict, kind: str, key: str, url: str = "") -> None:
        config = self.emulator.config
        raw = json.dumps(body, separators=(",", ":")).encode()
        job = Job(path=path, raw=raw, kind=kind, key=key, url=url, generation=self.emulator.generation)
        if config.signature_secret and (url or config.webhook_base):
            # Signed once per event: Vonage does not say whether a retry is signed anew, and the app
            # must accept a retried event's older iat either way. Not signed while it has nowhere to go
            # (a benchmark that wants no webhooks): signing was a fifth of the emulator's CPU there.
            job.authorization = self._sign(raw)
        lane = self._queues[zlib.crc32(key.encode()) % len(self._queues)]
        copies = 2 if self.duplicate else 1
        with self._count_lock:
            self.made += copies
            self.unsettled += copies
        lane.put(job)
        if self.duplicate:
            lane.put(Job(path=path, raw=raw, kind=kind, key=key, url=url, authorization=job.authorization,
                         generation=job.generation))

    def _sign(self, raw: bytes) -> str:
        config = self.emulator.config
        return sign_webhook(raw, secret=config.signature_secret, api_key=config.api_key,
                            application_id=config.application_id)

    def _lane(self, jobs: queue.SimpleQueue) -> None:
        # urllib3 rather than requests: requests' per-call machinery (proxy and netrc look-ups in the
        # environment, adapters, hooks) cost ~0.5 ms of CPU per webhook, more than the post itself, and
        # webhooks are most of the emulator's work. Kept-alive connections, no retries of its own.
        http = urllib3.PoolManager(num_pools=4, maxsize=1, retries=False,
                                         timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT))
        held: Job | None = None
        while True:
            try:
                job = jobs.get(timeout=REORDER_HOLD if held else None)
            except queue.Empty:
                self._deliver(http, held)
                held = None
                continue
            if job is None:
                return
            if self.reorder and held is None and job.attempt == 0:
                held = job
                continue
            self._deliver(http, job)
            if held is not None:
                self._deliver(http, held)
                held = None

    def _deliver(self, http: urllib3.PoolManager, job: Job) -> None:
        if job.generation != self.emulator.generation:
            return  # made before a reset: the test that wanted it is gone
        config = self.emulator.config
        url = job.url or (config.webhook_base.rstrip("/") + job.path if config.webhook_base else "")
        job.attempt += 1
        record = WebhookRecord(at=time.time(), kind=job.kind, url=url, body=job.raw, attempt=job.attempt,
                               signed=bool(job.authorization))
        if not url:
            record.error = "no webhook base configured: dropped"
            self.emulator.record_webhook(record, generation=job.generation)
            self._settled(job)
            return
        if config.signature_secret and not job.authorization:  # a destination was configured since
            job.authorization = self._sign(job.raw)
            record.signed = True
        headers = {"Content-Type": "application/json", "User-Agent": "vonage-emulator"}
        if job.authorization:
            headers["Authorization"] = job.authorization
        try:
            response = http.request("POST", url, body=job.raw, headers=headers, redirect=False)
            record.status = response.status
            record.answer = response.data.decode("utf-8", "replace")[:200]
            retry = record.status == 429 or record.status >= 500
        except urllib3.exceptions.HTTPError as e:
            record.error = f"{type(e).__name__}: {e}"[:300]
            retry = True
        delay = min(FIRST_RETRY * 2 ** (job.attempt - 1), MAX_RETRY_INTERVAL)
        if retry and job.elapsed + delay <= RETRY_PERIOD:
            job.elapsed += delay
            record.retry_in = delay
            self.emulator.scheduler.call_later(delay, self._requeue, job)
        elif retry:
            record.error = (record.error + "; " if record.error else "") + "retry period over: dropped"
        self.emulator.record_webhook(record, generation=job.generation)
        if record.retry_in is None:
            self._settled(job)

    def _settled(self, job: Job) -> None:
        with self._count_lock:
            if job.generation == self.emulator.generation:
                self.unsettled -= 1

    def _requeue(self, job: Job) -> None:
        self._queues[zlib.crc32(job.key.encode()) % len(self._queues)].put(job)
