"""Checking Vonage's signed webhooks: `Authorization: Bearer <JWT>`, HS256 with the signature secret.

The claims are `iat`, `jti`, `iss: "Vonage"`, `payload_hash` (hex SHA-256 of the raw body), `api_key` and
maybe `application_id` (emulator/spec/VONAGE_FACTS.md). Vonage's own SDK checks only the signature; we also
tie the token to this very body (`payload_hash`) and refuse old tokens (`iat`), so a captured token can
neither carry another body nor be replayed after the window. Replays inside the window are harmless
because applying a webhook is idempotent.
"""

import hashlib
import hmac
import math
from datetime import datetime
from typing import Any

import jwt

from escalation.vonage.shown import shown

# Vonage's and our clocks may disagree a little; a token from further in the future than this is forged
# or from a badly wrong clock.
CLOCK_SKEW_SECONDS = 300


class SignatureError(Exception):
    """The request is not signed by Vonage with our secret; the message says why (for the 401 body)."""


def verify_signature(
    *, raw_body: bytes, authorization: str | None, secret: str, max_age: int, now: datetime
) -> dict[str, Any]:
    """The token's claims if `authorization` is Vonage's valid signature of `raw_body`, else SignatureError."""
    token = _bearer_token(authorization)
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            # The time claims are checked below against the caller's `now`, not the wall clock.
            options={
                "require": ["iat", "payload_hash"],
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
                "verify_iss": False,
            },
        )
    except jwt.InvalidSignatureError:
        raise SignatureError("The token's signature does not match the signature secret.") from None
    except jwt.InvalidAlgorithmError:
        # Read the header only now, on the refusal path, to say which algorithm it was.
        algorithm = jwt.get_unverified_header(token).get("alg")
        raise SignatureError(
            f"The token is signed with {shown(algorithm, limit=40)}; only HS256 is accepted.") from None
    except jwt.MissingRequiredClaimError as e:
        raise SignatureError(f"The token has no {e.claim} claim.") from None
    except jwt.DecodeError as e:
        raise SignatureError(_undecodable(token, e)) from None
    except jwt.InvalidTokenError as e:
        raise SignatureError(f"The token could not be verified: {e}") from None

    payload_hash = claims["payload_hash"]
    expected = hashlib.sha256(raw_body).hexdigest()
    # Bytes, not str: compare_digest refuses non-ASCII strings with TypeError.
    if not isinstance(payload_hash, str) or not hmac.compare_digest(
        payload_hash.lower().encode(), expected.encode()
    ):
        raise SignatureError("The token's payload_hash does not match the body: the body was changed.")

    issuer = claims.get("iss")
    if issuer is not None and issuer != "Vonage":
        raise SignatureError(f"The token's issuer is {shown(issuer, limit=40)}, not Vonage.")

    current = now.timestamp()
    issued_at = _seconds(claims["iat"], "iat")
    if current - issued_at > max_age:
        raise SignatureError(f"The token was issued {int(current - issued_at)} s ago; at most {max_age} s is accepted.")
    if issued_at - current > CLOCK_SKEW_SECONDS:
        raise SignatureError("The token was issued in the future.")
    if "exp" in claims and current > _seconds(claims["exp"], "exp") + CLOCK_SKEW_SECONDS:
        raise SignatureError("The token has expired.")
    if "nbf" in claims and current < _seconds(claims["nbf"], "nbf") - CLOCK_SKEW_SECONDS:
        raise SignatureError("The token is not valid yet (nbf).")
    return claims


def _bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise SignatureError("The request is not signed: an 'Authorization: Bearer <JWT>' header is required.")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise SignatureError("The Authorization header is not 'Bearer <JWT>'.")
    return token


def _seconds(value: object, claim: str) -> float:
    # bool is an int in Python, and a NaN or infinite time would pass every comparison above wrongly.
    if not isinstance(value, bool) and isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an int too large for a float
            seconds = math.inf
        if math.isfinite(seconds):
            return seconds
    raise SignatureError(f"The token's {claim} claim is not a number of seconds.")


def _undecodable(token: str, error: jwt.DecodeError) -> str:
    try:
        jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        return "The bearer token is not a JWT."
    return f"The token could not be verified: {error}"
