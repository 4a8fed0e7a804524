"""Configuration of the HubSpot stand-in: plain dataclasses, loadable from JSON for the CLI."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from airflow_hubspot_assoc.constants import BATCH_READ_MAX_INPUTS, BATCH_SIZE_MAX

#: The private-app token of a default stand-in: fixed, so scripts and docs can name it.
DEFAULT_TOKEN = "pat-na1-00000000-0000-4000-8000-00000000cafe"


@dataclass(frozen=True)
class RateLimitConfig:
    """HubSpot's per-app rolling window and daily limit.

    An app is a private-app token or an OAuth client. Requests count at arrival; a 429 does not
    take a slot. HubSpot does not always send ``Retry-After``, so it is off unless asked for.
    """

    max_requests: int = 100
    interval_ms: int = 10_000
    daily: int = 250_000
    announce_headers: bool = True
    retry_after: bool = False

    def __post_init__(self) -> None:
        if self.max_requests < 1 or self.interval_ms < 1 or self.daily < 1:
            raise ValueError(f"rate limits must be positive, got {self}")


@dataclass(frozen=True)
class LatencyConfig:
    """Time spent "processing" each API request: base + per input + uniform jitter (seeded)."""

    base_ms: float = 0.0
    per_input_ms: float = 0.0
    jitter_ms: float = 0.0

    def __post_init__(self) -> None:
        if min(self.base_ms, self.per_input_ms, self.jitter_ms) < 0:
            raise ValueError(f"latencies cannot be negative, got {self}")


@dataclass(frozen=True)
class FaultConfig:
    """Seeded, reproducible failures of API requests.

    The three ratios share one draw per request, so they are exclusive and must sum to at most 1:
    ``error_5xx_ratio`` answers one of ``error_5xx_statuses`` before applying anything,
    ``reset_ratio`` applies the request and then drops the connection without an answer, and
    ``slow_ratio`` applies it and answers after ``slow_seconds`` (longer than a client's read
    timeout). Every ``storm_every_s`` seconds after start, a 429 storm lasts ``storm_duration_s``.
    """

    seed: int = 0
    error_5xx_ratio: float = 0.0
    reset_ratio: float = 0.0
    slow_ratio: float = 0.0
    slow_seconds: float = 30.0
    storm_every_s: float = 0.0
    storm_duration_s: float = 0.0
    error_5xx_statuses: tuple[int, ...] = (500, 502, 503, 504)

    def __post_init__(self) -> None:
        ratios = (self.error_5xx_ratio, self.reset_ratio, self.slow_ratio)
        if min(ratios) < 0 or sum(ratios) > 1:
            raise ValueError(f"fault ratios must be >= 0 and sum to <= 1, got {ratios}")
        if not self.error_5xx_statuses or any(not 500 <= s <= 599 for s in self.error_5xx_statuses):
            raise ValueError(f"error_5xx_statuses must be 5xx codes, got {self.error_5xx_statuses}")
        object.__setattr__(self, "error_5xx_statuses", tuple(self.error_5xx_statuses))

    @property
    def enabled(self) -> bool:
        """Whether any per-request fault can happen (storms are decided separately)."""
        return self.error_5xx_ratio + self.reset_ratio + self.slow_ratio > 0


@dataclass(frozen=True)
class OAuthApp:
    """An OAuth app: its refresh token trades for access tokens at ``POST /oauth/v1/token``.

    ``scopes=None`` grants every scope.
    """

    client_id: str
    client_secret: str
    refresh_token: str
    scopes: tuple[str, ...] | None = None
    access_token_ttl_s: float = 1800.0

    def __post_init__(self) -> None:
        if self.scopes is not None:
            object.__setattr__(self, "scopes", tuple(self.scopes))

    def __repr__(self) -> str:
        # Secrets stay out of logs and test reports.
        return (
            f"OAuthApp(client_id={self.client_id!r}, scopes={self.scopes!r}, "
            f"access_token_ttl_s={self.access_token_ttl_s})"
        )


@dataclass(frozen=True)
class LabelConfig:
    """A user-defined association label to create at start (CLI users have no Python API)."""

    from_type: str
    to_type: str
    label: str
    category: str = "USER_DEFINED"


@dataclass(frozen=True)
class PropertyConfig:
    """A property definition of an object type, as the properties API answers it.

    Add one per unique custom property (``external_id``) that batch read may use as
    ``idProperty``; ``email`` (contacts) and ``domain`` (companies) are defined by default.
    """

    object_type: str
    name: str
    label: str = ""
    type: str = "string"
    field_type: str = "text"
    has_unique_value: bool = False

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").isalnum() or self.name != self.name.lower():
            raise ValueError(f"property names are lowercase letters, digits and _, got {self.name!r}")


@dataclass(frozen=True)
class GeneratedRecords:
    """``count`` records of ``object_type`` with ids ``first_id`` and up, made at start.

    ``properties`` maps a property to a template formatted with ``id`` (the record id) and ``n``
    (0-based index), for example ``{"email": "user{n}@example.com"}``: seeded, so every run and
    every stand-in agree on the keys without a file of records.
    """

    object_type: str
    count: int
    properties: Mapping[str, str] = field(default_factory=dict)
    first_id: int = 1

    def __post_init__(self) -> None:
        if self.count < 0 or self.first_id < 1:
            raise ValueError(f"count must be >= 0 and first_id >= 1, got {self.count}, {self.first_id}")
        object.__setattr__(self, "properties", dict(self.properties))


def _search_rate_limit() -> RateLimitConfig:
    # HubSpot: "a few requests per second per token"; its answers carry no rate-limit headers.
    return RateLimitConfig(max_requests=5, interval_ms=1_000, daily=10**9, announce_headers=False)


@dataclass(frozen=True)
class SearchConfig:
    """The CRM search API's limits, separate from the 10-second window of the other APIs.

    ``max_in_values`` (values of one ``IN`` filter) is the stand-in's assumption, not a figure
    from HubSpot's docs. ``max_filter_groups`` follows the project's notes on HubSpot (6; HubSpot's
    2024 changelog says 5); filters per group (10) and in all (25) follow that changelog.
    """

    rate_limit: RateLimitConfig | None = field(default_factory=_search_rate_limit)
    max_limit: int = 200
    max_filter_groups: int = 6
    max_filters_per_group: int = 10
    max_filters: int = 25
    max_in_values: int = 100
    max_query_chars: int = 3_000
    max_results: int = 10_000

    def __post_init__(self) -> None:
        numbers = (self.max_limit, self.max_filter_groups, self.max_filters_per_group, self.max_filters)
        if min(*numbers, self.max_in_values, self.max_query_chars, self.max_results) < 1:
            raise ValueError(f"search limits must be >= 1, got {self}")


@dataclass(frozen=True)
class StandInConfig:
    """Everything a stand-in can be told; every field has a default that behaves like HubSpot.

    ``visibility_delay_s`` models eventual consistency: created associations show up in batch
    read only after the delay, and batch create answers ``PROCESSING``. A batch naming any of
    ``cancel_from_ids`` as a from id is answered ``CANCELED`` and stores nothing. The records
    named in ``missing_records`` (object type -> ids) do not exist, nor does a share
    ``missing_ratio`` of all record ids (picked deterministically from ``seed``).
    ``store_associations=False`` only counts writes, for benchmarks of millions of pairs.

    ``records`` (object type -> ``[{"id": "1", "properties": {"email": "a@x.com"}}]``) and
    ``generated_records`` give records property values, which object batch read (by id or
    ``idProperty``) and search answer; ``properties`` adds property definitions to HubSpot's
    defaults. ``objects_read_max_inputs`` caps object batch read; ``search`` holds the search
    API's limits and its own rate limit.
    """

    host: str = "127.0.0.1"
    port: int = 0
    token: str = DEFAULT_TOKEN
    rate_limit: RateLimitConfig | None = field(default_factory=RateLimitConfig)
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    faults: FaultConfig = field(default_factory=FaultConfig)
    max_batch_inputs: int = BATCH_SIZE_MAX
    read_max_inputs: int = BATCH_READ_MAX_INPUTS
    read_page_size: int = 500
    visibility_delay_s: float = 0.0
    cancel_from_ids: frozenset[str] = frozenset()
    missing_records: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    missing_ratio: float = 0.0
    seed: int = 0
    store_associations: bool = True
    validate_responses: bool = True
    request_log_size: int = 10_000
    extra_tokens: Mapping[str, tuple[str, ...] | None] = field(default_factory=dict)
    oauth_apps: tuple[OAuthApp, ...] = ()
    labels: tuple[LabelConfig, ...] = ()
    records: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    generated_records: tuple[GeneratedRecords, ...] = ()
    properties: tuple[PropertyConfig, ...] = ()
    objects_read_max_inputs: int = 100
    search: SearchConfig = field(default_factory=SearchConfig)

    def __post_init__(self) -> None:
        if self.host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"the stand-in binds loopback only, got host {self.host!r}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port out of range: {self.port}")
        if min(self.max_batch_inputs, self.read_max_inputs, self.read_page_size) < 1:
            raise ValueError("max_batch_inputs, read_max_inputs and read_page_size must be >= 1")
        if not 0 <= self.missing_ratio <= 1:
            raise ValueError(f"missing_ratio must be within [0, 1], got {self.missing_ratio}")
        if self.visibility_delay_s < 0:
            raise ValueError(f"visibility_delay_s cannot be negative, got {self.visibility_delay_s}")
        if not self.token:
            raise ValueError("token cannot be empty")
        object.__setattr__(self, "cancel_from_ids", frozenset(str(i) for i in self.cancel_from_ids))
        object.__setattr__(
            self,
            "missing_records",
            {t: tuple(str(i) for i in ids) for t, ids in self.missing_records.items()},
        )
        object.__setattr__(self, "oauth_apps", tuple(self.oauth_apps))
        object.__setattr__(self, "labels", tuple(self.labels))
        if self.objects_read_max_inputs < 1:
            raise ValueError("objects_read_max_inputs must be >= 1")
        object.__setattr__(self, "records", {t: tuple(rs) for t, rs in self.records.items()})
        object.__setattr__(self, "generated_records", tuple(self.generated_records))
        object.__setattr__(self, "properties", tuple(self.properties))

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)
            if f.name not in ("token", "extra_tokens")
        )
        return f"StandInConfig({fields})"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StandInConfig:
        """Build a config from plain values (nested dicts for sub-configs), as JSON gives them.

        Sub-configs may also be given as their dataclass instances; unknown keys are an error,
        so a typo in a config file does not pass silently.
        """
        data = dict(data)
        _reject_unknown(cls, data)
        if isinstance(data.get("rate_limit"), Mapping):
            data["rate_limit"] = _build(RateLimitConfig, data["rate_limit"])
        if isinstance(data.get("latency"), Mapping):
            data["latency"] = _build(LatencyConfig, data["latency"])
        if isinstance(data.get("faults"), Mapping):
            faults = dict(data["faults"])
            if "error_5xx_statuses" in faults:
                faults["error_5xx_statuses"] = tuple(faults["error_5xx_statuses"])
            data["faults"] = _build(FaultConfig, faults)
        if "oauth_apps" in data:
            data["oauth_apps"] = tuple(_maybe_build(OAuthApp, a) for a in data["oauth_apps"])
        if "labels" in data:
            data["labels"] = tuple(_maybe_build(LabelConfig, a) for a in data["labels"])
        if isinstance(data.get("search"), Mapping):
            search = dict(data["search"])
            if isinstance(search.get("rate_limit"), Mapping):
                search["rate_limit"] = _build(RateLimitConfig, search["rate_limit"])
            data["search"] = _build(SearchConfig, search)
        if "generated_records" in data:
            data["generated_records"] = tuple(
                _maybe_build(GeneratedRecords, g) for g in data["generated_records"]
            )
        if "properties" in data:
            data["properties"] = tuple(_maybe_build(PropertyConfig, p) for p in data["properties"])
        if "cancel_from_ids" in data:
            data["cancel_from_ids"] = frozenset(str(i) for i in data["cancel_from_ids"])
        if "extra_tokens" in data:
            data["extra_tokens"] = {
                str(token): (None if scopes is None else tuple(scopes))
                for token, scopes in dict(data["extra_tokens"]).items()
            }
        return cls(**data)

    @classmethod
    def from_json_file(cls, path: str | Path) -> StandInConfig:
        """Load a config written as a JSON object of :class:`StandInConfig` fields."""
        with Path(path).open(encoding="utf-8") as fh:
            data = json.load(fh)
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object of StandInConfig fields")
        return cls.from_dict(data)


_T = TypeVar("_T")


def _reject_unknown(cls: type, data: Iterable[str]) -> None:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields {unknown}; known: {sorted(known)}")


def _build(cls: type[_T], data: Mapping[str, Any]) -> _T:
    _reject_unknown(cls, data)
    return cls(**data)


def _maybe_build(cls: type[_T], value: Any) -> _T:
    return value if isinstance(value, cls) else _build(cls, value)
