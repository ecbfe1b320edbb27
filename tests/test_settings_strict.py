"""Configuration mistakes are refused at start, naming the variable (issue 13 §6).

Settings are read once per process, so every case imports them afresh in a child process, from an
environment built from nothing (the developer's own variables must not leak in). All cases share one
child (each re-imports `oncall.settings` from scratch) to spare the machine ~40 interpreter starts.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Imports the settings once per case and reports each case's values or its refusal.
CHILD = """
import json, os, sys
from django.core.exceptions import ImproperlyConfigured
base, cases, names = json.load(sys.stdin)
results = []
for overlay in cases:
    os.environ.clear()
    os.environ.update({k: v for k, v in {**base, **overlay}.items() if v is not None})
    sys.modules.pop("oncall.settings", None)
    try:
        import oncall.settings as s
        results.append({name: getattr(s, name) for name in names})
    except ImproperlyConfigured as refused:
        results.append(f"ImproperlyConfigured: {refused}")
print(json.dumps(results))
"""

# Every numeric setting: (name, its range as the error states it, an accepted value, what it is read as).
NUMERIC = [
    ("WEBHOOK_MAX_BODY_BYTES", "an integer from 1024 to 10485760", "1024", 1024),
    ("RATE_LIMIT_PER_SECOND", "a number from 0 to 1000000", "0", 0.0),
    ("RATE_LIMIT_BURST", "an integer from 1 to 1000000", "50", 50),
    ("SECURE_HSTS_SECONDS", "an integer from 0 to 63072000", "3600", 3600),
    ("VONAGE_SIGNATURE_MAX_AGE", "an integer from 60 to 604800", "90000", 90000),
    ("VONAGE_CONNECT_TIMEOUT", "a number from 0.1 to 60", "3.05", 3.05),
    ("VONAGE_READ_TIMEOUT", "a number from 0.1 to 300", "12.5", 12.5),
    ("WORKER_POLL_INTERVAL", "a number from 0.01 to 60", "0.05", 0.05),
    ("ESCALATION_SEND_ATTEMPTS", "an integer from 1 to 20", "6", 6),
    ("ESCALATION_RETRY_BASE_SECONDS", "a number from 0.01 to 3600", "0.5", 0.5),
    ("ESCALATION_RETRY_CAP_SECONDS", "a number from 0.01 to 86400", "120", 120.0),
    ("ESCALATION_HOLD_HORIZON_SECONDS", "a number from 1 to 604800", "7200", 7200.0),
    ("READINESS_TIMEOUT", "a number from 0.05 to 60", "0.5", 0.5),
    ("ESCALATION_SEND_LEASE_SECONDS", "a number from 1 to 3600", "45", 45.0),
    ("ESCALATION_CLAIM_LEASE_SECONDS", "a number from 1 to 3600", "1", 1.0),
    ("WORKER_THREADS", "an integer from 1 to 64", "64", 64),
    ("CONN_MAX_AGE", "an integer from 0 to 86400", "0", 0),
]
# Every value here is wrong for every numeric setting above.
JUNK = ["abc", "1e9", "nan", "inf", "-inf", "-1", "0x10", "1_000", " 5", "5 ", "99999999999999999999999999"]


@pytest.fixture(scope="module")
def base_environment(tmp_path_factory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("settings")
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "DEBUG": "false",
        "SECRET_KEY": "a-real-secret-for-these-tests-only-0123456789abcdefghijklmnop",
        "DATABASE_URL": f"sqlite:///{home / 'never-opened.sqlite3'}",
    }


def read_settings(base: dict[str, str], cases: list[dict[str, str | None]], names: list[str]) -> list:
    child = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, input=json.dumps([base, cases, names]),
                           capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, child.stderr
    return json.loads(child.stdout)


def environment_for(name: str, value: str | None) -> dict[str, str | None]:
    # CONN_MAX_AGE is only read for PostgreSQL; its settings are read without connecting.
    overlay: dict[str, str | None] = {name: value}
    if name == "CONN_MAX_AGE":
        overlay["DATABASE_URL"] = "postgres://oncall@127.0.0.1:1/never-connected"
    return overlay


@pytest.fixture(scope="module")
def numeric_outcomes(base_environment) -> dict[tuple[str, str], object]:
    cases = [(name, value) for name, _range, good, _parsed in NUMERIC for value in [good, *JUNK]]
    outcomes = read_settings(base_environment, [environment_for(name, value) for name, value in cases],
                             ["SECRET_KEY"] + [name for name, *_ in NUMERIC if name != "CONN_MAX_AGE"])
    return dict(zip(cases, outcomes, strict=True))


@pytest.mark.parametrize(("name", "expected_range", "good", "parsed"), NUMERIC)
def test_it_reads_every_numeric_setting_strictly(numeric_outcomes, name, expected_range, good, parsed):
    accepted = numeric_outcomes[(name, good)]
    assert isinstance(accepted, dict), accepted
    if name != "CONN_MAX_AGE":
        assert accepted[name] == parsed
    for junk in JUNK:
        assert numeric_outcomes[(name, junk)] == (
            f"ImproperlyConfigured: {name} must be {expected_range}, got {junk!r}."), junk


def test_it_names_the_variable_and_range_for_the_reported_mistakes(numeric_outcomes):
    # The issue's own examples: 1e9 was read as 19.0, abc gave an anonymous traceback, 0 crashed or spun.
    assert numeric_outcomes[("VONAGE_READ_TIMEOUT", "1e9")] == (
        "ImproperlyConfigured: VONAGE_READ_TIMEOUT must be a number from 0.1 to 300, got '1e9'.")
    assert numeric_outcomes[("RATE_LIMIT_PER_SECOND", "abc")] == (
        "ImproperlyConfigured: RATE_LIMIT_PER_SECOND must be a number from 0 to 1000000, got 'abc'.")
    assert numeric_outcomes[("WORKER_THREADS", "abc")] == (
        "ImproperlyConfigured: WORKER_THREADS must be an integer from 1 to 64, got 'abc'.")


def test_it_refuses_zero_where_zero_would_crash_or_spin(base_environment):
    outcomes = read_settings(base_environment, [{"WORKER_THREADS": "0"}, {"WORKER_POLL_INTERVAL": "0"}], [])
    assert outcomes == [
        "ImproperlyConfigured: WORKER_THREADS must be an integer from 1 to 64, got '0'.",
        "ImproperlyConfigured: WORKER_POLL_INTERVAL must be a number from 0.01 to 60, got '0'.",
    ]


def test_the_defaults_are_within_their_ranges(base_environment):
    names = [name for name, *_ in NUMERIC if name != "CONN_MAX_AGE"]
    [defaults] = read_settings(base_environment, [{}], names)
    assert defaults == {
        "WEBHOOK_MAX_BODY_BYTES": 65536, "RATE_LIMIT_PER_SECOND": 2000.0, "RATE_LIMIT_BURST": 2000,
        "SECURE_HSTS_SECONDS": 31536000, "VONAGE_SIGNATURE_MAX_AGE": 90000, "VONAGE_CONNECT_TIMEOUT": 3.05,
        "VONAGE_READ_TIMEOUT": 10.0, "WORKER_POLL_INTERVAL": 0.1, "ESCALATION_SEND_ATTEMPTS": 4,
        "ESCALATION_RETRY_BASE_SECONDS": 2.0, "ESCALATION_RETRY_CAP_SECONDS": 60.0,
        "ESCALATION_HOLD_HORIZON_SECONDS": 3600.0, "READINESS_TIMEOUT": 2.0, "ESCALATION_SEND_LEASE_SECONDS": 30.0,
        "ESCALATION_CLAIM_LEASE_SECONDS": 30.0, "WORKER_THREADS": 1,
    }


def test_an_empty_value_means_the_default_as_for_every_other_variable(base_environment):
    # django-environ's convention (`X=` in .env is unset), kept so one rule holds for all variables.
    [outcome] = read_settings(base_environment, [{"WORKER_THREADS": "", "VONAGE_READ_TIMEOUT": ""}],
                              ["WORKER_THREADS", "VONAGE_READ_TIMEOUT"])
    assert outcome == {"WORKER_THREADS": 1, "VONAGE_READ_TIMEOUT": 10.0}


@pytest.mark.parametrize("secret_key", [None, "", "change-me"])
def test_it_refuses_to_start_without_a_secret_key_when_debug_is_off(base_environment, secret_key):
    [outcome] = read_settings(base_environment, [{"SECRET_KEY": secret_key}], ["SECRET_KEY"])
    assert outcome.startswith("ImproperlyConfigured: SECRET_KEY is not set")
    assert "DEBUG is off" in outcome


def test_development_runs_on_the_built_in_key_only_with_debug_on(base_environment):
    [outcome] = read_settings(base_environment, [{"SECRET_KEY": None, "DEBUG": "true"}], ["SECRET_KEY", "DEBUG"])
    assert outcome == {"SECRET_KEY": "dev-only-insecure-key-do-not-use-in-production-0123456789", "DEBUG": True}


def test_manage_py_refuses_to_start_without_a_secret_key(base_environment):
    env = {k: v for k, v in base_environment.items() if k != "SECRET_KEY"}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY is not set" in result.stderr


def test_every_variable_the_settings_read_is_in_the_example_file():
    read = set()
    for source in (ROOT / "oncall" / "settings.py").read_text().splitlines():
        for reader in ('env.str("', 'env.bool("', 'env.list("', 'env.db("', 'integer(env, "', 'number(env, "'):
            if reader in source:
                read.add(source.split(reader, 1)[1].split('"', 1)[0])
    example = {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines()
               if line and not line.startswith("#")}
    # Test-only: where the test database file goes.
    assert read - example == {"SQLITE_TEST_NAME"}
    assert "TIME_ZONE" in example
