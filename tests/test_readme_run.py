"""The README's run command, run as a newcomer runs it: `make run` in a fresh copy of the project.

The copy holds what a clone would (tracked files plus new ones not ignored, as they are on disk), so the
first run builds its own virtual environment from requirements-dev.txt (pip's cache makes that quick),
migrates a new SQLite database and prepares var/demo/. The test waits for the printed URL, checks that it
and the phones page answer, presses Ctrl-C (SIGINT to the foreground process group, as a terminal does)
and checks that every process the command started has exited. A second run must reuse all of it.
"""

import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
import requests

from bench.harness import free_port
from tests.conftest import on_postgres
from tests.emulator_fixtures import ROOT

FIRST_RUN_TIMEOUT = 240  # builds the venv: about 40 s with pip's cache, far more without it
LATER_RUN_TIMEOUT = 60
STOP_TIMEOUT = 30

pytestmark = [
    pytest.mark.skipif(shutil.which("make") is None, reason="`make` is not installed"),
    pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout: cannot tell which files a clone has"),
    # `make run` always uses its own SQLite database; the PostgreSQL pass would repeat the SQLite one.
    pytest.mark.skipif(on_postgres(), reason="make run uses SQLite whatever DATABASE_URL says; run on SQLite"),
]


def lines_of(stream: IO[str]) -> queue.Queue[str | None]:
    """The stream's lines as they come, then None at its end: read in a thread so waiting can have a deadline."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return lines


def copy_project(target: Path) -> None:
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is gone from the next commit too
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


class Run:
    """`make run` in `folder`, its output read line by line in a thread so waiting can have a deadline."""

    def __init__(self, folder: Path, web_port: int, emulator_port: int) -> None:
        env = {key: value for key, value in os.environ.items()
               if key not in ("DATABASE_URL", "VIRTUAL_ENV", "PYTHONPATH", "DJANGO_SETTINGS_MODULE")}
        env.update({"DEMO_PORT": str(web_port), "DEMO_EMULATOR_PORT": str(emulator_port)})
        # Its own process group, as a shell gives a foreground job, so Ctrl-C can be sent to all of it.
        self.process = subprocess.Popen(["make", "run"], cwd=folder, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                                        start_new_session=True)
        self.lines = lines_of(self.process.stdout)
        self.output: list[str] = []

    def wait_for_line(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r} within {timeout} s:\n{self.tail()}") from None
            if line is None:
                raise AssertionError(f"make run ended (exit {self.process.wait()}) before {pattern!r}:\n{self.tail()}")
            self.output.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    def text(self) -> str:
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return "".join(self.output)
            if line is not None:
                self.output.append(line)

    def wait_for_end_of_output(self, timeout: float) -> None:
        """Every process that could write to the terminal has closed it: none of them is left."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"the output is still open {timeout} s after Ctrl-C:\n{self.tail()}") from None
            if line is None:
                return
            self.output.append(line)

    def tail(self) -> str:
        return "\n".join(self.text().splitlines()[-60:])

    def ctrl_c(self) -> None:
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"make run still running {STOP_TIMEOUT} s after Ctrl-C:\n{self.tail()}") from None

    def kill_leftovers(self, pids: list[int]) -> None:
        """After a failure: nothing this test started may outlive it."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def descendants(pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                # The command name may hold spaces and parentheses: the ppid is the 2nd field after the last ')'.
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.fixture
def project(tmp_path) -> Iterator[Path]:
    folder = tmp_path / "oncall"
    copy_project(folder)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)  # its .venv is a third of a GB; pytest keeps old tmp dirs


def start_and_check(folder: Path, timeout: float) -> tuple[Run, list[int], str]:
    """Start `make run`, wait for its URL, check what it printed answers; returns the run, its processes, login."""
    web_port, emulator_port = free_port(), free_port()
    run = Run(folder, web_port, emulator_port)
    pids: list[int] = []
    try:
        opened = run.wait_for_line(r"Open:\s+(http://\S+)\s+\(login: (\S+) / (\S+)\)", timeout)
        phones = run.wait_for_line(r"Phones:\s+(http://\S+)", 5)
        pids = descendants(run.process.pid)
        url, user, password = opened.groups()
        assert url == f"http://127.0.0.1:{web_port}/admin/"
        assert phones.group(1) == f"http://127.0.0.1:{emulator_port}/phones/"

        session = requests.Session()
        login_page = session.get(f"{url}login/", timeout=10)
        assert login_page.status_code == 200
        assert session.get(url, timeout=10).url == f"{url}login/?next=/admin/"
        # The printed login works, the sample roster is there, and the admin links to the phones.
        signed_in = session.post(f"{url}login/?next=/admin/escalation/roster/", timeout=10, data={
            "username": user, "password": password, "csrfmiddlewaretoken": session.cookies["csrftoken"]})
        assert signed_in.status_code == 200 and signed_in.url.endswith("/admin/escalation/roster/")
        assert "On call (demo)" in signed_in.text
        assert f'href="{phones.group(1)}"' in signed_in.text
        phones_page = requests.get(phones.group(1), timeout=10)
        assert phones_page.status_code == 200
        assert "<h2>Tony</h2>" in phones_page.text and "<h2>Michael</h2>" in phones_page.text

        commands = [command_line(pid) for pid in pids]
        for part in ("-m oncall.demo", "-m emulator", "manage.py runserver", "manage.py run_escalations"):
            assert any(part in command for command in commands), f"no {part!r} among {commands}"
        return run, pids, f"{user}:{password}"
    except BaseException:
        run.kill_leftovers(pids or descendants(run.process.pid))
        raise


def stop_and_check(run: Run, pids: list[int]) -> None:
    try:
        run.ctrl_c()
        # The demo's children are in their own sessions: only the demo itself can have stopped them.
        deadline = time.monotonic() + STOP_TIMEOUT
        while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [f"{pid} {command_line(pid)}" for pid in pids if alive(pid)]
        assert not left, f"still running after Ctrl-C: {left}\n{run.tail()}"
        run.wait_for_end_of_output(5)
        assert "Stopping." in run.text()
        assert "Traceback" not in run.text(), run.tail()
    finally:
        run.kill_leftovers(pids)


# As the README writes it: DEBUG=true for the development key (with DEBUG off the app refuses to run without a
# SECRET_KEY of its own).
README_CLI_LINE = 'DEBUG=true .venv/bin/python manage.py escalate "On call (demo)" "disk full" --follow'
README_CLI = [".venv/bin/python", "manage.py", "escalate", "On call (demo)", "disk full", "--follow"]


def test_the_readme_writes_the_cli_line_this_file_runs():
    assert README_CLI_LINE in (Path(__file__).parent.parent / "README.md").read_text()
CLI_WATCH_SECONDS = 15
CLI_FOLLOWING = "next: Tony on SMS at about"


def run_readme_cli(folder: Path) -> tuple[str, str]:
    """The README's CLI, exactly as written, beside the running demo: what it printed until it says whom it pages
    next (it is following the escalation), or until it ended, within CLI_WATCH_SECONDS."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "VIRTUAL_ENV", "PYTHONPATH", "DJANGO_SETTINGS_MODULE", "SECRET_KEY", "DEBUG")
           and not key.startswith("VONAGE_")}
    env["DEBUG"] = "true"
    cli = subprocess.Popen(README_CLI, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out_lines, err_lines = lines_of(cli.stdout), lines_of(cli.stderr)
    out: list[str] = []
    deadline = time.monotonic() + CLI_WATCH_SECONDS
    ended = False
    while not ended and not any(CLI_FOLLOWING in line for line in out):
        try:
            line = out_lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break  # nothing more within the watch: the caller's assertions say what is missing
        ended = line is None  # it ended: the escalation did, or it failed
        out += [] if ended else [line]
    cli.kill()  # still following the escalation, as it should (a no-op if it ended)
    cli.wait()
    if not ended:
        out += iter(out_lines.get, None)
    return "".join(out), "".join(iter(err_lines.get, None))


def test_make_run_starts_everything_and_ctrl_c_stops_it(project):
    run, pids, login = start_and_check(project, FIRST_RUN_TIMEOUT)
    try:
        # Issue 15 §4: the README's CLI finds the demo's database and fires on its roster, without a false
        # "no escalation can be sent" (W001/W002): the demo's worker does the sending.
        out, err = run_readme_cli(project)
        lines = out.splitlines()
        assert lines and lines[0].isdigit(), f"stdout: {out}\nstderr: {err}"
        assert any(" fired " in line for line in lines) and any("next: Tony on SMS at about" in line for line in lines)
        assert "Traceback" not in err and "W001" not in err and "W002" not in err, err
    finally:
        stop_and_check(run, pids)
    assert "-m venv .venv" in run.text() and "Loaded the sample roster" in run.text()
    assert (project / "db.sqlite3").exists()  # the default database, which a plain manage.py finds
    for made in ("private.key", "public.pem", "secret_key", "signature_secret", "admin_login"):
        assert (project / "var" / "demo" / made).exists(), made
    assert (project / "var" / "demo" / "admin_login").read_text() == login

    # The second run builds nothing, keeps the login and loads the sample roster only once.
    again, pids, second_login = start_and_check(project, LATER_RUN_TIMEOUT)
    stop_and_check(again, pids)
    assert second_login == login
    assert "pip install" not in again.text()
    assert "Loaded the sample roster" not in again.text()
