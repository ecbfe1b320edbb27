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

import re
import threading
import time
import uuid

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.dsa import DSAPrivateKey
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PrivateKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from escalation.vonage.errors import KEY, VonageError

TOKEN_LIFETIME_SECONDS = 15 * 60  # Vonage's default; the accepted range is 30 s .. 24 h.
# Far below the lifetime, so a reused token never gets close to expiring in flight.
TOKEN_REUSE_SECONDS = 60

_lock = threading.Lock()
# Keyed by path so a test (or an operator rotating keys) that points the setting elsewhere gets the new key.
_keys: dict[str, RSAPrivateKey] = {}
_tokens: dict[tuple[str, str], tuple[str, float]] = {}


class PrivateKeyProblem(ValueError):
    """The key file cannot sign RS256. The message completes "<path> ...": what the file holds instead, or
    why it cannot be read; never anything of its content."""

    def __init__(self, message: str, *, unreadable: bool = False) -> None:
        super().__init__(message)
        self.unreadable = unreadable


def read_private_key(path: str) -> RSAPrivateKey:
    """The RSA private key at `path`, or PrivateKeyProblem saying what the file holds instead.

    Only what identifies the kind of file is named (its PEM label, a key's algorithm): nothing read from
    the key may reach a log, so no parser message or exception chain is kept.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise PrivateKeyProblem(f"cannot be read ({e.strerror})", unreadable=True) from None
    if not data.strip():
        raise PrivateKeyProblem("is empty")
    label = re.search(rb"-----BEGIN ([A-Z0-9 ]{1,40})-----", data)
    if label is None:
        raise PrivateKeyProblem("holds no PEM block (a private key file starts with -----BEGIN PRIVATE KEY-----)")
    name = label.group(1).decode()
    if "PUBLIC KEY" in name:
        raise PrivateKeyProblem(f"holds a public key (-----BEGIN {name}-----), not the private key")
    if "PRIVATE KEY" not in name:
        raise PrivateKeyProblem(f"holds a '{name}' PEM block, not a private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise PrivateKeyProblem("holds a password-protected private key; Vonage's key file is unencrypted") from None
    except (ValueError, UnsupportedAlgorithm):
        raise PrivateKeyProblem(f"holds a '{name}' block that is not a valid key") from None
    if not isinstance(key, RSAPrivateKey):
        raise PrivateKeyProblem(f"holds {_algorithm(key)} private key; the application JWT (RS256) needs RSA")
    return key


def _algorithm(key: object) -> str:
    if isinstance(key, EllipticCurvePrivateKey):
        return f"an EC ({key.curve.name})"
    names = {Ed25519PrivateKey: "an Ed25519", Ed448PrivateKey: "an Ed448", DSAPrivateKey: "a DSA"}
    return next((name for kind, name in names.items() if isinstance(key, kind)), f"a {type(key).__name__}")


def _private_key(path: str) -> RSAPrivateKey:
    key = _keys.get(path)
    if key is not None:
        return key
    if not path:
        raise VonageError("No private key", failure=KEY, detail="VONAGE_PRIVATE_KEY_PATH is not set.")
    try:
        key = read_private_key(path)
    except PrivateKeyProblem as problem:
        title = "Private key unreadable" if problem.unreadable else "Private key invalid"
        raise VonageError(title, failure=KEY, detail=f"{path} {problem}.") from None
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
