"""Production settings pass `manage.py check --deploy` with no warnings at all, and the check has teeth:
leaving out any one production setting fails it.

The check runs as a subprocess with a production-like environment (settings are read once per process),
built from nothing so the developer's own variables do not leak in (a `.env` beside manage.py would
still be read for anything not set here), against a database file that is never opened.
"""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def production(tmp_path, vonage_keys) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "oncall.settings",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "oncall.example.com",
        "CSRF_TRUSTED_ORIGINS": "https://oncall.example.com",
        "SITE_URL": "https://oncall.example.com",
        "SECURE_SSL_REDIRECT": "true",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'never-opened.sqlite3'}",
        "VONAGE_APPLICATION_ID": "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee",
        "VONAGE_PRIVATE_KEY_PATH": vonage_keys["private_path"],
        "VONAGE_SIGNATURE_SECRET": secrets.token_hex(32),
        "VONAGE_API_URL": "https://api.nexmo.com",
        "ESCALATION_API": "dispatch",
    }


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_production_settings_pass_with_no_warnings(production):
    result = check_deploy(production)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "System check identified no issues (0 silenced)." in result.stdout


@pytest.mark.parametrize(("change", "reported"), [
    ({"DEBUG": "true"}, "security.W018"),
    ({"SECRET_KEY": None}, "SECRET_KEY is not set"),  # the settings refuse to load: nothing runs on a known key
    ({"SECRET_KEY": "short"}, "security.W009"),
    ({"SECURE_SSL_REDIRECT": "false"}, "security.W008"),
    ({"SESSION_COOKIE_SECURE": "false"}, "security.W012"),
    ({"CSRF_COOKIE_SECURE": "false"}, "security.W016"),
    ({"SECURE_HSTS_SECONDS": "0"}, "security.W004"),
    ({"VONAGE_SIGNATURE_SECRET": ""}, "escalation.W003"),  # webhooks would be taken unsigned
    ({"VONAGE_PRIVATE_KEY_PATH": "/nonexistent/private.key"}, "escalation.E003"),
    ({"ESCALATION_SEND_LEASE_SECONDS": "10"}, "escalation.E005"),  # shorter than a request's 13 s of timeouts
])
def test_leaving_out_a_production_setting_fails_the_check(production, change, reported):
    env = {k: v for k, v in {**production, **change}.items() if v is not None}
    result = check_deploy(env)
    assert result.returncode != 0
    assert reported in result.stderr + result.stdout
