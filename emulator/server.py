"""The emulator's HTTP face: Vonage's two send endpoints plus the /_emulator/ control endpoints."""

import json
import logging
import re
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from emulator import phones, problems
from emulator.auth import AuthError, verify_application_jwt
from emulator.schemas import dispatch_problems, message_problems
from emulator.store import CHANNEL_ALIASES, CHANNELS, RequestRecord

logger = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
FAULTS = {
    "429": (429, problems.RATE_LIMITED),
    "500": (500, problems.INTERNAL_ERROR),
    "503": (503, problems.SERVICE_UNAVAILABLE),
    "401": (401, problems.UNAUTHORIZED),
    "422": (422, {**problems.INVALID_PARAMS,
                  "invalid_parameters": [{"name": "to", "reason": "injected by the emulator"}]}),
    # Vonage's HTTP status for low balance is not confirmed (VONAGE_FACTS.md); 402 is our guess.
    "low_balance": (402, problems.LOW_BALANCE),
}
READ_PATH = re.compile(r"^/_emulator/messages/([0-9a-f-]{36})/read$")


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # A burst of thousands of sends opens many connections at once; the default backlog of 5 refuses them.
    request_queue_size = 512

    def __init__(self, address: tuple[str, int], emulator) -> None:
        super().__init__(address, Handler)
        self.emulator = emulator


class ControlError(Exception):
    """A bad /_emulator/ request: answered 400 with the message."""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so the app's pooled connections are reused
    # Headers and body go out in two writes; with Nagle on, the body waits for the client's delayed ACK
    # (~40 ms per request, which capped a burst at under 200 requests/s).
    disable_nagle_algorithm = True
    server_version = "VonageEmulator"
    server: EmulatorHTTPServer

    def log_message(self, format: str, *args: object) -> None:
        if self.server.emulator.config.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        try:
            self._route(method)
        except Exception:
            # An emulator bug must look like Vonage's 500, not like a dropped connection.
            logger.exception("emulator failed on %s %s", method, self.path)
            self.close_connection = True
            self._json(500, problems.problem(problems.INTERNAL_ERROR))

    def _route(self, method: str) -> None:
        url = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        raw = self._read_body()
        if raw is None:
            return
        if url.path in ("/v0.1/dispatch", "/v1/messages"):
            if method != "POST":
                self._json(405, problems.problem(problems.WRONG_VERB))
                return
            self._api(url.path, raw)
            return
        if url.path == "/phones" or url.path.startswith("/phones/"):
            self._phones(method, url.path, query, raw)
            return
        if url.path.startswith("/_emulator/"):
            try:
                status, answer = self._control(method, url.path, query, raw)
            except ControlError as e:
                status, answer = 400, {"error": str(e)}
            self._json(status, answer)
            return
        self._json(404, problems.problem(problems.NOT_FOUND))

    def _read_body(self) -> bytes | None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            # The rest of the stream cannot be trusted to hold the next request: answer and hang up.
            self.close_connection = True
            self._json(413 if length > MAX_BODY else 400, {"error": "bad or too large Content-Length"})
            return None
        return self.rfile.read(length) if length else b""

    def _json(self, status: int, body: object) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _phones(self, method: str, path: str, query: dict, raw: bytes) -> None:
        answer = phones.answer(self.server.emulator, method, path, query, raw)
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        self.send_header("Cache-Control", "no-store")
        if answer.location:
            self.send_header("Location", answer.location)
        self.end_headers()
        self.wfile.write(answer.body)

    # --- Vonage's API -------------------------------------------------------------------------------------

    def _api(self, path: str, raw: bytes) -> None:
        emulator = self.server.emulator
        record = RequestRecord(at=time.time(), path=path, body=raw)
        status, answer = self._api_answer(path, raw, record)
        record.status, record.response = status, answer
        emulator.record_request(record)
        if status is None:  # hang: answer nothing, as a stuck upstream would
            emulator.hang()
            self.close_connection = True
            return
        self._json(status, answer)

    def _api_answer(self, path: str, raw: bytes, record: RequestRecord) -> tuple[int | None, dict | None]:
        emulator = self.server.emulator
        fault = emulator.take_fault()
        if fault:
            record.fault = fault
            if fault == "hang":
                return None, None
            status, body = FAULTS[fault]
            return status, problems.problem(body)
        try:
            record.auth = verify_application_jwt(self.headers.get("Authorization"),
                                                    public_key=emulator.verification_key,
                                                    application_id=emulator.config.application_id)
        except AuthError as e:
            record.auth = {"error": str(e)}
            return 401, problems.problem(problems.UNAUTHORIZED)
        if (self.headers.get("Content-Type") or "").split(";")[0].strip() != "application/json":
            return 415, problems.problem(problems.UNSUPPORTED_CONTENT_TYPE)
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, problems.problem(problems.INVALID_JSON)
        if path == "/v0.1/dispatch":
            invalid = dispatch_problems(body)
            if not invalid:
                return 202, {"dispatch_uuid": emulator.engine.accept_dispatch(body)}
        else:
            invalid = message_problems(body)
            if not invalid:
                return 202, {"message_uuid": emulator.engine.accept_message(body)}
        return 422, problems.problem(problems.INVALID_PARAMS, invalid_parameters=invalid)

    # --- control endpoints ----------------------------------------------------------------------------

    def _control(self, method: str, path: str, query: dict, raw: bytes) -> tuple[int, object]:
        emulator = self.server.emulator
        name = path.removeprefix("/_emulator/").rstrip("/")
        since, limit = _int(query.get("since"), 0), _int(query.get("limit"), None)
        if method == "GET":
            if name == "health":
                webhooks = emulator.outbound_webhooks()
                return 200, {"ok": True, "pending_events": emulator.scheduler.pending(),
                             "webhooks_pending": webhooks["pending"], "webhooks_made": webhooks["made"]}
            if name == "requests":
                return 200, emulator.requests(since=since, limit=limit)
            if name == "webhooks":
                return 200, emulator.webhooks_sent(since=since, limit=limit, kind=query.get("kind", ""))
            if name == "messages":
                return 200, emulator.messages(**{k: v for k, v in query.items()
                                                 if k in ("to", "channel", "dispatch_uuid", "client_ref", "api")})
            if name == "dispatches":
                return 200, emulator.dispatches()
            if name == "scenarios":
                return 200, emulator.scenarios()
            if name == "config":
                return 200, emulator.public_config()
        elif method == "DELETE" and name == "scenarios":
            emulator.clear_scenarios()
            return 200, {"ok": True}
        elif method == "POST":
            data = _parse(raw)
            if name != "scenarios" and not isinstance(data, dict):
                raise ControlError("the body must be a JSON object")
            if name == "reset":
                emulator.reset()
                return 200, {"ok": True}
            if name == "scenarios":
                try:
                    return 200, {"scenarios": emulator.load_scenarios(data)}
                except ValueError as e:
                    raise ControlError(str(e)) from None
            if name == "faults":
                return 200, self._faults(data)
            if name == "config":
                try:
                    emulator.configure(**data)
                except (TypeError, ValueError) as e:
                    raise ControlError(str(e)) from None
                return 200, emulator.public_config()
            if name == "reply":
                return 202, {"message_uuid": self._reply(data)}
            match = READ_PATH.match(path)
            if match:
                problem = emulator.engine.mark_read(match.group(1))
                if problem:
                    raise ControlError(problem)
                return 200, {"ok": True}
        return 404, {"error": f"no {method} {path}"}

    def _faults(self, data: dict) -> dict:
        emulator = self.server.emulator
        if "mode" in data:
            mode = str(data["mode"])
            if mode != "hang" and mode not in FAULTS:
                raise ControlError(f"unknown mode {mode!r}; one of hang, {', '.join(FAULTS)}")
            emulator.add_faults(mode, _int(data.get("count"), 1))
        if data.get("clear"):
            emulator.clear_faults()
        if "hang_seconds" in data:
            emulator.config.hang_seconds = float(data["hang_seconds"])
        for toggle in ("duplicate_webhooks", "reorder_webhooks"):
            if toggle in data:
                setattr(emulator.webhooks, toggle.removesuffix("_webhooks"), bool(data[toggle]))
        return emulator.fault_state()

    def _reply(self, data: dict) -> str:
        channel = CHANNEL_ALIASES.get(data.get("channel_type", ""), data.get("channel_type", ""))
        if channel not in CHANNELS:
            raise ControlError(f"channel_type must be one of {', '.join(CHANNELS)}")
        if not data.get("from") or not data.get("text"):
            raise ControlError("a reply needs `from` (the person's address) and `text`")
        version = data.get("version", "")
        if version not in ("", "v0.1", "v1"):
            raise ControlError("version is v0.1 or v1")
        ago = data.get("ago", 0)
        if not isinstance(ago, int | float) or isinstance(ago, bool) or not 0 <= ago <= 30 * 24 * 3600:
            raise ControlError("ago is a number of emulated seconds, 0 to 30 days")
        return self.server.emulator.engine.reply(sender=str(data["from"]), channel=channel, text=str(data["text"]),
                                                 version=version, to=str(data.get("to") or ""), ago=ago)


def _parse(raw: bytes) -> dict | list:
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise ControlError("the body is not JSON") from None
    if not isinstance(data, dict | list):
        raise ControlError("the body must be a JSON object or list")
    return data


def _int(value: object, default: int | None) -> int | None:
    if value in (None, ""):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ControlError(f"{value!r} is not an integer") from None
