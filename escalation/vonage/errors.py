"""The one exception the Vonage client raises, and how an HTTP answer maps onto it."""

import requests

# Statuses where asking again later can help; every other 4xx means the request itself is wrong.
_TRANSIENT_STATUSES = {408, 429}


class VonageError(Exception):
    """A Vonage request that did not succeed.

    `permanent` tells the engine whether another attempt can help: it reschedules transient errors with
    backoff and gives up at once on permanent ones. The RFC 7807 fields are kept as Vonage sent them so
    the admin can show exactly what Vonage objected to.
    """

    def __init__(
        self,
        title: str,
        *,
        permanent: bool,
        status: int | None = None,
        detail: str = "",
        invalid_parameters: list | None = None,
        type: str = "",
        instance: str = "",
    ) -> None:
        super().__init__(title)
        self.title = title
        self.permanent = permanent
        self.status = status
        self.detail = detail
        self.invalid_parameters = invalid_parameters or []
        self.type = type
        self.instance = instance

    def __str__(self) -> str:
        text = f"Vonage {self.status}: {self.title}" if self.status else f"Vonage: {self.title}"
        if self.detail:
            text += f" - {self.detail}"
        if self.invalid_parameters:
            text += " [" + "; ".join(_describe_parameter(p) for p in self.invalid_parameters) + "]"
        return text + (" (permanent)" if self.permanent else " (transient)")


def _describe_parameter(parameter: object) -> str:
    if isinstance(parameter, dict):
        return f"{parameter.get('name', '?')}: {parameter.get('reason', '?')}"
    return str(parameter)


def is_low_balance(problem: dict) -> bool:
    # The HTTP status of a low-balance answer is not documented (VONAGE_FACTS.md), so recognise it by its
    # problem type or title: topping up the account is the only cure, a retry never is.
    return str(problem.get("type", "")).endswith("#low-balance") or problem.get("title") == "Low balance"


def error_from_response(response: requests.Response) -> VonageError:
    """Map a non-2xx answer to a VonageError, keeping the RFC 7807 body when there is one."""
    try:
        problem = response.json()
    except ValueError:
        problem = None
    if not isinstance(problem, dict):
        # A proxy or load balancer page rather than Vonage's JSON: keep a short excerpt for the admin.
        problem = {"title": response.reason or "HTTP error", "detail": response.text[:200].strip()}
    status = response.status_code
    permanent = is_low_balance(problem) or (status < 500 and status not in _TRANSIENT_STATUSES)
    invalid = problem.get("invalid_parameters")
    return VonageError(
        str(problem.get("title") or response.reason or "HTTP error"),
        permanent=permanent,
        status=status,
        detail=str(problem.get("detail") or ""),
        invalid_parameters=invalid if isinstance(invalid, list) else [],
        type=str(problem.get("type") or ""),
        instance=str(problem.get("instance") or ""),
    )
