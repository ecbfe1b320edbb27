"""Making parsed JSON safe to store, shared by the webhook and alert parsers.

PostgreSQL refuses NUL in text and jsonb, and a lone surrogate cannot even be encoded to UTF-8 (nor
hashed): either would turn a stored body into a 500. They are replaced rather than refused, so a person's
odd reply or an alert's odd label is still kept.
"""

import re

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class TooDeep(ValueError):
    """The value is nested deeper than the caller allows."""


def storable(value: object, *, max_depth: int, depth: int = 0) -> object:
    """`value` with unstorable characters replaced by U+FFFD; TooDeep past `max_depth` levels."""
    if depth > max_depth:
        raise TooDeep(max_depth)
    if isinstance(value, dict):
        return {UNSTORABLE.sub("\ufffd", k): storable(v, max_depth=max_depth, depth=depth + 1)
                for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v, max_depth=max_depth, depth=depth + 1) for v in value]
    if isinstance(value, str):
        return UNSTORABLE.sub("\ufffd", value)
    return value
