"""Batch-read bookkeeping: which from ids to ask for next (chunks, then pages), and what came back.

Why apart from the calls: the sync and async reads share it, and it is pure (easy to test on bodies).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from airflow_hubspot_assoc import api


class ReadCollector:
    """Batch read bookkeeping shared by the sync and async paths: what to ask next, what came back."""

    def __init__(self, from_ids: Iterable[str], chunk: int = api.BATCH_READ_MAX_INPUTS) -> None:
        ids = list(dict.fromkeys(str(i) for i in from_ids))
        self.result: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        self._queue: list[dict[str, str]] = [{"id": i} for i in ids]
        self._chunk = chunk

    def next_payload(self) -> dict[str, Any] | None:
        """The next request's payload, or None when everything (every page) has been read."""
        if not self._queue:
            return None
        inputs, self._queue = self._queue[: self._chunk], self._queue[self._chunk :]
        return {"inputs": inputs}

    def absorb(self, body: Mapping[str, Any]) -> None:
        """Take one answer in: its associations, and the next pages to ask for."""
        results = body.get("results")
        if not isinstance(results, list):
            return
        for item in results:
            if not isinstance(item, dict):
                continue
            source = item.get("from")
            from_id = str(source.get("id")) if isinstance(source, dict) else None
            if from_id is None:
                continue
            bucket = self.result.setdefault(from_id, [])
            for target in item.get("to") or ():
                if not isinstance(target, dict) or target.get("toObjectId") is None:
                    continue
                bucket.append(
                    {
                        "toObjectId": str(target["toObjectId"]),
                        "associationTypes": [
                            {
                                "category": t.get("category"),
                                "typeId": t.get("typeId"),
                                "label": t.get("label"),
                            }
                            for t in target.get("associationTypes") or ()
                            if isinstance(t, dict)
                        ],
                    }
                )
            paging = item.get("paging")
            after = None
            if isinstance(paging, dict) and isinstance(paging.get("next"), dict):
                after = paging["next"].get("after")
            if after:
                self._queue.append({"id": from_id, "after": str(after)})


def association_types_of(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The association types in a labels answer: ``[{"category", "typeId", "label"}]``."""
    results = body.get("results")
    return [
        {"category": r.get("category"), "typeId": r.get("typeId"), "label": r.get("label")}
        for r in (results if isinstance(results, list) else [])
        if isinstance(r, dict)
    ]
