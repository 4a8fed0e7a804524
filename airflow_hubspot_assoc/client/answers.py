"""Reading HubSpot's answers: lenient JSON, rate-limit hints, and the error each failure becomes.

Why one module: the retry policy, the API calls and ``test_connection`` all need to tell what an
answer says, and must agree. Errors are decided by status code and HubSpot's ``category``, never by
message text, and carry status, category, message and correlation id, but never a header or a token.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from airflow_hubspot_assoc.client.credentials import scrub
from airflow_hubspot_assoc.exceptions import (
    HubSpotApiError,
    HubSpotAuthError,
    HubSpotMissingScopesError,
    HubSpotServerError,
    HubSpotValidationError,
)

RETRYABLE_5XX = frozenset({500, 502, 503, 504})
_ERROR_FIELDS = (
    "status",
    "message",
    "category",
    "subCategory",
    "correlationId",
    "context",
    "errors",
    "errorType",
    "policyName",
)


@dataclass(frozen=True, slots=True)
class Answer:
    """What came back: status, headers (case-insensitive mapping) and the undecoded body."""

    status: int
    headers: Mapping[str, str]
    content: bytes


def parse_object(raw: bytes) -> dict[str, Any]:
    """Parse a JSON object leniently (HubSpot's 429 body, proxies' HTML pages, empty bodies)."""
    if not raw:
        return {}
    try:
        # msgspec (an Airflow dependency) parses a batch answer about three times faster than json.
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def body_of(answer: Answer) -> dict[str, Any]:
    """The JSON object of a good answer; an answer whose body is not one is an API error."""
    body = parse_object(answer.content)
    if not body and answer.content.strip() not in (b"", b"{}"):
        raise HubSpotApiError(
            f"HubSpot answered {answer.status} with a body that is not a JSON object", status=answer.status
        )
    return body


def text(value: Any) -> str | None:
    """A non-empty string, or None."""
    return value if isinstance(value, str) and value else None


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` in seconds (the HTTP-date form is not used by HubSpot and is ignored)."""
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def missing_scopes(payload: Mapping[str, Any]) -> list[str]:
    """Scopes named anywhere HubSpot puts them: ``context`` or ``errors[].context`` keys about scopes."""
    found: list[str] = []
    contexts = [payload.get("context")]
    errors = payload.get("errors")
    if isinstance(errors, list):
        contexts.extend(e.get("context") for e in errors if isinstance(e, dict))
    for context in contexts:
        if not isinstance(context, dict):
            continue
        for key, values in context.items():
            if "scope" in str(key).lower() and isinstance(values, list):
                found.extend(str(v) for v in values if str(v) not in found)
    return found


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed answer, read: its payload, category, scrubbed message and the error's details."""

    payload: dict[str, Any]
    category: str | None
    message: str
    details: dict[str, Any]


def read_failure(answer: Answer, secrets: Iterable[str | None]) -> Failure:
    """Read a non-2xx answer; the message is scrubbed of every known secret."""
    payload = parse_object(answer.content)
    category = text(payload.get("category"))
    message = scrub(text(payload.get("message")) or f"HTTP {answer.status}", secrets)
    details: dict[str, Any] = {
        "status": answer.status,
        "category": category,
        "correlation_id": text(payload.get("correlationId")),
        "context": payload.get("context") if isinstance(payload.get("context"), dict) else None,
        "body": {k: payload[k] for k in _ERROR_FIELDS if k in payload},
    }
    return Failure(payload, category, message, details)


def final_error(failure: Failure) -> HubSpotApiError:
    """The error for an answer that retrying cannot cure (auth, scopes, validation, other statuses)."""
    status = failure.details["status"]
    if status == 401:
        return HubSpotAuthError(failure.message, **failure.details)
    if status == 403:
        if failure.category == "MISSING_SCOPES":
            scopes = missing_scopes(failure.payload)
            return HubSpotMissingScopesError(failure.message, missing_scopes=scopes, **failure.details)
        return HubSpotAuthError(failure.message, **failure.details)
    if 400 <= status < 500:
        return HubSpotValidationError(failure.message, **failure.details)
    if status >= 500:
        return HubSpotServerError(failure.message, **failure.details)
    return HubSpotApiError(f"Unexpected HTTP {status} from HubSpot: {failure.message}", **failure.details)
