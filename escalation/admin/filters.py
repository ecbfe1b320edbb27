"""What the admin's own list filters share: reading a row id from a query parameter anyone can edit."""

# The largest id a BigAutoField holds: a longer number is no row, and SQLite refuses to even compare it.
MAX_ID = 2**63 - 1


def id_parameter(value: str | None) -> int | None:
    """The id in a filter's parameter, or None for anything that is not one (then the filter is ignored)."""
    if value and value.isascii() and value.isdigit() and int(value) <= MAX_ID:
        return int(value)
    return None
