"""Shared test set-up: a fresh Vonage key pair and settings that point at nothing real.

Nothing here may reach the real Vonage: VONAGE_API_URL points at a closed loopback port unless a test
starts the emulator (see tests/emulator_fixtures.py).
"""

import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

pytest_plugins = ["tests.emulator_fixtures", "tests.browser"]


@pytest.fixture(scope="session")
def vonage_keys(tmp_path_factory) -> dict:
    """A throwaway RSA key pair for the application JWT, written where the client expects it."""
    folder = tmp_path_factory.mktemp("vonage")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private_path = folder / "private.key"
    private_path.write_bytes(private_pem)
    public_path = folder / "public.pem"
    public_path.write_bytes(public_pem)
    return {"private_path": str(private_path), "public_path": str(public_path), "public_pem": public_pem}


TEST_APPLICATION_ID = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
TEST_SIGNATURE_SECRET = "test-signature-secret-0123456789abcdef"


@pytest.fixture(autouse=True)
def _vonage_settings(settings, vonage_keys):
    settings.VONAGE_APPLICATION_ID = TEST_APPLICATION_ID
    settings.VONAGE_PRIVATE_KEY_PATH = vonage_keys["private_path"]
    settings.VONAGE_API_URL = "http://127.0.0.1:9"  # discard port: a test that forgets the emulator fails fast
    settings.VONAGE_SIGNATURE_SECRET = ""
    settings.ESCALATION_API = "dispatch"


def on_postgres() -> bool:
    return os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))


requires_postgres = pytest.mark.skipif(not on_postgres(), reason="needs PostgreSQL: set DATABASE_URL")
