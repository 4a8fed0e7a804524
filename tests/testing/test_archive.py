"""Association removal and label creation over real HTTP: v4 (204) and dated versions (200)."""

from __future__ import annotations

import pytest
import requests

from airflow_hubspot_assoc.testing import HubSpotStandIn, StandInConfig
from tests.testing.crm_support import request, url_path
from tests.testing.support import call, create_inputs

VERSIONS = ("v4", "2026-03", "2026-09")
UNLABELED, PRIMARY = 279, 1


@pytest.fixture
def hs():
    with HubSpotStandIn(StandInConfig(rate_limit=None)) as standin:
        yield standin
    assert standin.stats.response_violations == 0, standin.stats.response_violation_messages


def _seed(
    hs: HubSpotStandIn, pairs: list[tuple[str, str]], *type_ids: int, category: str = "HUBSPOT_DEFINED"
) -> None:
    for type_id in type_ids:
        call(hs, "v4", "batch_create", create_inputs(pairs, type_id, category))


def _labels_archive(pairs: list[tuple[str, str]], *types: tuple[str, int]) -> dict:
    return {
        "inputs": [
            {
                "from": {"id": f},
                "to": {"id": t},
                "types": [{"associationCategory": c, "associationTypeId": i} for c, i in types],
            }
            for f, t in pairs
        ]
    }


@pytest.mark.parametrize("version", VERSIONS)
def test_batch_archive_removes_every_type_of_each_pair(hs, version):
    label = hs.add_label("contacts", "companies", "Former employer")
    _seed(hs, [("1", "10"), ("1", "11"), ("2", "10")], UNLABELED, PRIMARY)
    _seed(hs, [("1", "10")], label, category="USER_DEFINED")
    body = {"inputs": [{"from": {"id": "1"}, "to": [{"id": "10"}, {"id": "11"}]}]}
    status, answer = request(hs, version, "batch_archive", body)
    if version == "v4":
        assert status == 204 and answer is None
    else:
        assert status == 200 and answer["status"] == "COMPLETE" and "errors" not in answer
    assert {(f, t) for f, t, _, _ in hs.associations("contacts", "companies")} == {("2", "10")}
    # The inverse associations went too.
    assert {(f, t) for f, t, _, _ in hs.associations("companies", "contacts")} == {("10", "2")}
    assert hs.stats.associations_archived == 5
    assert hs.stats.by_endpoint_status[("batch_archive", status)] == 1


@pytest.mark.parametrize("version", VERSIONS)
def test_labels_archive_removes_only_the_given_types(hs, version):
    label = hs.add_label("contacts", "companies", "Billing contact", inverse_label="Billed company")
    _seed(hs, [("1", "10"), ("2", "10")], UNLABELED, PRIMARY)
    _seed(hs, [("1", "10"), ("2", "10")], label, category="USER_DEFINED")
    body = _labels_archive([("1", "10")], ("USER_DEFINED", label), ("HUBSPOT_DEFINED", PRIMARY))
    status, _ = request(hs, version, "batch_labels_archive", body)
    assert status == (204 if version == "v4" else 200)
    stored = hs.associations("contacts", "companies")
    assert {(t, i) for f, t, _, i in stored if f == "1"} == {("10", UNLABELED)}
    assert {i for f, _, _, i in stored if f == "2"} == {UNLABELED, PRIMARY, label}
    inverse = hs.associations("companies", "contacts")
    assert {i for _, t, _, i in inverse if t == "1"} == {280}
    assert hs.stats.associations_archived == 2


@pytest.mark.parametrize("version", VERSIONS)
def test_archiving_the_unlabeled_type_cascades_to_every_label(hs, version):
    label = hs.add_label("contacts", "companies", "Champion")
    _seed(hs, [("5", "50"), ("6", "60")], UNLABELED, PRIMARY)
    _seed(hs, [("5", "50")], label, category="USER_DEFINED")
    status, _ = request(
        hs, version, "batch_labels_archive", _labels_archive([("5", "50")], ("HUBSPOT_DEFINED", UNLABELED))
    )
    assert status == (204 if version == "v4" else 200)
    assert {f for f, _, _, _ in hs.associations("contacts", "companies")} == {"6"}
    assert {t for _, t, _, _ in hs.associations("companies", "contacts")} == {"6"}
    # The other direction's unlabeled type cascades the same way.
    status, _ = request(
        hs,
        version,
        "batch_labels_archive",
        _labels_archive([("60", "6")], ("HUBSPOT_DEFINED", 280)),
        object_type="companies",
        to_type="contacts",
    )
    assert hs.associations("contacts", "companies") == set() == hs.associations("companies", "contacts")


@pytest.mark.parametrize("version", ["2026-03", "2026-09"])
def test_dated_versions_report_what_could_not_be_archived(hs, version):
    hs.set_missing_records("companies", ["99"])
    _seed(hs, [("1", "10")], UNLABELED)
    body = _labels_archive([("1", "10"), ("1", "99")], ("USER_DEFINED", 123_456))
    status, answer = request(hs, version, "batch_labels_archive", body)
    assert status == 200 and answer["numErrors"] == 2
    assert [e["category"] for e in answer["errors"]] == ["VALIDATION_ERROR", "OBJECT_NOT_FOUND"]
    assert answer["errors"][1]["context"] == {"toObjectId": ["99"]}
    status, answer = request(
        hs, version, "batch_archive", {"inputs": [{"from": {"id": "x"}, "to": [{"id": "10"}]}]}
    )
    assert status == 200 and answer["errors"][0]["context"] == {"fromObjectId": ["x"]}
    assert len(hs.associations("contacts", "companies")) == 1


def test_v4_answers_204_even_for_inputs_it_could_not_apply(hs):
    response = requests.post(
        hs.url + url_path("v4", "batch_labels_archive"),
        json=_labels_archive([("1", "2")], ("USER_DEFINED", 123_456)),
        headers={"Authorization": f"Bearer {hs.token}"},
        timeout=10,
    )
    assert response.status_code == 204 and response.content == b""
    assert "Content-Type" not in response.headers
    assert hs.requests[-1].endpoint == "batch_labels_archive" and hs.requests[-1].status == 204


def test_archives_count_as_writes_and_are_capped_and_validated():
    with HubSpotStandIn(StandInConfig(rate_limit=None, max_batch_inputs=3)) as hs:
        hs.add_token("pat-read-only", ["crm.objects.contacts.read"])
        body = {"inputs": [{"from": {"id": str(i)}, "to": [{"id": "1"}]} for i in range(1, 5)]}
        status, error = request(hs, "v4", "batch_archive", body)
        assert status == 400 and "at most 3" in error["message"]
        status, error = request(hs, "2026-09", "batch_archive", {"inputs": [{"from": {"id": "1"}}]})
        assert status == 400 and hs.stats.spec_violations == 1
        status, error = request(
            hs,
            "v4",
            "batch_labels_archive",
            _labels_archive([("1", "2")], ("WORK", 1)),
            token="pat-read-only",
        )
        assert status == 403 and error["category"] == "MISSING_SCOPES"
        assert (
            request(
                hs, "2026-03", "batch_labels_archive", _labels_archive([("1", "2")], ("HUBSPOT_DEFINED", 1))
            )[0]
            == 200
        )
        assert hs.stats.write_requests == 4


# -- labels create ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_label_create_answers_the_new_type_ids_and_refuses_duplicates(hs, version):
    body = {"label": "Decision maker", "name": "decision_maker", "inverseLabel": "Decided by"}
    response = call(hs, version, "labels_create", body, from_type="contacts", to_type="deals")
    assert response.status_code == 200
    created, inverse = response.json()["results"]
    assert created["label"] == "Decision maker" and inverse["label"] == "Decided by"
    assert {"category": "USER_DEFINED", "typeId": created["typeId"], "label": "Decision maker"} in hs.labels(
        "contacts", "deals"
    )
    assert inverse in hs.labels("deals", "contacts")
    same_name = call(
        hs,
        version,
        "labels_create",
        {"label": "Other", "name": "decision_maker"},
        from_type="contacts",
        to_type="deals",
    )
    assert same_name.status_code == 400 and same_name.json()["category"] == "VALIDATION_ERROR"
    same_label = call(
        hs,
        version,
        "labels_create",
        {"label": "DECISION MAKER", "name": "dm2"},
        from_type="contacts",
        to_type="deals",
    )
    assert same_label.status_code == 400
    # A label without an inverse names both directions alike.
    plain = call(
        hs,
        version,
        "labels_create",
        {"label": "Advisor", "name": "advisor"},
        from_type="contacts",
        to_type="deals",
    )
    assert [t["label"] for t in plain.json()["results"]] == ["Advisor", "Advisor"]


def test_add_label_takes_an_inverse_and_an_internal_name(hs):
    type_id = hs.add_label("contacts", "companies", "Reseller", inverse_label="Resold by", name="reseller")
    assert {"category": "USER_DEFINED", "typeId": type_id, "label": "Reseller"} in hs.labels(
        "contacts", "companies"
    )
    assert any(t.get("label") == "Resold by" for t in hs.labels("companies", "contacts"))
    with pytest.raises(ValueError, match="reseller"):
        hs.add_label("contacts", "companies", "Another", name="reseller")
