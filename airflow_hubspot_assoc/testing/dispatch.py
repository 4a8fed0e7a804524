"""From an HTTP request to HubSpot's answer: routing, auth, limits, validation, faults, latency.

This module knows nothing of sockets (``server.py`` does the HTTP); it turns (method, path,
headers, body) into an :class:`Outcome` that says what to answer, after how long, or whether to
drop the connection. The checks run in HubSpot's order: route, authentication, 429 storm, rate
limit, object types, scopes, body (JSON and spec), batch limits, then injected faults and the
work itself.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from airflow_hubspot_assoc.testing import spec
from airflow_hubspot_assoc.testing.auth import Authenticator, Credential, RateLimiter
from airflow_hubspot_assoc.testing.config import StandInConfig
from airflow_hubspot_assoc.testing.errors import (
    error_body,
    missing_scopes_error,
    rate_limit_body,
    validation_error,
)
from airflow_hubspot_assoc.testing.faults import FaultInjector
from airflow_hubspot_assoc.testing.handlers import AssociationsApi
from airflow_hubspot_assoc.testing.objects import ObjectType, UnknownObjectTypeError, resolve_object_type
from airflow_hubspot_assoc.testing.portal_data import Portal
from airflow_hubspot_assoc.testing.routes import (
    READ_ENDPOINTS,
    SINGLE_TYPE_ENDPOINTS,
    WRITE_ENDPOINTS,
    Route,
    route,
)
from airflow_hubspot_assoc.testing.stats import RequestLog, Stats

CONTROL_PREFIX = "/__standin__/"
OAUTH_PATH = "/oauth/v1/token"
_5XX_CATEGORIES = {
    500: "INTERNAL_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}


@dataclass
class Outcome:
    """What to answer: ``drop`` closes the connection without a word after ``delay_s``."""

    status: int
    body: Any
    endpoint: str
    headers: dict[str, str] = field(default_factory=dict)
    n_inputs: int = 0
    delay_s: float = 0.0
    drop: bool = False
    record: bool = True


class Dispatcher:
    """Holds the stand-in's state and answers requests; safe to call from many threads."""

    def __init__(self, config: StandInConfig, stopping: threading.Event | None = None) -> None:
        spec.warm_up()
        self.config = config
        self.stopping = stopping or threading.Event()
        self.stats = Stats()
        self.log = RequestLog(config.request_log_size)
        self.auth = Authenticator()
        self.auth.add_token(config.token)
        for token, scopes in config.extra_tokens.items():
            self.auth.add_token(token, scopes)
        for app in config.oauth_apps:
            self.auth.add_oauth_app(app)
        self.limiter = RateLimiter(config.rate_limit)
        self.search_limiter = RateLimiter(config.search.rate_limit, policy="SECONDLY")
        self.faults = FaultInjector(config.faults)
        self.api = AssociationsApi(config)
        self.portal = Portal(config, self.api)
        self._jitter = random.Random(config.seed)
        self._jitter_lock = threading.Lock()

    # -- entry point ---------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, authorization: str | None, body: bytes) -> Outcome:
        """Answer one request (never raises for anything a client can send)."""
        path = raw_path.split("?", 1)[0]
        if path.startswith(CONTROL_PREFIX):
            return self._control(method, path)
        if path == OAUTH_PATH:
            return self._oauth(method, body)
        found = route(method, path)
        if found is None:
            return Outcome(
                404, error_body("OBJECT_NOT_FOUND", f"No such resource: {method} {path}"), "unknown"
            )
        if found.endpoint is None:
            message = f"Method {method} is not allowed on {path}"
            return Outcome(405, error_body("VALIDATION_ERROR", message), "unknown")
        outcome = self._api(found, found.endpoint, method, path, authorization, body)
        self._check_response(found.version, outcome)
        return outcome

    # -- API requests --------------------------------------------------------------------------

    def _api(
        self, found: Route, endpoint: str, method: str, path: str, authorization: str | None, body: bytes
    ) -> Outcome:
        if endpoint in WRITE_ENDPOINTS and endpoint != "labels_create":
            self.stats.add(write_requests=1)
        elif endpoint in READ_ENDPOINTS:
            self.stats.add(read_requests=1)
        credential = self.auth.authenticate(authorization)
        if not isinstance(credential, Credential):
            return self._unauthenticated(endpoint, credential)
        if self.faults.storm_active():
            self.stats.record_fault("storm_429")
            rate_headers = self.limiter.peek_headers(credential.app)
            return Outcome(
                429, rate_limit_body("TEN_SECONDLY_ROLLING"), endpoint, self._storm_headers(rate_headers)
            )
        # Search has its own, lower limit per token instead of the 10-second window.
        limiter = self.search_limiter if endpoint == "objects_search" else self.limiter
        decision = limiter.acquire(credential.app)
        rate_headers = decision.headers
        if not decision.allowed:
            return Outcome(
                429, rate_limit_body(decision.policy or "TEN_SECONDLY_ROLLING"), endpoint, rate_headers
            )
        try:
            from_t = resolve_object_type(found.from_raw)
            to_t = from_t if endpoint in SINGLE_TYPE_ENDPOINTS else resolve_object_type(found.to_raw)
        except UnknownObjectTypeError as err:
            return Outcome(400, validation_error(str(err)), endpoint, rate_headers)
        scopes = from_t.scopes(endpoint, write=endpoint in WRITE_ENDPOINTS)
        if not any(credential.allows(scope) for scope in scopes):
            return Outcome(403, missing_scopes_error(scopes), endpoint, rate_headers)
        data, problem = self._parse(found.version, endpoint, body)
        if problem is not None:
            problem.headers = rate_headers
            return problem
        inputs = data.get("inputs", []) if isinstance(data, dict) else []
        n_inputs = len(inputs)
        self.stats.add(inputs_received=n_inputs)
        limit = self._input_limit(endpoint)
        if limit is not None and n_inputs > limit:
            message = f"Too many inputs: {n_inputs} were sent, and at most {limit} are allowed per request."
            return Outcome(400, validation_error(message), endpoint, rate_headers, n_inputs)
        fault = self.faults.decide(method, path, body)
        delay = self._latency(n_inputs)
        if fault is not None and fault.kind == "5xx":
            self.stats.record_fault("5xx")
            category = _5XX_CATEGORIES.get(fault.status, "INTERNAL_ERROR")
            message = "The server encountered an unexpected error; nothing was applied. Please retry."
            return Outcome(
                fault.status, error_body(category, message), endpoint, rate_headers, n_inputs, delay
            )
        status, answer = self._apply(found, from_t, to_t, data, inputs)
        outcome = Outcome(status, answer, endpoint, rate_headers, n_inputs, delay)
        if fault is not None and fault.kind == "slow":
            self.stats.record_fault("slow")
            outcome.delay_s += self.config.faults.slow_seconds
        elif fault is not None and fault.kind == "reset":
            self.stats.record_fault("reset")
            outcome.drop = True
        return outcome

    def _input_limit(self, endpoint: str) -> int | None:
        """HubSpot's cap on a request's inputs (None: the endpoint takes no inputs)."""
        if endpoint == "batch_read":
            return self.config.read_max_inputs
        if endpoint == "objects_batch_read":
            return self.config.objects_read_max_inputs
        if endpoint in WRITE_ENDPOINTS and endpoint != "labels_create":
            return self.config.max_batch_inputs
        return None

    def _apply(
        self, found: Route, from_t: ObjectType, to_t: ObjectType, data: Any, inputs: list[Any]
    ) -> tuple[int, dict[str, Any] | None]:
        started = time.time()
        version, endpoint = found.version, found.endpoint
        if endpoint == "batch_create":
            status, answer, written = self.api.batch_create(version, from_t, to_t, inputs, started)
            self.stats.add(associations_written=written)
            return status, answer
        if endpoint == "batch_associate_default":
            status, answer, written = self.api.associate_default(version, from_t, to_t, inputs, started)
            self.stats.add(associations_written=written)
            return status, answer
        if endpoint in ("batch_archive", "batch_labels_archive"):
            archive = self.portal.archive
            apply = archive.batch_archive if endpoint == "batch_archive" else archive.labels_archive
            status, body, removed = apply(version, from_t, to_t, inputs)
            self.stats.add(associations_archived=removed)
            return status, body
        if endpoint == "batch_read":
            return self.api.batch_read(version, from_t, to_t, inputs, started)
        if endpoint == "objects_batch_read":
            return self.portal.objects.batch_read(version, from_t, data)
        if endpoint == "objects_search":
            return self.portal.objects.search(from_t, data)
        if endpoint == "property":
            return self.portal.objects.get_property(from_t, found.name)
        if endpoint == "labels":
            return self.api.list_labels(from_t, to_t)
        return self.api.create_label(from_t, to_t, data)

    def _unauthenticated(self, endpoint: str, category: str) -> Outcome:
        if category == "EXPIRED_AUTHENTICATION":
            message = "The OAuth token used to make this call expired. Refresh it and try again."
        else:
            message = (
                "Authentication credentials not found. This API supports OAuth 2.0 and private app "
                "access tokens (Authorization: Bearer <token>)."
            )
        return Outcome(401, error_body(category, message), endpoint)

    def _storm_headers(self, rate_headers: dict[str, str]) -> dict[str, str]:
        headers = dict(rate_headers)
        if "X-HubSpot-RateLimit-Remaining" in headers:
            headers["X-HubSpot-RateLimit-Remaining"] = "0"
        if self.config.rate_limit is not None and self.config.rate_limit.retry_after:
            headers["Retry-After"] = "1"
        return headers

    def _parse(self, version: str, endpoint: str, body: bytes) -> tuple[Any, Outcome | None]:
        """The JSON body of a request, checked against the spec; or the 400 to answer."""
        operation = spec.operation(version, endpoint)
        if operation.request is None:
            return None, None
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as err:
            messages = [f"Invalid input JSON: {err}"]
            self.stats.record_spec_violation(f"{version} {endpoint}", messages)
            return None, Outcome(400, validation_error(messages[0]), endpoint)
        violations = operation.validate_request(data)
        if violations:
            self.stats.record_spec_violation(f"{version} {endpoint}", violations)
            message = f"Invalid input: the body does not match {operation.path_template}: {violations[0]}"
            n_inputs = (
                len(data["inputs"]) if isinstance(data, dict) and isinstance(data.get("inputs"), list) else 0
            )
            return None, Outcome(400, validation_error(message, violations), endpoint, n_inputs=n_inputs)
        return data, None

    def _latency(self, n_inputs: int) -> float:
        cfg = self.config.latency
        delay_ms = cfg.base_ms + cfg.per_input_ms * n_inputs
        if cfg.jitter_ms > 0:
            with self._jitter_lock:
                delay_ms += self._jitter.uniform(0, cfg.jitter_ms)
        return delay_ms / 1000.0

    def _check_response(self, version: str, outcome: Outcome) -> None:
        """Count (and keep the messages of) any answer of ours that breaks the spec.

        429 is exempt: HubSpot's real 429 body lacks the ``category`` the spec's Error requires,
        and the stand-in sends the real one on purpose.
        """
        if not self.config.validate_responses or outcome.status == 429 or outcome.drop:
            return
        violations = spec.operation(version, outcome.endpoint).validate_response(outcome.status, outcome.body)
        if violations:
            self.stats.record_response_violation(f"{version} {outcome.endpoint} {outcome.status}", violations)

    # -- OAuth and control ---------------------------------------------------------------------

    def _oauth(self, method: str, body: bytes) -> Outcome:
        if method != "POST":
            return Outcome(405, {"status": "BAD_REQUEST", "message": "use POST"}, "oauth_token")
        try:
            form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            form = {}
        status, answer = self.auth.refresh(form)
        if status == 200:
            self.stats.add(oauth_refreshes=1)
        return Outcome(status, answer, "oauth_token")

    def _control(self, method: str, path: str) -> Outcome:
        """``/__standin__/stats`` (GET), ``/__standin__/reset`` (POST), ``/__standin__/health``."""
        name = path[len(CONTROL_PREFIX) :]
        if name == "stats" and method == "GET":
            return Outcome(200, self.stats.to_dict(), "control", record=False)
        if name == "reset" and method == "POST":
            self.stats.reset()
            self.log.clear()
            return Outcome(200, {"status": "ok"}, "control", record=False)
        if name == "health" and method == "GET":
            return Outcome(200, {"status": "ok"}, "control", record=False)
        missing = {"status": "error", "message": f"no control endpoint {method} {path}"}
        return Outcome(404, missing, "control", record=False)
