"""A webhook request's body read as JSON, before Vonage's meaning is read from it (escalation/vonage/webhooks.py).

Reading the bytes is the receiving side's job, not the Vonage client's: what may be stored (no NUL, no
infinity, a bounded depth) is a fact about our database, and the stored body is what a worker parses later.
"""

import json
import math
from typing import Any

from escalation.storable import TooDeep, storable
from escalation.vonage.webhooks import PayloadError

# Vonage's bodies are four levels deep at most; a deeper one is not Vonage and would only cost recursion.
MAX_DEPTH = 16


def load_body(raw: bytes) -> dict[str, Any]:
    """The JSON object in `raw`, with every string made storable; PayloadError if there is none."""
    if not raw.strip():
        raise PayloadError("The body is empty; expected a JSON object.")
    try:
        body = json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise PayloadError("The body is nested too deeply to be a Vonage webhook.") from None
    except ValueError as e:  # includes JSONDecodeError and UnicodeDecodeError
        raise PayloadError(f"The body is not valid JSON: {e}") from None
    if not isinstance(body, dict):
        raise PayloadError(f"The body is JSON but not an object (got {type(body).__name__}).")
    try:
        return storable(body, max_depth=MAX_DEPTH)
    except TooDeep:
        raise PayloadError(f"The body is nested more than {MAX_DEPTH} levels deep; Vonage's are not.") from None



def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    # 1e999 parses to infinity, which PostgreSQL's jsonb cannot store.
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"the number {text[:20]} is out of range")
    return number


