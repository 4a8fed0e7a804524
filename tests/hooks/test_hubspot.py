"""HubSpotHook over real HTTP against the HubSpot stand-in on loopback.

Connections come only from ``AIRFLOW_CONN_HUBSPOT_DEFAULT`` (JSON) set through monkeypatch. Rate
windows are short (1 s) and retry delays tiny, so the whole module runs in seconds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time

import pytest
import requests

from airflow_hubspot_assoc import api
from airflow_hubspot_assoc.exceptions import (
    HubSpotAuthError,
    HubSpotConfigError,
    HubSpotDailyLimitError,
    HubSpotMissingScopesError,
    HubSpotRateLimitError,
    HubSpotServerError,
    HubSpotTransportError,
    HubSpotValidationError,
    UnknownLabelError,
)
from airflow_hubspot_assoc.hooks.hubspot import HubSpotHook
from airflow_hubspot_assoc.testing import FaultConfig, LatencyConfig, OAuthApp, RateLimitConfig
from tests.helpers import max_in_any_window, oauth_connection

FAST_WINDOW = RateLimitConfig(max_requests=100, interval_ms=1000)
CLIENT_SECRET = "oauth-client-secret-7f3a9c"
REFRESH_TOKEN = "oauth-refresh-token-51be07"


pytestmark = pytest.mark.usefixtures("fresh_limiters")


def fast_hook(**kwargs) -> HubSpotHook:
    """A hook whose retries wait milliseconds, not seconds."""
    hook = HubSpotHook(**kwargs)
    hook.retry_base_delay = 0.01
    hook.retry_max_delay = 0.05
    return hook


def pairs(n: int, start: int = 1000) -> list[dict]:
    return [
        {
            "from": {"id": str(start + i)},
            "to": {"id": str(start + 5000 + i)},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}],
        }
        for i in range(n)
    ]


def api_requests(hs) -> list:
    return [r for r in hs.requests if r.endpoint != "oauth_token"]


# ----------------------------------------------------------------------------- the contract
def test_contract_attributes_and_no_io_in_init(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", raising=False)
    hook = HubSpotHook()  # no connection exists: constructing must not look for one
    assert HubSpotHook.conn_name_attr == "hubspot_conn_id"
    assert HubSpotHook.default_conn_name == "hubspot_default"
    assert HubSpotHook.conn_type == "hubspot"
    assert HubSpotHook.hook_name == "HubSpot"
    assert hook.hubspot_conn_id == "hubspot_default"
    assert hook.stats.snapshot() == {
        "requests": 0,
        "retries": 0,
        "throttled": 0,
        "refreshes": 0,
        "server_errors": 0,
        "transport_errors": 0,
    }
    with pytest.raises(ValueError, match="max_concurrency"):
        HubSpotHook(max_concurrency=0)


@pytest.mark.hubspot_conn(portal_id="987654")
def test_private_app_token_end_to_end(hubspot_conn):
    hs = hubspot_conn
    hook = fast_hook()
    assert hook.api_version == "v4"
    assert hook.portal_id == "987654"
    created = hook.create_associations("contacts", "companies", pairs(3))
    assert created.status_code in (200, 201, 207)
    assert created.body["status"] == "COMPLETE" and len(created.body["results"]) == 3
    assert created.retries == 0
    default = hook.create_default_associations(
        "contacts", "companies", [{"from": {"id": "1"}, "to": {"id": "2"}}]
    )
    assert default.body["status"] == "COMPLETE"
    read = hook.read_associations("contacts", "companies", ["1000", "1001", "1"])
    assert read["1000"][0]["toObjectId"] == "6000"
    assert read["1000"][0]["associationTypes"][0] == {
        "category": "HUBSPOT_DEFINED",
        "typeId": 279,
        "label": None,
    }
    assert {a["toObjectId"] for a in read["1"]} == {"2"}
    assert hook.stats.snapshot()["requests"] == len(hs.requests) == 3
    assert all(r.headers["Authorization"] == "Bearer <redacted>" for r in hs.requests)
    assert hs.stats.spec_violations == 0


def test_read_follows_pages_chunks_and_maps_missing_ids_to_empty(hubspot_standin, monkeypatch):
    hs = hubspot_standin
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", hs.connection_uri())
    hook = fast_hook()
    many = [
        {
            "from": {"id": "42"},
            "to": {"id": str(100 + i)},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}],
        }
        for i in range(1200)
    ]
    for chunk in range(0, len(many), 100):
        hook.create_associations("contacts", "companies", many[chunk : chunk + 100])
    hs.set_missing_records("contacts", ["77"])
    hs.reset_stats()
    ids = ["42", "77", *[str(5_000_000 + i) for i in range(1500)]]
    result = hook.read_associations("contacts", "companies", ids)
    assert len(result["42"]) == 1200  # 500 per page: three pages for this id
    assert {a["toObjectId"] for a in result["42"]} == {str(100 + i) for i in range(1200)}
    assert result["77"] == [] and len(result) == 1502
    reads = [r for r in hs.requests if r.endpoint == "batch_read"]
    assert len(reads) >= 3  # two chunks (1,000 + 502 ids) and the further pages of "42"
    assert max(r.n_inputs for r in reads) <= 1000


def test_async_read_uses_the_same_connection_and_policy(hubspot_conn):
    hs = hubspot_conn
    hook = fast_hook()
    hook.create_associations("contacts", "companies", pairs(2))
    async_hook = fast_hook()

    async def main() -> dict:
        return await async_hook.aread_associations("contacts", "companies", ["1000", "1001", "999"])

    result = asyncio.run(main())
    assert result["1000"][0]["toObjectId"] == "6000"
    assert result["999"] == []
    last = hs.requests[-1]
    assert last.endpoint == "batch_read"
    assert last.headers["Content-Type"] == "application/json"
    assert last.headers["User-Agent"].startswith("airflow-hubspot-assoc/")
    assert async_hook.stats.snapshot()["requests"] == 1


@pytest.mark.hubspot_standin(faults=FaultConfig(seed=3, error_5xx_ratio=0.5))
def test_async_read_retries_too(hubspot_conn):
    hook = fast_hook()
    result = asyncio.run(hook.aread_associations("contacts", "companies", [str(i) for i in range(30)]))
    assert len(result) == 30
    assert hubspot_conn.stats.faults_injected["5xx"] >= 1
    assert hook.stats.snapshot()["retries"] == hubspot_conn.stats.faults_injected["5xx"]


@pytest.mark.parametrize("version", ["2026-03", "2026-09"])
def test_dated_api_versions_end_to_end(hubspot_standin, monkeypatch, version):
    hs = hubspot_standin
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", hs.connection_uri(api_version=version))
    hook = fast_hook()
    assert hook.api_version == version
    created = hook.create_associations("contacts", "companies", pairs(2))
    assert created.body["status"] == "COMPLETE"
    hook.create_default_associations("contacts", "companies", [{"from": {"id": "5"}, "to": {"id": "6"}}])
    assert hook.read_associations("contacts", "companies", ["1000"])["1000"][0]["toObjectId"] == "6000"
    assert hook.read_association_types("contacts", "companies")
    prefix = f"/crm/associations/{version}/contacts/companies/"
    assert [r.path for r in hs.requests] == [
        prefix + "batch/create",
        prefix + "batch/associate/default",
        prefix + "batch/read",
        prefix + "labels",
    ]
    assert hs.stats.spec_violations == 0


# ----------------------------------------------------------------------------- connection handling
def test_extras_never_travel_as_headers(hubspot_standin, monkeypatch):
    hs = hubspot_standin
    extras = {
        "api_version": "2026-09",
        "timeout": 37.5,
        "portal_id": "4242",
        "client_secret": "not-a-header-secret-1",
        "refresh_token": "not-a-header-refresh-2",
        "X-Custom": "not-a-header-3",
    }
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", hs.connection_uri(**extras))
    hook = fast_hook()
    hook.create_associations("contacts", "companies", pairs(1))
    hook.read_association_types("contacts", "companies")
    asyncio.run(fast_hook().aread_associations("contacts", "companies", ["1000"]))
    assert len(hs.requests) == 3
    for record in hs.requests:
        names = {name.lower() for name in record.headers}
        values = " ".join(record.headers.values())
        for key, value in extras.items():
            assert key.lower() not in names
            assert str(value) not in values
        assert names <= {
            "host",
            "user-agent",
            "accept-encoding",
            "accept",
            "connection",
            "content-type",
            "content-length",
            "authorization",
        }


def test_oauth_extras_never_travel_as_headers(hubspot_standin, monkeypatch):
    hs = hubspot_standin
    app = OAuthApp("client-9", CLIENT_SECRET, REFRESH_TOKEN)
    oauth_connection(monkeypatch, hs, app)
    fast_hook().create_associations("contacts", "companies", pairs(1))
    for record in hs.requests:
        text = json.dumps(record.headers)
        assert CLIENT_SECRET not in text and REFRESH_TOKEN not in text and "client-9" not in text


def test_plain_http_to_a_remote_host_is_refused(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_HUBSPOT_DEFAULT",
        json.dumps(
            {"conn_type": "hubspot", "host": "http://api.hubapi.com", "password": "pat-na1-secret-99"}
        ),
    )
    hook = fast_hook()
    with pytest.raises(HubSpotConfigError, match="plain http"):
        hook.create_associations("contacts", "companies", pairs(1))
    ok, message = fast_hook().test_connection()
    assert not ok and "http" in message and "pat-na1-secret-99" not in message


def test_bad_object_type_fails_before_any_request(hubspot_conn):
    with pytest.raises(HubSpotConfigError, match=r"Invalid HubSpot object type '\.\./oauth'"):
        fast_hook().create_associations("contacts", "../oauth", pairs(1))
    assert hubspot_conn.requests == []


@pytest.mark.hubspot_conn(api_version="2026-01")
def test_unknown_api_version_is_a_config_error(hubspot_conn):
    with pytest.raises(HubSpotConfigError, match="2026-01"):
        fast_hook().create_associations("contacts", "companies", pairs(1))


@pytest.mark.hubspot_conn(timeout="soon")
def test_bad_timeout_extra_is_a_config_error(hubspot_conn):
    with pytest.raises(HubSpotConfigError, match="timeout"):
        fast_hook().read_association_types("contacts", "companies")


def test_test_connection_ok(hubspot_conn):
    ok, message = fast_hook().test_connection()
    assert ok, message
    assert "API v4" in message and hubspot_conn.url in message
    assert len(hubspot_conn.requests) == 1


def test_test_connection_names_a_missing_scope(hubspot_standin, monkeypatch):
    hs = hubspot_standin
    hs.add_token("pat-na1-no-read-scope-1", scopes=["crm.objects.companies.read"])
    monkeypatch.setenv(
        "AIRFLOW_CONN_HUBSPOT_DEFAULT",
        json.dumps({"conn_type": "hubspot", "host": hs.url, "password": "pat-na1-no-read-scope-1"}),
    )
    ok, message = fast_hook().test_connection()
    assert not ok
    assert "crm.objects.contacts.read" in message
    assert "pat-na1-no-read-scope-1" not in message


def test_test_connection_explains_a_refused_token(hubspot_standin, monkeypatch):
    hs = hubspot_standin
    monkeypatch.setenv(
        "AIRFLOW_CONN_HUBSPOT_DEFAULT",
        json.dumps({"conn_type": "hubspot", "host": hs.url, "password": "pat-na1-wrong-token-3"}),
    )
    ok, message = fast_hook().test_connection()
    assert not ok and "refused the credentials" in message and "401" in message
    assert "pat-na1-wrong-token-3" not in message


# ----------------------------------------------------------------------------- labels
def test_resolve_label_is_case_insensitive_cached_and_lists_labels(hubspot_conn):
    hs = hubspot_conn
    type_id = hs.add_label("contacts", "companies", "Decision Maker")
    hook = fast_hook()
    assert hook.resolve_label("contacts", "companies", "decision MAKER") == ("USER_DEFINED", type_id)
    assert hook.resolve_label("contacts", "companies", " Decision Maker ") == ("USER_DEFINED", type_id)
    assert len(hs.requests) == 1
    with pytest.raises(UnknownLabelError) as err:
        hook.resolve_label("contacts", "companies", "Champion")
    assert "Decision Maker" in str(err.value) and "Primary" in str(err.value)
    assert err.value.existing == ["Decision Maker", "Primary"]
    assert len(hs.requests) == 2  # a miss in the cache asks HubSpot once more
    later = hs.add_label("contacts", "companies", "Champion")
    assert hook.resolve_label("contacts", "companies", "champion") == ("USER_DEFINED", later)


# ----------------------------------------------------------------------------- OAuth
def test_oauth_token_is_fetched_once_and_reused(hubspot_standin, monkeypatch):
    hs = hubspot_standin
    oauth_connection(monkeypatch, hs, OAuthApp("client-1", CLIENT_SECRET, REFRESH_TOKEN))
    hook = fast_hook()
    for i in range(3):
        hook.create_associations("contacts", "companies", pairs(1, start=10 * i))
    assert hs.stats.oauth_refreshes == 1
    assert hook.stats.snapshot()["refreshes"] == 1


def test_sixteen_threads_at_expiry_cause_exactly_one_refresh(hubspot_standin, monkeypatch):
    hs = hubspot_standin
    # A 4 s token counts as stale after 2 s (refreshed ahead of expiry, at half its life).
    oauth_connection(
        monkeypatch, hs, OAuthApp("client-2", CLIENT_SECRET, REFRESH_TOKEN, access_token_ttl_s=4.0)
    )
    hook = fast_hook(max_concurrency=16)
    hook.create_associations("contacts", "companies", pairs(1))
    assert hs.stats.oauth_refreshes == 1
    time.sleep(2.1)
    barrier = threading.Barrier(16)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        barrier.wait()
        try:
            hook.create_associations("contacts", "companies", pairs(1, start=100 * n))
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert hs.stats.oauth_refreshes == 2
    assert not [r for r in hs.requests if r.status == 401]


def test_a_401_expired_refreshes_once_and_retries(hubspot_standin, monkeypatch):
    hs = hubspot_standin
    oauth_connection(
        monkeypatch, hs, OAuthApp("client-3", CLIENT_SECRET, REFRESH_TOKEN, access_token_ttl_s=1.5)
    )
    hook = fast_hook()
    # Freeze the hook's view of time: it believes its token is fresh, HubSpot knows better.
    hook._settings().credentials._clock = lambda: 0.0
    hook.create_associations("contacts", "companies", pairs(1))
    time.sleep(1.6)
    result = hook.create_associations("contacts", "companies", pairs(1, start=50))
    assert result.retries == 1
    assert [r.status for r in api_requests(hs)] == [201, 401, 201]
    assert hs.stats.oauth_refreshes == 2
    assert hook.stats.snapshot()["refreshes"] == 2


def test_a_401_that_one_refresh_does_not_cure_is_final(hubspot_standin, monkeypatch):
    hs = hubspot_standin
    # Tokens that are already expired when issued: the refresh cannot help.
    oauth_connection(
        monkeypatch, hs, OAuthApp("client-4", CLIENT_SECRET, REFRESH_TOKEN, access_token_ttl_s=0.0)
    )
    hook = fast_hook()
    with pytest.raises(HubSpotAuthError) as err:
        hook.create_associations("contacts", "companies", pairs(1))
    assert err.value.status == 401
    assert err.value.category == "EXPIRED_AUTHENTICATION"
    assert err.value.correlation_id
    assert [r.status for r in api_requests(hs)] == [401, 401]
    assert hs.stats.oauth_refreshes == 2


def test_a_refused_refresh_token_is_an_auth_error(hubspot_standin, monkeypatch):
    hs = hubspot_standin
    hs.add_oauth_app(OAuthApp("client-5", CLIENT_SECRET, "the-real-refresh-token"))
    monkeypatch.setenv(
        "AIRFLOW_CONN_HUBSPOT_DEFAULT",
        json.dumps(
            {
                "conn_type": "hubspot",
                "host": hs.url,
                "extra": {
                    "client_id": "client-5",
                    "client_secret": CLIENT_SECRET,
                    "refresh_token": REFRESH_TOKEN,
                },
            }
        ),
    )
    with pytest.raises(HubSpotAuthError, match=r"BAD_REFRESH_TOKEN|refresh token") as err:
        fast_hook().create_associations("contacts", "companies", pairs(1))
    assert REFRESH_TOKEN not in str(err.value) and CLIENT_SECRET not in str(err.value)
    assert api_requests(hs) == []


# ----------------------------------------------------------------------------- retries
@pytest.mark.hubspot_standin(rate_limit=FAST_WINDOW)
def test_a_429_with_rate_headers_is_retried(hubspot_conn):
    hs = hubspot_conn
    hook = fast_hook()
    hook.read_association_types("contacts", "companies")
    hs.start_429_storm(0.3)
    result = hook.create_associations("contacts", "companies", pairs(1))
    assert result.body["status"] == "COMPLETE"
    assert result.retries >= 1
    snap = hook.stats.snapshot()
    assert snap["throttled"] == hs.stats.rate_limited >= 1
    assert hook.limiter.snapshot()["limit"] == 100


@pytest.mark.hubspot_standin(
    rate_limit=RateLimitConfig(max_requests=100, interval_ms=1000, announce_headers=False, retry_after=True)
)
def test_a_429_without_rate_headers_is_retried_after_retry_after(hubspot_conn):
    hs = hubspot_conn
    hook = fast_hook()
    hook.read_association_types("contacts", "companies")
    hs.start_429_storm(0.5)
    started = time.monotonic()
    result = hook.create_associations("contacts", "companies", pairs(1))
    assert time.monotonic() - started >= 0.9  # the storm's Retry-After: 1
    assert result.retries == 1
    assert "X-HubSpot-RateLimit-Max" not in str(hs.requests[-1].headers)
    assert hook.limiter.snapshot()["throttled_without_headers"] == 1


@pytest.mark.hubspot_standin(rate_limit=FAST_WINDOW)
def test_rate_limit_exhausting_the_budget_is_a_rate_limit_error(hubspot_conn):
    hs = hubspot_conn
    hook = fast_hook(retry_budget_seconds=0.3)
    hook.read_association_types("contacts", "companies")
    hs.start_429_storm(5)
    with pytest.raises(HubSpotRateLimitError) as err:
        hook.create_associations("contacts", "companies", pairs(1))
    assert err.value.status == 429
    assert err.value.correlation_id
    assert "ten_secondly_rolling" in str(err.value)


def _flaky(status: int) -> pytest.MarkDecorator:
    faults = FaultConfig(seed=status, error_5xx_ratio=0.5, error_5xx_statuses=(status,))
    return pytest.mark.hubspot_standin(rate_limit=FAST_WINDOW, faults=faults)


@pytest.mark.parametrize("status", [pytest.param(s, marks=_flaky(s)) for s in (500, 502, 503, 504)])
def test_each_5xx_is_retried(hubspot_conn, status):
    hs = hubspot_conn
    hook = fast_hook()
    for n in range(8):
        response = hook.create_associations("contacts", "companies", pairs(1, start=n))
        assert response.body["status"] == "COMPLETE"
    failed = hs.stats.by_endpoint_status[("batch_create", status)]
    assert failed >= 1
    assert hook.stats.snapshot()["retries"] == failed == hook.stats.snapshot()["server_errors"]


@pytest.mark.hubspot_standin(faults=FaultConfig(seed=1, error_5xx_ratio=1.0, error_5xx_statuses=(503,)))
def test_5xx_exhausting_the_budget_is_a_server_error(hubspot_conn):
    hook = fast_hook(retry_budget_seconds=0.2)
    with pytest.raises(HubSpotServerError) as err:
        hook.create_associations("contacts", "companies", pairs(1))
    assert err.value.status == 503
    assert err.value.category == "SERVICE_UNAVAILABLE"
    assert err.value.correlation_id
    assert hook.stats.snapshot()["retries"] >= 1


@pytest.mark.hubspot_standin(faults=FaultConfig(seed=5, reset_ratio=0.5))
def test_connection_resets_are_retried(hubspot_conn):
    hs = hubspot_conn
    hook = fast_hook()
    for n in range(8):
        hook.create_associations("contacts", "companies", pairs(1, start=n))
    resets = hs.stats.faults_injected["reset"]
    assert resets >= 1
    assert hook.stats.snapshot()["transport_errors"] == resets


@pytest.mark.hubspot_standin(faults=FaultConfig(seed=2, reset_ratio=1.0))
def test_resets_exhausting_the_budget_are_a_transport_error(hubspot_conn):
    hook = fast_hook(retry_budget_seconds=0.2)
    with pytest.raises(HubSpotTransportError) as err:
        hook.create_associations("contacts", "companies", pairs(1))
    assert isinstance(err.value.__cause__, requests.RequestException)
    assert "/crm/v4/associations/contacts/companies/batch/create" in str(err.value)


@pytest.mark.hubspot_standin(faults=FaultConfig(seed=4, slow_ratio=0.5, slow_seconds=1.5))
@pytest.mark.hubspot_conn(timeout=0.5)
def test_read_timeouts_are_retried(hubspot_conn):
    hs = hubspot_conn
    hook = fast_hook()
    for n in range(6):
        hook.create_associations("contacts", "companies", pairs(1, start=n))
    slow = hs.stats.faults_injected["slow"]
    assert slow >= 1
    # Every slow answer timed out and was retried (a busy machine may add a timeout or two).
    assert hook.stats.snapshot()["transport_errors"] >= slow


@pytest.mark.hubspot_standin(max_batch_inputs=5)
def test_a_400_is_not_retried(hubspot_conn):
    hs = hubspot_conn
    hook = fast_hook()
    with pytest.raises(HubSpotValidationError) as err:
        hook.create_associations("contacts", "companies", pairs(6))
    assert err.value.status == 400
    assert err.value.category == "VALIDATION_ERROR"
    assert "Too many inputs" in str(err.value)
    assert len(hs.requests) == 1
    assert hook.stats.snapshot()["retries"] == 0


def test_a_403_names_the_missing_scopes_and_is_not_retried(hubspot_standin, monkeypatch):
    hs = hubspot_standin
    hs.add_token("pat-na1-read-only-4", scopes=["crm.objects.contacts.read"])
    monkeypatch.setenv(
        "AIRFLOW_CONN_HUBSPOT_DEFAULT",
        json.dumps({"conn_type": "hubspot", "host": hs.url, "password": "pat-na1-read-only-4"}),
    )
    hook = fast_hook()
    with pytest.raises(HubSpotMissingScopesError) as err:
        hook.create_associations("contacts", "companies", pairs(1))
    assert err.value.missing_scopes == ["crm.objects.contacts.write"]
    assert err.value.status == 403 and err.value.category == "MISSING_SCOPES"
    assert "crm.objects.contacts.write" in str(err.value)
    assert len(hs.requests) == 1


def test_an_unknown_token_is_an_auth_error_at_once(hubspot_standin, monkeypatch):
    hs = hubspot_standin
    monkeypatch.setenv(
        "AIRFLOW_CONN_HUBSPOT_DEFAULT",
        json.dumps({"conn_type": "hubspot", "host": hs.url, "password": "pat-na1-unknown-5"}),
    )
    with pytest.raises(HubSpotAuthError) as err:
        fast_hook().create_associations("contacts", "companies", pairs(1))
    assert err.value.status == 401 and err.value.category == "INVALID_AUTHENTICATION"
    assert len(hs.requests) == 1


# ----------------------------------------------------------------------------- the limiter, over HTTP
@pytest.mark.hubspot_standin(rate_limit=RateLimitConfig(max_requests=10, interval_ms=1000))
def test_the_limiter_holds_the_window_across_threads(hubspot_conn):
    hs = hubspot_conn
    hook = fast_hook(max_concurrency=8)
    barrier = threading.Barrier(8)

    def worker(n: int) -> None:
        barrier.wait()
        for k in range(5):
            hook.create_associations("contacts", "companies", pairs(1, start=1000 * n + k))

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    arrivals = [r.started for r in hs.requests]
    assert len(arrivals) - hs.stats.rate_limited == 40
    assert max_in_any_window([r.started for r in hs.requests if r.status != 429], 1.0) <= 10
    assert hs.stats.rate_limited <= 3  # the limiter, not HubSpot, did the pacing
    assert 3.0 <= elapsed <= 8.0  # 40 requests at 10/s: four windows, not much more
    snap = hook.limiter.snapshot()
    assert snap["limit"] == 10 and snap["interval_s"] == 1.0


@pytest.mark.hubspot_standin(rate_limit=FAST_WINDOW, latency=LatencyConfig(base_ms=150))
def test_one_request_at_a_time_until_the_first_answer(hubspot_conn):
    hs = hubspot_conn
    hook = fast_hook(max_concurrency=8)
    barrier = threading.Barrier(8)

    def worker(n: int) -> None:
        barrier.wait()
        hook.create_associations("contacts", "companies", pairs(1, start=n))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = sorted(hs.requests, key=lambda r: r.started)
    assert records[0].finished <= records[1].started  # the second left only after the first answer
    assert hs.stats.peak_concurrency > 1  # then they went out together


@pytest.mark.hubspot_standin(
    rate_limit=RateLimitConfig(max_requests=4, interval_ms=1000, announce_headers=False)
)
def test_without_headers_429s_make_it_back_off(hubspot_conn):
    hs = hubspot_conn
    hook = fast_hook(max_concurrency=8)

    def worker(n: int) -> None:
        for k in range(2):
            hook.create_associations("contacts", "companies", pairs(1, start=100 * n + k))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = hook.limiter.snapshot()
    assert snap["limit"] is None
    assert snap["concurrency_cuts"] >= 1
    assert len(hs.requests) - hs.stats.rate_limited == 12
    # Backing off keeps refusals bounded instead of a storm of thousands.
    assert hs.stats.rate_limited <= 60


@pytest.mark.hubspot_standin(rate_limit=RateLimitConfig(max_requests=100, interval_ms=1000, daily=20))
def test_the_daily_allowance_stops_sending_near_its_end(hubspot_conn):
    hs = hubspot_conn
    hook = fast_hook()
    hook.limiter.daily_reserve = 5
    for n in range(15):
        hook.create_associations("contacts", "companies", pairs(1, start=n))
    with pytest.raises(HubSpotDailyLimitError, match="daily request allowance"):
        hook.create_associations("contacts", "companies", pairs(1, start=99))
    assert len(hs.requests) == 15
    assert hs.stats.rate_limited == 0


@pytest.mark.hubspot_standin(rate_limit=RateLimitConfig(max_requests=100, interval_ms=1000, daily=1))
def test_a_daily_429_is_not_retried(hubspot_conn):
    hs = hubspot_conn
    hook = fast_hook()
    hook.limiter.daily_reserve = 0
    hook.create_associations("contacts", "companies", pairs(1))
    # Pretend we did not read the header: HubSpot's 429 must stop us.
    hook.limiter.window.daily.remaining = None
    with pytest.raises(HubSpotDailyLimitError) as err:
        hook.create_associations("contacts", "companies", pairs(1, start=5))
    assert err.value.status == 429 and err.value.category == "DAILY"
    assert len(hs.requests) == 2


# ----------------------------------------------------------------------------- secrets
def test_secrets_stay_out_of_logs_errors_and_output(hubspot_standin, monkeypatch, caplog, capsys):
    hs = hubspot_standin
    caplog.set_level(logging.DEBUG)
    secret_token = "pat-na1-super-secret-token-6"
    monkeypatch.setenv(
        "AIRFLOW_CONN_HUBSPOT_DEFAULT",
        json.dumps({"conn_type": "hubspot", "host": hs.url, "password": secret_token}),
    )
    failures: list[BaseException] = []
    with pytest.raises(HubSpotAuthError) as err:
        fast_hook().create_associations("contacts", "companies", pairs(1))
    failures.append(err.value)
    ok, message = fast_hook().test_connection()
    assert not ok

    hs.add_oauth_app(OAuthApp("client-6", CLIENT_SECRET, "another-refresh-token-8"))
    monkeypatch.setenv(
        "AIRFLOW_CONN_HUBSPOT_DEFAULT",
        json.dumps(
            {
                "conn_type": "hubspot",
                "host": hs.url,
                "extra": {
                    "client_id": "client-6",
                    "client_secret": CLIENT_SECRET,
                    "refresh_token": REFRESH_TOKEN,
                },
            }
        ),
    )
    with pytest.raises(HubSpotAuthError) as err2:
        fast_hook().create_associations("contacts", "companies", pairs(1))
    failures.append(err2.value)

    out, errors = capsys.readouterr()
    texts = [caplog.text, out, errors, message]
    for failure in failures:
        texts += [
            str(failure),
            repr(failure),
            repr(failure.args),
            json.dumps(failure.body),
            repr(vars(failure)),
        ]
    for text in texts:
        for secret in (secret_token, CLIENT_SECRET, REFRESH_TOKEN):
            assert secret not in text


def test_every_secret_is_registered_with_the_masker_when_read_or_issued(hubspot_standin, monkeypatch):
    from airflow.sdk.log import redact

    hs = hubspot_standin
    oauth_connection(monkeypatch, hs, OAuthApp("client-7", CLIENT_SECRET, REFRESH_TOKEN))
    hook = fast_hook()
    hook.create_associations("contacts", "companies", pairs(1))
    access_token = hook._settings().credentials.authorization().removeprefix("Bearer ")
    line = f"secret={CLIENT_SECRET} refresh={REFRESH_TOKEN} access={access_token}"
    assert redact(line) == "secret=*** refresh=*** access=***"

    token = "pat-na1-masked-private-token-9"
    hs.add_token(token)
    monkeypatch.setenv(
        "AIRFLOW_CONN_HUBSPOT_DEFAULT",
        json.dumps({"conn_type": "hubspot", "host": hs.url, "password": token}),
    )
    asyncio.run(fast_hook().aread_associations("contacts", "companies", ["1"]))
    assert redact(f"token {token}") == "token ***"


@pytest.mark.hubspot_standin(faults=FaultConfig(seed=9, error_5xx_ratio=1.0, error_5xx_statuses=(502,)))
def test_backoff_is_bounded_exponential_with_full_jitter_within_the_budget(hubspot_conn):
    hook = HubSpotHook(retry_budget_seconds=20.0)
    hook.retry_base_delay, hook.retry_max_delay = 0.5, 4.0
    now = [0.0]
    delays: list[float] = []

    def fake_sleep(seconds: float) -> None:
        delays.append(seconds)
        now[0] += seconds

    hook._clock = lambda: now[0]
    hook._sleep = fake_sleep
    with pytest.raises(HubSpotServerError) as err:
        hook.create_associations("contacts", "companies", pairs(1))
    assert err.value.status == 502 and err.value.category == "BAD_GATEWAY"
    assert len(delays) >= 5
    for attempt, delay in enumerate(delays):
        assert 0 <= delay <= min(4.0, 0.5 * 2**attempt)
    assert sum(delays) <= 20.0
    assert len(set(delays)) == len(delays)  # jittered, not a fixed schedule
    assert hook.stats.snapshot()["retries"] == len(delays)
    assert len(hubspot_conn.requests) == len(delays) + 1


@pytest.mark.parametrize("method", ["run", "run_and_check", "run_with_advanced_retry"])
def test_httphooks_run_family_is_refused_rather_than_bypassing_the_client(hubspot_conn, method):
    hook = fast_hook()
    with pytest.raises(NotImplementedError, match=r"bypass the rate limiter, the retry policy and the token"):
        if method == "run_and_check":
            hook.run_and_check(hook.get_conn(), requests.Request("GET", hubspot_conn.url).prepare(), {})
        else:
            getattr(hook, method)("/crm/v4/associations/contacts/companies/labels")
    assert hubspot_conn.requests == []  # nothing went out


def test_the_old_label_method_names_still_work(hubspot_conn):
    hook = fast_hook()
    fresh = hook.read_association_types("contacts", "companies")
    assert fresh and {"category", "typeId", "label"} <= set(fresh[0])
    assert hook.list_labels("contacts", "companies") == fresh
    requests_before = len(hubspot_conn.requests)
    assert (
        hook.association_types("contacts", "companies")
        == fresh
        == hook.cached_association_types("contacts", "companies")
    )
    assert len(hubspot_conn.requests) == requests_before  # cached: no new request


def test_the_sender_sends_and_reports_capacity_and_counters(hubspot_conn):
    hook = fast_hook(max_concurrency=3, max_burst=20)
    sender = hook.sender("contacts", "companies")
    assert sender.capacity().most == 20
    assert sender.capacity().now == 1  # nothing known yet: one request until the first answer
    encoded = api.JsonArray(json.dumps(pairs(2)).encode())
    assert sender.send(encoded, default=False).body["status"] == "COMPLETE"
    default = [{"from": p["from"], "to": p["to"]} for p in pairs(1, start=4000)]
    assert sender.send(api.JsonArray(json.dumps(default).encode()), default=True).status_code in (200, 201)
    assert sender.capacity().now >= 3
    counters = sender.counters()
    assert (counters.requests, counters.retries, counters.throttled) == (2, 0, 0)
    assert [r.endpoint for r in hubspot_conn.requests] == ["batch_create", "batch_associate_default"]
