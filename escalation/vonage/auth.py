"""The application JWT that authenticates every request we make to Vonage.

Signing RS256 with a 2048-bit key costs about 0.5 ms of CPU here (measured with PyJWT 2.15 /
cryptography 50: 500 tokens in 0.24 s), and loading the PEM costs more. A burst of 6,000 escalations
in messages mode makes ~12,000 requests, so the key is parsed once per path and a token is reused for
TOKEN_REUSE_SECONDS: at most one signature per minute instead of one per request. Vonage does not
require a fresh `jti` per request; `jti` only has to be unique per token (emulator/spec/VONAGE_FACTS.md,
"Claims"), and Vonage documents a token as valid until its `exp` (its CLI's `vonage jwt create --ttl` and the
Cloud Runtime's `createVonageToken(exp)` make one token for many calls). A reused token is re-signed long
before its `exp`, so none expires in flight.
"""

import threading
import time
import uuid

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from escalation.vonage.errors import VonageError

TOKEN_LIFETIME_SECONDS = 15 * 60  # Vonage's default; the accepted range is 30 s .. 24 h.
# Far below the lifetime, so a reused token never gets close to expiring in flight.
TOKEN_REUSE_SECONDS = 60

_lock = threading.Lock()
# Keyed by path so a test (or an operator rotating keys) that points the setting elsewhere gets the new key.
_keys: dict[str, RSAPrivateKey] = {}
_tokens: dict[tuple[str, str], tuple[str, float]] = {}


def _private_key(path: str) -> RSAPrivateKey:
    key = _keys.get(path)
    if key is not None:
        return key
    if not path:
        raise VonageError("No private key", permanent=True, detail="VONAGE_PRIVATE_KEY_PATH is not set.")
    try:
        with open(path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
    except OSError as e:
        raise VonageError("Private key unreadable", permanent=True, detail=f"{path}: {e.strerror}") from None
    except (ValueError, TypeError):
        # Deliberately without the exception text or the chain: nothing from the key file may reach a log.
        raise VonageError(
            "Private key invalid", permanent=True, detail=f"{path} is not an unencrypted PEM private key."
        ) from None
    if not isinstance(key, RSAPrivateKey):
        raise VonageError("Private key invalid", permanent=True, detail=f"{path} is not an RSA key (RS256).")
    _keys[path] = key
    return key


def application_token(*, application_id: str, key_path: str, now: float | None = None) -> str:
    """A `Bearer` token for Vonage: RS256, claims application_id, iat, jti, exp (never nbf)."""
    now = time.time() if now is None else now
    with _lock:
        cached = _tokens.get((application_id, key_path))
        if cached is not None and 0 <= now - cached[1] < TOKEN_REUSE_SECONDS:
            return cached[0]
        iat = int(now)
        claims = {
            "application_id": application_id,
            "iat": iat,
            "jti": str(uuid.uuid4()),
            "exp": iat + TOKEN_LIFETIME_SECONDS,
        }
        token = jwt.encode(claims, _private_key(key_path), algorithm="RS256")
        _tokens[(application_id, key_path)] = (token, now)
        return token
