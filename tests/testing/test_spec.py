"""The spec module: what it loads, that its fast pre-check never accepts what jsonschema refuses,
and what validation costs per request."""

from __future__ import annotations

import copy
import random
import time
from typing import Any

import pytest

from airflow_hubspot_assoc.testing import spec


@pytest.mark.parametrize("version", spec.API_VERSIONS)
@pytest.mark.parametrize("endpoint", sorted(spec.ENDPOINTS))
def test_every_operation_compiles_with_a_precheck(version, endpoint):
    operation = spec.operation(version, endpoint)
    kind = spec.ENDPOINTS[endpoint][0]
    # v4 names the undated generation: v3 for the objects and properties APIs.
    undated = "v3" if kind in ("objects", "properties") else "v4"
    assert (undated if version == "v4" else version) in operation.path_template
    assert operation.path_template.endswith(
        {
            "batch_create": "/batch/create",
            "batch_associate_default": "/batch/associate/default",
            "batch_read": "/batch/read",
            "batch_archive": "/batch/archive",
            "batch_labels_archive": "/batch/labels/archive",
            "labels": "/labels",
            "labels_create": "/labels",
            "objects_batch_read": "/{objectType}/batch/read",
            "objects_search": "/{objectType}/search",
            "property": "/{objectType}/{propertyName}",
        }[endpoint]
    )
    assert f"/{kind.replace('schema', 'associations')}" in operation.path_template
    for status, validator in operation.responses.items():
        if status == "204":  # v4's archives answer no body
            assert validator is None and endpoint.endswith("archive") and version == "v4"
        else:
            assert validator is not None and validator.precheck is not None
    if endpoint not in ("labels", "property"):
        assert operation.request is not None and operation.request.precheck is not None


def test_documented_statuses_differ_by_version():
    assert spec.operation("v4", "batch_create").documented_statuses == (201, 207)
    assert spec.operation("2026-03", "batch_create").documented_statuses == (201, 207)
    assert spec.operation("2026-09", "batch_create").documented_statuses == (200,)
    assert spec.operation("v4", "batch_read").documented_statuses == (200, 207)
    assert spec.operation("2026-09", "batch_read").documented_statuses == (200,)
    ok = {
        "status": "COMPLETE",
        "results": [],
        "startedAt": "2026-01-01T00:00:00Z",
        "completedAt": "2026-01-01T00:00:01Z",
    }
    assert spec.validate_response("2026-09", "batch_create", 200, ok) == []
    assert spec.validate_response("2026-09", "batch_create", 201, ok) == [
        "status 201 is not documented for batch_create in 2026-09"
    ]


def test_formats_are_checked():
    good = {"category": "X", "correlationId": "aeb5f871-7f07-4993-9211-075dc63e7cbf", "message": "m"}
    assert spec.error_schema().errors(good) == []
    assert spec.error_schema().errors({**good, "correlationId": "nope"}) == [
        "correlationId: 'nope' is not a 'uuid'"
    ]
    body = {
        "status": "COMPLETE",
        "results": [],
        "startedAt": "yesterday",
        "completedAt": "2026-01-01T00:00:00.5+02:00",
    }
    assert spec.validate_response("v4", "batch_read", 200, body) == [
        "startedAt: 'yesterday' is not a 'date-time'"
    ]
    too_big = {
        "inputs": [
            {
                "from": {"id": "1"},
                "to": {"id": "2"},
                "types": [{"associationCategory": "USER_DEFINED", "associationTypeId": 2**31}],
            }
        ]
    }
    assert "is not a 'int32'" in spec.validate_request("v4", "batch_create", too_big)[0]


def test_unknown_version_or_endpoint():
    with pytest.raises(KeyError):
        spec.operation("2025-09", "batch_create")
    with pytest.raises(KeyError):
        spec.operation("v4", "batch_purge")


def _samples() -> list[tuple[str, str, int | None, Any]]:
    """Valid bodies of every schema the stand-in uses: (version, endpoint, status|None=request, body)."""
    stamp = "2026-01-01T00:00:00.000Z"
    error = {
        "status": "error",
        "category": "VALIDATION_ERROR",
        "message": "m",
        "context": {"fromObjectId": ["1"]},
        "errors": [{"message": "d", "context": {"a": ["b"]}}],
        "links": {},
    }
    out: list[tuple[str, str, int | None, Any]] = []
    for v in spec.API_VERSIONS:
        partial = 200 if v == "2026-09" else 207
        out += [
            (
                v,
                "batch_create",
                None,
                {
                    "inputs": [
                        {
                            "from": {"id": "1"},
                            "to": {"id": "2"},
                            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}],
                        }
                    ]
                },
            ),
            (v, "batch_associate_default", None, {"inputs": [{"from": {"id": "1"}, "to": {"id": "2"}}]}),
            (v, "batch_read", None, {"inputs": [{"id": "1", "after": "5"}]}),
            (v, "labels_create", None, {"label": "A", "name": "a", "inverseLabel": "B"}),
            (
                v,
                "batch_create",
                partial,
                {
                    "status": "COMPLETE",
                    "startedAt": stamp,
                    "completedAt": stamp,
                    "numErrors": 1,
                    "errors": [error],
                    "results": [
                        {
                            "fromObjectTypeId": "0-1",
                            "fromObjectId": "1",
                            "toObjectTypeId": "0-2",
                            "toObjectId": "2",
                            "labels": ["Primary"],
                        }
                    ],
                },
            ),
            (
                v,
                "batch_associate_default",
                200,
                {
                    "status": "PROCESSING",
                    "startedAt": stamp,
                    "completedAt": stamp,
                    "results": [
                        {
                            "from": {"id": "1"},
                            "to": {"id": "2"},
                            "associationSpec": {
                                "associationCategory": "HUBSPOT_DEFINED",
                                "associationTypeId": 279,
                            },
                        }
                    ],
                },
            ),
            (
                v,
                "batch_read",
                partial,
                {
                    "status": "COMPLETE",
                    "startedAt": stamp,
                    "completedAt": stamp,
                    "numErrors": 1,
                    "errors": [error],
                    "results": [
                        {
                            "from": {"id": "1"},
                            "paging": {"next": {"after": "2"}},
                            "to": [
                                {
                                    "toObjectId": "2",
                                    "associationTypes": [
                                        {"category": "HUBSPOT_DEFINED", "typeId": 1, "label": "Primary"}
                                    ],
                                }
                            ],
                        }
                    ],
                },
            ),
            (v, "labels", 200, {"results": [{"category": "USER_DEFINED", "typeId": 1000, "label": "A"}]}),
            (
                v,
                "labels",
                400,
                {
                    "category": "VALIDATION_ERROR",
                    "message": "m",
                    "errors": [{"message": "x"}],
                    "correlationId": "aeb5f871-7f07-4993-9211-075dc63e7cbf",
                },
            ),
        ]
    return out


def _mutations(body: Any, rng: random.Random, n: int) -> list[Any]:
    """Random single-spot damage: drop a key, change a value's type, add a key, break a string."""
    spots: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in node:
                spots.append((node, key))
                walk(node[key])
        elif isinstance(node, list):
            for index in range(len(node)):
                spots.append((node, index))
                walk(node[index])

    walk(body)
    replacements = [None, 1, 1.5, True, "x", "2026-13-45", [], {}, [1], {"a": 1}, 2**40, "HUBSPOT_DEFINED"]
    out = []
    for _ in range(n):
        damaged = copy.deepcopy(body)
        spots.clear()
        walk(damaged)
        container, key = rng.choice(spots)
        if isinstance(container, dict) and rng.random() < 0.3:
            del container[key]
        else:
            container[key] = rng.choice(replacements)
        out.append(damaged)
    return out


def test_precheck_never_accepts_what_jsonschema_refuses():
    rng = random.Random(42)
    checked = rejected = 0
    for version, endpoint, status, body in _samples():
        operation = spec.operation(version, endpoint)
        compiled = operation.request if status is None else operation.response_validator(status)
        assert compiled is not None and compiled.precheck is not None
        assert compiled.precheck(body), (version, endpoint, status)  # the samples are valid
        assert compiled.validator.is_valid(body)
        for damaged in _mutations(body, rng, 60):
            checked += 1
            if compiled.precheck(damaged):
                assert compiled.validator.is_valid(damaged), (version, endpoint, status, damaged)
            elif not compiled.validator.is_valid(damaged):
                rejected += 1
                assert compiled.errors(damaged)
    assert checked > 1500 and rejected > checked / 3


def test_validation_cost_per_request():
    """The pre-check keeps validation far below jsonschema's cost (about 0.07 ms against 7 ms)."""
    operation = spec.operation("v4", "batch_create")
    request = {
        "inputs": [
            {
                "from": {"id": str(i)},
                "to": {"id": str(i + 1)},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}],
            }
            for i in range(100)
        ]
    }
    stamp = "2026-01-01T00:00:00.000Z"
    response = {
        "status": "COMPLETE",
        "startedAt": stamp,
        "completedAt": stamp,
        "results": [
            {
                "fromObjectTypeId": "0-1",
                "fromObjectId": str(i),
                "toObjectTypeId": "0-2",
                "toObjectId": str(i + 1),
                "labels": [],
            }
            for i in range(100)
        ],
    }
    assert operation.validate_request(request) == [] and operation.validate_response(201, response) == []

    def per_call(func: Any, *args: Any) -> float:
        rounds = 200
        started = time.perf_counter()
        for _ in range(rounds):
            func(*args)
        return (time.perf_counter() - started) / rounds * 1000

    fast = per_call(operation.validate_request, request) + per_call(
        operation.validate_response, 201, response
    )
    assert fast < 2.0  # generous for a shared machine
