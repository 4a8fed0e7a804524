"""How the stand-in's portal behaves: idempotence, limits, eventual consistency, cancel, missing
records, and spec violations in requests."""

from __future__ import annotations

import http.client
import json
import time

import pytest
import requests

from airflow_hubspot_assoc.testing import HubSpotStandIn, StandInConfig
from tests.testing.support import call, create_inputs, default_inputs, path, read_inputs, session


def test_batch_create_is_idempotent(hubspot_standin):
    hs = hubspot_standin
    first = call(hs, "v4", "batch_create", create_inputs([("1", "2"), ("1", "2")]))
    again = call(hs, "v4", "batch_create", create_inputs([("1", "2")]))
    assert first.status_code == again.status_code == 201
    assert len(first.json()["results"]) == 1  # one result per pair
    assert hs.associations("contacts", "companies") == {("1", "2", "HUBSPOT_DEFINED", 279)}
    (result,) = call(hs, "v4", "batch_read", read_inputs(["1"])).json()["results"]
    assert result["to"] == [
        {"toObjectId": "2", "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 279}]}
    ]
    assert hs.stats.associations_written == 3


def test_names_and_type_ids_reach_the_same_records(hubspot_standin):
    hs = hubspot_standin
    call(hs, "2026-03", "batch_create", create_inputs([("10", "20")]), from_type="0-1", to_type="0-2")
    call(hs, "v4", "batch_create", create_inputs([("11", "20")]), from_type="contact", to_type="Companies")
    read = call(hs, "v4", "batch_read", read_inputs(["10", "11"])).json()["results"]
    assert [r["to"][0]["toObjectId"] for r in read] == ["20", "20"]
    assert hs.associations("0-1", "0-2") == hs.associations("contacts", "companies")


def test_record_ids_are_canonicalised(hubspot_standin):
    hs = hubspot_standin
    result = call(hs, "v4", "batch_create", create_inputs([("007", "0042")])).json()["results"][0]
    assert (result["fromObjectId"], result["toObjectId"]) == ("7", "42")
    answer = call(hs, "v4", "batch_create", create_inputs([("abc", "1"), ("1", str(2**63))])).json()
    assert [e["context"] for e in answer["errors"]] == [
        {"fromObjectId": ["abc"]},
        {"toObjectId": [str(2**63)]},
    ]


def test_custom_object_types_pass_through(hubspot_standin):
    hs = hubspot_standin
    result = call(
        hs,
        "v4",
        "batch_associate_default",
        default_inputs([("1", "2")]),
        from_type="2-1234567",
        to_type="p_cars",
    ).json()["results"][0]
    assert result["associationSpec"]["associationCategory"] == "HUBSPOT_DEFINED"
    created = call(
        hs,
        "v4",
        "batch_create",
        create_inputs([("3", "4")], result["associationSpec"]["associationTypeId"]),
        from_type="2-1234567",
        to_type="p_cars",
    ).json()["results"][0]
    assert created["fromObjectTypeId"] == "2-1234567"
    assert created["toObjectTypeId"].startswith("2-")


def test_unknown_object_type_is_a_400(hubspot_standin):
    hs = hubspot_standin
    response = call(hs, "v4", "batch_create", create_inputs([("1", "2")]), from_type="spaceships")
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"
    assert "spaceships" in response.json()["message"]


@pytest.mark.hubspot_standin(max_batch_inputs=5, read_max_inputs=4)
def test_batch_size_limits(hubspot_standin):
    hs = hubspot_standin
    pairs = [(str(i), str(i + 100)) for i in range(1, 7)]
    too_many = call(hs, "v4", "batch_create", create_inputs(pairs))
    assert too_many.status_code == 400
    assert too_many.json()["category"] == "VALIDATION_ERROR"
    assert "6" in too_many.json()["message"] and "5" in too_many.json()["message"]
    assert call(hs, "v4", "batch_associate_default", default_inputs(pairs)).status_code == 400
    assert call(hs, "v4", "batch_read", read_inputs([str(i) for i in range(1, 6)])).status_code == 400
    assert call(hs, "v4", "batch_read", read_inputs([str(i) for i in range(1, 5)])).status_code == 200
    assert hs.associations("contacts", "companies") == set()


def test_default_limits_match_hubspot(hubspot_standin):
    hs = hubspot_standin
    pairs = [(str(i), str(i + 5000)) for i in range(1, 2002)]
    assert call(hs, "v4", "batch_create", create_inputs(pairs)).status_code == 400
    assert call(hs, "v4", "batch_create", create_inputs(pairs[:2000])).status_code == 201
    assert call(hs, "v4", "batch_read", read_inputs([str(i) for i in range(1, 1002)])).status_code == 400
    assert call(hs, "v4", "batch_read", read_inputs([str(i) for i in range(1, 1001)])).status_code == 200


@pytest.mark.hubspot_standin(visibility_delay_s=0.4)
@pytest.mark.parametrize("endpoint", ["batch_create", "batch_associate_default"])
def test_eventual_consistency(hubspot_standin, endpoint):
    hs = hubspot_standin
    body = create_inputs([("1", "2")]) if endpoint == "batch_create" else default_inputs([("1", "2")])
    written = call(hs, "v4", endpoint, body).json()
    assert written["status"] == "PROCESSING"
    assert written["results"]  # accepted, just not visible yet
    assert call(hs, "v4", "batch_read", read_inputs(["1"])).json()["results"][0]["to"] == []
    assert hs.associations("contacts", "companies")  # stored all the same
    time.sleep(0.5)
    (result,) = call(hs, "v4", "batch_read", read_inputs(["1"])).json()["results"]
    assert [t["toObjectId"] for t in result["to"]] == ["2"]


@pytest.mark.hubspot_standin(cancel_from_ids=["13"])
@pytest.mark.parametrize(("version", "status"), [("v4", 207), ("2026-03", 207), ("2026-09", 200)])
def test_cancel(hubspot_standin, version, status):
    hs = hubspot_standin
    response = call(hs, version, "batch_create", create_inputs([("12", "1"), ("13", "1")]))
    assert response.status_code == status
    body = response.json()
    assert body["status"] == "CANCELED"
    assert body["results"] == []
    assert body["numErrors"] == 1
    assert "13" in body["errors"][0]["message"]
    assert body["errors"][0]["context"] == {}  # the whole batch failed
    assert hs.associations("contacts", "companies") == set()
    default = call(hs, version, "batch_associate_default", default_inputs([("13", "1")]))
    assert default.status_code == 200 and default.json()["status"] == "CANCELED"
    fine = call(hs, version, "batch_create", create_inputs([("12", "1")]))
    assert fine.json()["status"] == "COMPLETE"


def test_missing_ratio_is_deterministic_and_predictable():
    config = StandInConfig(missing_ratio=0.3, seed=11, rate_limit=None)
    pairs = [(str(i), str(i + 1000)) for i in range(1, 201)]
    outcomes = []
    for _ in range(2):
        with HubSpotStandIn(config) as hs:
            body = call(hs, "v4", "batch_create", create_inputs(pairs)).json()
            expected_ok = [
                p for p in pairs if hs.record_exists("contacts", p[0]) and hs.record_exists("0-2", p[1])
            ]
            assert [(r["fromObjectId"], r["toObjectId"]) for r in body["results"]] == expected_ok
            for error in body["errors"]:
                for key, type_name in (("fromObjectId", "contacts"), ("toObjectId", "companies")):
                    for record_id in error["context"].get(key, []):
                        assert not hs.record_exists(type_name, record_id)
            outcomes.append(expected_ok)
    assert outcomes[0] == outcomes[1]
    assert 0.3 < 1 - len(outcomes[0]) / len(pairs) < 0.7  # about 1 - 0.7^2 of the pairs fail
    with HubSpotStandIn(StandInConfig(missing_ratio=0.3, seed=12)) as other:
        assert [
            p for p in pairs if other.record_exists("contacts", p[0]) and other.record_exists("0-2", p[1])
        ] != (outcomes[0])


def test_invalid_request_bodies_are_400s_and_counted(hubspot_standin):
    hs = hubspot_standin
    s = session(hs.token)
    url = hs.url + path("v4", "batch_create")
    not_json = s.post(url, data=b"{nope", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400 and not_json.json()["category"] == "VALIDATION_ERROR"
    wrong = call(hs, "v4", "batch_create", {"inputs": [{"from": {"id": 1}, "to": {"id": "2"}}]})
    assert wrong.status_code == 400
    details = [e["message"] for e in wrong.json()["errors"]]
    assert any("types" in d for d in details) and any("is not of type 'string'" in d for d in details)
    bad_category = create_inputs([("1", "2")], category="FRIENDS")
    assert call(hs, "v4", "batch_create", bad_category).status_code == 400
    assert call(hs, "2026-09", "batch_read", {"inputs": [{"after": "1"}]}).status_code == 400
    assert call(hs, "v4", "labels_create", {"label": "x"}).status_code == 400  # name is required
    assert hs.stats.spec_violations == 5
    assert any("FRIENDS" in m for m in hs.stats.spec_violation_messages)
    assert hs.associations("contacts", "companies") == set()


def test_unknown_paths_and_methods(hubspot_standin):
    hs = hubspot_standin
    s = session(hs.token)
    assert s.post(hs.url + "/crm/v3/associations/contacts/companies/batch/create", json={}).status_code == 404
    assert (
        s.post(hs.url + "/crm/associations/2025-09/contacts/companies/batch/create", json={}).status_code
        == 404
    )
    assert s.get(hs.url + path("v4", "batch_create")).status_code == 405
    assert s.delete(hs.url + path("v4", "labels")).status_code == 405


@pytest.mark.hubspot_standin(store_associations=False)
def test_count_only_mode(hubspot_standin):
    hs = hubspot_standin
    body = call(hs, "v4", "batch_create", create_inputs([("1", "2"), ("3", "4")], type_id=1)).json()
    assert [r["labels"] for r in body["results"]] == [["Primary"], ["Primary"]]
    assert hs.associations("contacts", "companies") == set()
    assert hs.stats.associations_written == 2
    assert call(hs, "v4", "batch_read", read_inputs(["1"])).json()["results"][0]["to"] == []


def test_keep_alive_and_the_request_log(hubspot_standin):
    hs = hubspot_standin
    conn = http.client.HTTPConnection("127.0.0.1", hs.port, timeout=5)
    sockets = set()
    for i in range(5):
        body = json.dumps(create_inputs([(str(i + 1), "9")]))
        conn.request("POST", path("v4", "batch_create"), body, {"Authorization": f"Bearer {hs.token}"})
        response = conn.getresponse()
        assert response.status == 201
        response.read()
        sockets.add(id(conn.sock))
    conn.close()
    assert len(sockets) == 1  # HTTP/1.1 keep-alive: one connection served all five
    assert all(r.headers["Authorization"] == "Bearer <redacted>" for r in hs.requests)
    assert hs.token not in repr(hs.requests)
    assert [(r.method, r.endpoint, r.status, r.n_inputs) for r in hs.requests] == [
        ("POST", "batch_create", 201, 1)
    ] * 5
    assert all(r.finished >= r.started for r in hs.requests)


def test_stopped_stand_in_stops_answering():
    hs = HubSpotStandIn().start()
    s = session(hs.token)
    call(hs, "v4", "batch_create", create_inputs([("1", "2")]), s=s)
    url = hs.url + path("v4", "batch_create")
    hs.stop()
    with pytest.raises(requests.ConnectionError):
        s.post(url, json=create_inputs([("1", "2")]), timeout=2)


@pytest.mark.hubspot_standin(missing_records={"companies": ["102", "0105"], "0-1": [7]})
def test_missing_records_from_the_config(hubspot_standin):
    hs = hubspot_standin
    answer = call(
        hs, "v4", "batch_create", create_inputs([("1", "102"), ("1", "105"), ("7", "3"), ("1", "3")])
    ).json()
    assert [e["context"] for e in answer["errors"]] == [
        {"toObjectId": ["102"]},
        {"toObjectId": ["105"]},
        {"fromObjectId": ["7"]},
    ]
    assert not hs.record_exists("contacts", "7") and hs.record_exists("contacts", "8")
