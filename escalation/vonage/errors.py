"""The one exception the Vonage client raises, and whose fault each failure is.

`FAILURE_CLASSES` is THE table (the README's reliability section repeats it). A failure is either about
*this recipient or channel* (a bad number, a channel the sender is not provisioned for, Vonage's 422 on
`to` or `from`): the engine moves on to the next channel or person, as another attempt would be refused
again. Or it is a fault of *the provider, our account or our configuration* (401/403, a 5xx, 429, a
timeout, nothing listening, low balance, an unusable private key): it says nothing about whether the person
can be reached, so the escalation holds at its step and retries with capped backoff, raising an alarm.
The statuses and problem bodies are Vonage's (emulator/spec/common_errors.yml, VONAGE_FACTS.md).
"""

import enum
import json
from dataclasses import dataclass


class Blame(enum.StrEnum):
    RECIPIENT = "recipient"  # this recipient or channel refused: move on
    PROVIDER = "provider"  # Vonage, our account or our configuration: hold, retry, alarm


@dataclass(frozen=True)
class FailureClass:
    code: str  # stored on a held escalation (`held_by`), so keep these stable
    blame: Blame
    says: str  # completes "Vonage ..." in the alarm and the log
    when: str  # what Vonage answered, for the README's table


REFUSED = FailureClass("refused", Blame.RECIPIENT, "refuses this recipient or channel",
                       "400 or 422 (invalid_parameters names `to`, `from`, the text...), or any other 4xx")
UNREADABLE = FailureClass("unreadable", Blame.RECIPIENT, "accepted the request with an answer we cannot read",
                          "2xx without the uuid: accepted, so a retry would page twice")
CREDENTIALS = FailureClass("credentials", Blame.PROVIDER, "refuses our credentials",
                           "401 (unauthorized: wrong application id or key), 403")
KEY = FailureClass("key", Blame.PROVIDER, "cannot be called: our private key is unusable",
                   "VONAGE_PRIVATE_KEY_PATH missing, unreadable or not an RSA private key")
BALANCE = FailureClass("balance", Blame.PROVIDER, "says our account's balance is too low",
                       "problem type #low-balance, whatever its status (not documented; 402 here)")
THROTTLED = FailureClass("throttled", Blame.PROVIDER, "is throttling us", "429 (Rate Limit Hit)")
OUTAGE = FailureClass("outage", Blame.PROVIDER, "is failing", "any 5xx")
TIMEOUT = FailureClass("timeout", Blame.PROVIDER, "does not answer in time",
                       "408, or no answer within VONAGE_CONNECT_TIMEOUT / VONAGE_READ_TIMEOUT")
UNREACHABLE = FailureClass("unreachable", Blame.PROVIDER, "cannot be reached",
                           "connection refused or reset, DNS failure")
CONFIGURATION = FailureClass("configuration", Blame.PROVIDER, "does not accept how we call it",
                             "404, 405, 406, 415, or a malformed VONAGE_API_URL: the same for every request")

FAILURE_CLASSES = (REFUSED, UNREADABLE, CREDENTIALS, KEY, BALANCE, THROTTLED, OUTAGE, TIMEOUT, UNREACHABLE,
                   CONFIGURATION)
_BY_CODE = {failure.code: failure for failure in FAILURE_CLASSES}
_BY_STATUS = {401: CREDENTIALS, 402: BALANCE, 403: CREDENTIALS, 404: CONFIGURATION, 405: CONFIGURATION,
              406: CONFIGURATION, 408: TIMEOUT, 415: CONFIGURATION, 429: THROTTLED}


def failure_class(code: str) -> FailureClass | None:
    return _BY_CODE.get(code)


def classify_status(status: int, problem: dict) -> FailureClass:
    if is_low_balance(problem):
        return BALANCE
    if status >= 500:
        return OUTAGE
    return _BY_STATUS.get(status, REFUSED)


class VonageError(Exception):
    """A Vonage request that did not succeed, with whose fault it is (`failure`).

    The RFC 7807 fields are kept as Vonage sent them so the admin can show exactly what Vonage objected to.
    """

    def __init__(
        self,
        title: str,
        *,
        failure: FailureClass,
        status: int | None = None,
        detail: str = "",
        invalid_parameters: list | None = None,
        type: str = "",
        instance: str = "",
    ) -> None:
        super().__init__(title)
        self.title = title
        self.failure = failure
        self.status = status
        self.detail = detail
        self.invalid_parameters = invalid_parameters or []
        self.type = type
        self.instance = instance

    @property
    def provider_fault(self) -> bool:
        """True when the fault is Vonage's, our account's or our configuration's, not the recipient's."""
        return self.failure.blame == Blame.PROVIDER

    @property
    def held_by(self) -> str:
        """What a held escalation records: the failure's code and the HTTP status, e.g. "credentials:401"."""
        return f"{self.failure.code}:{self.status}" if self.status else self.failure.code

    def __str__(self) -> str:
        text = f"Vonage {self.status}: {self.title}" if self.status else f"Vonage: {self.title}"
        if self.detail:
            text += f" - {self.detail}"
        if self.invalid_parameters:
            text += " [" + "; ".join(_describe_parameter(p) for p in self.invalid_parameters) + "]"
        return text + (" (provider fault)" if self.provider_fault else " (refused)")


def describe_hold(held_by: str) -> str:
    """The sentence's start for a held escalation's `held_by`: "Vonage refuses our credentials (401)"."""
    code, _, status = held_by.partition(":")
    failure = failure_class(code)
    says = failure.says if failure is not None else f"fails ({code})"
    return f"Vonage {says}" + (f" ({status})" if status else "")


def _describe_parameter(parameter: object) -> str:
    if isinstance(parameter, dict):
        return f"{parameter.get('name', '?')}: {parameter.get('reason', '?')}"
    return str(parameter)


def is_low_balance(problem: dict) -> bool:
    # The HTTP status of a low-balance answer is not documented (VONAGE_FACTS.md), so recognise it by its
    # problem type or title. Topping up the account is the cure, which says nothing about the person.
    return str(problem.get("type", "")).endswith("#low-balance") or problem.get("title") == "Low balance"


def error_from_response(status: int, reason: str | None, body: bytes) -> VonageError:
    """Map a non-2xx answer to a VonageError, keeping the RFC 7807 body when there is one."""
    try:
        problem = json.loads(body)
    except ValueError:
        problem = None
    if not isinstance(problem, dict):
        # A proxy or load balancer page rather than Vonage's JSON: keep a short excerpt for the admin.
        problem = {"title": reason or "HTTP error", "detail": body[:200].decode(errors="replace").strip()}
    invalid = problem.get("invalid_parameters")
    return VonageError(
        str(problem.get("title") or reason or "HTTP error"),
        failure=classify_status(status, problem),
        status=status,
        detail=str(problem.get("detail") or ""),
        invalid_parameters=invalid if isinstance(invalid, list) else [],
        type=str(problem.get("type") or ""),
        instance=str(problem.get("instance") or ""),
    )
