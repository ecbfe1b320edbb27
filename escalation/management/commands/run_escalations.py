import argparse
import gc
import logging
import signal
import threading
from types import FrameType
from typing import Any

from django.core.management.base import CommandParser

from escalation.engine.heartbeat import Heartbeat
from escalation.engine.worker import run_due, run_forever
from escalation.management.commands._recording import DatabaseCommand

log = logging.getLogger(__name__)


def thread_count(raw: str) -> int:
    # The same range as WORKER_THREADS: 0 or a negative count crashed the worker's pool at start.
    if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= 64:
        return int(raw)
    raise argparse.ArgumentTypeError(f"must be an integer from 1 to 64, got {raw!r}")


class Command(DatabaseCommand):
    help = "Run the escalation worker: sends pages, fails over and advances escalations on their timers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Do one pass over due work and exit.")
        parser.add_argument("--threads", type=thread_count, default=None,
                            help="Concurrent sends, 1 to 64 (default WORKER_THREADS).")

    def handle(self, *args: str, once: bool, threads: int | None, **options: Any) -> None:
        if once:
            count = run_due(heartbeat=Heartbeat())
            self.stdout.write(f"advanced {count} escalation(s)")
            return
        stop = threading.Event()

        def request_stop(signum: int, frame: FrameType | None) -> None:
            log.info("worker stopping (signal %s)", signum)
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        log.info("escalation worker started")
        # Long-lived objects (Django, the apps, the models) out of the collector's sight, as in oncall/wsgi.py:
        # its full collections would otherwise walk them all in the middle of a pass.
        gc.freeze()
        run_forever(stop, threads=threads)
