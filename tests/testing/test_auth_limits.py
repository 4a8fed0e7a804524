"""Authentication, scopes, OAuth refresh, rate limits and 429 storms."""

from __future__ import annotations

import time

import pytest
import requests

from airflow_hubspot_assoc.testing import HubSpotStandIn, OAuthApp, RateLimitConfig, StandInConfig
from tests.testing.support import assert_rate_limit_body, call, create_inputs, path, read_inputs, session

RATE_HEADERS = (
    "X-HubSpot-RateLimit-Max",
    "X-HubSpot-RateLimit-Remaining",
    "X-HubSpot-RateLimit-Interval-Milliseconds",
    "X-HubSpot-RateLimit-Daily",
    "X-HubSpot-RateLimit-Daily-Remaining",
)


def refresh(hs: HubSpotStandIn, **form: str) -> requests.Response:
    data = {"grant_type": "refresh_token", **form}
    return requests.post(hs.url + "/oauth/v1/token", data=data, timeout=5)


@pytest.mark.parametrize("version", ["v4", "2026-09"])
def test_unknown_or_missing_tokens_are_401(hubspot_standin, version):
    hs = hubspot_standin
    response = call(hs, version, "batch_create", create_inputs([("1", "2")]), token="pat-na1-wrong")
    assert response.status_code == 401
    assert response.json()["category"] == "INVALID_AUTHENTICATION"
    bare = requests.post(hs.url + path(version, "batch_read"), json=read_inputs(["1"]), timeout=5)
    assert bare.status_code == 401 and bare.json()["category"] == "INVALID_AUTHENTICATION"
    assert not any(h in response.headers for h in RATE_HEADERS)  # no app, no limit to announce
    assert hs.associations("contacts", "companies") == set()


@pytest.mark.parametrize(
    ("endpoint", "from_type", "scope"),
    [
        ("batch_create", "contacts", "crm.objects.contacts.write"),
        ("batch_associate_default", "deals", "crm.objects.deals.write"),
        ("batch_read", "companies", "crm.objects.companies.read"),
        ("labels", "line_items", "crm.objects.line_items.read"),
        ("batch_create", "tickets", "tickets"),
        ("batch_create", "2-555", "crm.objects.custom.write"),
        ("batch_read", "p_cars", "crm.objects.custom.read"),
    ],
)
def test_missing_scopes_are_403_naming_the_scope(hubspot_standin, endpoint, from_type, scope):
    hs = hubspot_standin
    hs.add_token("pat-na1-limited", scopes=["crm.objects.contacts.read"])
    body = {
        "batch_create": create_inputs([("1", "2")]),
        "batch_associate_default": {"inputs": [{"from": {"id": "1"}, "to": {"id": "2"}}]},
        "batch_read": read_inputs(["1"]),
        "labels": None,
    }[endpoint]
    response = call(hs, "v4", endpoint, body, from_type=from_type, token="pat-na1-limited")
    assert response.status_code == 403
    error = response.json()
    assert error["category"] == "MISSING_SCOPES"
    assert error["errors"][0]["context"] == {"requiredGranularScopes": [scope]}
    hs.add_token("pat-na1-enough", scopes=[scope])
    assert call(hs, "v4", endpoint, body, from_type=from_type, token="pat-na1-enough").status_code < 300


def test_a_read_scope_reads_but_does_not_write(hubspot_standin):
    hs = hubspot_standin
    hs.add_token("pat-na1-reader", scopes=["crm.objects.contacts.read"])
    assert call(hs, "2026-03", "batch_read", read_inputs(["1"]), token="pat-na1-reader").status_code == 200
    assert call(hs, "2026-03", "labels", token="pat-na1-reader").status_code == 200
    assert (
        call(hs, "2026-03", "batch_create", create_inputs([("1", "2")]), token="pat-na1-reader").status_code
        == 403
    )


def test_oauth_refresh_and_expiry(hubspot_standin):
    hs = hubspot_standin
    hs.add_oauth_app(OAuthApp("client-1", "secret-1", "refresh-1", access_token_ttl_s=0.6))
    response = refresh(hs, client_id="client-1", client_secret="secret-1", refresh_token="refresh-1")
    assert response.status_code == 200
    token = response.json()
    assert token["token_type"] == "bearer"
    assert token["refresh_token"] == "refresh-1"
    assert token["expires_in"] == 0  # whole seconds, as HubSpot answers
    assert (
        call(hs, "v4", "batch_create", create_inputs([("1", "2")]), token=token["access_token"]).status_code
        == 201
    )
    time.sleep(0.7)
    expired = call(hs, "v4", "batch_create", create_inputs([("1", "2")]), token=token["access_token"])
    assert expired.status_code == 401
    assert expired.json()["category"] == "EXPIRED_AUTHENTICATION"
    again = refresh(hs, client_id="client-1", client_secret="secret-1", refresh_token="refresh-1").json()
    assert again["access_token"] != token["access_token"]
    assert call(hs, "v4", "batch_read", read_inputs(["1"]), token=again["access_token"]).status_code == 200
    assert hs.stats.oauth_refreshes == 2
    assert hs.stats.by_endpoint_status[("oauth_token", 200)] == 2


@pytest.mark.parametrize(
    ("form", "status"),
    [
        ({"client_id": "nope", "client_secret": "s", "refresh_token": "r"}, "BAD_CLIENT_ID"),
        ({"client_id": "c", "client_secret": "wrong", "refresh_token": "r"}, "BAD_CLIENT_SECRET"),
        ({"client_id": "c", "client_secret": "s", "refresh_token": "stale"}, "BAD_REFRESH_TOKEN"),
        ({"grant_type": "authorization_code", "client_id": "c", "client_secret": "s"}, "BAD_GRANT_TYPE"),
    ],
)
def test_oauth_errors(hubspot_standin, form, status):
    hs = hubspot_standin
    hs.add_oauth_app(OAuthApp("c", "s", "r"))
    response = refresh(hs, **form)
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == status
    assert body["message"] and body["correlationId"]
    assert "access_token" not in body


def test_oauth_app_scopes_apply(hubspot_standin):
    hs = hubspot_standin
    hs.add_oauth_app(OAuthApp("c", "s", "r", scopes=["crm.objects.deals.write"]))
    token = refresh(hs, client_id="c", client_secret="s", refresh_token="r").json()["access_token"]
    assert (
        call(
            hs,
            "v4",
            "batch_create",
            create_inputs([("1", "2")], 3),
            from_type="deals",
            to_type="contacts",
            token=token,
        ).status_code
        == 201
    )
    assert call(hs, "v4", "batch_create", create_inputs([("1", "2")]), token=token).status_code == 403


@pytest.mark.hubspot_standin(rate_limit=RateLimitConfig(max_requests=5, interval_ms=1_000, daily=1_000))
def test_rate_limit_headers_429_and_recovery(hubspot_standin):
    hs = hubspot_standin
    s = session(hs.token)
    start = time.monotonic()
    remaining = []
    for i in range(5):
        response = call(hs, "v4", "batch_create", create_inputs([(str(i + 1), "1")]), s=s)
        assert response.status_code == 201
        assert response.headers["X-HubSpot-RateLimit-Max"] == "5"
        assert response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "1000"
        assert response.headers["X-HubSpot-RateLimit-Daily"] == "1000"
        remaining.append(int(response.headers["X-HubSpot-RateLimit-Remaining"]))
    assert remaining == [4, 3, 2, 1, 0]
    limited = call(hs, "v4", "batch_create", create_inputs([("99", "1")]), s=s)
    if time.monotonic() - start < 0.9:  # a very slow machine may have let the window roll
        assert limited.status_code == 429
        assert limited.json()["policyName"] == "TEN_SECONDLY_ROLLING"
        assert "Retry-After" not in limited.headers  # HubSpot does not always send one
        assert limited.headers["X-HubSpot-RateLimit-Remaining"] == "0"
        assert ("99", "1", "HUBSPOT_DEFINED", 279) not in hs.associations("contacts", "companies")
        assert hs.stats.rate_limited >= 1
        # Refused requests take no slot: hammering does not push recovery back.
        for _ in range(3):
            call(hs, "v4", "batch_read", read_inputs(["1"]), s=s)
    time.sleep(max(0.0, start + 1.05 - time.monotonic()))
    recovered = call(hs, "v4", "batch_create", create_inputs([("99", "1")]), s=s)
    assert recovered.status_code == 201
    assert int(recovered.headers["X-HubSpot-RateLimit-Daily-Remaining"]) == 1_000 - 6


@pytest.mark.hubspot_standin(rate_limit=RateLimitConfig(max_requests=2, interval_ms=60_000, retry_after=True))
def test_limits_are_per_app_and_retry_after_is_optional(hubspot_standin):
    hs = hubspot_standin
    hs.add_token("pat-na1-other-app")
    for _ in range(2):
        assert call(hs, "v4", "batch_read", read_inputs(["1"])).status_code == 200
    limited = call(hs, "v4", "batch_read", read_inputs(["1"]))
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert call(hs, "v4", "batch_read", read_inputs(["1"]), token="pat-na1-other-app").status_code == 200


@pytest.mark.hubspot_standin(rate_limit=RateLimitConfig(max_requests=100, daily=3))
def test_daily_limit(hubspot_standin):
    hs = hubspot_standin
    statuses = [call(hs, "v4", "batch_read", read_inputs(["1"])).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = call(hs, "v4", "batch_read", read_inputs(["1"]))
    assert limited.json()["policyName"] == "DAILY"
    assert limited.json()["message"] == "You have reached your daily limit."
    assert limited.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"


@pytest.mark.hubspot_standin(rate_limit=None)
def test_no_rate_limit_means_no_headers(hubspot_standin):
    hs = hubspot_standin
    s = session(hs.token)
    responses = [call(hs, "v4", "batch_read", read_inputs(["1"]), s=s) for _ in range(120)]
    assert {r.status_code for r in responses} == {200}
    assert not any(h in responses[0].headers for h in RATE_HEADERS)


@pytest.mark.hubspot_standin(
    rate_limit=RateLimitConfig(announce_headers=False, max_requests=1, interval_ms=60_000)
)
def test_limits_can_be_enforced_silently(hubspot_standin):
    hs = hubspot_standin
    first = call(hs, "v4", "batch_read", read_inputs(["1"]))
    second = call(hs, "v4", "batch_read", read_inputs(["1"]))
    assert (first.status_code, second.status_code) == (200, 429)
    assert not any(h in first.headers for h in RATE_HEADERS)


def test_manual_429_storm(hubspot_standin):
    hs = hubspot_standin
    hs.start_429_storm(0.4)
    stormed = call(hs, "v4", "batch_create", create_inputs([("1", "2")]))
    assert stormed.status_code == 429
    assert_rate_limit_body(stormed.json())
    assert hs.associations("contacts", "companies") == set()
    time.sleep(0.5)
    assert call(hs, "v4", "batch_create", create_inputs([("1", "2")])).status_code == 201
    assert hs.stats.faults_injected["storm_429"] == 1
    assert hs.stats.rate_limited == 1
    # A storm takes no slot of the window.
    assert call(hs, "v4", "batch_read", read_inputs(["1"])).headers["X-HubSpot-RateLimit-Remaining"] == "98"


def test_periodic_storms():
    config = StandInConfig.from_dict({"faults": {"storm_every_s": 0.4, "storm_duration_s": 0.2}})
    with HubSpotStandIn(config) as hs:
        assert call(hs, "v4", "batch_read", read_inputs(["1"])).status_code == 200  # calm at start
        seen = set()
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            seen.add(call(hs, "v4", "batch_read", read_inputs(["1"])).status_code)
            time.sleep(0.03)
        assert seen == {200, 429}
