"""Signing webhook bodies the way Vonage does (emulator/spec/VONAGE_FACTS.md, "Signed webhooks")."""

import base64
import hashlib
import hmac
import json
import uuid
from datetime import datetime

import jwt

from tests.conftest import TEST_SIGNATURE_SECRET


def vonage_claims(body: bytes, *, now: datetime, **changes) -> dict:
    claims = {
        "iat": int(now.timestamp()),
        "jti": str(uuid.uuid4()),
        "iss": "Vonage",
        "payload_hash": hashlib.sha256(body).hexdigest(),
        "api_key": "abcd1234",
        "application_id": "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def vonage_signature(body: bytes, *, now: datetime, secret: str = TEST_SIGNATURE_SECRET, **changes) -> str:
    """The Authorization header Vonage would send with `body`; `changes` override claims (None drops one)."""
    return "Bearer " + jwt.encode(vonage_claims(body, now=now, **changes), secret, algorithm="HS256")


def hs256_token(header: dict, claims: dict, secret: str = TEST_SIGNATURE_SECRET) -> str:
    """A token HMAC-SHA256-signed with `secret` whatever `header` and `claims` say, which PyJWT's encoder
    would refuse to make (odd algorithms, non-string issuers, ...)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
