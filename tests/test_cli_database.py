"""Issue 15 §4: the project's commands against a database that is not ready say so in one line, with what to run,
never a traceback, and leave no empty database file behind; a command that only records does not warn that "no
escalation can be sent" (W001/W002): that is the worker's to say."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import on_postgres
from tests.emulator_fixtures import ROOT

pytestmark = pytest.mark.skipif(on_postgres(), reason="about SQLite files; the PostgreSQL pass would repeat it")


def manage(*args: str, database: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("VONAGE_", "DJANGO_")) and key != "DATABASE_URL"}
    env["DATABASE_URL"] = f"sqlite:///{database}"
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("command", [("escalate", "On call (demo)", "disk full", "--follow"),
                                     ("export_config", "On call (demo)"), ("run_escalations", "--once")])
def test_it_says_in_one_line_that_there_is_no_database_and_creates_none(tmp_path, command):
    database = tmp_path / "db.sqlite3"
    done = manage(*command, database=database)
    assert done.returncode == 1
    assert done.stderr.strip() == (f"CommandError: There is no database at {database} yet: run `python manage.py "
                                   "migrate` first (`make run` does it for the demo).")
    assert not database.exists() and list(tmp_path.iterdir()) == []


def test_it_says_an_empty_database_is_not_migrated(tmp_path):
    database = tmp_path / "db.sqlite3"
    sqlite3.connect(database).close()
    done = manage("escalate", "On call (demo)", "disk full", database=database)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"CommandError: The database {database} is missing ")
    assert line.endswith("migration(s): run `python manage.py migrate` first (`make run` does it for the demo).")


def test_a_command_that_only_records_does_not_warn_that_nothing_can_be_sent(tmp_path):
    database = tmp_path / "db.sqlite3"
    assert manage("migrate", "--verbosity", "0", database=database).returncode == 0
    done = manage("escalate", "On call (demo)", "disk full", database=database)
    assert done.stderr.strip().splitlines()[-1] == "CommandError: No roster named 'On call (demo)'."
    assert "W001" not in done.stderr and "W002" not in done.stderr
    # The worker, which sends, still says it.
    worker = manage("run_escalations", "--once", database=database)
    assert "escalation.W001" in worker.stderr and "escalation.W002" in worker.stderr
