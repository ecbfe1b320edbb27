import logging
import signal
import threading

from escalation.engine.heartbeat import Heartbeat
from escalation.engine.worker import run_due, run_forever
from escalation.management.commands._recording import DatabaseCommand

log = logging.getLogger(__name__)


class Command(DatabaseCommand):
    help = "Run the escalation worker: sends pages, fails over and advances escalations on their timers."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="Do one pass over due work and exit.")
        parser.add_argument("--threads", type=int, default=None, help="Concurrent sends (default WORKER_THREADS).")

    def handle(self, *args, once: bool, threads: int | None, **options) -> None:
        if once:
            count = run_due(heartbeat=Heartbeat())
            self.stdout.write(f"advanced {count} escalation(s)")
            return
        stop = threading.Event()

        def request_stop(signum, frame) -> None:
            log.info("worker stopping (signal %s)", signum)
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        log.info("escalation worker started")
        run_forever(stop, threads=threads)
