"""``KeyLookup``: the bodies and paths of key reads, and the spacing of searches (fake clock)."""

from __future__ import annotations

import json
import threading
import time
from types import SimpleNamespace

import pytest

from airflow_hubspot_assoc.client.answers import Answer
from airflow_hubspot_assoc.client.lookup import SEARCH_SPACING_S, KeyLookup, object_paths
from airflow_hubspot_assoc.exceptions import HubSpotApiError


class StubClient:
    def __init__(self, api_version: str, body: dict) -> None:
        self.settings = SimpleNamespace(api_version=api_version)
        self.body = body
        self.calls: list[tuple[str, str, object]] = []

    def call(self, method, path, payload=None):
        self.calls.append((method, path, payload))
        return Answer(200, {}, json.dumps(self.body).encode())


def test_paths_per_api_version():
    assert object_paths("v4", "contacts").batch_read == "/crm/v3/objects/contacts/batch/read"
    dated = object_paths("2026-09", "companies")
    assert (dated.search, dated.properties) == (
        "/crm/objects/2026-09/companies/search",
        "/crm/properties/2026-09/companies",
    )


def test_search_sends_in_filters_of_100_per_group_and_spaces_requests():
    now = [100.0]
    sleeps: list[float] = []
    body = {"results": [{"id": "7", "properties": {"domain": "a.com"}}], "paging": {"next": {"after": "200"}}}
    client = StubClient("v4", body)
    lookup = KeyLookup(client, clock=lambda: now[0], sleep=sleeps.append)  # type: ignore[arg-type]
    values = [f"d{i}.com" for i in range(250)]
    page = lookup.search_in("companies", "domain", values)
    assert page.matches == [("7", "a.com")] and page.after == "200"
    _, path, payload = client.calls[0]
    assert path == "/crm/v3/objects/companies/search"
    assert [len(g["filters"][0]["values"]) for g in payload["filterGroups"]] == [100, 100, 50]
    assert payload["after"] == "" and payload["limit"] == 200 and payload["properties"] == ["domain"]
    lookup.search_in("companies", "domain", values, "200")
    assert sleeps == [pytest.approx(SEARCH_SPACING_S)] and lookup.requests == 2
    with pytest.raises(ValueError, match="values a search"):
        lookup.search_in("companies", "domain", [f"{i}" for i in range(501)])


def test_batch_read_asks_for_the_id_property_and_returns_its_values():
    body = {"results": [{"id": "11", "properties": {"email": "Ann@X.com"}}, {"id": "12", "properties": {}}]}
    client = StubClient("v4", body)
    lookup = KeyLookup(client)  # type: ignore[arg-type]
    assert lookup.read_by_property("contacts", "email", ["ann@x.com", "b@x.com"]) == [("11", "Ann@X.com")]
    _, _, payload = client.calls[0]
    assert payload == {
        "idProperty": "email",
        "inputs": [{"id": "ann@x.com"}, {"id": "b@x.com"}],
        "properties": ["email"],
        "propertiesWithHistory": [],
    }


class SlowClient:
    """Answers each batch read after a pause, echoing every value; records the most reads in flight."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.settings = SimpleNamespace(api_version="v4")
        self.lock = threading.Lock()
        self.in_flight = self.most = 0
        self.fail_on = fail_on

    def call(self, method, path, payload=None):
        with self.lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        try:
            time.sleep(0.05)
            values = [item["id"] for item in payload["inputs"]]
            if self.fail_on in values:
                raise HubSpotApiError("boom", status=500)
            results = [{"id": str(1000 + int(v[1:])), "properties": {"email": v}} for v in values]
            return Answer(200, {}, json.dumps({"results": results}).encode())
        finally:
            with self.lock:
                self.in_flight -= 1


def test_read_many_keeps_as_many_reads_in_flight_as_the_capacity_allows():
    client = SlowClient()
    room = [3]
    lookup = KeyLookup(client, in_flight=lambda: room[0], most=8)  # type: ignore[arg-type]
    chunks = [[f"k{c * 10 + i}" for i in range(10)] for c in range(12)]
    found = [match for result in lookup.read_many("contacts", "email", chunks) for match in result]
    assert sorted(found) == sorted((str(1000 + n), f"k{n}") for n in range(120))
    assert client.most == 3 and lookup.requests == 12
    # One at a time when the lookup may not run several (the default).
    single = SlowClient()
    serial = KeyLookup(single)  # type: ignore[arg-type]
    assert len([m for r in serial.read_many("contacts", "email", chunks[:3]) for m in r]) == 30
    assert single.most == 1


def test_read_many_raises_the_first_failure():
    lookup = KeyLookup(SlowClient(fail_on="k55"), in_flight=lambda: 4, most=4)  # type: ignore[arg-type]
    chunks = [[f"k{c * 10 + i}" for i in range(10)] for c in range(12)]
    with pytest.raises(HubSpotApiError, match="boom"):
        list(lookup.read_many("contacts", "email", chunks))
