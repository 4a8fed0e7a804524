"""Every endpoint in every API version, over real HTTP, each answer checked against the spec."""

from __future__ import annotations

import pytest

from airflow_hubspot_assoc.testing import HubSpotStandIn, StandInConfig
from tests.testing.support import (
    VERSIONS,
    call,
    create_inputs,
    default_inputs,
    read_inputs,
)

SUCCESS = {"v4": 201, "2026-03": 201, "2026-09": 200}
PARTIAL = {"v4": 207, "2026-03": 207, "2026-09": 200}


@pytest.fixture(scope="module")
def hs():
    """One stand-in for the read-mostly checks of this module (tests use distinct record ids)."""
    with HubSpotStandIn(StandInConfig(rate_limit=None, read_page_size=3)) as standin:
        yield standin
    assert standin.stats.response_violations == 0, standin.stats.response_violation_messages


@pytest.mark.parametrize("version", VERSIONS)
def test_batch_create_succeeds_with_the_documented_status(hs, version):
    base = 1000 + VERSIONS.index(version) * 100
    pairs = [(str(base + i), str(base + 50 + i)) for i in range(3)]
    response = call(hs, version, "batch_create", create_inputs(pairs))
    assert response.status_code == SUCCESS[version]
    body = response.json()
    assert body["status"] == "COMPLETE"
    assert "errors" not in body
    assert [(r["fromObjectId"], r["toObjectId"]) for r in body["results"]] == pairs
    assert {(r["fromObjectTypeId"], r["toObjectTypeId"]) for r in body["results"]} == {("0-1", "0-2")}
    assert all(r["labels"] == [] for r in body["results"])  # 279 is unlabeled
    stored = hs.associations("contacts", "companies")
    assert {(f, t, "HUBSPOT_DEFINED", 279) for f, t in pairs} <= stored
    # HubSpot's associations are two-way: the inverse type (280) is there too.
    assert {(t, f, "HUBSPOT_DEFINED", 280) for f, t in pairs} <= hs.associations("companies", "contacts")


@pytest.mark.parametrize("version", VERSIONS)
def test_batch_create_reports_failed_inputs(hs, version):
    base = 2000 + VERSIONS.index(version) * 100
    hs.set_missing_records("contacts", [str(base + 1), str(base + 3)])
    hs.set_missing_records("companies", [str(base + 52), str(base + 53)])
    pairs = [(str(base + i), str(base + 50 + i)) for i in range(4)]
    body = create_inputs(pairs)
    body["inputs"].append(
        {
            "from": {"id": str(base)},
            "to": {"id": str(base + 60)},
            "types": [{"associationCategory": "USER_DEFINED", "associationTypeId": 987_654}],
        }
    )
    response = call(hs, version, "batch_create", body)
    assert response.status_code == PARTIAL[version]
    answer = response.json()
    assert [(r["fromObjectId"], r["toObjectId"]) for r in answer["results"]] == [pairs[0]]
    assert answer["numErrors"] == 4 == len(answer["errors"])
    contexts = [e["context"] for e in answer["errors"]]
    assert contexts[:3] == [
        {"fromObjectId": [str(base + 1)]},
        {"toObjectId": [str(base + 52)]},
        {"fromObjectId": [str(base + 3)], "toObjectId": [str(base + 53)]},
    ]
    assert all(e["category"] == "VALIDATION_ERROR" for e in answer["errors"])
    assert str(base + 1) in answer["errors"][0]["message"]
    unknown = answer["errors"][3]
    assert unknown["context"] == {"fromObjectId": [str(base)], "toObjectId": [str(base + 60)]}
    assert unknown["errors"][0]["context"]["associationTypeId"] == ["987654"]
    assert (str(base), str(base + 60), "USER_DEFINED", 987_654) not in hs.associations(
        "contacts", "companies"
    )
    hs.set_missing_records("contacts", [])
    hs.set_missing_records("companies", [])


@pytest.mark.parametrize(
    ("from_type", "to_type", "type_id"),
    [
        ("contacts", "companies", 279),
        ("0-2", "0-1", 280),
        ("deals", "line_items", 19),
        ("tickets", "deals", 28),
    ],
)
@pytest.mark.parametrize("version", VERSIONS)
def test_associate_default_uses_the_unlabeled_built_in_type(hs, version, from_type, to_type, type_id):
    base = 3000 + VERSIONS.index(version) * 100
    response = call(
        hs,
        version,
        "batch_associate_default",
        default_inputs([(str(base), str(base + 1))]),
        from_type=from_type,
        to_type=to_type,
    )
    assert response.status_code == 200
    (result,) = response.json()["results"]
    assert result == {
        "from": {"id": str(base)},
        "to": {"id": str(base + 1)},
        "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id},
    }
    assert (str(base), str(base + 1), "HUBSPOT_DEFINED", type_id) in hs.associations(from_type, to_type)


@pytest.mark.parametrize("version", VERSIONS)
def test_associate_default_reports_missing_records(hs, version):
    hs.set_missing_records("deals", ["4001"])
    response = call(
        hs,
        version,
        "batch_associate_default",
        default_inputs([("4001", "4002"), ("4003", "4004")]),
        from_type="deals",
        to_type="contacts",
    )
    assert response.status_code == 200  # every version documents only 200 here
    body = response.json()
    assert [r["from"]["id"] for r in body["results"]] == ["4003"]
    assert body["errors"][0]["context"] == {"fromObjectId": ["4001"]}
    hs.set_missing_records("deals", [])


def test_made_up_default_types_are_stable_and_distinct(hs):
    forward = call(
        hs,
        "v4",
        "batch_associate_default",
        default_inputs([("5001", "5002")]),
        from_type="calls",
        to_type="notes",
    ).json()["results"][0]["associationSpec"]
    backward = call(
        hs,
        "v4",
        "batch_associate_default",
        default_inputs([("5002", "5001")]),
        from_type="notes",
        to_type="calls",
    ).json()["results"][0]["associationSpec"]
    assert forward["associationCategory"] == backward["associationCategory"] == "HUBSPOT_DEFINED"
    assert forward["associationTypeId"] != backward["associationTypeId"]
    with HubSpotStandIn() as other:
        again = call(
            other,
            "v4",
            "batch_associate_default",
            default_inputs([("1", "2")]),
            from_type="calls",
            to_type="notes",
        ).json()["results"][0]["associationSpec"]
    assert again == forward


@pytest.mark.parametrize("version", VERSIONS)
def test_batch_read_pages_through_every_association(hs, version):
    base = 6000 + VERSIONS.index(version) * 100
    to_ids = [str(base + 10 + i) for i in range(7)]
    call(hs, version, "batch_create", create_inputs([(str(base), t) for t in to_ids]))
    call(hs, version, "batch_create", create_inputs([(str(base), to_ids[0])], type_id=1))  # Primary too
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        response = call(hs, version, "batch_read", read_inputs([str(base)], after))
        assert response.status_code == 200
        (result,) = response.json()["results"]
        assert result["from"] == {"id": str(base)}
        assert len(result["to"]) <= 3  # read_page_size
        seen += [t["toObjectId"] for t in result["to"]]
        pages += 1
        if "paging" not in result:
            break
        after = result["paging"]["next"]["after"]
    assert seen == to_ids and pages == 3
    first = call(hs, version, "batch_read", read_inputs([str(base)])).json()["results"][0]["to"][0]
    assert first["associationTypes"] == [
        {"category": "HUBSPOT_DEFINED", "typeId": 1, "label": "Primary"},
        {"category": "HUBSPOT_DEFINED", "typeId": 279},
    ]


@pytest.mark.parametrize("version", VERSIONS)
def test_batch_read_reports_missing_from_ids(hs, version):
    hs.set_missing_records("contacts", ["7001"])
    response = call(hs, version, "batch_read", read_inputs(["7001", "7002"]))
    assert response.status_code == PARTIAL[version]
    body = response.json()
    assert body["results"] == [{"from": {"id": "7002"}, "to": []}]
    assert body["numErrors"] == 1
    assert body["errors"][0]["context"] == {"fromObjectId": ["7001"]}
    hs.set_missing_records("contacts", [])


@pytest.mark.parametrize("version", VERSIONS)
def test_labels_list_and_create(hs, version):
    from_type, to_type = "deals", f"2-{9000 + VERSIONS.index(version)}"  # a pair of its own
    before = call(hs, version, "labels", from_type=from_type, to_type=to_type).json()["results"]
    assert [t["category"] for t in before] == ["HUBSPOT_DEFINED"]
    response = call(
        hs,
        version,
        "labels_create",
        {"label": "Sponsor", "name": "sponsor", "inverseLabel": "Sponsored"},
        from_type=from_type,
        to_type=to_type,
    )
    assert response.status_code == 200
    created, inverse = response.json()["results"]
    assert created["label"] == "Sponsor" and created["category"] == "USER_DEFINED"
    assert inverse["label"] == "Sponsored"
    after = call(hs, version, "labels", from_type=from_type, to_type=to_type).json()["results"]
    assert created in after
    back = call(hs, version, "labels", from_type=to_type, to_type=from_type).json()["results"]
    assert inverse in back
    # The new label is usable at once, and shows in the create answer.
    result = call(
        hs,
        version,
        "batch_create",
        create_inputs([("1", "2")], created["typeId"], "USER_DEFINED"),
        from_type=from_type,
        to_type=to_type,
    ).json()["results"][0]
    assert result["labels"] == ["Sponsor"]
    assert ("2", "1", "USER_DEFINED", inverse["typeId"]) in hs.associations(to_type, from_type)
    duplicate = call(
        hs,
        version,
        "labels_create",
        {"label": "sponsor", "name": "sponsor2"},
        from_type=from_type,
        to_type=to_type,
    )
    assert duplicate.status_code == 400


def test_known_labels_of_common_pairs(hs):
    labels = call(hs, "v4", "labels").json()["results"]
    assert {"category": "HUBSPOT_DEFINED", "typeId": 279} in labels
    assert {"category": "HUBSPOT_DEFINED", "typeId": 1, "label": "Primary"} in labels
    type_id = hs.add_label("contacts", "companies", "Former employer")
    assert {"category": "USER_DEFINED", "typeId": type_id, "label": "Former employer"} in call(
        hs, "2026-09", "labels"
    ).json()["results"]
    assert hs.labels("0-1", "0-2") == call(hs, "2026-03", "labels").json()["results"]
