"""The emulator as one object: configuration, state, threads, and the operations the endpoints call."""

import json
import threading
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from emulator import schemas
from emulator.auth import load_verification_key
from emulator.engine import Engine
from emulator.scheduler import Scheduler
from emulator.server import EmulatorHTTPServer
from emulator.store import RequestRecord, Scenario, Store, WebhookRecord
from emulator.webhooks import WebhookSender


@dataclass
class EmulatorConfig:
    public_key: bytes  # PEM of the application's public (or private) key: verifies the app's RS256 JWTs
    webhook_base: str = ""  # the app's base URL; webhooks go to {base}/webhooks/status and /inbound
    signature_secret: str = ""  # signs webhooks (HS256) when set, as Vonage's "signed webhooks" do
    time_scale: float = 1.0  # real seconds per emulated second (0.01: a 600 s expiry lasts 6 s)
    application_id: str = ""  # when set, JWTs for any other application are refused
    api_key: str = "emulator"  # the account's api_key claim in webhook signatures
    hang_seconds: float = 30.0  # how long a "hang" fault keeps the request open (real seconds)
    # Refuse free-form WhatsApp / `response` Messenger messages outside the 24-hour window (emulator/windows.py).
    enforce_windows: bool = True
    webhook_lanes: int = 8
    record_limit: int = 200_000
    verbose: bool = False
    # The phones page's names: {"Tony": ["23037543461244470", "447700900001"]} (emulator/phones.py).
    phone_names: dict[str, list[str]] = field(default_factory=dict)


# What /_emulator/config may change at runtime.
RUNTIME_SETTINGS = ("webhook_base", "signature_secret", "time_scale", "application_id", "api_key", "hang_seconds",
                    "enforce_windows")


class Emulator:
    def __init__(self, config: EmulatorConfig, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config
        schemas.warm()
        # Parsed once: PyJWT would parse the PEM again on every request.
        self.verification_key = load_verification_key(config.public_key)
        self.generation = 0  # bumped by reset(); events made before a reset are dropped
        self.store = Store(record_limit=config.record_limit)
        self.scheduler = Scheduler(config.time_scale)
        self.webhooks = WebhookSender(self, lanes=config.webhook_lanes)
        self.engine = Engine(self)
        self._faults: deque[str] = deque()
        self._release_hangs = threading.Event()
        self.httpd = EmulatorHTTPServer((host, port), self)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "Emulator":
        """Serve in a background thread (tests); see serve_forever() for the command line."""
        self.scheduler.start()
        self.webhooks.start()
        # A short poll interval makes stop() quick: shutdown() waits for the serving loop to look.
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="emulator-http", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.scheduler.start()
        self.webhooks.start()
        try:
            self.httpd.serve_forever()
        finally:
            self.stop()

    def stop(self) -> None:
        self._release_hangs.set()
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.httpd.server_close()
        self.scheduler.stop()
        self.webhooks.stop()

    def reset(self) -> None:
        """Forget every message, record, scenario and fault; keep the configuration."""
        with self.store.lock:
            self.generation += 1
            self.store.reset()
            self.scheduler.clear()
            self.webhooks.clear()
            self.webhooks.duplicate = self.webhooks.reorder = False
            self._faults.clear()
            self._release_hangs.set()
            self._release_hangs = threading.Event()

    def configure(self, **changes: object) -> None:
        unknown = set(changes) - set(RUNTIME_SETTINGS)
        if unknown:
            raise ValueError(f"cannot change {', '.join(sorted(unknown))}; only {', '.join(RUNTIME_SETTINGS)}")
        for name, value in changes.items():
            kind = {f.name: f.type for f in fields(EmulatorConfig)}[name]
            if kind is bool and not isinstance(value, bool):
                raise ValueError(f"{name} must be true or false")
            setattr(self.config, name, float(value) if kind is float else value if kind is bool else str(value))
        self.scheduler.time_scale = self.config.time_scale

    def public_config(self) -> dict:
        config = asdict(self.config)
        del config["public_key"]
        config["signature_secret"] = "set" if self.config.signature_secret else ""
        return config

    # --- faults ---------------------------------------------------------------------------------------------

    def add_faults(self, mode: str, count: int) -> None:
        with self.store.lock:
            self._faults.extend([mode] * count)

    def clear_faults(self) -> None:
        """Forget the pending faults (an outage that ends) and release the requests hanging now."""
        with self.store.lock:
            self._faults.clear()
            self._release_hangs.set()
            self._release_hangs = threading.Event()

    def take_fault(self) -> str:
        with self.store.lock:
            return self._faults.popleft() if self._faults else ""

    def fault_state(self) -> dict:
        with self.store.lock:
            return {"pending": list(self._faults), "duplicate_webhooks": self.webhooks.duplicate,
                    "reorder_webhooks": self.webhooks.reorder, "hang_seconds": self.config.hang_seconds}

    def hang(self) -> None:
        """Hold a request open like a stuck upstream, until hang_seconds pass or a reset/stop releases it."""
        self._release_hangs.wait(self.config.hang_seconds)

    # --- scenarios -------------------------------------------------------------------------------------------

    def load_scenarios(self, data: object) -> list[dict]:
        """Set scenarios from one dict, a list, or {"scenarios": [...]}; all are checked before any is set."""
        if isinstance(data, dict) and "scenarios" in data:
            data = data["scenarios"]
        items = data if isinstance(data, list) else [data]
        scenarios = [Scenario.from_dict(item) for item in items]
        with self.store.lock:
            for scenario in scenarios:
                self.store.set_scenario(scenario)
        return [s.as_dict() for s in scenarios]

    def load_scenario_file(self, path: str) -> list[dict]:
        return self.load_scenarios(json.loads(Path(path).read_text()))

    def clear_scenarios(self) -> None:
        with self.store.lock:
            self.store.scenarios.clear()

    def scenarios(self) -> list[dict]:
        with self.store.lock:
            return [s.as_dict() for s in self.store.scenarios.values()]

    # --- records ------------------------------------------------------------------------------------------

    def record_request(self, record: RequestRecord) -> None:
        with self.store.lock:
            self.store.requests.add(record)

    def record_webhook(self, record: WebhookRecord, *, generation: int) -> None:
        with self.store.lock:
            if generation == self.generation:
                self.store.webhooks.add(record)

    def requests(self, *, since: int = 0, limit: int | None = None) -> list[dict]:
        with self.store.lock:
            return self.store.requests.read(since=since, limit=limit)

    def webhooks_sent(self, *, since: int = 0, limit: int | None = None, kind: str = "") -> list[dict]:
        with self.store.lock:
            return self.store.webhooks.read(since=since, limit=limit, kind=kind)

    def messages(self, *, to: str = "", channel: str = "", dispatch_uuid: str = "", client_ref: str = "",
                 api: str = "") -> list[dict]:
        wanted = {"to": to, "channel": channel, "dispatch_uuid": dispatch_uuid, "client_ref": client_ref, "api": api}
        wanted = {k: v for k, v in wanted.items() if v}
        with self.store.lock:
            return [m.as_dict() for m in self.store.messages.values()
                    if all(getattr(m, k) == v for k, v in wanted.items())]

    def outbound_webhooks(self) -> dict:
        """`pending`: the webhooks still to deliver (made and not settled, or still to be made by a phone's
        timer); `made`: every webhook made so far, so a caller can tell that none came and went meanwhile.
        A webhook is settled once the app has answered its last attempt."""
        upcoming = self.engine.upcoming_webhooks()  # first: a timer that fires now is counted once at least
        made, unsettled = self.webhooks.counts()
        return {"pending": upcoming + unsettled, "made": made}

    def dispatches(self) -> list[dict]:
        with self.store.lock:
            return [d.as_dict() for d in self.store.dispatches.values()]
