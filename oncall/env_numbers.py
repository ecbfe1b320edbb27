"""Numeric settings, read strictly: a bad value stops the process at start, naming the variable and its range.

django-environ still reads the variable (from the environment or `.env`, with its `$VAR` references); only
the parsing is ours, because its own is lenient in ways that hide mistakes: `env.float` keeps the digits of
"1e9" and reads 19.0, `env.int` fails with a bare ValueError that names no variable, and neither checks a
range (WORKER_THREADS=0 crashed the worker, WORKER_POLL_INTERVAL=0 spun a core). Plain decimal notation
only: no exponents, underscores, hex, NaN or infinity, no surrounding blanks. An empty value means the
default, as django-environ has it for every variable.
"""

import re

import environ
from django.core.exceptions import ImproperlyConfigured

# Eighteen digits at most: every range here fits, and int() is never asked to parse a huge string.
_INTEGER = re.compile(r"-?\d{1,18}")
_NUMBER = re.compile(r"-?(\d{1,18}(\.\d{0,18})?|\.\d{1,18})")


def integer(env: environ.Env, name: str, *, default: int, low: int, high: int) -> int:
    raw = env.str(name, default=None)
    if raw is None:
        return default
    if _INTEGER.fullmatch(raw) and low <= int(raw) <= high:
        return int(raw)
    raise ImproperlyConfigured(f"{name} must be an integer from {low} to {high}, got {raw!r}.")


def number(env: environ.Env, name: str, *, default: float, low: float, high: float) -> float:
    raw = env.str(name, default=None)
    if raw is None:
        return default
    if _NUMBER.fullmatch(raw) and low <= float(raw) <= high:
        return float(raw)
    raise ImproperlyConfigured(f"{name} must be a number from {_plain(low)} to {_plain(high)}, got {raw!r}.")


def _plain(bound: float) -> str:
    # 1000000 rather than `:g`'s 1e+06: the message shows what the variable may be set to.
    return str(int(bound)) if float(bound).is_integer() else str(bound)
