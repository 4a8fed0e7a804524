"""The read-back engine: its sync driver (sensor) and async driver (trigger) give the same verdicts
from the same HubSpot answers, over real HTTP against the stand-in."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from airflow_hubspot_assoc.association_types import AssociationPair, AssociationType
from airflow_hubspot_assoc.exceptions import HubSpotDailyLimitError, HubSpotServerError
from airflow_hubspot_assoc.hooks.hubspot import HubSpotHook
from airflow_hubspot_assoc.readback import ReadBack, decode_pairs, encode_pairs
from tests.sensors.support import PRIMARY, UNLABELED, create, reads

UNLABELED_T = AssociationType(*UNLABELED)
PRIMARY_T = AssociationType(*PRIMARY)
VISIBLE = [(str(i), str(100 + i)) for i in range(1, 8)]
#: Expected: visible pairs, a pair never created, one with the wrong type, one default (any type).
EXPECTED = [
    *(AssociationPair(f, t, frozenset({UNLABELED_T})) for f, t in VISIBLE),
    AssociationPair("1", "999", frozenset({UNLABELED_T})),
    AssociationPair("2", "102", frozenset({UNLABELED_T, PRIMARY_T})),
    AssociationPair("3", "103"),
    AssociationPair("50", "150", frozenset({UNLABELED_T})),
]


def verdict(readback: ReadBack, done: bool) -> tuple[Any, ...]:
    """Everything a caller can see after a check."""
    return (
        done,
        readback.confirmed,
        readback.total,
        readback.position,
        [item.describe() for item in readback.pending],
        readback.last_error,
        readback.status_text(),
    )


def run_both(
    make: Callable[[], ReadBack],
    wrap: Callable[[Callable[..., Any]], Callable[..., Any]] = lambda read: read,
    checks: int = 1,
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Run ``checks`` checks with each driver on fresh read-backs; return both lists of verdicts."""
    sync_rb, async_rb = make(), make()
    sync_read, async_read = wrap(HubSpotHook().read_associations), wrap(HubSpotHook().aread_associations)
    sync_verdicts = [verdict(sync_rb, sync_rb.check(sync_read)) for _ in range(checks)]

    async def run_async() -> list[tuple[Any, ...]]:
        return [verdict(async_rb, await async_rb.acheck(async_read)) for _ in range(checks)]

    return sync_verdicts, asyncio.run(run_async())


@pytest.mark.parametrize(("max_from_ids", "max_outstanding"), [(1_000, None), (2, None), (1, 2), (3, 1)])
def test_both_drivers_give_the_same_verdicts(hubspot_conn, max_from_ids, max_outstanding):
    create(hubspot_conn, VISIBLE)
    hubspot_conn.reset_stats()

    def make() -> ReadBack:
        return ReadBack(
            "contacts",
            "companies",
            EXPECTED,
            max_from_ids=max_from_ids,
            max_outstanding=max_outstanding,
        )

    sync_verdicts, async_verdicts = run_both(make, checks=3)
    assert sync_verdicts == async_verdicts
    done, confirmed, total, position, pending, last_error, _ = sync_verdicts[-1]
    if max_outstanding is not None:
        # Reading on stops while that many pairs are missing; the rest are only counted.
        assert (done, total, last_error) == (False, 11, None)
        assert position < total and len(pending) >= max_outstanding
        return
    assert (done, confirmed, total, position, last_error) == (False, 8, 11, 11, None)
    assert pending == [
        "1 -> 999 [HUBSPOT_DEFINED/279]: not associated",
        "2 -> 102 [HUBSPOT_DEFINED/1, HUBSPOT_DEFINED/279]: has only [HUBSPOT_DEFINED/279]",
        "50 -> 150 [HUBSPOT_DEFINED/279]: not associated",
    ]
    # Both drivers sent the same reads: never more from-ids than allowed in one request.
    sizes = [r.n_inputs for r in reads(hubspot_conn)]
    assert sizes[: len(sizes) // 2] == sizes[len(sizes) // 2 :]
    assert max(sizes) <= max_from_ids


def test_the_missing_pairs_confirm_once_created(hubspot_conn):
    create(hubspot_conn, VISIBLE)
    missing = [AssociationPair("1", "999", frozenset({UNLABELED_T})), AssociationPair("3", "103")]

    def make() -> ReadBack:
        return ReadBack("contacts", "companies", pending=missing, confirmed=5, total=7)

    assert (
        run_both(make)
        == (
            [
                (
                    False,
                    6,
                    7,
                    7,
                    [missing[0].describe() + ": not associated"],
                    None,
                    "6 of 7 confirmed; 1 not visible yet",
                )
            ],
        )
        * 2
    )
    create(hubspot_conn, [("1", "999")])
    sync_verdicts, async_verdicts = run_both(make)
    assert sync_verdicts == async_verdicts == [(True, 7, 7, 7, [], None, "7 of 7 confirmed")]


def test_a_transient_error_keeps_the_unread_chunks_for_the_next_check(hubspot_conn):
    create(hubspot_conn, VISIBLE)

    def second_read_fails(read: Callable[..., Any]) -> Callable[..., Any]:
        calls = {"n": 0}

        def failing() -> None:
            calls["n"] += 1
            if calls["n"] == 2:
                raise HubSpotServerError("HubSpot kept answering 503", status=503)

        if asyncio.iscoroutinefunction(read):

            async def aread(*args: Any) -> Any:
                failing()
                return await read(*args)

            return aread

        def sread(*args: Any) -> Any:
            failing()
            return read(*args)

        return sread

    def make() -> ReadBack:
        return ReadBack("contacts", "companies", EXPECTED, max_from_ids=3)

    sync_verdicts, async_verdicts = run_both(make, second_read_fails, checks=2)
    assert sync_verdicts == async_verdicts
    first, second = sync_verdicts
    # The first chunk (from-ids 1-3, three pairs) was judged, the second failed: nothing after it was read.
    assert first[0] is False and first[3] == 3 and first[2] is None
    assert first[5] == "HubSpot API error 503: HubSpot kept answering 503"
    assert second[:4] == (False, 8, 11, 11) and second[5] is None


@pytest.mark.parametrize(
    "error", [HubSpotDailyLimitError("daily limit", status=429), ValueError("odd answer")]
)
def test_the_daily_limit_and_unexpected_errors_propagate_from_both(hubspot_conn, error):
    def broken(read: Callable[..., Any]) -> Callable[..., Any]:
        if asyncio.iscoroutinefunction(read):

            async def aread(*args: Any) -> Any:
                raise error

            return aread

        def sread(*args: Any) -> Any:
            raise error

        return sread

    readback = ReadBack("contacts", "companies", pending=EXPECTED[:2])
    with pytest.raises(type(error)):
        readback.check(broken(HubSpotHook().read_associations))
    with pytest.raises(type(error)):
        asyncio.run(readback.acheck(broken(HubSpotHook().aread_associations)))
    assert [item.pair for item in readback.pending] == EXPECTED[:2]  # nothing lost


def test_the_trigger_encoding_round_trips_through_json():
    type_sets, rows = encode_pairs(EXPECTED)
    assert len(type_sets) == 3
    assert decode_pairs(type_sets, rows) == EXPECTED
