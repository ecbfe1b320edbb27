"""Values quoted in error messages, cut short: a hostile body or file may hold a megabyte string.

The Vonage client's parsers need it and may import nothing of ours outside escalation/vonage/, so the one
copy lives here, at the bottom of the layers, where the config importers (services) can use it too.
"""



def shown(value: object, *, limit: int = 60) -> str:
    """`repr(value)`, cut to `limit` characters with "..." when longer."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit - 3]}..."
