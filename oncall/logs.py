"""Log lines an operator can search, with nothing in them that must not be there.

`LOG_FORMAT=json` writes one JSON object per line (time, level, logger, message, and the escalation,
integration, message, page and webhook ids a line is about, given with `extra=`); the default is readable
text carrying the same ids. Every record passes the one handler's `RedactFilter` first: secrets, tokens and
keys are removed and phone numbers keep only their last 4 digits, whatever code logged them (ours, Django's,
an exception's traceback).
"""

import json
import logging
import re
from datetime import UTC, datetime

# The ids a line may carry (`log.info(..., extra={"escalation_id": 7})`), in both formats.
ID_FIELDS = ("escalation_id", "page_id", "message_id", "integration_id", "webhook_id")

REMOVED = "[removed]"
_SECRET_PATTERNS = [
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.S),
     "[private key removed]"),
    # Vonage's application and webhook JWTs, whole or cut short.
    (re.compile(r"\beyJ[A-Za-z0-9_-]*(\.[A-Za-z0-9_-]*){0,2}"), "[jwt removed]"),
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]+"), rf"\1\2{REMOVED}"),
    # An integration's URL is its secret.
    (re.compile(r"(/integrations/)[^/\s\"'?#]+"), rf"\1{REMOVED}"),
    # user:password@ in a URL (DATABASE_URL).
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/\s@]+:)[^@\s/]+@", re.I), rf"\1{REMOVED}@"),
    # name=value and "name": "value" where the name says it is secret.
    (re.compile(r"(?i)([\w-]*(?:secret|password|passwd|token|api[_-]?key|signature|authorization)[\w-]*"
                r"[\"']?\s*[=:]\s*[\"']?)(?!\[removed\])[^\s\"',&;}]+"), rf"\1{REMOVED}"),
]
# Seven digits or more (spaces allowed, a leading +), not part of a longer word, uuid or number: phone numbers
# and the Messenger/Viber ids that stand for a person. Only the last 4 digits are kept.
_PHONE = re.compile(r"(?<![\w.-])\+?\d(?: ?\d){6,}(?![\w-])")


def _mask_phone(match: re.Match) -> str:
    text = match.group()
    digits = [i for i, c in enumerate(text) if c.isdigit()]
    hidden = set(digits[:-4])
    return "".join("*" if i in hidden else c for i, c in enumerate(text))


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` without secrets, keys, tokens or whole phone numbers."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REMOVED)
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return _PHONE.sub(_mask_phone, text)


def _configured_secrets() -> tuple[str, ...]:
    """The secrets in the settings, removed wherever they appear, even without a telling name beside them."""
    try:
        from django.conf import settings

        names = ("SECRET_KEY", "VONAGE_SIGNATURE_SECRET", "METRICS_TOKEN")
        return tuple(s for s in (getattr(settings, name, "") for name in names) if len(s) >= 8)
    except Exception:  # settings not configured yet (a line logged while they load): the patterns still apply
        return ()


class RedactFilter(logging.Filter):
    """Rewrites each record in place before any formatter sees it: its message, its traceback, its stack."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = _configured_secrets()
        record.msg, record.args = redact(record.getMessage(), secrets), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, secrets)
        return True


def _ids(record: logging.LogRecord) -> dict:
    return {name: getattr(record, name) for name in ID_FIELDS if getattr(record, name, None) is not None}


class TextFormatter(logging.Formatter):
    """The readable default, with the record's ids after the message."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        ids = " ".join(f"{name.removesuffix('_id')}={value}" for name, value in _ids(record).items())
        return super().formatMessage(record) + (f" [{ids}]" if ids else "")


class JsonFormatter(logging.Formatter):
    """One JSON object per line; a traceback goes in `exception`, never across lines."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_ids(record),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, default=str, ensure_ascii=False)


def logging_config(log_format: str, level: str) -> dict:
    """settings.LOGGING: one filtered handler that every logger (Django's too) writes through."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": "oncall.logs.RedactFilter"}},
        "formatters": {"text": {"()": "oncall.logs.TextFormatter"}, "json": {"()": "oncall.logs.JsonFormatter"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": log_format, "filters": ["redact"]}},
        "root": {"handlers": ["console"], "level": level},
        # Django's own handlers are dropped, so its lines (and runserver's request lines, which carry
        # integration URLs) go through the filtered handler too instead of around it.
        "loggers": {
            "django": {"handlers": [], "level": "INFO", "propagate": True},
            "django.server": {"handlers": [], "level": "INFO", "propagate": True},
            "django.request": {"level": "ERROR"},
        },
    }
