"""Credentials: private-app tokens, OAuth refresh (ahead of expiry, on rejection, single-flight), masking."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

from airflow_hubspot_assoc.client.credentials import (
    OAuthCredentials,
    PrivateAppToken,
    credentials_from_connection,
    scrub,
)
from airflow_hubspot_assoc.exceptions import (
    HubSpotAuthError,
    HubSpotConfigError,
    HubSpotServerError,
    HubSpotTransportError,
)

SECRET = "client-secret-0123456789"
REFRESH = "refresh-token-0123456789"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TokenEndpoint:
    """A fake ``POST /oauth/v1/token`` that issues numbered tokens and can rotate the refresh token."""

    def __init__(self, *, expires_in: int = 1800, rotate: bool = False, delay: float = 0.0) -> None:
        self.calls: list[dict[str, str]] = []
        self.expires_in = expires_in
        self.rotate = rotate
        self.delay = delay
        self.answer: tuple[int, dict] | None = None
        self._lock = threading.Lock()

    def __call__(self, url: str, form: dict[str, str]) -> tuple[int, bytes]:
        assert url == "https://api.hubapi.com/oauth/v1/token"
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            self.calls.append(dict(form))
            n = len(self.calls)
        if self.answer is not None:
            status, body = self.answer
            return status, json.dumps(body).encode()
        body = {
            "access_token": f"access-token-{n:04d}",
            "expires_in": self.expires_in,
            "token_type": "bearer",
        }
        body["refresh_token"] = f"rotated-refresh-{n:04d}" if self.rotate else form["refresh_token"]
        return 200, json.dumps(body).encode()


def oauth(endpoint: TokenEndpoint, clock: FakeClock, masked: list[str], **kwargs) -> OAuthCredentials:
    return OAuthCredentials(
        token_url="https://api.hubapi.com/oauth/v1/token",
        client_id="client-id-1",
        client_secret=SECRET,
        refresh_token=REFRESH,
        post=endpoint,
        clock=clock,
        masker=masked.append,
        **kwargs,
    )


def test_private_app_token_is_masked_and_static():
    masked: list[str] = []
    creds = PrivateAppToken(" pat-na1-abc ", masker=masked.append)
    assert creds.authorization() == "Bearer pat-na1-abc"
    assert creds.fresh_authorization() == "Bearer pat-na1-abc"
    assert masked == ["pat-na1-abc"]
    assert not creds.refreshable
    assert "pat-na1-abc" not in creds.identity
    with pytest.raises(HubSpotAuthError):
        creds.after_rejection("Bearer pat-na1-abc")


def test_private_app_token_required():
    with pytest.raises(HubSpotConfigError, match="no private-app token"):
        PrivateAppToken("", masker=lambda s: None)


def test_oauth_exchanges_the_refresh_token_and_masks_every_secret():
    endpoint, clock, masked = TokenEndpoint(), FakeClock(), []
    creds = oauth(endpoint, clock, masked)
    assert masked == [SECRET, REFRESH]
    assert creds.fresh_authorization() is None  # nothing issued yet: no I/O on the fast path
    assert creds.authorization() == "Bearer access-token-0001"
    assert endpoint.calls == [
        {
            "grant_type": "refresh_token",
            "client_id": "client-id-1",
            "client_secret": SECRET,
            "refresh_token": REFRESH,
        }
    ]
    assert masked[-1] == "access-token-0001"
    assert creds.refreshes == 1
    # Reused while fresh.
    assert creds.authorization() == "Bearer access-token-0001"
    assert len(endpoint.calls) == 1


def test_oauth_refreshes_ahead_of_expiry():
    endpoint, clock, masked = TokenEndpoint(expires_in=1800), FakeClock(), []
    creds = oauth(endpoint, clock, masked)
    creds.authorization()
    clock.now += 1800 - 61
    assert creds.authorization() == "Bearer access-token-0001"
    clock.now += 2  # within the 60 s margin
    assert creds.authorization() == "Bearer access-token-0002"
    assert creds.refreshes == 2


def test_short_lived_tokens_refresh_at_half_life():
    endpoint, clock, masked = TokenEndpoint(expires_in=10), FakeClock(), []
    creds = oauth(endpoint, clock, masked)
    creds.authorization()
    clock.now += 4.9
    assert creds.fresh_authorization() == "Bearer access-token-0001"
    clock.now += 0.2
    assert creds.fresh_authorization() is None


def test_a_token_is_used_for_a_second_even_if_it_claims_to_expire_at_once():
    endpoint, clock, masked = TokenEndpoint(expires_in=0), FakeClock(), []
    creds = oauth(endpoint, clock, masked)
    creds.authorization()
    clock.now += 0.9
    assert creds.authorization() == "Bearer access-token-0001"
    clock.now += 0.2
    assert creds.authorization() == "Bearer access-token-0002"


def test_rotated_refresh_token_is_used_next_and_masked():
    endpoint, clock, masked = TokenEndpoint(expires_in=100, rotate=True), FakeClock(), []
    creds = oauth(endpoint, clock, masked)
    creds.authorization()
    clock.now += 100
    creds.authorization()
    assert endpoint.calls[1]["refresh_token"] == "rotated-refresh-0001"
    assert "rotated-refresh-0001" in masked
    assert "rotated-refresh-0001" in creds.secrets()


def test_sixteen_threads_at_expiry_cause_one_refresh():
    endpoint, clock, masked = TokenEndpoint(delay=0.05), FakeClock(), []
    creds = oauth(endpoint, clock, masked)
    creds.authorization()
    clock.now += 3600
    barrier = threading.Barrier(16)
    seen: list[str] = []

    def worker() -> None:
        barrier.wait()
        seen.append(creds.authorization())

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(endpoint.calls) == 2
    assert set(seen) == {"Bearer access-token-0002"}


def test_rejection_refreshes_once_even_when_many_threads_report_it():
    endpoint, clock, masked = TokenEndpoint(delay=0.02), FakeClock(), []
    creds = oauth(endpoint, clock, masked)
    rejected = creds.authorization()
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(creds.after_rejection(rejected))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(endpoint.calls) == 2
    assert set(results) == {"Bearer access-token-0002"}


def test_refused_refresh_token_raises_once_and_is_remembered():
    endpoint, clock, masked = TokenEndpoint(), FakeClock(), []
    endpoint.answer = (400, {"status": "BAD_REFRESH_TOKEN", "message": f"unknown token {REFRESH}"})
    creds = oauth(endpoint, clock, masked)
    with pytest.raises(HubSpotAuthError) as err:
        creds.authorization()
    assert err.value.status == 400
    assert err.value.category == "BAD_REFRESH_TOKEN"
    assert REFRESH not in str(err.value) and SECRET not in str(err.value)
    with pytest.raises(HubSpotAuthError):
        creds.authorization()
    assert len(endpoint.calls) == 1


@pytest.mark.parametrize(("status", "error"), [(500, HubSpotServerError), (503, HubSpotServerError)])
def test_token_endpoint_outages_are_retryable_errors(status, error):
    endpoint, clock, masked = TokenEndpoint(), FakeClock(), []
    endpoint.answer = (status, {"message": "down"})
    creds = oauth(endpoint, clock, masked)
    with pytest.raises(error):
        creds.authorization()
    endpoint.answer = None
    assert creds.authorization() == "Bearer access-token-0002"


def test_unreachable_token_endpoint_is_a_transport_error():
    def broken(url: str, form: dict[str, str]) -> tuple[int, bytes]:
        raise ConnectionResetError(f"reset while sending {form['client_secret']}")

    creds = OAuthCredentials(
        token_url="https://api.hubapi.com/oauth/v1/token",
        client_id="c",
        client_secret=SECRET,
        refresh_token=REFRESH,
        post=broken,
        masker=lambda s: None,
    )
    with pytest.raises(HubSpotTransportError) as err:
        creds.authorization()
    assert SECRET not in str(err.value)
    assert isinstance(err.value.__cause__, ConnectionResetError)


def test_async_authorization_refreshes_in_a_thread():
    endpoint, clock, masked = TokenEndpoint(), FakeClock(), []
    creds = oauth(endpoint, clock, masked)
    loop_thread: list[int] = []

    async def main() -> str:
        loop_thread.append(threading.get_ident())
        return await creds.aauthorization()

    endpoint_threads: list[int] = []
    inner = endpoint.__call__

    def spy(url: str, form: dict[str, str]) -> tuple[int, bytes]:
        endpoint_threads.append(threading.get_ident())
        return inner(url, form)

    creds._post = spy
    assert asyncio.run(main()) == "Bearer access-token-0001"
    assert endpoint_threads and endpoint_threads[0] != loop_thread[0]


def test_connection_picks_oauth_when_a_client_id_is_set():
    masked: list[str] = []
    creds = credentials_from_connection(
        base_url="https://api.hubapi.com",
        password="pat-ignored",
        extra={"client_id": "cid", "client_secret": SECRET, "refresh_token": REFRESH},
        masker=masked.append,
    )
    assert isinstance(creds, OAuthCredentials)
    assert SECRET in masked and REFRESH in masked


def test_oauth_connection_missing_fields_are_named():
    with pytest.raises(HubSpotConfigError, match="client_secret, refresh_token"):
        credentials_from_connection(
            base_url="https://api.hubapi.com",
            password=None,
            extra={"client_id": "cid"},
            masker=lambda s: None,
        )


def test_identities_differ_per_credential_and_hide_it():
    a = PrivateAppToken("pat-one-123456", masker=lambda s: None)
    b = PrivateAppToken("pat-two-123456", masker=lambda s: None)
    assert a.identity != b.identity
    assert "pat" not in a.identity


def test_scrub_replaces_known_secrets():
    assert scrub(f"token {SECRET} and {REFRESH}", [SECRET, REFRESH, None, ""]) == "token *** and ***"
