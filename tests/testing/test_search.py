"""CRM search over real HTTP: filters, paging, HubSpot's limits and its own rate limit."""

from __future__ import annotations

import time

import pytest
import requests

from airflow_hubspot_assoc.testing import HubSpotStandIn, RateLimitConfig, StandInConfig
from airflow_hubspot_assoc.testing.config import GeneratedRecords, SearchConfig
from tests.testing.crm_support import eq, in_, request, search_body, url_path

VERSIONS = ("v4", "2026-03", "2026-09")


def _config(**search: object) -> StandInConfig:
    return StandInConfig(
        rate_limit=None,
        generated_records=(
            GeneratedRecords("companies", 30, {"domain": "c{n}.com", "name": "Company {n}"}, first_id=100),
        ),
        records={"companies": ({"id": "900", "properties": {"domain": "C3.com", "name": "Twin"}},)},
        search=SearchConfig(**{"rate_limit": None, **search}),  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def hs():
    with HubSpotStandIn(_config()) as standin:
        yield standin
    assert standin.stats.response_violations == 0, standin.stats.response_violation_messages


@pytest.mark.parametrize("version", VERSIONS)
def test_eq_and_in_filters_match_caselessly(hs, version):
    status, answer = request(
        hs,
        version,
        "objects_search",
        search_body([[eq("domain", "c3.COM")]], properties=["domain"]),
        object_type="companies",
    )
    assert status == 200 and answer["total"] == 2
    assert [(r["id"], r["properties"]["domain"]) for r in answer["results"]] == [
        ("103", "c3.com"),
        ("900", "C3.com"),
    ]
    body = search_body([[in_("domain", ["c1.com", "c2.com", "nowhere.com"])]], properties=["domain", "name"])
    status, answer = request(hs, version, "objects_search", body, object_type="0-2")
    assert status == 200 and answer["total"] == 2 and "paging" not in answer
    assert [r["properties"]["name"] for r in answer["results"]] == ["Company 1", "Company 2"]


def test_filter_groups_are_ored_and_filters_anded(hs):
    groups = [[eq("domain", "c3.com"), eq("name", "Twin")], [eq("domain", "c4.com")]]
    status, answer = request(hs, "v4", "objects_search", search_body(groups), object_type="companies")
    assert status == 200 and [r["id"] for r in answer["results"]] == ["104", "900"]
    neq = [
        [
            {"propertyName": "domain", "operator": "NEQ", "value": "c3.com"},
            {"propertyName": "hs_object_id", "operator": "LT", "value": "103"},
        ]
    ]
    assert [
        r["id"]
        for r in request(hs, "v4", "objects_search", search_body(neq), object_type="companies")[1]["results"]
    ] == ["100", "101", "102"]
    status, answer = request(
        hs, "v4", "objects_search", search_body([], query="twin"), object_type="companies"
    )
    assert [r["id"] for r in answer["results"]] == ["900"]


def test_paging_with_after_and_total(hs):
    seen: list[str] = []
    after = ""
    for _ in range(10):
        status, answer = request(
            hs, "2026-09", "objects_search", search_body([], limit=7, after=after), object_type="companies"
        )
        assert status == 200 and answer["total"] == 31
        seen += [r["id"] for r in answer["results"]]
        if "paging" not in answer:
            break
        after = answer["paging"]["next"]["after"]
    assert seen == [str(i) for i in range(100, 130)] + ["900"]


def test_limits_answer_400s_like_hubspot(hs):
    def search(body):
        return request(hs, "v4", "objects_search", body, object_type="companies")

    status, error = search(search_body([], limit=201))
    assert status == 400 and error["category"] == "VALIDATION_ERROR" and "200" in error["message"]
    assert search(search_body([], limit=200))[0] == 200
    status, error = search(search_body([[eq("domain", f"c{i}.com")] for i in range(7)]))
    assert status == 400 and "filterGroups" in error["message"]
    assert search(search_body([[eq("domain", f"c{i}.com")] for i in range(6)]))[1]["total"] == 7
    assert search(search_body([[eq("name", "x")] * 11]))[0] == 400
    assert search(search_body([[eq("name", "x")] * 10]))[0] == 200
    status, error = search(search_body([[eq("name", "x")] * 5] * 6))
    assert status == 400 and "at most 25" in error["message"]
    assert search(search_body([], query="x" * 3001))[0] == 400
    assert search(search_body([[in_("domain", [f"d{i}" for i in range(101)])]]))[0] == 400
    status, error = search(search_body([[eq("favourite_colour", "red")]]))
    assert status == 400 and "favourite_colour" in error["message"]
    assert search(search_body([[{"propertyName": "domain", "operator": "EQ"}]]))[0] == 400
    assert search(search_body([], after="abc"))[0] == 400
    assert search(search_body([], after="10000"))[0] == 400
    violations = hs.stats.spec_violations
    status, _ = request(
        hs, "v4", "objects_search", {"filterGroups": [], "limit": 10}, object_type="companies"
    )
    assert status == 400 and hs.stats.spec_violations == violations + 1


def test_no_more_than_max_results_are_served():
    with HubSpotStandIn(_config(max_results=25)) as hs:
        status, answer = request(
            hs, "v4", "objects_search", search_body([], limit=20, after="20"), object_type="companies"
        )
        assert status == 200 and answer["total"] == 31
        assert len(answer["results"]) == 5 and "paging" not in answer
        assert (
            request(hs, "v4", "objects_search", search_body([], after="25"), object_type="companies")[0]
            == 400
        )


def test_search_has_its_own_rate_limit_separate_from_the_window():
    config = StandInConfig(
        rate_limit=RateLimitConfig(max_requests=100, interval_ms=10_000),
        search=SearchConfig(
            rate_limit=RateLimitConfig(max_requests=2, interval_ms=1_000, daily=10**9, announce_headers=False)
        ),
    )
    with HubSpotStandIn(config) as hs:
        started = time.monotonic()
        statuses = [request(hs, "v4", "objects_search", search_body([]))[0] for _ in range(3)]
        if time.monotonic() - started < 1.0:
            assert statuses == [200, 200, 429]
        status, answer = request(hs, "2026-03", "objects_search", search_body([]))
        if time.monotonic() - started < 1.0:
            assert status == 429
            assert answer["errorType"] == "RATE_LIMIT" and answer["policyName"] == "SECONDLY"
            assert "category" not in answer
        # The 10-second window did not count the searches, and other endpoints are not throttled.
        response = requests.get(
            hs.url + url_path("v4", "property", name="email"),
            headers={"Authorization": f"Bearer {hs.token}"},
            timeout=10,
        )
        assert response.status_code == 200
        assert response.headers["X-HubSpot-RateLimit-Remaining"] == "99"
        time.sleep(1.05)
        assert request(hs, "v4", "objects_search", search_body([]))[0] == 200
        assert hs.stats.rate_limited >= 1
        assert hs.requests[-1].headers.get("Authorization") == "Bearer <redacted>"


def test_default_search_limit_is_a_few_per_second():
    limit = SearchConfig().rate_limit
    assert limit is not None and limit.max_requests == 5 and limit.interval_ms == 1_000
