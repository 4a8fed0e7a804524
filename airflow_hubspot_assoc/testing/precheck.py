"""Compile a JSON schema into one plain Python function that says "valid" fast.

jsonschema walks the schema anew for every node of every body (about 45 µs a node): 4 ms for a
100-input batch, more than the rest of a request costs. The stand-in serves about a thousand of
those a second in benchmarks, so each schema is turned once into straight-line Python source
(type tests, loops, set lookups), which checks the same body in tens of µs.

This is a pre-check, not the judge: it understands a subset of keywords (the ones HubSpot's specs
use), it is at least as strict as jsonschema on that subset, and a body it rejects is re-judged by
jsonschema, which also writes the messages. A schema using any other keyword gets no pre-check.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Check = Callable[[Any], bool]

# ``nullable`` (OpenAPI 3.0) is ignored by Draft 4 jsonschema, so the pre-check ignores it too.
_ANNOTATIONS = frozenset({"description", "example", "title", "default", "externalDocs", "xml", "nullable"})
_SUPPORTED = frozenset({"type", "properties", "required", "items", "enum", "format", "additionalProperties"})
# Exact types: json.loads builds only these, and being stricter than jsonschema only sends a body
# on to jsonschema. bool is not an integer here, as in Draft 4.
_TYPE_TESTS = {
    "object": "type({v}) is not dict",
    "array": "type({v}) is not list",
    "string": "type({v}) is not str",
    "integer": "type({v}) is not int",
    "number": "(type({v}) is not int and type({v}) is not float)",
    "boolean": "type({v}) is not bool",
}
_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


class _Unsupported(Exception):
    pass


class _Emitter:
    def __init__(self, formats: Mapping[str, Check]) -> None:
        self.formats = formats
        self.lines: list[str] = []
        self.constants: dict[str, Any] = {}
        self._names = 0

    def name(self, prefix: str) -> str:
        self._names += 1
        return f"{prefix}{self._names}"

    def constant(self, value: Any) -> str:
        name = self.name("_k")
        self.constants[name] = value
        return name

    def emit(self, schema: Any, var: str, depth: int) -> None:
        """Append the checks of ``schema`` on variable ``var``, indented ``depth`` levels."""
        if not isinstance(schema, dict) or set(schema) - _SUPPORTED - _ANNOTATIONS:
            raise _Unsupported
        pad = "    " * depth
        kind = schema.get("type")
        if kind is None:
            if set(schema) - _ANNOTATIONS:
                raise _Unsupported  # untyped constraints: leave them to jsonschema
            return
        if kind not in _TYPE_TESTS:
            raise _Unsupported
        self.lines.append(f"{pad}if {_TYPE_TESTS[kind].format(v=var)}: return False")
        if "enum" in schema:
            allowed = schema["enum"]
            if kind in ("object", "array") or any(not _same_kind(kind, a) for a in allowed):
                raise _Unsupported
            self.lines.append(f"{pad}if {var} not in {self.constant(frozenset(allowed))}: return False")
        if "format" in schema:
            self._format(schema["format"], kind, var, pad)
        if kind == "array" and "items" in schema:
            item = self.name("i")
            mark = len(self.lines)
            self.lines.append(f"{pad}for {item} in {var}:")
            self.emit(schema["items"], item, depth + 1)
            if len(self.lines) == mark + 1:
                self.lines.pop()  # nothing to check per item
        elif kind == "object":
            self._object(schema, var, depth)
        elif {"items", "properties", "required", "additionalProperties"} & schema.keys():
            raise _Unsupported  # keywords that do not apply to this type: let jsonschema judge

    def _format(self, fmt: str, kind: str, var: str, pad: str) -> None:
        if kind == "integer" and fmt in _RANGES:
            low, high = _RANGES[fmt]
            self.lines.append(f"{pad}if not {low} <= {var} <= {high}: return False")
        elif fmt in self.formats:
            self.lines.append(f"{pad}if not {self.constant(self.formats[fmt])}({var}): return False")

    def _object(self, schema: dict[str, Any], var: str, depth: int) -> None:
        pad = "    " * depth
        for required in schema.get("required", ()):
            self.lines.append(f"{pad}if {required!r} not in {var}: return False")
        properties = schema.get("properties", {})
        for prop, sub in properties.items():
            value = self.name("p")
            mark = len(self.lines)
            self.lines.append(f"{pad}{value} = {var}.get({prop!r}, _MISSING)")
            self.lines.append(f"{pad}if {value} is not _MISSING:")
            self.emit(sub, value, depth + 1)
            if len(self.lines) == mark + 2:
                del self.lines[mark:]
        extra = schema.get("additionalProperties", True)
        if extra is True:
            return
        known = self.constant(frozenset(properties))
        if extra is False:
            self.lines.append(f"{pad}if not {known}.issuperset({var}): return False")
            return
        if not isinstance(extra, dict):
            raise _Unsupported
        key, value = self.name("k"), self.name("x")
        mark = len(self.lines)
        self.lines.append(f"{pad}for {key}, {value} in {var}.items():")
        self.lines.append(f"{pad}    if {key} in {known}: continue")
        self.emit(extra, value, depth + 1)
        if len(self.lines) == mark + 2:
            del self.lines[mark:]


def _same_kind(kind: str, value: Any) -> bool:
    if kind == "number":
        return type(value) in (int, float)
    expected = {"object": dict, "array": list, "string": str, "integer": int, "boolean": bool}[kind]
    return type(value) is expected


def compile_precheck(schema: Any, formats: Mapping[str, Check]) -> Check | None:
    """A function returning True only for instances valid against ``schema`` (``$ref``-free).

    ``formats`` maps format names to predicates (the ones jsonschema is given, so both agree);
    ``int32``/``int64`` are range checks. Returns None when the schema is out of reach.
    """
    emitter = _Emitter(formats)
    try:
        emitter.emit(schema, "v", 1)
    except _Unsupported:
        return None
    source = "\n".join(["def check(v):", *emitter.lines, "    return True"])
    namespace: dict[str, Any] = {"_MISSING": object(), **emitter.constants}
    # The source is built only from the vendored specs' keywords, names quoted with repr().
    exec(compile(source, "<precheck>", "exec"), namespace)
    check: Check = namespace["check"]
    check.__doc__ = source
    return check
