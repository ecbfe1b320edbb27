"""The private-key check: `manage.py check`, and so the worker at start, refuses a key file that cannot sign
Vonage's RS256 application JWT, and says what it found instead (never a byte of the key itself).

Reproduces issue 13 §1: a garbage PEM, an EC key or a public key passed `check` with "no issues", the
worker started, and every escalation was exhausted in under a second with nobody paged.
"""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from tests.serving import free_port

ROOT = Path(__file__).resolve().parent.parent
PEM = serialization.Encoding.PEM
UNENCRYPTED = serialization.NoEncryption()


def rsa_key(private_format: serialization.PrivateFormat = serialization.PrivateFormat.PKCS8,
            encryption: serialization.KeySerializationEncryption = UNENCRYPTED) -> bytes:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        PEM, private_format, encryption)


def ec_key() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(PEM, serialization.PrivateFormat.PKCS8, UNENCRYPTED)


def ed25519_key() -> bytes:
    return ed25519.Ed25519PrivateKey.generate().private_bytes(PEM, serialization.PrivateFormat.PKCS8, UNENCRYPTED)


def public_key(vonage_keys: dict) -> bytes:
    return Path(vonage_keys["public_path"]).read_bytes()


GARBAGE_PEM = b"-----BEGIN PRIVATE KEY-----\nTOP-SECRET-MATERIAL\n-----END PRIVATE KEY-----\n"

# (the file's content, what the error must say the file holds)
REFUSED = {
    "garbage PEM": (lambda keys: GARBAGE_PEM, "holds a 'PRIVATE KEY' block that is not a valid key"),
    "EC key": (lambda keys: ec_key(), "holds an EC (secp256r1) private key"),
    "Ed25519 key": (lambda keys: ed25519_key(), "holds an Ed25519 private key"),
    "public key": (public_key, "holds a public key (-----BEGIN PUBLIC KEY-----)"),
    "encrypted key": (lambda keys: rsa_key(encryption=serialization.BestAvailableEncryption(b"pw")),
                      "holds a password-protected private key"),
    "empty file": (lambda keys: b"", "is empty"),
    "no PEM at all": (lambda keys: b"application_id=abcd\n", "holds no PEM block"),
    "DER key": (lambda keys: rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, UNENCRYPTED), "holds no PEM block"),
}


def check_errors() -> str:
    try:
        call_command("check", stdout=io.StringIO(), stderr=io.StringIO())
    except SystemCheckError as failed:
        return str(failed)
    return ""


@pytest.mark.parametrize("case", REFUSED)
def test_it_refuses_a_key_that_cannot_sign_and_says_what_it_found(case, settings, tmp_path, vonage_keys):
    content, found = REFUSED[case]
    key_path = tmp_path / "private.key"
    key_path.write_bytes(content(vonage_keys))
    settings.VONAGE_PRIVATE_KEY_PATH = str(key_path)

    errors = check_errors()

    assert "escalation.E006" in errors
    assert f"VONAGE_PRIVATE_KEY_PATH ({key_path}) {found}" in errors
    assert "TOP-SECRET" not in errors


@pytest.mark.parametrize("where", ["missing", "a directory"])
def test_it_refuses_a_path_that_is_no_readable_file(where, settings, tmp_path):
    key_path = tmp_path / "private.key"
    if where == "a directory":
        key_path.mkdir()
    settings.VONAGE_PRIVATE_KEY_PATH = str(key_path)

    errors = check_errors()

    assert "escalation.E003" in errors
    assert str(key_path) in errors


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file, so an unreadable one cannot be made")
def test_it_refuses_a_file_it_may_not_read(settings, tmp_path):
    key_path = tmp_path / "private.key"
    key_path.write_bytes(rsa_key())
    key_path.chmod(0)
    settings.VONAGE_PRIVATE_KEY_PATH = str(key_path)

    assert "escalation.E003" in check_errors()


@pytest.mark.parametrize("private_format", [serialization.PrivateFormat.PKCS8,
                                            serialization.PrivateFormat.TraditionalOpenSSL])
def test_it_takes_an_rsa_private_key_in_either_pem_form(private_format, settings, tmp_path):
    key_path = tmp_path / "private.key"
    key_path.write_bytes(rsa_key(private_format))
    settings.VONAGE_PRIVATE_KEY_PATH = str(key_path)

    assert check_errors() == ""


def test_the_worker_refuses_to_start_with_a_key_that_cannot_sign(tmp_path, vonage_keys):
    key_path = tmp_path / "private.key"
    key_path.write_bytes(ec_key())
    env = {**os.environ, "VONAGE_PRIVATE_KEY_PATH": str(key_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'db'}",
           "VONAGE_APPLICATION_ID": "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"}
    # A migrated database, so that the key is the only thing wrong (the worker also refuses a missing one).
    subprocess.run([sys.executable, "manage.py", "migrate", "--skip-checks", "-v", "0"], cwd=ROOT, env=env,
                   check=True, timeout=120)

    worker = subprocess.run([sys.executable, "manage.py", "run_escalations"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)

    assert worker.returncode != 0
    assert "escalation.E006" in worker.stderr
    assert "holds an EC (secp256r1) private key" in worker.stderr
    assert "escalation worker started" not in worker.stderr


def test_the_web_process_refuses_to_start_with_a_key_that_cannot_sign(tmp_path):
    key_path = tmp_path / "private.key"
    key_path.write_bytes(GARBAGE_PEM)
    env = {**os.environ, "VONAGE_PRIVATE_KEY_PATH": str(key_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'db'}"}
    gunicorn = Path(sys.executable).with_name("gunicorn")

    web = subprocess.run([str(gunicorn), "oncall.wsgi", "-w", "1", "-b", f"127.0.0.1:{free_port()}"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=60)

    assert web.returncode != 0
    assert "escalation.E006" in web.stderr
    assert "holds a 'PRIVATE KEY' block that is not a valid key" in web.stderr
    assert "TOP-SECRET" not in web.stderr
