"""Who is calling, what they may do, and how fast: tokens, OAuth refresh, per-app rate limits."""

from __future__ import annotations

import math
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from airflow_hubspot_assoc.testing.config import OAuthApp, RateLimitConfig


@dataclass(frozen=True)
class Credential:
    """What a bearer token stands for. ``app`` keys the rate limit; ``scopes`` None = all."""

    app: str
    scopes: frozenset[str] | None
    expires_at: float | None = None

    def allows(self, scope: str) -> bool:
        return self.scopes is None or scope in self.scopes


class AuthOutcome:
    """Why a token was refused (values are HubSpot's error categories)."""

    INVALID = "INVALID_AUTHENTICATION"
    EXPIRED = "EXPIRED_AUTHENTICATION"


class Authenticator:
    """Private-app tokens and OAuth apps, and the access tokens minted for the latter."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, Credential] = {}
        self._apps: dict[str, OAuthApp] = {}

    def add_token(self, token: str, scopes: Iterable[str] | None = None) -> None:
        """Register a private-app token; each one is its own app for rate limiting."""
        if not token:
            raise ValueError("token cannot be empty")
        with self._lock:
            self._tokens[token] = Credential(
                app=f"private-app:{len(self._tokens)}", scopes=None if scopes is None else frozenset(scopes)
            )

    def add_oauth_app(self, app: OAuthApp) -> None:
        with self._lock:
            self._apps[app.client_id] = app

    def authenticate(self, authorization: str | None, now: float | None = None) -> Credential | str:
        """The credential of an ``Authorization`` header, or an :class:`AuthOutcome` value."""
        if not authorization or authorization[:7].lower() != "bearer ":
            return AuthOutcome.INVALID
        token = authorization[7:].strip()
        with self._lock:
            credential = self._tokens.get(token)
        if credential is None:
            return AuthOutcome.INVALID
        now = time.time() if now is None else now
        if credential.expires_at is not None and now >= credential.expires_at:
            return AuthOutcome.EXPIRED
        return credential

    def refresh(self, form: Mapping[str, str]) -> tuple[int, dict[str, object]]:
        """Answer ``POST /oauth/v1/token`` (``grant_type=refresh_token``) as HubSpot does.

        Failures are 400s in HubSpot's OAuth error shape, ``status`` naming what was wrong.
        """
        grant = form.get("grant_type", "")
        if grant != "refresh_token":
            return 400, _oauth_error("BAD_GRANT_TYPE", f"unsupported grant_type: {grant or '(missing)'}")
        with self._lock:
            app = self._apps.get(form.get("client_id", ""))
        if app is None:
            return 400, _oauth_error("BAD_CLIENT_ID", "missing or unknown client_id")
        if not secrets.compare_digest(form.get("client_secret", ""), app.client_secret):
            return 400, _oauth_error("BAD_CLIENT_SECRET", "missing or invalid client_secret")
        if not secrets.compare_digest(form.get("refresh_token", ""), app.refresh_token):
            return 400, _oauth_error("BAD_REFRESH_TOKEN", "missing or unknown refresh token")
        access_token = "CO" + secrets.token_urlsafe(36)
        credential = Credential(
            app=f"oauth:{app.client_id}",
            scopes=None if app.scopes is None else frozenset(app.scopes),
            expires_at=time.time() + app.access_token_ttl_s,
        )
        with self._lock:
            self._tokens[access_token] = credential
        return 200, {
            "token_type": "bearer",
            "refresh_token": app.refresh_token,
            "access_token": access_token,
            # HubSpot answers whole seconds.
            "expires_in": int(app.access_token_ttl_s),
        }


def _oauth_error(status: str, message: str) -> dict[str, object]:
    return {"status": status, "message": message, "correlationId": str(uuid.uuid4())}


@dataclass(frozen=True)
class RateDecision:
    """The verdict for one request: allowed or not (and which policy refused it), and headers."""

    allowed: bool
    policy: str | None
    headers: dict[str, str]


class RateLimiter:
    """HubSpot's per-app rolling window plus daily quota, counted at arrival.

    The search API has a window of its own (``policy="SECONDLY"``), per token.

    A refused request takes no slot, so a client that backs off recovers as soon as the oldest
    request of the window ages out.
    """

    def __init__(self, config: RateLimitConfig | None, policy: str = "TEN_SECONDLY_ROLLING") -> None:
        self._config = config
        self._policy = policy  # the policyName of a 429 for the window
        self._lock = threading.Lock()
        self._windows: dict[str, deque[float]] = {}
        self._daily: dict[str, tuple[int, int]] = {}  # app -> (UTC day, count)

    def acquire(self, app: str, now: float | None = None) -> RateDecision:
        """Count a request of ``app`` arriving ``now`` (epoch seconds) if the limits allow it."""
        cfg = self._config
        if cfg is None:
            return RateDecision(True, None, {})
        now = time.time() if now is None else now
        interval = cfg.interval_ms / 1000.0
        today = int(now // 86_400)
        with self._lock:
            window = self._windows.setdefault(app, deque())
            while window and window[0] <= now - interval:
                window.popleft()
            day, used_today = self._daily.get(app, (today, 0))
            if day != today:
                used_today = 0
            policy = None
            if used_today >= cfg.daily:
                policy = "DAILY"
            elif len(window) >= cfg.max_requests:
                policy = self._policy
            else:
                window.append(now)
                used_today += 1
            self._daily[app] = (today, used_today)
            in_window = len(window)
            oldest = window[0] if window else now
        headers = _headers(cfg, in_window, used_today)
        if policy is not None and cfg.retry_after:
            wait = (86_400 - now % 86_400) if policy == "DAILY" else (oldest + interval - now)
            headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return RateDecision(policy is None, policy, headers)

    def peek_headers(self, app: str, now: float | None = None) -> dict[str, str]:
        """The headers for ``app`` without counting a request (for answers refused before it)."""
        cfg = self._config
        if cfg is None:
            return {}
        now = time.time() if now is None else now
        with self._lock:
            window = self._windows.get(app, ())
            in_window = sum(1 for t in window if t > now - cfg.interval_ms / 1000.0)
            day, used_today = self._daily.get(app, (0, 0))
        return _headers(cfg, in_window, used_today if day == int(now // 86_400) else 0)


def _headers(cfg: RateLimitConfig, in_window: int, used_today: int) -> dict[str, str]:
    if not cfg.announce_headers:
        return {}
    return {
        "X-HubSpot-RateLimit-Max": str(cfg.max_requests),
        "X-HubSpot-RateLimit-Remaining": str(max(cfg.max_requests - in_window, 0)),
        "X-HubSpot-RateLimit-Interval-Milliseconds": str(cfg.interval_ms),
        "X-HubSpot-RateLimit-Daily": str(cfg.daily),
        "X-HubSpot-RateLimit-Daily-Remaining": str(max(cfg.daily - used_today, 0)),
    }
