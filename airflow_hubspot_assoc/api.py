"""HubSpot API versions, URL paths and the checks that keep user input out of URLs unvetted.

Everything here is pure (no I/O), so the hook, the stand-in and the tests share one definition of
which versions exist, how paths look per version, and which hosts may receive a token.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from airflow_hubspot_assoc.constants import BATCH_CREATE_MAX_INPUTS as BATCH_CREATE_MAX_INPUTS
from airflow_hubspot_assoc.constants import BATCH_READ_MAX_INPUTS as BATCH_READ_MAX_INPUTS
from airflow_hubspot_assoc.constants import BATCH_SIZE_MAX as BATCH_SIZE_MAX
from airflow_hubspot_assoc.exceptions import HubSpotConfigError

DEFAULT_API_VERSION = "v4"
DEFAULT_HOST = "https://api.hubapi.com"

# HubSpot ships dated versions twice a year, in March and September.
_DATED_VERSION = re.compile(r"^20\d{2}-(?:03|09)$")
_OBJECT_TYPE = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})
_QUOTE_LIMIT = 120


class JsonArray(bytes):
    """A batch's ``inputs`` array already encoded as JSON, sent as is.

    Why: the operator writes its batches' JSON directly from the pairs' normalised ids; building a
    dict per pair for ``json.dumps`` cost about a fifth of the client's CPU per pair.
    """


def _quote(value: object) -> str:
    """Quote a rejected value for an error message without echoing megabytes of it."""
    text = repr(value)
    return text if len(text) <= _QUOTE_LIMIT else text[:_QUOTE_LIMIT] + "...'"


def validate_api_version(value: str | None) -> str:
    """Return the normalised API version (``v4`` or ``YYYY-03``/``YYYY-09``), or raise HubSpotConfigError."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return DEFAULT_API_VERSION
    if not isinstance(value, str):
        raise HubSpotConfigError(
            f"Unsupported HubSpot API version {_quote(value)}: expected v4 or YYYY-03/YYYY-09"
        )
    version = value.strip().lower()
    if version == DEFAULT_API_VERSION or _DATED_VERSION.match(version):
        return version
    raise HubSpotConfigError(
        f"Unsupported HubSpot API version {_quote(value)}: expected 'v4' or a dated version such as "
        "'2026-03' or '2026-09'"
    )


def validate_object_type(value: str) -> str:
    """Return ``value`` if it is a safe object type name or id, else raise HubSpotConfigError quoting it."""
    if isinstance(value, str) and _OBJECT_TYPE.match(value):
        return value
    raise HubSpotConfigError(
        f"Invalid HubSpot object type {_quote(value)}: use a name such as 'contacts' or 'p_custom' "
        "or a type id such as '0-1' (letters, digits, '_' and '-', 1 to 100 characters)"
    )


@dataclass(frozen=True, slots=True)
class ApiPaths:
    """The association endpoints of one API version for one ordered pair of object types."""

    batch_create: str
    batch_associate_default: str
    batch_read: str
    labels: str
    #: Every association between each pair (``{"from", "to": [ids]}`` inputs).
    batch_archive: str
    #: Only the given types between each pair (inputs as in batch create).
    batch_labels_archive: str


def association_paths(api_version: str, from_type: str, to_type: str) -> ApiPaths:
    """Build the endpoint paths for ``from_type -> to_type`` after validating every URL component."""
    version = validate_api_version(api_version)
    source = validate_object_type(from_type)
    target = validate_object_type(to_type)
    if version == DEFAULT_API_VERSION:
        batch = f"/crm/v4/associations/{source}/{target}/batch"
        labels = f"/crm/associations/v4/{source}/{target}/labels"
    else:
        batch = f"/crm/associations/{version}/{source}/{target}/batch"
        labels = f"/crm/associations/{version}/{source}/{target}/labels"
    return ApiPaths(
        batch_create=f"{batch}/create",
        batch_associate_default=f"{batch}/associate/default",
        batch_read=f"{batch}/read",
        labels=labels,
        batch_archive=f"{batch}/archive",
        batch_labels_archive=f"{batch}/labels/archive",
    )


def is_loopback_host(hostname: str) -> bool:
    """Tell whether ``hostname`` names this machine (127.0.0.0/8, ::1 or localhost)."""
    name = hostname.strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def normalise_base_url(host: str | None, port: int | None = None) -> str:
    """Turn a connection's host (and port) into a base URL that may safely receive a token.

    HTTPS is required; plain HTTP is allowed only for loopback hosts (tests, local stand-ins), so a
    token never crosses a network unencrypted. A host without a scheme means HTTPS.
    """
    raw = (host or "").strip() or DEFAULT_HOST
    if "://" not in raw:
        raw = "https://" + raw
    try:
        parts = urlsplit(raw)
        hostname = parts.hostname
        url_port = parts.port
    except ValueError as err:
        raise HubSpotConfigError(f"Invalid HubSpot host {_quote(host)}: {err}") from err
    scheme = parts.scheme.lower()
    if not hostname:
        raise HubSpotConfigError(f"Invalid HubSpot host {_quote(host)}: no host name")
    if parts.username is not None or parts.password is not None:
        raise HubSpotConfigError(
            "Invalid HubSpot host: credentials in the URL are not allowed; use the token field"
        )
    if parts.query or parts.fragment:
        raise HubSpotConfigError(f"Invalid HubSpot host {_quote(host)}: no query or fragment allowed")
    if scheme not in ("https", "http"):
        raise HubSpotConfigError(f"Invalid HubSpot host {_quote(host)}: the scheme must be https")
    if scheme == "http" and not is_loopback_host(hostname):
        raise HubSpotConfigError(
            f"Refusing plain http for HubSpot host {_quote(host)}: tokens are only sent over https "
            "(http is allowed for loopback hosts only)"
        )
    effective_port = port or url_port
    netloc = f"[{hostname}]" if ":" in hostname else hostname
    if effective_port:
        netloc = f"{netloc}:{int(effective_port)}"
    path = parts.path.rstrip("/")
    return f"{scheme}://{netloc}{path}"
