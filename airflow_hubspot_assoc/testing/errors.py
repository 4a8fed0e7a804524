"""HubSpot's error bodies: ``Error`` for a whole request, ``StandardError`` for one batch input."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

_SCOPES_LINK = "https://developers.hubspot.com/scopes"


def error_body(
    category: str,
    message: str,
    *,
    context: Mapping[str, Sequence[str]] | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
    links: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """HubSpot's ``Error``: every error answer carries a fresh ``correlationId``."""
    body: dict[str, Any] = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
    }
    if context:
        body["context"] = {k: [str(v) for v in vs] for k, vs in context.items()}
    if errors:
        body["errors"] = [dict(e) for e in errors]
    if links:
        body["links"] = dict(links)
    return body


def validation_error(message: str, details: Sequence[str] = ()) -> dict[str, Any]:
    """A 400 for a body that breaks the spec or a limit; ``details`` become ``errors[]``."""
    return error_body(
        "VALIDATION_ERROR", message, errors=[{"message": d, "code": "INVALID_INPUT"} for d in details[:20]]
    )


def missing_scopes_error(required: Sequence[str]) -> dict[str, Any]:
    """HubSpot's 403 when the token lacks a scope: the scopes are named in ``errors[].context``."""
    return error_body(
        "MISSING_SCOPES",
        "This app hasn't been granted all required scopes to make this call. "
        f"Read more about required scopes here: {_SCOPES_LINK}.",
        errors=[
            {
                "message": "One or more of the following scopes are required.",
                "context": {"requiredGranularScopes": list(required)},
            }
        ],
        links={"scopes": _SCOPES_LINK},
    )


def rate_limit_body(policy: str) -> dict[str, Any]:
    """HubSpot's real 429 body; it has no ``category`` although the spec's Error requires one."""
    return {
        "status": "error",
        "message": f"You have reached your {policy.lower()} limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": str(uuid.uuid4()),
        "policyName": policy,
    }


def standard_error(
    category: str,
    message: str,
    context: Mapping[str, Sequence[str]] | None = None,
    details: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """HubSpot's ``StandardError`` for one failed batch input (all required fields present)."""
    return {
        "status": "error",
        "category": category,
        "message": message,
        "context": {k: [str(v) for v in vs] for k, vs in (context or {}).items()},
        "errors": [dict(d) for d in details],
        "links": {},
    }
