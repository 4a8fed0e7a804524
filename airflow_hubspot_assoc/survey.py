"""The validate pass of a load: one read of the whole input before the first write.

It counts rows (for progress and the guards), stops at the first bad row unless failures are
tolerated, and collects what must be checked with HubSpot before anything is sent: the labels rows
name, their type ids, and how many rows name no type at all (for an archive, every type). Pure: the
load does the checks that need HubSpot with what this returns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from airflow_hubspot_assoc.association_types import Types
from airflow_hubspot_assoc.exceptions import PairInputError
from airflow_hubspot_assoc.pairs import InvalidRow, Pair

#: Distinct per-row type ids checked before the first write (more would only be checked by HubSpot).
MAX_CHECKED_TYPE_IDS = 1_000
#: Invalid rows quoted when too many are invalid.
QUOTED_INVALID = 5


@dataclass
class InputSurvey:
    """What the validate pass learnt about an input."""

    total: int = 0
    invalid: int = 0
    #: Rows that name no type and get none from the operator (every type, for an archive).
    untyped: int = 0
    labels: set[str] = field(default_factory=set)
    type_ids: set[int] = field(default_factory=set)
    first_invalid: list[InvalidRow] = field(default_factory=list)


def survey_input(
    rows: Iterable[Pair | InvalidRow],
    default_types: Types,
    *,
    max_failed_ratio: float,
    on_pair: Callable[[Pair], None] | None = None,
) -> InputSurvey:
    """Read every row once; raise the first bad row's error when no failure is tolerated
    (``max_failed_ratio`` 0), or a summary when more rows are invalid than it allows.

    :param on_pair: called with every valid pair (the business-key resolver collects its keys).
    """
    strict = max_failed_ratio <= 0
    survey = InputSurvey(type_ids={t.type_id for t in default_types})
    type_ids = survey.type_ids
    for row in rows:
        survey.total += 1
        if isinstance(row, InvalidRow):
            if strict:
                raise row.to_error()
            survey.invalid += 1
            if len(survey.first_invalid) < QUOTED_INVALID:
                survey.first_invalid.append(row)
            continue
        if on_pair is not None:
            on_pair(row)
        if row.types is not None:
            if not row.types:
                survey.untyped += 1
            elif len(type_ids) < MAX_CHECKED_TYPE_IDS:
                type_ids.update(type_id for _, type_id in row.types)
        elif row.label is not None:
            survey.labels.add(row.label)
        elif row.type_id is not None:
            if len(type_ids) < MAX_CHECKED_TYPE_IDS:
                type_ids.add(row.type_id)
        elif not default_types:
            survey.untyped += 1
    total, invalid = survey.total, survey.invalid
    if total and invalid / total > max_failed_ratio:
        details = "; ".join(str(row.to_error()) for row in survey.first_invalid)
        raise PairInputError(
            f"{invalid:,} of {total:,} rows are invalid, over max_failed_ratio={max_failed_ratio}; "
            f"first ones: {details}",
            source=str(survey.first_invalid[0].source),
        )
    return survey
