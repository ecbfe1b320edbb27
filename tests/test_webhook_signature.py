"""Checking Vonage's webhook signature, with the clock given explicitly."""

import base64
import hashlib
import json
from datetime import timedelta

import jwt
import pytest
from django.utils import timezone

from escalation.vonage.signature import CLOCK_SKEW_SECONDS, SignatureError, verify_signature
from tests.conftest import TEST_SIGNATURE_SECRET
from tests.signing import vonage_claims, vonage_signature

NOW = timezone.now().replace(microsecond=0)
BODY = b'{"message_uuid": "6d1bd2c4-6c1a-4b8e-9a57-2b0b3f5d7e11", "status": "read"}'
MAX_AGE = 25 * 3600


def verify(authorization, *, body: bytes = BODY, now=NOW, secret: str = TEST_SIGNATURE_SECRET) -> dict:
    return verify_signature(raw_body=body, authorization=authorization, secret=secret, max_age=MAX_AGE, now=now)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade_token(header: dict, claims: dict, signature: bytes = b"") -> str:
    return ".".join([b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()), b64(signature)])


def test_it_accepts_vonages_signature():
    claims = verify(vonage_signature(BODY, now=NOW))
    assert claims["iss"] == "Vonage"


def test_it_accepts_an_upper_case_payload_hash_and_no_issuer():
    authorization = vonage_signature(BODY, now=NOW, iss=None, payload_hash=hashlib.sha256(BODY).hexdigest().upper())
    verify(authorization)


@pytest.mark.parametrize("authorization, message", [
    (None, "not signed"),
    ("", "not signed"),
    ("Bearer", "not 'Bearer <JWT>'"),
    ("Bearer   ", "not 'Bearer <JWT>'"),
    ("Basic dXNlcjpwYXNz", "not 'Bearer <JWT>'"),
    ("Bearer not-a-jwt", "not a JWT"),
    ("Bearer a.b.c", "not a JWT"),
    ("Bearer \u00e9\u00e9.\u00e9.\u00e9", "not a JWT"),
])
def test_it_refuses_a_missing_or_malformed_header(authorization, message):
    with pytest.raises(SignatureError, match=message):
        verify(authorization)


def test_it_refuses_another_secret():
    with pytest.raises(SignatureError, match="signature does not match"):
        verify(vonage_signature(BODY, now=NOW, secret="somebody-elses-secret-0123456789abcdef"))


def test_it_refuses_a_changed_body():
    authorization = vonage_signature(BODY, now=NOW)
    with pytest.raises(SignatureError, match="payload_hash does not match"):
        verify(authorization, body=BODY.replace(b"read", b"rejected"))


@pytest.mark.parametrize("payload_hash", ["", "\u00e9" * 64, 12345, None])
def test_it_refuses_a_payload_hash_that_is_not_the_bodys(payload_hash):
    authorization = vonage_signature(BODY, now=NOW, payload_hash=payload_hash)
    with pytest.raises(SignatureError, match="payload_hash"):
        verify(authorization)


def test_it_refuses_a_token_without_iat():
    with pytest.raises(SignatureError, match="no iat claim"):
        verify(vonage_signature(BODY, now=NOW, iat=None))


def test_it_accepts_a_token_as_old_as_the_retry_window_and_no_older():
    issued = NOW - timedelta(seconds=MAX_AGE)
    verify(vonage_signature(BODY, now=issued))
    with pytest.raises(SignatureError, match="issued 90001 s ago"):
        verify(vonage_signature(BODY, now=issued - timedelta(seconds=1)))


def test_it_refuses_a_token_from_the_future():
    verify(vonage_signature(BODY, now=NOW + timedelta(seconds=CLOCK_SKEW_SECONDS)))
    with pytest.raises(SignatureError, match="in the future"):
        verify(vonage_signature(BODY, now=NOW + timedelta(seconds=CLOCK_SKEW_SECONDS + 1)))


@pytest.mark.parametrize("iat", ["1700000000", True, 10**400, float("nan"), float("inf")])
def test_it_refuses_an_iat_that_is_not_a_number(iat):
    with pytest.raises(SignatureError, match="iat claim is not a number"):
        verify(vonage_signature(BODY, now=NOW, iat=iat))


def test_it_refuses_an_expired_or_not_yet_valid_token():
    with pytest.raises(SignatureError, match="expired"):
        verify(vonage_signature(BODY, now=NOW, exp=int(NOW.timestamp()) - CLOCK_SKEW_SECONDS - 1))
    with pytest.raises(SignatureError, match="not valid yet"):
        verify(vonage_signature(BODY, now=NOW, nbf=int(NOW.timestamp()) + CLOCK_SKEW_SECONDS + 1))


def test_it_refuses_another_issuer():
    with pytest.raises(SignatureError, match="issuer is 'Mallory'"):
        verify(vonage_signature(BODY, now=NOW, iss="Mallory"))


def test_it_refuses_an_unsigned_alg_none_token():
    token = handmade_token({"alg": "none", "typ": "JWT"}, vonage_claims(BODY, now=NOW))
    with pytest.raises(SignatureError, match="signed with 'none'; only HS256"):
        verify(f"Bearer {token}")


def test_it_refuses_an_rs256_token_even_when_validly_signed(vonage_keys):
    with open(vonage_keys["private_path"], "rb") as key:
        token = jwt.encode(vonage_claims(BODY, now=NOW), key.read(), algorithm="RS256")
    with pytest.raises(SignatureError, match="signed with 'RS256'"):
        verify(f"Bearer {token}")


def test_it_refuses_other_hmac_algorithms():
    # A key long enough for HS512, so PyJWT does not warn; the algorithm alone must be refused.
    token = jwt.encode(vonage_claims(BODY, now=NOW), TEST_SIGNATURE_SECRET * 2, algorithm="HS512")
    with pytest.raises(SignatureError, match="signed with 'HS512'"):
        verify(f"Bearer {token}")


def test_it_refuses_a_header_claiming_hs256_over_a_forged_signature():
    token = handmade_token({"alg": "HS256", "typ": "JWT"}, vonage_claims(BODY, now=NOW), b"\x00" * 32)
    with pytest.raises(SignatureError, match="signature does not match"):
        verify(f"Bearer {token}")


@pytest.mark.parametrize("header", [
    {"alg": ["HS256"]},
    {"typ": "JWT"},
    {"alg": "HS256", "b64": False},
    {"alg": "HS256", "crit": ["exp"]},
])
def test_it_refuses_odd_headers_without_crashing(header):
    token = handmade_token(header, vonage_claims(BODY, now=NOW), b"sig")
    with pytest.raises(SignatureError):
        verify(f"Bearer {token}")


def test_it_refuses_claims_that_are_not_an_object():
    signing_input = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(b"[1, 2, 3]")
    signature = jwt.get_algorithm_by_name("HS256").sign(signing_input.encode(), TEST_SIGNATURE_SECRET.encode())
    with pytest.raises(SignatureError, match="could not be verified"):
        verify(f"Bearer {signing_input}.{b64(signature)}")
