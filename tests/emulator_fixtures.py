"""The local Vonage emulator for tests: in a thread (`emulator`), or as a real process (`emulator_process`).

Loaded by tests/conftest.py (`pytest_plugins`). Time is scaled (EMULATOR_TIME_SCALE) so a 15 s Dispatch
expiry takes 0.15 s: tests poll the emulator's records with a deadline instead of sleeping.
"""

import json
import re
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from emulator import Emulator, EmulatorConfig
from emulator.control import EmulatorControl
from tests.conftest import TEST_SIGNATURE_SECRET

EMULATOR_TIME_SCALE = 0.01
ROOT = Path(__file__).resolve().parent.parent


class EmulatorHandle(EmulatorControl):
    """Control over HTTP, plus the in-process Emulator for the rare test that needs to look inside."""

    def __init__(self, instance: Emulator) -> None:
        super().__init__(instance.url)
        self.instance = instance


@pytest.fixture
def messages_mode(settings, emulator):
    """The engine on the Messages API against the emulator, retries 2 s, 4 s, ... apart."""
    settings.ESCALATION_API = "messages"
    settings.ESCALATION_RETRY_BASE_SECONDS = 2
    return emulator


@pytest.fixture
def dispatch_mode(settings, emulator):
    """The engine on the Dispatch API against the emulator, retries 2 s, 4 s, ... apart."""
    settings.ESCALATION_API = "dispatch"
    settings.ESCALATION_RETRY_BASE_SECONDS = 2
    return emulator


@pytest.fixture
def emulator(vonage_keys, settings) -> Iterator[EmulatorHandle]:
    """A fresh emulator on a free loopback port, with settings.VONAGE_API_URL pointing at it.

    Webhooks go nowhere until the test calls `emulator.configure(webhook_base=...)`.
    """
    config = EmulatorConfig(public_key=vonage_keys["public_pem"], time_scale=EMULATOR_TIME_SCALE)
    instance = Emulator(config).start()
    settings.VONAGE_API_URL = instance.url
    handle = EmulatorHandle(instance)
    try:
        yield handle
    finally:
        handle.session.close()
        instance.stop()


@pytest.fixture
def app_emulator(emulator, live_server, settings) -> EmulatorHandle:
    """The emulator wired to the app under pytest-django's live server, with signed webhooks both sides."""
    settings.VONAGE_SIGNATURE_SECRET = TEST_SIGNATURE_SECRET
    emulator.configure(webhook_base=live_server.url, signature_secret=TEST_SIGNATURE_SECRET)
    return emulator


class WebhookSink:
    """A stand-in for the app's webhook endpoints: records every request, answers from a script."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.answers: deque[int] = deque()  # statuses to answer next; 200 once empty
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with sink._lock:
                    status = sink.answers.popleft() if sink.answers else 200
                    sink.received.append({"path": self.path, "headers": dict(self.headers), "raw": raw,
                                          "body": json.loads(raw), "status": status})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def bodies(self, path: str = "") -> list[dict]:
        with self._lock:
            return [r["body"] for r in self.received if r["status"] < 300 and (not path or r["path"] == path)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook_sink(emulator) -> Iterator[WebhookSink]:
    """The emulator's webhooks go to a recording sink instead of the app."""
    sink = WebhookSink()
    emulator.configure(webhook_base=sink.url)
    try:
        yield sink
    finally:
        sink.close()


@contextmanager
def emulator_process(*, public_key_path: str, webhook_base: str = "", signature_secret: str = "",
                     time_scale: float = 1.0, scenario_file: str | None = None, port: int = 0,
                     extra_args: tuple[str, ...] = ()) -> Iterator[EmulatorControl]:
    """Run `python -m emulator` as a real process (e2e tests, benchmarks); yields its control client."""
    command = [sys.executable, "-m", "emulator", "--port", str(port), "--public-key", public_key_path,
               "--webhook-base", webhook_base, "--signature-secret", signature_secret,
               "--time-scale", str(time_scale), *extra_args]
    if scenario_file:
        command += ["--scenario-file", scenario_file]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        # The first line names the bound address; EOF means the process died (its stderr shows why).
        line = process.stdout.readline()
        match = re.search(r"listening on (http://\S+)", line)
        if not match:
            raise RuntimeError(f"the emulator did not start: {line!r}, exit code {process.poll()}")
        control = EmulatorControl(match.group(1))
        control.wait_for(control.health, lambda h: h["ok"], timeout=10)
        yield control
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()
