"""Strict parsing of the settings for operators' tools (/metrics access, log format): a typo refuses to start
with a message naming the variable, rather than silently exposing metrics or dropping the JSON logs."""

from django.core.exceptions import ImproperlyConfigured

METRICS_ACCESS_CHOICES = ("off", "open", "token")
LOG_FORMAT_CHOICES = ("text", "json")
# A bearer token anyone could guess in a few tries is no protection.
METRICS_TOKEN_MIN_LENGTH = 16


def metrics_access(access: str | None, token: str) -> str:
    """METRICS_ACCESS: `off` (404), `open`, or `token` (a bearer METRICS_TOKEN). Unset: `token` when a token
    is given, `off` otherwise."""
    if access is None or access.strip() == "":
        access = "token" if token else "off"
    access = access.strip().lower()
    if access not in METRICS_ACCESS_CHOICES:
        raise ImproperlyConfigured(
            f"METRICS_ACCESS={access!r} is not one of {', '.join(METRICS_ACCESS_CHOICES)}.")
    if access == "token" and len(token) < METRICS_TOKEN_MIN_LENGTH:
        raise ImproperlyConfigured(
            f"METRICS_ACCESS=token needs METRICS_TOKEN of at least {METRICS_TOKEN_MIN_LENGTH} characters "
            f"(it has {len(token)}); e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'.")
    if access != "token" and token:
        raise ImproperlyConfigured(f"METRICS_TOKEN is set but METRICS_ACCESS={access} would ignore it; "
                                   "set METRICS_ACCESS=token or remove the token.")
    return access


def log_format(value: str) -> str:
    """LOG_FORMAT: `text` (readable, the default) or `json` (one object per line)."""
    value = (value or "text").strip().lower()
    if value not in LOG_FORMAT_CHOICES:
        raise ImproperlyConfigured(f"LOG_FORMAT={value!r} is not one of {', '.join(LOG_FORMAT_CHOICES)}.")
    return value

