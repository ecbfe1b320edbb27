"""Every timer of the emulator in one thread: a heap of due callbacks.

Thousands of messages each have a few pending events (submitted, delivered, an expiry, a webhook retry);
one heap entry per event is far cheaper than a thread or a threading.Timer each.
"""

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, time_scale: float = 1.0) -> None:
        # Real seconds per emulated second: 0.01 turns a 600 s expiry into 6 s.
        self.time_scale = time_scale
        self._heap: list[tuple[float, int, Callable, tuple]] = []
        self._order = itertools.count()  # ties keep submission order, and callables are never compared
        self._cond = threading.Condition()
        self._running = False
        self._thread: threading.Thread | None = None
        # The callback running now, counted as pending until it returns: what it schedules or sends is
        # then seen before it stops being pending.
        self._current: Callable | None = None

    def start(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._run, name="emulator-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._running = False
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def call_later(self, delay: float, callback: Callable, *args: object) -> None:
        """Run callback(*args) on the scheduler thread after `delay` emulated seconds."""
        due = time.monotonic() + max(delay, 0.0) * self.time_scale
        with self._cond:
            heapq.heappush(self._heap, (due, next(self._order), callback, args))
            if self._heap[0][0] == due:
                self._cond.notify()

    def clear(self) -> None:
        with self._cond:
            self._heap.clear()

    def pending(self, *callbacks: Callable) -> int:
        """Timers due or running; only those that call one of `callbacks`, if given."""
        with self._cond:
            due = [entry[2] for entry in self._heap] + ([self._current] if self._current else [])
            return sum(not callbacks or callback in callbacks for callback in due)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._current = None
                while self._running:
                    if not self._heap:
                        self._cond.wait()
                        continue
                    wait = self._heap[0][0] - time.monotonic()
                    if wait <= 0:
                        break
                    self._cond.wait(wait)
                if not self._running:
                    return
                _, _, callback, args = heapq.heappop(self._heap)
                self._current = callback
            try:
                callback(*args)
            except Exception:
                # One broken event must not stop every other timer.
                logger.exception("emulator event %s failed", getattr(callback, "__name__", callback))
