"""Vonage's RFC 7807 error bodies, as captured from the live API or given in its spec files."""

import uuid

# Real bodies from VONAGE_FACTS.md (the 401 type's "unathorized" typo is Vonage's own).
UNAUTHORIZED = {
    "type": "https://developer.nexmo.com/api-errors/#unathorized",
    "title": "You did not provide correct credentials.",
    "detail": "Check that you're using the correct credentials, and that your account has this feature enabled",
}
RATE_LIMITED = {
    "type": "https://developer.nexmo.com/api-errors/messages-olympus#1010",
    "title": "Rate Limit Hit",
    "detail": "Please wait, then retry your request",
}
INVALID_PARAMS = {
    "type": "https://developer.vonage.com/api-errors/messages#1150",
    "title": "Invalid params",
    "detail": "The value of one or more parameters is invalid.",
}
LOW_BALANCE = {
    "type": "https://developer.nexmo.com/api-errors/#low-balance",
    "title": "Low balance",
    "detail": "This request could not be performed due to your account balance being low.",
}
# From messages-v0.1.yml's x-errors (1030) and common_errors.yml.
INTERNAL_ERROR = {
    "type": "https://developer.nexmo.com/api-errors/messages-olympus#1030",
    "title": "Internal error",
    "detail": "There was an error processing your request in the Platform.",
}
# Not captured from the live API: what a gateway in front of it answers during an outage.
SERVICE_UNAVAILABLE = {
    "title": "Service Unavailable",
    "detail": "The service is temporarily unavailable; please retry later.",
}
NOT_FOUND = {
    "type": "https://developer.nexmo.com/api-errors#not-found",
    "title": "Not Found",
    "detail": "The requested resource does not exist, or you do not have access",
}
WRONG_VERB = {
    "type": "https://developer.nexmo.com/api-errors#wrong-verb",
    "title": "Request method not allowed",
    "detail": "Request method not supported",
}
UNSUPPORTED_CONTENT_TYPE = {
    "type": "https://developer.nexmo.com/api-errors#content-type-header",
    "title": "Unsupported Content-Type header",
    "detail": "Unsupported Content-Type header provided. Must be one of the following: 'application/json'",
}
INVALID_JSON = {
    "type": "https://developer.nexmo.com/api-errors#invalid-json",
    "title": "Invalid JSON",
    "detail": "The request body did not contain valid JSON.",
}


def problem(base: dict, **extra: object) -> dict:
    """A copy of `base` with a fresh `instance` (Vonage's per-request trace id)."""
    return {**base, "instance": uuid.uuid4().hex, **extra}
