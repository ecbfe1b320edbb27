"""A real stack for benchmarks and chaos tests: PostgreSQL + emulator + gunicorn + escalation workers.

Every part runs as its own process (each in its own session, so a kill -9 of its process group takes its
children too), configured against the others exactly as in production: signed webhooks, the application
JWT, DEBUG off. The harness process itself talks to the same database through the Django ORM.

    from bench.harness import Stack

    with Stack(db_name="oncall_mine", web_workers=3, workers=1) as stack:   # recreate DB, migrate, start all
        stack.setup_django()                   # ORM in this process, same DATABASE_URL (skip under pytest)
        roster = stack.make_roster("primary", people=3)
        escalation = stack.fire(roster, "disk full")          # commit time in stack.last_commit_at
        stack.wait_for(lambda: len(stack.emulator.requests()) >= 1, timeout=5)
        stack.kill_worker(0)                   # SIGKILL to the worker's process group
        stack.start_worker(0)                  # a fresh process in slot 0 (restart_worker = both)
        stack.peak_rss_mb(stack.workers[0].pid)               # VmHWM of any pid
    # leaving the block stops everything cleanly (SIGTERM, then SIGKILL after a grace period)

Constructor (all keywords):
    db_name            database to (re)create on postgres://postgres@127.0.0.1:5432 (default: oncall_stack_<pid>,
                       so two stacks never drop each other's); dropped again by stop() unless keep_database
    database_url       use this existing database instead: no drop/create (e.g. pytest-django's test DB)
    migrate            run `manage.py migrate` at start (default: only when the database was recreated)
    web_workers        gunicorn sync workers (default 3); web=False starts no web server
    workers            escalation worker processes (default 1)
    api                ESCALATION_API, "dispatch" or "messages"
    emulator_args      extra `python -m emulator` arguments, e.g. ("--time-scale", "0.01")
    env                extra environment for every app process (e.g. {"WORKER_THREADS": "8"})
    log_dir            where each process's output goes, kept after stop() (default: inside the temp dir, removed)

Attributes once started: `url` (gunicorn base URL), `emulator` (emulator.control.EmulatorControl),
`emulator_url`, `database_url`, `signature_secret`, `application_id`, `tmp` (Path), `webs` (name -> Proc),
`workers` (list of Proc | None), `procs_env` (the environment the app processes get).

Methods: start(), stop(), kill_worker(i), start_worker(i), restart_worker(i), add_worker() -> index,
wait_workers_ready() (PostgreSQL: each worker's loop LISTENs once it runs), listening_workers(),
start_web(name, settings_module=..., workers=...) -> Proc (a second gunicorn, e.g. the bare baseline),
stop_web(name), web_worker_pids(name="web"), kill_emulator(), restart_emulator() (same port),
manage(*args), setup_django(), make_roster(...), fire(...), sign(raw_body), emulator_requests(since=...),
peak_rss_mb(pid), wait_for(fetch, timeout=...). `Proc` has pid, alive(), kill() (SIGKILL), stop() (SIGTERM),
and log path.
"""

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from emulator.control import wait_for as poll_until

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GUNICORN = str(Path(PYTHON).with_name("gunicorn"))
POSTGRES_BASE = "postgres://postgres@127.0.0.1:5432"
CHANNEL_TYPES = ("messenger", "viber_service_msg", "whatsapp", "sms")
SENDERS = {"messenger": "1923256201474167", "viber_service_msg": "654321", "whatsapp": "447700900000",
           "sms": "447700900000"}
SENDER_SETTINGS = {"whatsapp": {"template_name": "oncall_alert", "template_namespace": "whatsapp:hsm:it:oncall"},
                   "messenger": {"messenger_tag": "ACCOUNT_UPDATE"}}

T = TypeVar("T")


def wait_for(fetch: Callable[[], T], until: Callable[[T], bool] = bool, *, timeout: float = 10.0,
             interval: float = 0.05) -> T:
    """The emulator control's polling loop, with the more patient defaults a whole stack needs."""
    return poll_until(fetch, until, timeout=timeout, interval=interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM) in MiB, 0.0 if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    return int(match.group(1)) / 1024 if match else 0.0


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far (utime + stime from /proc/<pid>/stat)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / ticks


def postgres_pids() -> list[int]:
    """Every PostgreSQL process on the machine (the server is shared, so this counts other users too)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # The command name may hold spaces and parentheses: the ppid is the 2nd field after the last ')'.
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)




def recreate_database(name: str) -> str:
    import psycopg

    with psycopg.connect(f"{POSTGRES_BASE}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{POSTGRES_BASE}/{name}"


class Proc:
    """One child process in its own session; its output goes to a log file."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.command, self.env, self.log = name, command, env, log
        self.url = ""  # gunicorn only
        self._log_file = open(log, "ab")  # noqa: SIM115 - closed in _reap
        self.popen = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self._log_file, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group at once: no clean-up, as a crash or OOM kill would."""
        self._signal_group(signal.SIGKILL)
        self.popen.wait()
        self._reap()

    def stop(self, grace: float = 10.0) -> None:
        if self.alive():
            self._signal_group(signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.popen.wait()
        self._reap()

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass

    def _reap(self) -> None:
        # Children of a killed group leader (gunicorn workers) may outlive it for a moment.
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._log_file.close()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Stack:
    def __init__(self, *, db_name: str = "", database_url: str = "", keep_database: bool = False,
                 migrate: bool | None = None,
                 web: bool = True, web_workers: int = 3, workers: int = 1, api: str = "dispatch",
                 emulator_args: tuple[str, ...] = (), env: dict[str, str] | None = None,
                 log_dir: str | Path | None = None) -> None:
        self.db_name = db_name or f"oncall_stack_{os.getpid()}"
        self.database_url = database_url
        self.owns_database = not database_url
        self.keep_database = keep_database
        self.migrate = (not database_url) if migrate is None else migrate
        self.web, self.web_workers, self.worker_count, self.api = web, web_workers, workers, api
        self.emulator_args = tuple(emulator_args)
        self.extra_env = dict(env or {})
        self.tmp = Path(tempfile.mkdtemp(prefix="oncall-stack-"))
        self.log_dir = Path(log_dir) if log_dir else self.tmp / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.signature_secret = secrets.token_hex(32)
        self.application_id = "bench-" + secrets.token_hex(8)
        self.webs: dict[str, Proc] = {}
        self.workers: list[Proc | None] = []
        self.emulator_proc: Proc | None = None
        self.emulator = None
        self.emulator_url = ""
        self.url = ""
        self.web_port = 0
        self.procs_env: dict[str, str] = {}
        self.last_commit_at = 0.0

    # --- lifecycle ---------------------------------------------------------------------------------------

    def __enter__(self) -> "Stack":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> "Stack":
        try:
            if not self.database_url:
                self.database_url = recreate_database(self.db_name)
            private_path, public_path = self._make_keys()
            self.web_port = free_port()
            self.url = f"http://127.0.0.1:{self.web_port}"
            self.procs_env = {
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "oncall.settings",
                "DATABASE_URL": self.database_url,
                "VONAGE_APPLICATION_ID": self.application_id,
                "VONAGE_PRIVATE_KEY_PATH": str(private_path),
                "VONAGE_SIGNATURE_SECRET": self.signature_secret,
                "ESCALATION_API": self.api,
                "DEBUG": "false",
                "SECRET_KEY": secrets.token_urlsafe(50),
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "SITE_URL": self.url,
                "LOG_LEVEL": "WARNING",
                "PYTHONUNBUFFERED": "1",
                **self.extra_env,
            }
            if self.migrate:
                self.manage("migrate", "--verbosity", "0")
            self._start_emulator(public_path, port=0)
            if self.web:
                self.start_web("web", port=self.web_port)
            for _ in range(self.worker_count):
                self.add_worker()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for index in range(len(self.workers)):
            worker = self.workers[index]
            if worker is not None:
                worker.stop()
        for name in list(self.webs):
            self.stop_web(name)
        if self.emulator is not None:
            self.emulator.session.close()
        if self.emulator_proc is not None:
            self.emulator_proc.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)  # with the logs, unless the caller gave a log_dir
        if self.owns_database and not self.keep_database and self.database_url:
            self._drop_database()

    def _drop_database(self) -> None:
        import psycopg
        from django.conf import settings

        if settings.configured:
            from django.db import connections

            connections.close_all()
        with psycopg.connect(f"{POSTGRES_BASE}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')

    def _make_keys(self) -> tuple[Path, Path]:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_path, public_path = self.tmp / "private.key", self.tmp / "public.pem"
        private_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
        public_path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                              serialization.PublicFormat.SubjectPublicKeyInfo))
        return private_path, public_path

    def manage(self, *args: str) -> None:
        subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=self.procs_env, check=True)

    # --- the emulator ------------------------------------------------------------------------------------

    def _start_emulator(self, public_path: Path, *, port: int) -> None:
        from emulator.control import EmulatorControl

        command = [PYTHON, "-m", "emulator", "--port", str(port), "--public-key", str(public_path),
                   "--webhook-base", self.url, "--signature-secret", self.signature_secret,
                   "--application-id", self.application_id, *self.emulator_args]
        log = self.log_dir / "emulator.log"
        log.write_text("")
        self.emulator_proc = Proc("emulator", command, self.procs_env, log)
        # Its first line names the bound address (port 0 picks a free one).
        line = wait_for(lambda: re.search(r"listening on (http://\S+)", log.read_text(errors="replace")),
                        lambda m: m is not None or not self.emulator_proc.alive(), timeout=20)
        if line is None:
            raise RuntimeError(f"the emulator did not start:\n{self.emulator_proc.tail()}")
        self.emulator_url = line.group(1)
        self.emulator = EmulatorControl(self.emulator_url)
        wait_for(self.emulator.health, lambda h: h.get("ok"), timeout=10)
        self.procs_env["VONAGE_API_URL"] = self.emulator_url

    def kill_emulator(self) -> None:
        self.emulator_proc.kill()

    def restart_emulator(self) -> None:
        """A fresh emulator (empty records) on the same port, so running processes reach it again."""
        if self.emulator_proc.alive():
            self.emulator_proc.stop()
        self.emulator.session.close()
        port = int(self.emulator_url.rsplit(":", 1)[1])
        self._start_emulator(self.tmp / "public.pem", port=port)

    def emulator_requests(self, *, since: int = 0, limit: int | None = None) -> list[dict]:
        """API requests the emulator received after sequence number `since` ({at, path, body, status, seq...})."""
        params: dict[str, Any] = {"since": since}
        if limit is not None:
            params["limit"] = limit
        return self.emulator._get("requests", **params)

    def sign(self, raw_body: bytes) -> str:
        """An Authorization header for `raw_body` signed as the emulator (and Vonage) sign webhooks."""
        from emulator.auth import sign_webhook

        return sign_webhook(raw_body, secret=self.signature_secret, api_key="bench",
                            application_id=self.application_id)

    # --- web ---------------------------------------------------------------------------------------------

    def start_web(self, name: str = "web", *, settings_module: str = "oncall.settings", port: int = 0,
                  workers: int | None = None, extra_args: tuple[str, ...] = ()) -> Proc:
        port = port or free_port()
        command = [GUNICORN, "oncall.wsgi", "-w", str(workers or self.web_workers), "-b", f"127.0.0.1:{port}",
                   *self._gunicorn_config(), *extra_args]
        env = {**self.procs_env, "DJANGO_SETTINGS_MODULE": settings_module}
        proc = Proc(name, command, env, self.log_dir / f"{name}.log")
        proc.url = f"http://127.0.0.1:{port}"
        self.webs[name] = proc

        def up() -> bool:
            if not proc.alive():
                raise RuntimeError(f"gunicorn {name} stopped during start-up:\n{proc.tail()}")
            try:
                urllib.request.urlopen(f"{proc.url}/admin/login/", timeout=2)
                return True
            except OSError:
                return False

        wait_for(up, timeout=30, interval=0.1)
        return proc

    @staticmethod
    def _gunicorn_config() -> list[str]:
        config = ROOT / "oncall" / "gunicorn.conf.py"
        return ["-c", str(config)] if config.exists() else []

    def stop_web(self, name: str = "web") -> None:
        proc = self.webs.pop(name, None)
        if proc is not None:
            proc.stop()

    def web_worker_pids(self, name: str = "web") -> list[int]:
        return children_of(self.webs[name].pid)

    def cpu_by_role(self) -> dict[str, float]:
        """CPU seconds used so far by each part of the stack: where a benchmark's time went."""
        workers = [w.pid for w in self.workers if w is not None and w.alive()]
        webs = [pid for name in self.webs for pid in [self.webs[name].pid, *self.web_worker_pids(name)]]
        return {"worker": cpu_seconds(workers), "emulator": cpu_seconds([self.emulator_proc.pid]),
                "web": cpu_seconds(webs), "postgres": cpu_seconds(postgres_pids())}

    # --- escalation workers ------------------------------------------------------------------------------

    def add_worker(self) -> int:
        self.workers.append(None)
        index = len(self.workers) - 1
        self.start_worker(index)
        return index

    def start_worker(self, index: int) -> Proc:
        current = self.workers[index]
        if current is not None and current.alive():
            raise RuntimeError(f"worker {index} is still running (pid {current.pid})")
        proc = Proc(f"worker{index}", [PYTHON, "manage.py", "run_escalations"], self.procs_env,
                    self.log_dir / f"worker{index}.log")
        self.workers[index] = proc
        return proc

    def listening_workers(self) -> int:
        """Worker processes whose loop is running: each LISTENs for wake-ups once its first pass is done."""
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True) as conn:
            return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                "AND query LIKE 'LISTEN %%'").fetchone()[0]

    def wait_workers_ready(self, timeout: float = 60.0) -> None:
        """Until every running worker's loop is up (Django's start-up takes seconds on a busy machine)."""
        running = sum(1 for w in self.workers if w is not None and w.alive())
        wait_for(self.listening_workers, lambda n: n >= running, timeout=timeout, interval=0.1)

    def kill_worker(self, index: int) -> None:
        self.workers[index].kill()

    def restart_worker(self, index: int) -> Proc:
        self.kill_worker(index)
        return self.start_worker(index)

    # --- the database from this process ------------------------------------------------------------------

    def setup_django(self) -> None:
        """Configure Django in this process against the stack's database (no-op if already configured,
        e.g. under pytest-django: pass that test database's URL as `database_url` instead)."""
        from django.conf import settings

        if settings.configured:
            return
        os.environ["DJANGO_SETTINGS_MODULE"] = "oncall.settings"
        for key in ("DATABASE_URL", "VONAGE_APPLICATION_ID", "VONAGE_PRIVATE_KEY_PATH", "VONAGE_SIGNATURE_SECRET",
                    "VONAGE_API_URL", "ESCALATION_API", "SECRET_KEY"):
            os.environ[key] = self.procs_env[key]
        os.environ.setdefault("LOG_LEVEL", "WARNING")
        import django

        django.setup()

    def make_roster(self, name: str, *, people: int = 3, channels: tuple[str, ...] = ("whatsapp", "sms"),
                    expiry_time: int = 600, condition: str = "read", rounds: int = 1, first_number: int = 0):
        """A roster of `people` new people, each with the given channel types; senders for every type.

        Addresses are unique E.164 digits (447700000000 + n) or Messenger ids, numbered from `first_number`
        upwards across all rosters made by this stack.
        """
        from escalation.models import Channel, Person, Roster, RosterMember, Sender

        for channel_type, sender_id in SENDERS.items():
            # A template and a tag, as a live set-up has: bench people never wrote, so their windows are closed.
            Sender.objects.get_or_create(channel_type=channel_type, defaults={
                "sender_id": sender_id, **SENDER_SETTINGS.get(channel_type, {})})
        roster = Roster.objects.create(name=name, rounds=rounds)
        number = first_number or 1 + 1000 * Roster.objects.count()
        for position in range(people):
            person = Person.objects.create(name=f"{name} person {position + 1}")
            for channel_position, channel_type in enumerate(channels):
                digits = str(447700000000 + number)
                address = digits if channel_type != "messenger" else "1" + digits
                Channel.objects.create(person=person, position=channel_position, type=channel_type,
                                       address=address, expiry_time=expiry_time, condition=condition)
                number += 1
            RosterMember.objects.create(roster=roster, person=person, position=position)
        return roster

    def fire(self, roster, message: str, **kwargs):
        """escalation_fire in this process; `last_commit_at` is time.time() right after its commit."""
        from django.db import transaction

        from escalation.services.escalations import escalation_fire

        def committed() -> None:
            self.last_commit_at = time.time()

        with transaction.atomic():
            escalation = escalation_fire(roster=roster, message=message, fired_by_name="bench", **kwargs)
            transaction.on_commit(committed)
        return escalation

    # --- measuring ---------------------------------------------------------------------------------------

    peak_rss_mb = staticmethod(peak_rss_mb)
    wait_for = staticmethod(wait_for)
