"""The package's errors: one small tree under AirflowException.

Every error that comes from a HubSpot answer carries what HubSpot said (HTTP status, ``category``,
``message``, ``correlationId``) so that a data engineer can act on it or quote it to HubSpot support,
and nothing else: request headers (and so tokens) never reach an exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.exceptions import AirflowException


class HubSpotError(AirflowException):
    """Base class of every error this package raises."""


class HubSpotApiError(HubSpotError):
    """HubSpot answered with an error that retrying will not (or did not) cure."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        category: str | None = None,
        correlation_id: str | None = None,
        context: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> None:
        self.status = status
        self.category = category
        self.hubspot_message = message
        self.correlation_id = correlation_id
        self.context = dict(context or {})
        self.body = dict(body or {})
        super().__init__(self._describe())

    def _describe(self) -> str:
        parts = [f"HubSpot API error {self.status}" if self.status else "HubSpot API error"]
        if self.category:
            parts.append(f"[{self.category}]")
        text = " ".join(parts) + f": {self.hubspot_message}"
        if self.correlation_id:
            text += f" (correlationId {self.correlation_id})"
        return text


class HubSpotAuthError(HubSpotApiError):
    """The credentials were refused (401), also after one refresh of an OAuth token."""


class HubSpotMissingScopesError(HubSpotAuthError):
    """The token is valid but lacks scopes (403); ``missing_scopes`` names them."""

    def __init__(self, message: str, *, missing_scopes: list[str] | None = None, **kwargs: Any) -> None:
        self.missing_scopes = list(missing_scopes or [])
        if self.missing_scopes:
            message = f"{message} Missing scopes: {', '.join(self.missing_scopes)}."
        super().__init__(message, **kwargs)


class HubSpotValidationError(HubSpotApiError):
    """HubSpot rejected the request itself (400, 404, 409, 413, 422): fix the input, do not retry."""


class HubSpotRateLimitError(HubSpotApiError):
    """The rate limit was still exceeded when the retry budget ran out."""


class HubSpotDailyLimitError(HubSpotRateLimitError):
    """The app's daily request allowance is (nearly) used up; going on would only burn 429s."""


class HubSpotServerError(HubSpotApiError):
    """HubSpot kept failing with 5xx until the retry budget ran out."""


class HubSpotTransportError(HubSpotError):
    """No HTTP answer at all (connection refused or reset, timeout) until the retry budget ran out."""


class HubSpotTlsError(HubSpotTransportError):
    """TLS verification failed (an untrusted or wrong certificate): retrying cannot cure it."""


class HubSpotConfigError(HubSpotError, ValueError):
    """The connection or an argument is unusable (bad host, unknown API version, unsafe object type)."""


class PairInputError(HubSpotError, ValueError):
    """A row of the input is invalid; names the source, the physical line and the field.

    Raised before any write request is sent, so a bad row anywhere in a file means zero writes.
    """

    def __init__(
        self, reason: str, *, source: str, line: int | None = None, field: str | None = None
    ) -> None:
        self.reason = reason
        self.source = source
        self.line = line
        self.field = field
        where = source
        if line is not None:
            where += f", line {line}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {reason}")


class UnknownLabelError(HubSpotConfigError):
    """An association label name that the object pair does not have; lists the labels that exist."""

    def __init__(self, label: str, from_type: str, to_type: str, existing: list[str]) -> None:
        self.label = label
        self.existing = list(existing)
        known = ", ".join(repr(name) for name in existing) or "none"
        super().__init__(
            f"Unknown association label {label!r} for {from_type} -> {to_type}; existing labels: {known}"
        )
