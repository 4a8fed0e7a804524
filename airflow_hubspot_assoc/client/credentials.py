"""Credentials for HubSpot: a private-app token, or an OAuth app whose access token expires.

Both kinds answer one question, ``authorization()``: the ``Authorization`` header value to send now.
OAuth tokens are refreshed ahead of expiry and once more when HubSpot rejects one as expired; the
refresh is single-flight (threads that find the token stale wait for the one refresh in progress and
then reuse its result), so N threads hitting expiry cause one call to the token endpoint.

Every secret is registered with Airflow's secrets masker the moment it is read or issued, and no
secret ever enters an exception message.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from airflow_hubspot_assoc.exceptions import (
    HubSpotAuthError,
    HubSpotConfigError,
    HubSpotError,
    HubSpotRateLimitError,
    HubSpotServerError,
    HubSpotTlsError,
    HubSpotTransportError,
)

TOKEN_PATH = "/oauth/v1/token"
DEFAULT_REFRESH_MARGIN_S = 60.0
EXPIRED_AUTHENTICATION = "EXPIRED_AUTHENTICATION"
_MIN_TOKEN_USE_S = 1.0

# (status, body) of a form POST; injectable so tests and the async path can choose the transport.
TokenPoster = Callable[[str, dict[str, str]], tuple[int, bytes]]
Masker = Callable[[str], None]


def default_masker(secret: str) -> None:
    """Register ``secret`` with Airflow's secrets masker (task process and, if any, its supervisor)."""
    if not secret:
        return
    from airflow.sdk.log import mask_secret

    mask_secret(secret)


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every known secret in ``text`` by ``***`` (defence in depth for server-echoed text)."""
    for secret in secrets:
        if secret and len(secret) >= 4 and secret in text:
            text = text.replace(secret, "***")
    return text


def _identity(*parts: str) -> str:
    """A short, one-way fingerprint of a credential: keys the rate limiter without holding the secret."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


class Credentials:
    """What the hook needs from any credential kind."""

    identity: str
    refreshable: bool = False
    refreshes: int = 0
    masker: Masker = staticmethod(default_masker)
    on_refresh: Callable[[], None] | None = None  # called after each successful refresh

    def authorization(self) -> str:
        """Return the ``Authorization`` header value to send now (may refresh, i.e. block on I/O)."""
        raise NotImplementedError

    def fresh_authorization(self) -> str | None:
        """Return the header value if usable without I/O, else None (the async fast path)."""
        raise NotImplementedError

    def after_rejection(self, rejected: str) -> str:
        """React to a 401 EXPIRED_AUTHENTICATION for ``rejected``: return a header worth one more try."""
        raise HubSpotAuthError(
            "HubSpot rejected the token as expired", status=401, category=EXPIRED_AUTHENTICATION
        )

    async def aauthorization(self) -> str:
        """Async ``authorization()``: no I/O on the event loop; a refresh runs in a worker thread."""
        header = self.fresh_authorization()
        if header is not None:
            return header
        return await asyncio.to_thread(self.authorization)

    async def aafter_rejection(self, rejected: str) -> str:
        """Async ``after_rejection()``, with the refresh in a worker thread."""
        return await asyncio.to_thread(self.after_rejection, rejected)

    def secrets(self) -> tuple[str, ...]:
        """Every secret this credential has held (for scrubbing text that might echo one)."""
        return ()


class PrivateAppToken(Credentials):
    """A private app's static access token (the connection's password)."""

    def __init__(self, token: str, *, masker: Masker = default_masker) -> None:
        token = token.strip()
        if not token:
            raise HubSpotConfigError("The HubSpot connection has no private-app token and no OAuth client")
        masker(token)
        self._token = token
        self._header = f"Bearer {token}"
        self.identity = _identity("private-app", token)

    def authorization(self) -> str:
        """Return the static header."""
        return self._header

    def fresh_authorization(self) -> str:
        """Return the static header (never stale)."""
        return self._header

    def secrets(self) -> tuple[str, ...]:
        """The token."""
        return (self._token,)


@dataclass(frozen=True, slots=True)
class _Issued:
    header: str
    refresh_at: float  # monotonic time after which the token counts as stale


class OAuthCredentials(Credentials):
    """An OAuth app's refresh token, exchanged for short-lived access tokens on demand (thread-safe)."""

    refreshable = True

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        post: TokenPoster | None = None,
        clock: Callable[[], float] = time.monotonic,
        refresh_margin_s: float = DEFAULT_REFRESH_MARGIN_S,
        masker: Masker = default_masker,
        timeout: tuple[float, float] = (10.0, 30.0),
    ) -> None:
        missing = [
            name
            for name, value in (
                ("client_id", client_id),
                ("client_secret", client_secret),
                ("refresh_token", refresh_token),
            )
            if not value
        ]
        if missing:
            raise HubSpotConfigError(
                f"The HubSpot OAuth connection lacks the extra field(s) {', '.join(missing)}"
            )
        masker(client_secret)
        masker(refresh_token)
        self._token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self._post = post
        self._clock = clock
        self._margin = refresh_margin_s
        self.masker = masker
        self._timeout = timeout
        self._lock = threading.Lock()
        self._issued: _Issued | None = None
        self._failure: dict[str, Any] | None = None
        self._seen: list[str] = [client_secret, refresh_token]
        self._session: Any = None
        self.identity = _identity("oauth", client_id, refresh_token)
        self.refreshes = 0

    # The fast path reads one attribute (atomic under the GIL) and takes no lock.
    def fresh_authorization(self) -> str | None:
        """Return the current header if it is not close to expiry."""
        issued = self._issued
        if issued is not None and self._clock() < issued.refresh_at:
            return issued.header
        return None

    def authorization(self) -> str:
        """Return a header that is valid for at least the refresh margin, refreshing if needed."""
        header = self.fresh_authorization()
        if header is not None:
            return header
        with self._lock:
            header = self.fresh_authorization()
            if header is not None:
                return header
            return self._refresh_locked()

    def after_rejection(self, rejected: str) -> str:
        """Refresh unless another thread already replaced the rejected token; return the new header."""
        with self._lock:
            issued = self._issued
            if issued is not None and issued.header != rejected and self._clock() < issued.refresh_at:
                return issued.header
            return self._refresh_locked()

    def secrets(self) -> tuple[str, ...]:
        """Client secret, refresh tokens and every access token issued so far."""
        return tuple(self._seen)

    def _remember(self, secret: str) -> None:
        self.masker(secret)
        self._seen.append(secret)

    def _refresh_locked(self) -> str:
        """Exchange the refresh token for an access token (caller holds the lock)."""
        if self._failure is not None:
            # The refresh token was refused: asking again would fail again, so every waiting thread
            # gets the same answer without another round trip.
            raise HubSpotAuthError(**self._failure)
        form = {
            "grant_type": "refresh_token",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
            "refresh_token": self._refresh_token,
        }
        started = self._clock()
        try:
            status, raw = (self._post or self._default_post)(self._token_url, form)
        except HubSpotError:
            raise
        except Exception as err:
            if _is_tls_error(err):
                raise HubSpotTlsError(
                    f"TLS verification of HubSpot's token endpoint failed ({err}); for a private CA, "
                    "set REQUESTS_CA_BUNDLE to its bundle"
                ) from err
            raise HubSpotTransportError(
                f"Could not reach HubSpot's token endpoint to refresh the OAuth token ({type(err).__name__})"
            ) from err
        payload = _parse_json(raw)
        if 200 <= status < 300 and isinstance(payload.get("access_token"), str) and payload["access_token"]:
            access_token: str = payload["access_token"]
            self._remember(access_token)
            rotated = payload.get("refresh_token")
            if isinstance(rotated, str) and rotated and rotated != self._refresh_token:
                self._remember(rotated)
                self._refresh_token = rotated
            try:
                expires_in = float(payload.get("expires_in", 1800))
            except (TypeError, ValueError):
                expires_in = 1800.0
            # A token that lives shorter than twice the margin is refreshed at half its life instead;
            # and any token is used for at least a second, so a server that answers expires_in=0
            # gets a 401 to react to rather than a refresh storm.
            lead = min(self._margin, expires_in / 2)
            refresh_at = max(started + expires_in - lead, started + _MIN_TOKEN_USE_S)
            self._issued = _Issued(header=f"Bearer {access_token}", refresh_at=refresh_at)
            self.refreshes += 1
            if self.on_refresh is not None:
                self.on_refresh()
            return self._issued.header
        message = scrub(str(payload.get("message") or f"HTTP {status}"), self._seen)
        category = payload.get("category") or payload.get("status")
        details: dict[str, Any] = {
            "status": status,
            "category": category if isinstance(category, str) else None,
            "correlation_id": payload.get("correlationId")
            if isinstance(payload.get("correlationId"), str)
            else None,
        }
        text = f"OAuth token refresh failed: {message}"
        if status == 429:
            raise HubSpotRateLimitError(text, **details)
        if status >= 500:
            raise HubSpotServerError(text, **details)
        self._failure = {"message": text, **details}
        raise HubSpotAuthError(text, **details)

    def _default_post(self, url: str, form: dict[str, str]) -> tuple[int, bytes]:
        """POST the form with requests (TLS verification on); only used when no poster was injected."""
        import requests

        if self._session is None:
            self._session = requests.Session()
        response = self._session.post(url, data=form, timeout=self._timeout, allow_redirects=False)
        return response.status_code, response.content


def _is_tls_error(err: BaseException) -> bool:
    """A certificate problem: retrying will not cure it."""
    import ssl

    import requests

    return isinstance(err, requests.exceptions.SSLError | ssl.SSLError)


def _parse_json(raw: bytes) -> dict[str, Any]:
    """Parse a JSON object leniently: anything else becomes an empty dict."""
    try:
        value = json.loads(raw) if raw else {}
    except (ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def credentials_from_connection(
    *,
    base_url: str,
    password: str | None,
    extra: dict[str, Any],
    masker: Masker = default_masker,
    clock: Callable[[], float] = time.monotonic,
    post: TokenPoster | None = None,
) -> Credentials:
    """Choose the credential kind from a connection: OAuth when a client id is set, else the token."""
    client_id = _text(extra.get("client_id"))
    if client_id:
        return OAuthCredentials(
            token_url=base_url + TOKEN_PATH,
            client_id=client_id,
            client_secret=_text(extra.get("client_secret")),
            refresh_token=_text(extra.get("refresh_token")),
            masker=masker,
            clock=clock,
            post=post,
        )
    return PrivateAppToken(password or "", masker=masker)


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""
