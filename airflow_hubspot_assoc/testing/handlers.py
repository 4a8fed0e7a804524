"""What each associations endpoint does with a valid request: the body HubSpot would answer.

The HTTP layer (``server.py``) has already authenticated, rate-limited and spec-validated the
request; these methods apply it to the in-memory portal and build the answer for the API version,
whose spec decides the status code (2026-09 documents only 200; v4 and 2026-03 answer partial
failures with 207).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from airflow_hubspot_assoc.testing.config import StandInConfig
from airflow_hubspot_assoc.testing.errors import standard_error, validation_error
from airflow_hubspot_assoc.testing.objects import ObjectType
from airflow_hubspot_assoc.testing.store import (
    AssociationStore,
    AssociationType,
    LabelRegistry,
    PairTypes,
    Records,
    Row,
    TypeKey,
    canonical_id,
)

Answer = tuple[int, dict[str, Any]]


def iso(epoch: float) -> str:
    """An ISO 8601 UTC timestamp with milliseconds, as HubSpot writes them."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class AssociationsApi:
    """The portal behind the endpoints: labels, records and associations, plus the config."""

    def __init__(self, config: StandInConfig) -> None:
        self.config = config
        self.labels = LabelRegistry()
        self.records = Records(config.missing_ratio, config.seed)
        self.store = AssociationStore(keep=config.store_associations)

    # -- writes --------------------------------------------------------------------------------

    def batch_create(
        self,
        version: str,
        from_t: ObjectType,
        to_t: ObjectType,
        inputs: Sequence[Mapping[str, Any]],
        started: float,
    ) -> tuple[int, dict[str, Any], int]:
        """``batch/create``: store labeled associations; return (status, body, pairs written)."""
        canceled = self._canceled(version, inputs, started)
        if canceled is not None:
            return (*canceled, 0)
        pair = self.labels.pair(from_t.type_id, to_t.type_id)
        default = self.labels.default(from_t.type_id, to_t.type_id).key
        rows: list[Row] = []
        errors: list[dict[str, Any]] = []
        for item in inputs:
            from_id, to_id, error = self._check_records(from_t, to_t, item)
            if error is None:
                keys, error = self._resolve_types(from_t, to_t, pair, from_id, to_id, item.get("types", []))
            if error is not None:
                errors.append(error)
                continue
            # HubSpot adds the pair's unlabeled association with its first label.
            keys = keys if default in keys else [*keys, default]
            rows.append((from_id, to_id, keys, [pair.inverse.get(k, k) for k in keys]))
        stored = self.store.add_many(from_t.type_id, to_t.type_id, rows, self._visible_at())
        results: dict[tuple[str, str], dict[str, Any]] = {}
        # When nothing is stored, the labels are those just written.
        between = stored if stored is not None else [keys for _, _, keys, _ in rows]
        labels_of: dict[tuple[TypeKey, ...], list[str]] = {}  # most inputs of a batch share types
        for (from_id, to_id, _, _), now_between in zip(rows, between, strict=True):
            signature = tuple(now_between)
            labels = labels_of.get(signature)
            if labels is None:
                found = (pair.types[k].label for k in signature if k in pair.types)
                labels = labels_of[signature] = sorted({label for label in found if label})
            results[(from_id, to_id)] = {
                "fromObjectTypeId": from_t.type_id,
                "fromObjectId": from_id,
                "toObjectTypeId": to_t.type_id,
                "toObjectId": to_id,
                "labels": list(labels),
            }
        body = self._batch_body(list(results.values()), errors, started)
        if version == "2026-09":
            return 200, body, len(rows)
        return (207 if errors else 201), body, len(rows)

    def associate_default(
        self,
        version: str,
        from_t: ObjectType,
        to_t: ObjectType,
        inputs: Sequence[Mapping[str, Any]],
        started: float,
    ) -> tuple[int, dict[str, Any], int]:
        """``batch/associate/default``: the pair's unlabeled HUBSPOT_DEFINED type; always 200."""
        canceled = self._canceled(version, inputs, started)
        if canceled is not None:
            return 200, canceled[1], 0
        pair = self.labels.pair(from_t.type_id, to_t.type_id)
        default = self.labels.default(from_t.type_id, to_t.type_id)
        keys, inverse = [default.key], [pair.inverse.get(default.key, default.key)]
        spec = {"associationCategory": default.category, "associationTypeId": default.type_id}
        rows: list[Row] = []
        errors: list[dict[str, Any]] = []
        results: dict[tuple[str, str], dict[str, Any]] = {}
        for item in inputs:
            from_id, to_id, error = self._check_records(from_t, to_t, item)
            if error is not None:
                errors.append(error)
                continue
            rows.append((from_id, to_id, keys, inverse))
            results[(from_id, to_id)] = {
                "from": {"id": from_id},
                "to": {"id": to_id},
                "associationSpec": spec,
            }
        self.store.add_many(from_t.type_id, to_t.type_id, rows, self._visible_at())
        return 200, self._batch_body(list(results.values()), errors, started), len(rows)

    def _visible_at(self) -> float:
        return time.time() + self.config.visibility_delay_s

    def _canceled(self, version: str, inputs: Sequence[Mapping[str, Any]], started: float) -> Answer | None:
        """A CANCELED answer if the batch names a from id configured to cancel it.

        The error's context is empty on purpose: the whole batch failed, not some of its pairs.
        """
        cancel = self.config.cancel_from_ids
        if not cancel:
            return None
        hits = sorted({str(i.get("from", {}).get("id")) for i in inputs} & cancel)
        if not hits:
            return None
        error = standard_error(
            "CANCELED",
            f"Batch canceled: records {', '.join(hits)} are locked by another operation; "
            "nothing was written.",
        )
        body = self._batch_body([], [error], started, status="CANCELED")
        return (200 if version == "2026-09" else 207), body

    def _check_records(
        self, from_t: ObjectType, to_t: ObjectType, item: Mapping[str, Any]
    ) -> tuple[str, str, dict[str, Any] | None]:
        """The canonical ids of an input, or the error naming those of its records that are missing."""
        raw_from, raw_to = str(item["from"]["id"]), str(item["to"]["id"])
        from_id, to_id = canonical_id(raw_from), canonical_id(raw_to)
        from_ok = from_id is not None and self.records.exists_canonical(from_t.type_id, from_id)
        to_ok = to_id is not None and self.records.exists_canonical(to_t.type_id, to_id)
        if from_ok and to_ok:
            return from_id or raw_from, to_id or raw_to, None
        missing: dict[str, list[str]] = {}
        names: list[str] = []
        if not from_ok:
            missing["fromObjectId"] = [raw_from]
            names.append(f"{from_t.name} {raw_from}")
        if not to_ok:
            missing["toObjectId"] = [raw_to]
            names.append(f"{to_t.name} {raw_to}")
        verb = "does" if len(names) == 1 else "do"
        message = f"{' and '.join(names)} {verb} not exist; no association was created for this input."
        return raw_from, raw_to, standard_error("VALIDATION_ERROR", message, missing)

    def _resolve_types(
        self,
        from_t: ObjectType,
        to_t: ObjectType,
        pair: PairTypes,
        from_id: str,
        to_id: str,
        specs: Sequence[Mapping[str, Any]],
    ) -> tuple[list[TypeKey], dict[str, Any] | None]:
        ids = {"fromObjectId": [from_id], "toObjectId": [to_id]}
        if not specs:
            return [], standard_error("VALIDATION_ERROR", "At least one association type is required.", ids)
        keys = [(spec["associationCategory"], spec["associationTypeId"]) for spec in specs]
        unknown = [key for key in keys if key not in pair.types]
        if not unknown:
            return keys, None
        described = ", ".join(f"{tid} ({cat})" for cat, tid in unknown)
        # The type ids go in errors[].context so that the top-level context keeps only record ids,
        # which is what clients match failed pairs with.
        details = [
            {
                "message": f"association type {tid} ({cat}) is not defined "
                f"between {from_t.type_id} and {to_t.type_id}",
                "context": {"associationTypeId": [str(tid)], "associationCategory": [cat]},
            }
            for cat, tid in unknown
        ]
        message = (
            f"Association type id(s) {described} are not valid between {from_t.name} and {to_t.name}; "
            f"no association was created between {from_id} and {to_id}."
        )
        return [], standard_error("VALIDATION_ERROR", message, ids, details)

    def _batch_body(
        self,
        results: list[dict[str, Any]],
        errors: list[dict[str, Any]],
        started: float,
        status: str | None = None,
    ) -> dict[str, Any]:
        if status is None:
            status = "PROCESSING" if self.config.visibility_delay_s > 0 else "COMPLETE"
        return batch_body(status, results, errors, started)

    # -- reads ---------------------------------------------------------------------------------

    def batch_read(
        self,
        version: str,
        from_t: ObjectType,
        to_t: ObjectType,
        inputs: Sequence[Mapping[str, Any]],
        started: float,
    ) -> Answer:
        """``batch/read``: each from id's visible associations, one page of to ids per input."""
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        seen: set[tuple[str, str | None]] = set()
        now = time.time()
        pair = self.labels.pair(from_t.type_id, to_t.type_id)
        for item in inputs:
            raw, after = str(item["id"]), item.get("after")
            if (raw, after) in seen:
                continue
            seen.add((raw, after))
            from_id = canonical_id(raw)
            if from_id is None or not self.records.exists_canonical(from_t.type_id, from_id):
                errors.append(
                    standard_error(
                        "OBJECT_NOT_FOUND", f"{from_t.name} {raw} does not exist.", {"fromObjectId": [raw]}
                    )
                )
                continue
            if after and canonical_id(after) is None:
                errors.append(
                    standard_error(
                        "VALIDATION_ERROR",
                        f"Invalid paging cursor {after!r} for {raw}.",
                        {"fromObjectId": [raw]},
                    )
                )
                continue
            page, cursor = self.store.page(
                from_t.type_id, to_t.type_id, from_id, after or None, self.config.read_page_size, now
            )
            result: dict[str, Any] = {
                "from": {"id": from_id},
                "to": [
                    {
                        "toObjectId": to_id,
                        "associationTypes": [self._spec(pair, k) for k in sorted(keys)],
                    }
                    for to_id, keys in page
                ],
            }
            if cursor is not None:
                result["paging"] = {"next": {"after": cursor}}
            results.append(result)
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "requestedAt": iso(started),
            "startedAt": iso(started),
            "completedAt": iso(time.time()),
        }
        if errors:
            body["errors"] = errors
            body["numErrors"] = len(errors)
        if version == "2026-09":
            return 200, body
        return (207 if errors else 200), body

    @staticmethod
    def _spec(pair: PairTypes, key: TypeKey) -> dict[str, object]:
        return (pair.types.get(key) or AssociationType(*key)).as_spec_with_label()

    # -- labels --------------------------------------------------------------------------------

    def list_labels(self, from_t: ObjectType, to_t: ObjectType) -> Answer:
        """``GET .../labels``: every association type of the pair."""
        return 200, {
            "results": [t.as_spec_with_label() for t in self.labels.types(from_t.type_id, to_t.type_id)]
        }

    def create_label(self, from_t: ObjectType, to_t: ObjectType, body: Mapping[str, Any]) -> Answer:
        """``POST .../labels``: a USER_DEFINED label and its inverse, both in the answer.

        The first result is the new type (``from -> to``), the second its inverse; a label or
        internal ``name`` the pair already has is a 400, as HubSpot answers.
        """
        try:
            forward, backward = self.labels.add(
                from_t.type_id,
                to_t.type_id,
                body["label"],
                inverse_label=body.get("inverseLabel"),
                name=body["name"],
            )
        except ValueError as err:
            return 400, validation_error(str(err))
        return 200, {"results": [forward.as_spec_with_label(), backward.as_spec_with_label()]}


def batch_body(
    status: str, results: list[dict[str, Any]], errors: list[dict[str, Any]], started: float
) -> dict[str, Any]:
    """A batch answer's body (BatchResponse...WithErrors): ``errors`` and ``numErrors`` only when any."""
    body: dict[str, Any] = {
        "status": status,
        "results": results,
        "requestedAt": iso(started),
        "startedAt": iso(started),
        "completedAt": iso(time.time()),
    }
    if errors:
        body["errors"] = errors
        body["numErrors"] = len(errors)
    return body
