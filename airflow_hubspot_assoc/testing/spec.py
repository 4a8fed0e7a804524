"""HubSpot's OpenAPI specs, loaded once, and jsonschema validators for request and response bodies.

The stand-in validates what it receives and what it sends against the vendored specs, and the tests
validate what they receive with the same validators, so the stand-in can never drift from HubSpot's
published contract without a test noticing.

The specs are OpenAPI 3.0: their schema objects are a Draft 4 dialect with a few extra keywords that
jsonschema ignores (``example``, ``description``). ``$ref``s point into the document's
``components``; they are inlined once when a validator is compiled (none of the schemas used here is
recursive), and any recursive one would be left in place and resolved through a ``referencing``
registry that holds the whole document.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator, FormatChecker
from referencing import Registry
from referencing.jsonschema import DRAFT4

from airflow_hubspot_assoc.testing.precheck import Check, compile_precheck

SPECS_DIR = Path(__file__).with_name("specs")

#: API versions the stand-in serves. ``v4`` names the undated generation of each API: v4 for
#: associations and their labels, v3 for objects and properties (whose specs are ``...-v3.json``).
API_VERSIONS: tuple[str, ...] = ("v4", "2026-03", "2026-09")

_PAIR = "/{fromObjectType}/{toObjectType}"
#: Endpoint name -> (spec document kind, the end of its path template, method).
ENDPOINTS: dict[str, tuple[str, str, str]] = {
    "batch_create": ("associations", _PAIR + "/batch/create", "post"),
    "batch_associate_default": ("associations", _PAIR + "/batch/associate/default", "post"),
    "batch_read": ("associations", _PAIR + "/batch/read", "post"),
    "batch_archive": ("associations", _PAIR + "/batch/archive", "post"),
    "batch_labels_archive": ("associations", _PAIR + "/batch/labels/archive", "post"),
    "labels": ("schema", _PAIR + "/labels", "get"),
    "labels_create": ("schema", _PAIR + "/labels", "post"),
    "objects_batch_read": ("objects", "/{objectType}/batch/read", "post"),
    "objects_search": ("objects", "/{objectType}/search", "post"),
    "property": ("properties", "/{objectType}/{propertyName}", "get"),
}

_SPEC_FILES = {
    "associations": "crm-associations-{v}.json",
    "schema": "crm-associations-schema-{v}.json",
    "objects": "crm-objects-{v}.json",
    "properties": "crm-properties-{v}.json",
}
_UNDATED_FILE_VERSION = {"objects": "v3", "properties": "v3"}

# OpenAPI 3.0 formats that matter for these specs; jsonschema knows none of int32/int64 and needs
# extra packages for date-time, so they are checked here without new dependencies.
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$")
_FORMATS = FormatChecker(formats=())


@_FORMATS.checks("int32")
def _is_int32(value: object) -> bool:
    return not isinstance(value, int) or isinstance(value, bool) or -(2**31) <= value < 2**31


@_FORMATS.checks("int64")
def _is_int64(value: object) -> bool:
    return not isinstance(value, int) or isinstance(value, bool) or -(2**63) <= value < 2**63


@_FORMATS.checks("date-time")
def _is_date_time(value: object) -> bool:
    return not isinstance(value, str) or bool(_DATE_TIME.match(value))


@_FORMATS.checks("uuid", raises=ValueError)
def _is_uuid(value: object) -> bool:
    if isinstance(value, str):
        uuid.UUID(value)
    return True


@cache
def load_spec(api_version: str, kind: str = "associations") -> dict[str, Any]:
    """Return the parsed spec document of ``kind`` (see ``_SPEC_FILES``) for a version."""
    if api_version not in API_VERSIONS:
        raise KeyError(f"no vendored spec for API version {api_version!r}; known: {API_VERSIONS}")
    if kind not in _SPEC_FILES:
        raise KeyError(f"unknown spec kind {kind!r}")
    file_version = _UNDATED_FILE_VERSION.get(kind, "v4") if api_version == "v4" else api_version
    with (SPECS_DIR / _SPEC_FILES[kind].format(v=file_version)).open(encoding="utf-8") as fh:
        doc: dict[str, Any] = json.load(fh)
    return doc


def _pointer(doc: Mapping[str, Any], ref: str) -> Any:
    if not ref.startswith("#/"):
        raise ValueError(f"only local $refs are used by these specs, got {ref!r}")
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _inline(node: Any, doc: Mapping[str, Any], uri: str, stack: tuple[str, ...] = ()) -> Any:
    """Copy ``node`` with every non-recursive local ``$ref`` replaced by its target.

    A recursive ``$ref`` is made absolute (``uri`` names the whole document in the registry).
    """
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            if ref in stack:
                return {"$ref": uri + ref}
            return _inline(_pointer(doc, ref), doc, uri, (*stack, ref))
        return {k: _inline(v, doc, uri, stack) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, doc, uri, stack) for v in node]
    return node


def _safe(name: str) -> Check:
    """A format predicate that answers False instead of raising (for the pre-check)."""
    func, raises = _FORMATS.checkers[name]

    def check(value: Any) -> bool:
        try:
            return bool(func(value))
        except raises:
            return False

    return check


_PRECHECK_FORMATS: dict[str, Check] = {name: _safe(name) for name in _FORMATS.checkers}


@dataclass(frozen=True)
class CompiledSchema:
    """A jsonschema validator plus an optional fast pre-check; jsonschema has the last word."""

    validator: Draft4Validator
    precheck: Check | None

    def errors(self, body: Any) -> list[str]:
        """Return the violations of ``body`` (empty when valid), with jsonschema's messages."""
        if self.precheck is not None:
            try:
                if self.precheck(body):
                    return []
            except (TypeError, ValueError, RecursionError):
                pass
        elif self.validator.is_valid(body):
            return []
        return [
            f"{'/'.join(str(p) for p in err.absolute_path) or '<root>'}: {err.message}"
            for err in sorted(self.validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))
        ]


def _compile(schema: Mapping[str, Any], doc: Mapping[str, Any], uri: str) -> CompiledSchema:
    registry: Registry[Any] = Registry().with_resource(uri, DRAFT4.create_resource(dict(doc)))
    inlined = _inline(schema, doc, uri)
    validator = Draft4Validator(inlined, registry=registry, format_checker=_FORMATS)
    return CompiledSchema(validator=validator, precheck=compile_precheck(inlined, _PRECHECK_FORMATS))


def _json_schema(content: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if not content:
        return None
    media = content.get("application/json") or content.get("*/*") or next(iter(content.values()))
    schema = media.get("schema") if isinstance(media, Mapping) else None
    return schema if isinstance(schema, Mapping) else None


@dataclass
class SpecOperation:
    """One operation of one API version, with its validators compiled once.

    ``responses`` maps a status code (``"201"``, ``"default"``) to a validator, or to ``None`` when
    the spec documents that status without a body.
    """

    api_version: str
    endpoint: str
    method: str
    path_template: str
    request: CompiledSchema | None
    responses: dict[str, CompiledSchema | None] = field(default_factory=dict)

    @property
    def documented_statuses(self) -> tuple[int, ...]:
        """The explicit (non-default) statuses the spec lists for this operation."""
        return tuple(int(s) for s in self.responses if s.isdigit())

    def validate_request(self, body: Any) -> list[str]:
        """Return the spec violations of a request body (empty when valid)."""
        if self.request is None:
            return []
        return self.request.errors(body)

    def response_validator(self, status: int) -> CompiledSchema | None:
        """The validator for a response status, falling back to ``default`` like OpenAPI does."""
        key = str(status)
        if key in self.responses:
            return self.responses[key]
        return self.responses.get("default")

    def validate_response(self, status: int, body: Any) -> list[str]:
        """Return the spec violations of a response (empty when valid).

        A status the spec does not list is checked against ``default`` (HubSpot's Error), except a
        2xx, which the spec would have had to list: answering an undocumented success code is a
        violation in itself (2026-09 batch create documents only 200, for instance).
        """
        key = str(status)
        if key not in self.responses and 200 <= status < 300:
            return [f"status {status} is not documented for {self.endpoint} in {self.api_version}"]
        validator = self.response_validator(status)
        if validator is None:
            return [] if body in (None, b"", "") else [f"status {status} documents no body"]
        return validator.errors(body)


@cache
def operation(api_version: str, endpoint: str) -> SpecOperation:
    """Return the compiled :class:`SpecOperation` of ``endpoint`` (see ``ENDPOINTS``) in a version."""
    if endpoint not in ENDPOINTS:
        raise KeyError(f"unknown endpoint {endpoint!r}; known: {sorted(ENDPOINTS)}")
    kind, suffix, method = ENDPOINTS[endpoint]
    doc = load_spec(api_version, kind)
    matches = [
        p
        for p, ops in doc["paths"].items()
        if p.endswith(suffix) and "/definitions/" not in p and method in ops
    ]
    if len(matches) != 1:
        raise LookupError(f"{endpoint} in {api_version}: expected one spec path, found {matches}")
    path = matches[0]
    op = doc["paths"][path][method]
    uri = f"urn:hubspot-openapi:{kind}:{api_version}"
    request_schema = _json_schema(op.get("requestBody", {}).get("content"))
    responses: dict[str, CompiledSchema | None] = {}
    for status, response in op.get("responses", {}).items():
        if "$ref" in response:
            response = _pointer(doc, response["$ref"])
        schema = _json_schema(response.get("content"))
        responses[status] = _compile(schema, doc, uri) if schema is not None else None
    return SpecOperation(
        api_version=api_version,
        endpoint=endpoint,
        method=method.upper(),
        path_template=path,
        request=_compile(request_schema, doc, uri) if request_schema is not None else None,
        responses=responses,
    )


def error_schema(api_version: str = "v4") -> CompiledSchema:
    """The validator of HubSpot's ``Error`` schema (the body of every documented error status)."""
    return _error_schema(api_version)


@cache
def _error_schema(api_version: str) -> CompiledSchema:
    doc = load_spec(api_version, "associations")
    return _compile(
        {"$ref": "#/components/schemas/Error"}, doc, f"urn:hubspot-openapi:associations:{api_version}"
    )


def validate_request(api_version: str, endpoint: str, body: Any) -> list[str]:
    """Shortcut for ``operation(api_version, endpoint).validate_request(body)``."""
    return operation(api_version, endpoint).validate_request(body)


def validate_response(api_version: str, endpoint: str, status: int, body: Any) -> list[str]:
    """Shortcut for ``operation(api_version, endpoint).validate_response(status, body)``."""
    return operation(api_version, endpoint).validate_response(status, body)


def warm_up() -> None:
    """Compile every validator now, so the first request served does not pay for it."""
    for version in API_VERSIONS:
        for endpoint in ENDPOINTS:
            operation(version, endpoint)
        _error_schema(version)
