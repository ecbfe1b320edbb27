"""Both JWTs Vonage deals in: the application JWT we check, and the signature we put on webhooks."""

import hashlib
import time
import uuid

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

# Vonage accepts an application JWT whose exp is 30 s to 24 h after its iat (VONAGE_FACTS.md).
MAX_TOKEN_LIFETIME = 24 * 3600
REQUIRED_CLAIMS = ["application_id", "iat", "jti", "exp"]


def load_verification_key(pem: bytes) -> RSAPublicKey:
    """The RSA public key in `pem`; a private key is accepted too (its public half is used), so the demo
    can hand the emulator the same file the app signs with."""
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        try:
            key = serialization.load_pem_private_key(pem, password=None).public_key()
        except (ValueError, TypeError):
            raise ValueError("not a PEM RSA key (public or unencrypted private)") from None
    if not isinstance(key, RSAPublicKey):
        raise ValueError("not an RSA key: application JWTs are RS256")
    return key


class AuthError(Exception):
    """Why a request's application JWT was refused (recorded; Vonage's 401 body does not say)."""


def verify_application_jwt(authorization: str | None, *, public_key: RSAPublicKey, application_id: str = "") -> dict:
    """Return the claims of a valid `Authorization: Bearer <RS256 JWT>` header, else raise AuthError."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise AuthError("no Bearer token")
    try:
        claims = jwt.decode(
            token,
            public_key,
            algorithms=["RS256"],
            options={"require": REQUIRED_CLAIMS, "verify_aud": False},
            leeway=30,  # clock skew between the app's host and ours
        )
    except jwt.InvalidTokenError as e:
        raise AuthError(f"{type(e).__name__}: {e}") from None
    if "nbf" in claims:
        raise AuthError("nbf is not accepted")
    if not 0 < claims["exp"] - claims["iat"] <= MAX_TOKEN_LIFETIME:
        raise AuthError("exp must be within 24 h after iat")
    if not claims["application_id"] or (application_id and claims["application_id"] != application_id):
        raise AuthError(f"unknown application_id {claims['application_id']!r}")
    return claims


def sign_webhook(raw_body: bytes, *, secret: str, api_key: str, application_id: str = "") -> str:
    """The `Authorization: Bearer` value Vonage puts on a signed webhook: HS256 with the signature secret."""
    claims = {
        "iat": int(time.time()),
        "jti": str(uuid.uuid4()),
        "iss": "Vonage",
        "payload_hash": hashlib.sha256(raw_body).hexdigest(),
        "api_key": api_key,
    }
    if application_id:
        claims["application_id"] = application_id
    return "Bearer " + jwt.encode(claims, secret, algorithm="HS256")
